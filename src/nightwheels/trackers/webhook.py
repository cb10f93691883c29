"""Freshness notices as JSON POSTs to a webhook, signed with HMAC-SHA256 when a secret is set.

Body: ``{"event": "nightwheels.freshness", "action": "warn"|"final"|"resolved", "project",
"last_upload", "age_days", "removal_at", "repository_url", "index_url", "title", "message"}``;
header ``X-Nightwheels-Signature-256: sha256=<hex HMAC of the body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from nightwheels import __version__
from nightwheels.core.freshness import Delivery, Notice

SIGNATURE_HEADER = "X-Nightwheels-Signature-256"


def payload(notice: Notice) -> dict[str, object]:
    return {
        "event": "nightwheels.freshness",
        "action": notice.action,
        "project": notice.project,
        "last_upload": notice.last_upload.isoformat(),
        "age_days": notice.age_days,
        "removal_at": notice.removal_at.isoformat(),
        "repository_url": notice.repository_url,
        "index_url": notice.index_url,
        "title": notice.title,
        "message": notice.body(),
    }


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        dry_run: bool = False,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.dry_run = dry_run
        self.http = httpx.Client(timeout=timeout, transport=transport)

    def deliver(self, notice: Notice) -> Delivery:
        body = json.dumps(payload(notice), separators=(",", ":")).encode()
        if self.dry_run:
            return Delivery("dry-run", None, f"would POST {notice.action} to {self.url}")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"nightwheels/{__version__}",
            "X-Nightwheels-Event": "freshness",
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        response = self.http.post(self.url, content=body, headers=headers)
        if response.status_code >= 300:
            raise RuntimeError(f"webhook {self.url} answered {response.status_code}")
        return Delivery("sent", None, f"POST {self.url}: {response.status_code}")
