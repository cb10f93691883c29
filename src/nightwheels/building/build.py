"""Build a nightly with the standard ``build`` frontend, with the nightly version injected.

scm projects get ``SETUPTOOLS_SCM_PRETEND_VERSION``; projects with the version in a file
get that file rewritten for the build and always restored: in a ``finally``, on SIGTERM,
and, if the process was killed outright, a ``.nightwheels-orig`` copy is left next to the
file and the next run refuses to start until it is dealt with.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from packaging.utils import canonicalize_name
from packaging.version import Version

from nightwheels.building.project import VersionSource, find_in_file, find_meson, find_static
from nightwheels.core.filenames import parse_filename
from nightwheels.errors import BuildFailed, InvalidFilename, Misconfigured

BACKUP_SUFFIX = ".nightwheels-orig"


class _Terminated(Exception):
    """SIGTERM during a build: unwind so the ``finally`` restores the project."""


@dataclass(frozen=True)
class BuildResult:
    version: Version
    files: list[Path]


def rewrite_version(source: VersionSource, text: str, version: str) -> str:
    """``text`` of ``source.path`` with the version replaced (pure)."""
    if source.kind == "static":
        match = find_static(text)
    elif source.kind == "meson":
        match = find_meson(text)
    elif source.path is not None and source.path.suffix == ".py":
        match = find_in_file(text, source.path)
    else:  # a plain version file
        return version + "\n"
    return text[: match.start("v")] + version + text[match.end("v") :]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.nightwheels-tmp")
    tmp.write_bytes(data)
    with contextlib.suppress(OSError):
        os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)


def write_version(source: VersionSource, version: str) -> Path | None:
    """Set ``version`` in the project's files for good (for a CI checkout, e.g. before
    cibuildwheel). scm projects have no file to write: ``None``; they take
    ``SETUPTOOLS_SCM_PRETEND_VERSION`` instead."""
    if source.kind == "scm" or source.path is None:
        return None
    text = source.path.read_text(encoding="utf-8")
    _write_atomic(source.path, rewrite_version(source, text, version).encode("utf-8"))
    return source.path


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def temporarily_rewritten(path: Path, new_text: str) -> Iterator[None]:
    """Replace ``path``'s content for the duration; the original bytes always come back."""
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    if backup.exists():
        raise Misconfigured(
            f"{backup} exists: an earlier nightwheels build was killed before it could restore "
            f"{path.name}. Compare the two, then move it back (mv {backup} {path}) or delete it"
        )
    original = path.read_bytes()
    _write_atomic(backup, original)
    try:
        with _sigterm_unwinds():
            _write_atomic(path, new_text.encode("utf-8"))
            yield
    finally:
        _write_atomic(path, original)
        backup.unlink(missing_ok=True)


@contextlib.contextmanager
def injected_version(source: VersionSource, version: str) -> Iterator[dict[str, str]]:
    """Environment for the build, with ``version`` in force while the context is open."""
    env = dict(os.environ)
    if source.kind == "scm":
        env["SETUPTOOLS_SCM_PRETEND_VERSION"] = version
        if source.name:
            key = canonicalize_name(source.name).replace("-", "_").upper()
            env[f"SETUPTOOLS_SCM_PRETEND_VERSION_FOR_{key}"] = version
        with _sigterm_unwinds():
            yield env
        return
    assert source.path is not None
    text = source.path.read_text(encoding="utf-8")
    with temporarily_rewritten(source.path, rewrite_version(source, text, version)):
        yield env


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the frontend and the backend processes it started (they share a group)."""
    if os.name != "posix":
        process.kill()
        process.wait()
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    # Whatever is left of the group (a backend that ignores SIGTERM) is killed.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _run_group(args: list[str], env: dict[str, str]) -> int:
    """Run the build in its own process group, so an interrupt stops all of it."""
    process = subprocess.Popen(args, env=env, start_new_session=os.name == "posix")
    try:
        return process.wait()
    except (_Terminated, KeyboardInterrupt):
        _stop_group(process)
        raise BuildFailed("the build was interrupted; the project files were restored") from None
    finally:
        if process.poll() is None:
            _stop_group(process)


def run_build(
    project_dir: Path,
    source: VersionSource,
    version: Version,
    outdir: Path,
    *,
    wheel: bool = True,
    sdist: bool = False,
    isolation: bool = True,
    config_settings: list[str] | None = None,
) -> BuildResult:
    """Run ``python -m build`` and check that every built file carries ``version``."""
    outdir = outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    before = {p.name: p.stat().st_mtime_ns for p in outdir.iterdir()}
    args = [sys.executable, "-m", "build", "--outdir", str(outdir)]
    if wheel:
        args.append("--wheel")
    if sdist:
        args.append("--sdist")
    if not isolation:
        args.append("--no-isolation")
    for setting in config_settings or []:
        args.append(f"--config-setting={setting}")
    args.append(str(project_dir.resolve()))
    with injected_version(source, str(version)) as env:
        returncode = _run_group(args, env)
    if returncode != 0:
        raise BuildFailed(f"the build failed (python -m build exited {returncode}); see above")
    built = sorted(
        p
        for p in outdir.iterdir()
        if p.name.endswith((".whl", ".tar.gz")) and before.get(p.name) != p.stat().st_mtime_ns
    )
    if not built:
        raise BuildFailed(f"the build reported success but wrote nothing new to {outdir}")
    for path in built:
        try:
            got = parse_filename(path.name).version
        except InvalidFilename as exc:
            raise BuildFailed(exc.message) from None
        if got != version:
            raise BuildFailed(
                f"built {path.name} with version {got}, not the nightly version {version}: "
                f"the build backend ignored the injected version ({source.where})"
            )
    return BuildResult(version=version, files=built)
