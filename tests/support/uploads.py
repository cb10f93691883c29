"""One upload through the legacy protocol, as twine sends it, for tests that need the raw answer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from tests.support.server import LiveServer


def post_wheel(
    server: LiveServer,
    token: str,
    wheel: Path,
    *,
    name: str | None = None,
    version: str | None = None,
    label: str | None = None,
    json: bool = False,
    timeout: float = 60,
) -> httpx.Response:
    """POST ``wheel`` to ``/legacy/``; name and version default to the filename's."""
    data = wheel.read_bytes()
    file_name, file_version = wheel.name.split("-")[:2]
    form = {
        ":action": "file_upload",
        "name": name or file_name,
        "version": version or file_version,
        "filetype": "bdist_wheel",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
    }
    if label is not None:
        form["label"] = label
    return httpx.post(
        server.upload_url,
        auth=("__token__", token),
        headers={"Accept": "application/json"} if json else None,
        data=form,
        files={"content": (wheel.name, data, "application/octet-stream")},
        timeout=timeout,
    )
