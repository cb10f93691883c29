"""Whether uv's cached build of the project under test is current, so it need not be rebuilt.

uv keys its build of a local directory on the modification time of ``pyproject.toml`` (and
``setup.py``/``setup.cfg``), not on the sources: after an edit to ``src/`` it would install
a stale build. ``nightwheels test`` therefore rebuilt the project on every run. Instead, it
notes when it last had uv build the project with this uv cache (a stamp file in
nightwheels' own cache folder), and rebuilds only when some file in the project's tree
is newer than that, or when it cannot tell (no stamp, too many files to look at).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["BuildStamp"]

SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", ".nightwheels"}
)  # fmt: skip
MAX_ENTRIES = 100_000


def _cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nightwheels" / "builds"


def newest_mtime(root: Path, limit: int = MAX_ENTRIES) -> float | None:
    """The newest modification time in ``root``'s tree, or None past ``limit`` entries."""
    newest = 0.0
    seen = 0
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > limit:
                        return None
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if entry.name not in SKIP_DIRS:
                                stack.append(entry.path)
                            continue
                        newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
                    except OSError:
                        continue
        except OSError:
            continue
    return newest


class BuildStamp:
    """The stamp of one project built with one uv cache."""

    def __init__(self, project_root: Path, uv_cache: str | None) -> None:
        key = f"{uv_cache or 'default'}\0{project_root.resolve()}"
        self.path = _cache_home() / hashlib.sha256(key.encode()).hexdigest()[:32]
        self.root = project_root

    def current(self) -> bool:
        """True when uv's build (made after the stamp's time) has every file's last change."""
        try:
            stamped = float(self.path.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return False
        newest = newest_mtime(self.root)
        return newest is not None and newest < stamped

    def record(self, started: float) -> None:
        """The project was built from its tree as it was at ``started`` (or later)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}")
            tmp.write_text(repr(started), encoding="ascii")
            tmp.replace(self.path)
        except OSError:
            pass  # no stamp: the next run rebuilds, as before
