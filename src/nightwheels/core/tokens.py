"""API token format: ``nwt_<prefix>_<secret>``.

The prefix identifies the token row (and is safe to show); only the SHA-256 of the
whole token is stored. Tokens are 256-bit random, so a fast hash is enough (as for
GitHub and PyPI tokens); comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "nwt_"  # noqa: S105 - a public marker, not a secret


@dataclass(frozen=True)
class NewToken:
    prefix: str
    secret: str  # the full token, shown once

    @property
    def digest(self) -> str:
        return hash_token(self.secret)


def generate_token() -> NewToken:
    prefix = secrets.token_hex(6)
    return NewToken(prefix=prefix, secret=f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}")


def split_token(token: str) -> str | None:
    """Return the prefix of a well-formed token, else ``None``."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    prefix, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or len(prefix) != 12 or not secret:
        return None
    return prefix


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, digest: str) -> bool:
    return hmac.compare_digest(hash_token(token), digest)
