"""Freshness notices by e-mail (SMTP) to the project's members that have an address."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from nightwheels.core.freshness import Delivery, Notice


class EmailNotifier:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        starttls: bool = False,
        user: str | None = None,
        password: str | None = None,
        dry_run: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.user, self.password = starttls, user, password
        self.dry_run, self.timeout = dry_run, timeout

    def message(self, notice: Notice) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = ", ".join(notice.emails)
        msg["Subject"] = notice.title
        msg.set_content(notice.body() + "\n")
        return msg

    def deliver(self, notice: Notice) -> Delivery:
        if not notice.emails:
            return Delivery("skipped", None, "no project member has an e-mail address")
        if self.dry_run:
            return Delivery("dry-run", None, f"would mail {', '.join(notice.emails)}")
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(self.message(notice))
        return Delivery("sent", None, f"mailed {', '.join(notice.emails)}")
