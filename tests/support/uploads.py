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


def legacy_form(wheel: Path, **overrides: str) -> list[tuple[str, str | tuple[str, bytes]]]:
    """The legacy form of ``wheel`` as (name, value) parts, the file last; overrides win."""
    data = wheel.read_bytes()
    file_name, file_version = wheel.name.split("-")[:2]
    fields = {
        ":action": "file_upload",
        "name": file_name,
        "version": file_version,
        "filetype": "bdist_wheel",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        **overrides,
    }
    return [*fields.items(), ("content", (wheel.name, data))]


def encode_parts(parts: list[tuple[str, str | tuple[str, bytes]]]) -> tuple[str, bytes]:
    """``multipart/form-data`` with the parts in exactly this order (httpx puts files last)."""
    boundary = "nightwheels-test-boundary-7d1f"
    out = []
    for name, value in parts:
        if isinstance(value, tuple):
            filename, data = value
            out.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                + data
                + b"\r\n"
            )
        else:
            out.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
    out.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(out)


def post_batch(
    server: LiveServer, token: str, parts: list[tuple[str, str | tuple[str, bytes]]]
) -> httpx.Response:
    """POST the parts (several legacy forms, one after the other) to ``/legacy/batch/``."""
    content_type, body = encode_parts(parts)
    return httpx.post(
        f"{server.url}/legacy/batch/",
        auth=("__token__", token),
        headers={"Content-Type": content_type, "Accept": "application/json"},
        content=body,
        timeout=60,
    )
