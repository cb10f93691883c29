"""API token format: ``nwt_<prefix>_<secret>``.

The prefix identifies the token row (and is safe to show); only the SHA-256 of the
whole token is stored. Tokens are 256-bit random, so a fast hash is enough (as for
GitHub and PyPI tokens); comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from nightwheels.errors import InvalidRequest

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


MAX_NAME_LENGTH = 100


def validate_token_name(name: str) -> str:
    """Token names are labels for people: 1-100 printable characters."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidRequest(
            f"{name!r} is not a valid token name: use 1-{MAX_NAME_LENGTH} printable characters"
        )
    return name


def expiry_warning(
    name: str, expires_at: datetime | None, now: datetime, window: timedelta
) -> str | None:
    """The warning shown (upload responses, ``token list``, notifier) as expiry nears."""
    if expires_at is None:
        return None
    left = expires_at - now
    if left > window:
        return None
    if left <= timedelta(0):
        return f"token {name!r} expired on {expires_at:%Y-%m-%d}: create a new one"
    days = math.ceil(left / timedelta(days=1))
    when = f"in {days} days" if left >= timedelta(days=1) else "within a day"
    return (
        f"token {name!r} expires {when} ({expires_at:%Y-%m-%d}): "
        "rotate it (nightwheels token rotate) and update your CI secret"
    )
