"""Upload sessions from the client side: open one, publish or cancel it.

The standard library only (like the rest of ``nightwheels upload``): a session is opened
once per CI job and published once per night. See
:mod:`nightwheels.services.upload_sessions` for what a session is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from nightwheels.errors import NightwheelsError
from nightwheels.upload.credentials import USER_AGENT, Credentials
from nightwheels.upload.http import TransportError, fetch, message


class SessionError(NightwheelsError):
    code = "session-failed"
    status = 400


@dataclass(frozen=True)
class RemoteSession:
    id: str
    project: str
    name: str
    label: str
    state: str
    files: int
    preview_url: str

    @property
    def legacy_path(self) -> str:
        return f"/legacy/session/{self.id}/"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RemoteSession:
        return cls(
            id=str(data["id"]),
            project=str(data["project"]),
            name=str(data["name"]),
            label=str(data["label"]),
            state=str(data["state"]),
            files=len(data.get("files") or []),
            preview_url=str(data.get("preview_url", "")),
        )


def _call(
    credentials: Credentials,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    timeout: float = 60.0,
) -> RemoteSession:
    headers = {
        "Authorization": f"Bearer {credentials.token}",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        response = fetch(
            credentials.server + path, headers, timeout=timeout, method=method, body=data
        )
    except TransportError as exc:
        raise SessionError(
            f"the server at {credentials.server} is unreachable: {exc.reason}"
        ) from None
    if response.status not in (200, 201):
        raise SessionError(f"{message(response)} (HTTP {response.status})")
    try:
        return RemoteSession.from_json(response.json())  # type: ignore[arg-type]
    except (ValueError, KeyError, TypeError):
        raise SessionError(
            f"{credentials.server} answered the session request with something else than "
            "a session: is it a nightwheels server?"
        ) from None


def open_session(
    credentials: Credentials, project: str, name: str, label: str, *, timeout: float = 60.0
) -> RemoteSession:
    """The open session ``name`` of ``project`` (created unless another job did)."""
    return _call(
        credentials,
        "POST",
        f"/api/v1/projects/{quote(project, safe='')}/sessions",
        {"name": name, "label": label},
        timeout=timeout,
    )


def find_session(
    credentials: Credentials, project: str, name: str, *, timeout: float = 60.0
) -> RemoteSession:
    """The open session ``name`` of ``project`` (404: none is open by that name)."""
    return _call(
        credentials,
        "GET",
        f"/api/v1/projects/{quote(project, safe='')}/sessions/{quote(name, safe='')}",
        timeout=timeout,
    )


def publish(credentials: Credentials, session_id: str, *, timeout: float = 300.0) -> RemoteSession:
    return _call(
        credentials,
        "POST",
        f"/api/v1/sessions/{quote(session_id, safe='')}/publish",
        timeout=timeout,
    )


def cancel(credentials: Credentials, session_id: str, *, timeout: float = 60.0) -> RemoteSession:
    return _call(
        credentials, "DELETE", f"/api/v1/sessions/{quote(session_id, safe='')}", timeout=timeout
    )


def show(credentials: Credentials, session_id: str, *, timeout: float = 60.0) -> RemoteSession:
    return _call(
        credentials, "GET", f"/api/v1/sessions/{quote(session_id, safe='')}", timeout=timeout
    )
