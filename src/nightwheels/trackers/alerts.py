"""Senders of upstream alerts (services/upstream_alerts.py): a signed webhook, an issue in
the upstream's own GitHub repository (with the token it provided), e-mail.

Webhook body: ``{"event": "nightwheels.upstream_alert", "action": "opened"|"updated"|
"resolved", "alert", "upstream", "build", "downstream", "failures", "run_url", ...}``, or
for a digest ``{"event": "nightwheels.upstream_alert_digest", "alerts": [...]}``; signed
``X-Nightwheels-Signature-256: sha256=<HMAC>`` with the channel's secret.
"""

from __future__ import annotations

import ipaddress
import json
import smtplib
import socket
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx

from nightwheels import __version__
from nightwheels.config import Settings
from nightwheels.core.alerts import Alert, ChannelInfo, Sender
from nightwheels.errors import TrackerError
from nightwheels.trackers.webhook import SIGNATURE_HEADER, sign

MARKER = "<!-- nightwheels-upstream-alert: {id} -->"


def public_address_only(url: str) -> None:
    """Refuse a URL whose host resolves to a loopback, private, link-local or otherwise
    non-global address: a project admin's webhook must not probe the server's network."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise TrackerError(f"webhook host {host!r} does not resolve: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise TrackerError(
                f"webhook {url} resolves to {address}, which is not a public address; the "
                "server setting NIGHTWHEELS_ALERT_WEBHOOKS_ALLOW_PRIVATE allows it"
            )


class WebhookSender:
    def __init__(self, timeout: float = 30.0, *, allow_private: bool = False) -> None:
        # Redirects are not followed: a public URL must not bounce the POST inward.
        self.http = httpx.Client(timeout=timeout, follow_redirects=False)
        self.allow_private = allow_private

    def send(
        self, channel: ChannelInfo, secret: str | None, alerts: list[Alert], action: str,
        ref: str | None,
    ) -> str | None:  # fmt: skip
        if action == "digest":
            data: dict[str, Any] = {
                "event": "nightwheels.upstream_alert_digest",
                "upstream": channel.project,
                "alerts": [a.payload(a.state) for a in alerts],
            }
        else:
            data = alerts[0].payload(action)
        if not self.allow_private:
            public_address_only(channel.target)
        body = json.dumps(data, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"nightwheels/{__version__}"}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        try:
            response = self.http.post(channel.target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TrackerError(f"webhook {channel.target} unreachable: {exc}") from None
        if response.status_code >= 300:
            raise TrackerError(f"webhook {channel.target} answered {response.status_code}")
        return None


class GitHubSender:
    """One issue per alert in the upstream's repository: opened, its body updated by later
    runs, closed with a comment when resolved (never a digest: an issue is per alert)."""

    def __init__(self, api_url: str | None = None) -> None:
        self.api_url = api_url

    def _issues(self, repo: str, token: str):  # type: ignore[no-untyped-def]
        from nightwheels.trackers.github_issues import GitHubIssues

        return GitHubIssues(repo, token, self.api_url)

    def send(
        self, channel: ChannelInfo, secret: str | None, alerts: list[Alert], action: str,
        ref: str | None,
    ) -> str | None:  # fmt: skip
        github = self._issues(channel.target, secret or "")
        try:
            for alert in alerts:
                body = f"{alert.body()}\n\n{MARKER.format(id=alert.id)}"
                number = int(ref) if ref and ref.isdigit() and len(alerts) == 1 else None
                if number is None:
                    if alert.state == "resolved":
                        continue  # never opened here: nothing to close
                    created = github.create(f"nightwheels: {alert.title}", body)
                    ref = str(created["number"])
                    continue
                if alert.state == "resolved":
                    github.comment(number, alert.body())
                    github.update(number, state="closed", body=body)
                else:
                    github.update(
                        number, state="open", body=body, title=f"nightwheels: {alert.title}"
                    )
        finally:
            github.close_connection()
        return ref


class EmailSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(
        self, channel: ChannelInfo, secret: str | None, alerts: list[Alert], action: str,
        ref: str | None,
    ) -> str | None:  # fmt: skip
        s = self.settings
        if not s.smtp_host:
            raise TrackerError("this server has no SMTP settings (NIGHTWHEELS_SMTP_HOST)")
        msg = EmailMessage()
        msg["From"] = s.smtp_from or f"nightwheels@{s.smtp_host}"
        msg["To"] = channel.target
        if action == "digest":
            msg["Subject"] = f"nightwheels: {len(alerts)} upstream alert(s) for {channel.project}"
            msg.set_content("\n\n---\n\n".join(f"{a.title}\n\n{a.body()}" for a in alerts) + "\n")
        else:
            msg["Subject"] = f"nightwheels: {alerts[0].title}"
            msg.set_content(alerts[0].body() + "\n")
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=30) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_user:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_user, password)
            smtp.send_message(msg)
        return None


def senders_from_settings(settings: Settings) -> dict[str, Sender]:
    return {
        "webhook": WebhookSender(allow_private=settings.alert_webhooks_allow_private),
        "github": GitHubSender(settings.github_api_url),
        "email": EmailSender(settings),
    }
