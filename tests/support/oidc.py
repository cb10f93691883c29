"""A stand-in OIDC issuer: an RSA key pair and its JWKS served over HTTP on loopback.

Tokens are signed with PyJWT exactly as GitHub Actions signs them (RS256, ``kid`` header)
and carry GitHub's claims; the server under test fetches the key set from here.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def github_id(name: str) -> str:
    """A stand-in for the numeric id GitHub gives an account or repository."""
    return str(int(hashlib.sha256(name.lower().encode()).hexdigest()[:12], 16))


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Issuer:
    """Signs GitHub-like OIDC tokens; serves its public keys at ``jwks_url``."""

    def __init__(self, kid: str = "test-key-1") -> None:
        self.kid = kid
        self.key = new_key()
        self.requests = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests += 1
                public = json.loads(RSAAlgorithm.to_jwk(issuer.key.public_key()))
                body = json.dumps(
                    {"keys": [{**public, "kid": issuer.kid, "use": "sig", "alg": "RS256"}]}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks"

    def start(self) -> Issuer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def claims(
        self,
        repository: str = "octo-org/octo-repo",
        workflow: str = "nightly.yml",
        *,
        environment: str | None = None,
        audience: str = "nightwheels",
        issuer: str = GITHUB_ISSUER,
        lifetime: int = 300,
        **extra: Any,
    ) -> dict[str, Any]:
        now = int(time.time())
        ref = "refs/heads/main"
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": f"repo:{repository}:ref:{ref}",
            "jti": str(uuid.uuid4()),
            "iat": now,
            "nbf": now - 5,
            "exp": now + lifetime,
            "repository": repository,
            "repository_owner": repository.split("/")[0],
            # GitHub's numeric ids: stable for a name here (a test of a re-created
            # repository passes others explicitly).
            "repository_owner_id": github_id(repository.split("/")[0]),
            "repository_id": github_id(repository),
            "ref": ref,
            "sha": "0" * 40,
            "run_id": "4242",
            "workflow_ref": f"{repository}/.github/workflows/{workflow}@{ref}",
            "job_workflow_ref": f"{repository}/.github/workflows/{workflow}@{ref}",
            "event_name": "schedule",
        }
        if environment is not None:
            claims["environment"] = environment
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        algorithm: str = "RS256",
    ) -> str:
        signing_key: Any = key or self.key
        if algorithm.startswith("HS"):
            signing_key = "a shared secret that is long enough for hs256"
        return jwt.encode(
            claims, signing_key, algorithm=algorithm, headers={"kid": kid or self.kid}
        )

    def token(self, *args: Any, **kwargs: Any) -> str:
        return self.sign(self.claims(*args, **kwargs))
