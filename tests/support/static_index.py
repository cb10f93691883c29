"""A second package index on loopback: a static PEP 503 tree served by ``http.server``.

It stands in for PyPI (the "stable" releases) in the nightly-testing tests. Wheels of
packages installed in this test environment (pytest and its dependencies) are rebuilt
from their installed files, so nothing is fetched from outside.
"""

from __future__ import annotations

import base64
import hashlib
import html
import importlib.metadata as md
import shutil
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SKIP_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def rewheel(name: str, directory: Path) -> Path:
    """Rebuild a pure-Python wheel of the installed distribution ``name``."""
    dist = md.distribution(name)
    files: dict[str, bytes] = {}
    dist_info = None
    for entry in dist.files or []:
        path = str(entry).replace("\\", "/")
        if path.startswith("..") or "__pycache__" in path or path.endswith(".pyc"):
            continue
        top = path.split("/", 1)[0]
        if top.endswith(".dist-info"):
            dist_info = top
            if path.rsplit("/", 1)[-1] in SKIP_DIST_INFO:
                continue
        located = Path(str(dist.locate_file(entry)))
        if located.is_file():
            files[path] = located.read_bytes()
    assert dist_info is not None, f"{name} has no dist-info in its RECORD"
    wheel_meta = files.get(f"{dist_info}/WHEEL", b"").decode()
    assert "Root-Is-Purelib: true" in wheel_meta, f"{name} is not pure Python"
    record = [_record_line(p, d) for p, d in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    stem = dist_info.removesuffix(".dist-info")
    path = directory / f"{stem}-py3-none-any.whl"
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, d in files.items():
            zf.writestr(p, d)
    return path


def rewheel_closure(names: list[str], directory: Path) -> list[Path]:
    """Wheels for ``names`` and everything they require (in this interpreter)."""
    env = default_environment()
    seen: set[str] = set()
    todo = list(names)
    out = []
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        out.append(rewheel(name, directory))
        for text in md.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
                todo.append(req.name)
    return out


class StaticIndex:
    """``root/simple/<name>/index.html`` + ``root/files/<wheel>``, served on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "files").mkdir(parents=True, exist_ok=True)
        (root / "simple").mkdir(parents=True, exist_ok=True)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/simple/"

    def add(self, *wheels: Path) -> None:
        for wheel in wheels:
            shutil.copy(wheel, self.root / "files" / wheel.name)
        self._render()

    def _render(self) -> None:
        projects: dict[str, list[Path]] = {}
        for wheel in sorted((self.root / "files").iterdir()):
            projects.setdefault(canonicalize_name(wheel.name.split("-")[0]), []).append(wheel)
        for name, wheels in projects.items():
            page = self.root / "simple" / name
            page.mkdir(parents=True, exist_ok=True)
            links = [
                f'<a href="../../files/{html.escape(w.name)}#sha256='
                f'{hashlib.sha256(w.read_bytes()).hexdigest()}">{html.escape(w.name)}</a><br>'
                for w in wheels
            ]
            (page / "index.html").write_text(
                "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
            )
        index = [f'<a href="{n}/">{n}</a><br>' for n in sorted(projects)]
        (self.root / "simple" / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n" + "\n".join(index) + "\n</body></html>\n"
        )

    def start(self) -> StaticIndex:
        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

        handler = partial(Quiet, directory=str(self.root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
