"""The freshness notifiers the server settings configure."""

from __future__ import annotations

from typing import Any

from nightwheels.config import Settings


def from_settings(settings: Settings, *, dry_run: bool | None = None) -> list[Any]:
    """GitHub issues (``github_token``), webhook (``notify_webhook_url``), SMTP (``smtp_host``)."""
    dry = settings.notify_dry_run if dry_run is None else dry_run
    notifiers: list[Any] = []
    if settings.github_token is not None:
        from nightwheels.trackers.github import GitHubIssueNotifier

        notifiers.append(
            GitHubIssueNotifier(
                settings.github_token.get_secret_value(), settings.github_api_url, dry_run=dry
            )
        )
    if settings.notify_webhook_url:
        from nightwheels.trackers.webhook import WebhookNotifier

        secret = settings.notify_webhook_secret
        notifiers.append(
            WebhookNotifier(
                settings.notify_webhook_url,
                secret=secret.get_secret_value() if secret else None,
                dry_run=dry,
            )
        )
    if settings.smtp_host:
        from nightwheels.trackers.email import EmailNotifier

        password = settings.smtp_password
        notifiers.append(
            EmailNotifier(
                settings.smtp_host,
                settings.smtp_port,
                sender=settings.smtp_from or f"nightwheels@{settings.smtp_host}",
                starttls=settings.smtp_starttls,
                user=settings.smtp_user,
                password=password.get_secret_value() if password else None,
                dry_run=dry,
            )
        )
    return notifiers
