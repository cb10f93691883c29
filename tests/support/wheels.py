"""Build real, valid wheels (and bad ones) without a build backend, for fast tests."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def metadata_text(
    name: str, version: str, requires_python: str | None = None, extra: str = ""
) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    return "\n".join(lines) + "\n" + extra + "\n"


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    tag: str = "py3-none-any",
    *,
    requires_python: str | None = None,
    metadata: str | None = None,
    module_source: str | None = None,
    payload: bytes = b"",
    filename: str | None = None,
    dist_info: str | None = None,
) -> Path:
    """Write ``<name>-<version>-<tag>.whl`` with a module named after the project."""
    directory.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_").replace(".", "_").lower()
    dist_info = dist_info or f"{module}-{version}.dist-info"
    meta = metadata if metadata is not None else metadata_text(name, version, requires_python)
    files = {
        f"{module}/__init__.py": (module_source or f"__version__ = {version!r}\n").encode(),
        f"{dist_info}/METADATA": meta.encode(),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode(),
    }
    if payload:
        files[f"{module}/payload.bin"] = payload
    record = [_record_line(p, d) for p, d in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / (filename or f"{module}-{version}-{tag}.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    return path


def make_sdist(directory: Path, name: str, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    base = f"{name.replace('-', '_').lower()}-{version}"
    path = directory / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        root = tarfile.TarInfo(base)
        root.type = tarfile.DIRTYPE
        root.mode = 0o755
        tf.addfile(root)
        data = metadata_text(name, version).encode()
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return path


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for p, d in members.items():
            zf.writestr(p, d)
    return buffer.getvalue()
