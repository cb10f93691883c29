"""The nightwheels client this server runs, as a wheel: what every install line points at.

nightwheels is not on PyPI, and installing it by name from there would run whatever code
claims the name. So every server offers the exact client it runs (``/-/client/``): a wheel
packed from the installed ``nightwheels`` package (editable or not), its metadata and entry
points. The packing is reproducible (sorted entries, fixed timestamps and modes), so the
same code gives the same sha256 on every server and every start.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import nightwheels
from nightwheels import __version__
from nightwheels.errors import Unavailable

__all__ = ["ClientWheel", "client_requirement", "client_wheel"]

NAME = "nightwheels"
EXTRA = "nightly"  # what a CI job needs: the client and uv for `nightwheels test`
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_SKIP_DIRS = frozenset({"__pycache__"})
_SKIP_SUFFIXES = (".pyc", ".pyo")
_ENTRY_POINTS = "[console_scripts]\nnightwheels = nightwheels.cli.main:main\n"


@dataclass(frozen=True)
class ClientWheel:
    filename: str
    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def client_requirement(url: str, wheel: ClientWheel) -> str:
    """The pinned requirement: ``nightwheels[nightly] @ URL#sha256=...`` (pip checks it)."""
    return f"{NAME}[{EXTRA}] @ {url}#sha256={wheel.sha256}"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _package_files(root: Path) -> list[tuple[str, bytes]]:
    """Every file of the package under ``root`` (no byte code), by archive path, sorted."""
    files = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if not path.is_file() or _SKIP_DIRS.intersection(relative.parts):
            continue
        if path.name.endswith(_SKIP_SUFFIXES):
            continue
        files.append((f"{NAME}/{relative.as_posix()}", path.read_bytes()))
    return sorted(files)


def _dist_info() -> tuple[str, str]:
    """METADATA and entry_points.txt of the installed distribution of this very code."""
    try:
        dist = metadata.distribution(NAME)
    except metadata.PackageNotFoundError:
        raise Unavailable(
            "this server runs nightwheels from a folder that is not installed, so it cannot "
            "offer its client: install it (pip install -e .) and restart"
        ) from None
    if dist.version != __version__:
        raise Unavailable(
            f"the installed nightwheels metadata says {dist.version} but the server runs "
            f"{__version__}: reinstall it (pip install -e .) and restart"
        )
    text = dist.read_text("METADATA")
    if not text:
        raise Unavailable("the installed nightwheels has no METADATA: reinstall it")
    return text, dist.read_text("entry_points.txt") or _ENTRY_POINTS


def build_client_wheel() -> ClientWheel:
    """Pack the running ``nightwheels`` package as ``nightwheels-<version>-py3-none-any.whl``."""
    meta, entry_points = _dist_info()
    info = f"{NAME}-{__version__}.dist-info"
    files = _package_files(Path(nightwheels.__file__).parent)
    files += [
        (f"{info}/METADATA", meta.encode()),
        (
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: nightwheels\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        (f"{info}/entry_points.txt", entry_points.encode()),
    ]
    record = [_record_line(path, data) for path, data in files] + [f"{info}/RECORD,,"]
    files.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files:
            entry = zipfile.ZipInfo(path, date_time=_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data, compresslevel=6)
    data = buffer.getvalue()
    filename = f"{NAME}-{__version__}-py3-none-any.whl"
    return ClientWheel(filename, data, hashlib.sha256(data).hexdigest())


_lock = threading.Lock()
_cached: ClientWheel | None = None


def client_wheel() -> ClientWheel:
    """The client wheel, packed on first use and kept for the life of the process."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = build_client_wheel()
        return _cached
