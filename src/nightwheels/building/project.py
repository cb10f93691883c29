"""Where a project keeps its version, and what its base version and source date are.

Supported: a static ``[project] version``; setuptools-scm and hatch-vcs (version from git
tags); a ``__version__``/``VERSION`` assignment in a file (hatch ``[tool.hatch.version]
path``, setuptools ``attr:``/``file:``, flit); a literal ``version:`` in meson.build
(meson-python). Anything else gets a clear error naming ``--base-version``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nightwheels.errors import Misconfigured

Kind = Literal["static", "scm", "file", "meson"]

_PROJECT_HEADER = re.compile(r"^\[project\][ \t]*(#.*)?$", re.MULTILINE)
_ANY_HEADER = re.compile(r"^[ \t]*\[", re.MULTILINE)
_STATIC_VERSION = re.compile(
    r"""^(?P<lead>version[ \t]*=[ \t]*)(?P<q>["'])(?P<v>[^"'\n]*)(?P=q)""", re.M
)
# hatch's default pattern, also what flit and setuptools ``attr:`` read in practice.
_FILE_VERSION = re.compile(
    r"""^(?P<lead>[ \t]*(?:__version__|VERSION)[ \t]*(?::[ \t]*str[ \t]*)?=[ \t]*)"""
    r"""(?P<q>["'])(?P<pre>v?)(?P<v>[^"'\n]+)(?P=q)""",
    re.M,
)
_MESON_VERSION = re.compile(r"""(?P<lead>\bversion[ \t]*:[ \t]*)(?P<q>')(?P<v>[^'\n]+)'""")
_SCM_REQUIREMENT = re.compile(r"^(setuptools[-_]scm|hatch[-_]vcs)\b", re.I)


@dataclass(frozen=True)
class VersionSource:
    """Where the version lives: ``path`` is the file to rewrite (``None`` for scm)."""

    kind: Kind
    base: str
    name: str | None
    path: Path | None
    where: str  # for messages: "[project] version in pyproject.toml"


def _load_pyproject(project_dir: Path) -> dict[str, Any]:
    path = project_dir / "pyproject.toml"
    if not path.is_file():
        raise Misconfigured(
            f"{project_dir} has no pyproject.toml: nightwheels reads the version from it; "
            "pass --base-version X.Y.Z, or set the version yourself from `nightwheels version`"
        )
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise Misconfigured(f"{path} is not valid TOML: {exc}") from None


def _check_version(text: str, where: str) -> str:
    try:
        Version(text)
    except InvalidVersion:
        raise Misconfigured(f"{where} is {text!r}, which is not a PEP 440 version") from None
    return text


def _static_region(text: str) -> tuple[int, int]:
    match = _PROJECT_HEADER.search(text)
    if match is None:
        raise Misconfigured("pyproject.toml has no [project] table header to rewrite")
    end = _ANY_HEADER.search(text, match.end())
    return match.end(), end.start() if end else len(text)


def find_static(text: str) -> re.Match[str]:
    start, end = _static_region(text)
    match = _STATIC_VERSION.search(text, start, end)
    if match is None:
        raise Misconfigured(
            'cannot find a `version = "..."` line in the [project] table of pyproject.toml '
            "(a multi-line or computed value cannot be rewritten): pass --version to build, "
            "or make it a plain string"
        )
    return match


def find_in_file(text: str, path: Path) -> re.Match[str]:
    match = _FILE_VERSION.search(text)
    if match is None:
        raise Misconfigured(f'{path} has no `__version__ = "..."` (or VERSION) line to rewrite')
    return match


def find_meson(text: str) -> re.Match[str]:
    start = text.find("project(")
    match = _MESON_VERSION.search(text, max(start, 0)) if start >= 0 else None
    if match is None:
        raise Misconfigured(
            "meson.build's project() has no literal `version: '...'`: the version is computed "
            "by the build; set it there from `nightwheels version` instead"
        )
    return match


def _module_file(project_dir: Path, dotted: str) -> Path:
    parts = dotted.split(".")
    for root in (project_dir / "src", project_dir):
        for candidate in (
            root.joinpath(*parts).with_suffix(".py"),
            root.joinpath(*parts, "__init__.py"),
        ):
            if candidate.is_file():
                return candidate
    raise Misconfigured(f"cannot find the module {dotted!r} under {project_dir} or its src/")


def _inside(project_dir: Path, path: Path) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(project_dir.resolve()):
        raise Misconfigured(f"the version file {path} is outside the project")
    if not resolved.is_file():
        raise Misconfigured(f"the version file {path} does not exist")
    return resolved


def _file_source(project_dir: Path, path: Path, name: str | None, where: str) -> VersionSource:
    path = _inside(project_dir, path)
    text = path.read_text(encoding="utf-8")
    # A .py file has an assignment; a setuptools ``file:`` is the version itself.
    base = find_in_file(text, path).group("v") if path.suffix == ".py" else text.strip()
    return VersionSource("file", _check_version(base, where), name, path, where)


def _uses_scm(data: dict[str, Any]) -> bool:
    tool = data.get("tool", {})
    if "setuptools_scm" in tool or tool.get("hatch", {}).get("version", {}).get("source") == "vcs":
        return True
    requires = data.get("build-system", {}).get("requires", [])
    return any(_SCM_REQUIREMENT.match(str(r).strip()) for r in requires)


def git(project_dir: Path, *args: str) -> str | None:
    """Output of a git command in ``project_dir``, or ``None`` outside a work tree."""
    exe = shutil.which("git")
    if exe is None:
        return None
    result = subprocess.run(
        [exe, "-C", str(project_dir), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def scm_base(project_dir: Path, fallback: str | None) -> str:
    """The last version tag reachable from HEAD (``v1.2.3`` -> ``1.2.3``), else the fallback."""
    tag = git(project_dir, "describe", "--tags", "--abbrev=0", "--match", "*[0-9]*")
    if tag:
        match = re.search(r"\d.*$", tag)
        if match:
            try:
                return str(Version(match.group(0)))
            except InvalidVersion:
                pass
    if fallback:
        return fallback
    raise Misconfigured(
        "this project takes its version from git tags but no version tag is reachable from "
        "HEAD (shallow clone? use `fetch-depth: 0` with actions/checkout, or pass --base-version)"
    )


def version_source(project_dir: Path) -> VersionSource:
    """Find where ``project_dir`` keeps its version."""
    data = _load_pyproject(project_dir)
    project = data.get("project", {})
    name = project.get("name")
    dynamic = project.get("dynamic", [])
    if "version" in project and "version" not in dynamic:
        where = "[project] version in pyproject.toml"
        base = _check_version(str(project["version"]), where)
        return VersionSource("static", base, name, project_dir / "pyproject.toml", where)
    tool = data.get("tool", {})
    backend = str(data.get("build-system", {}).get("build-backend", ""))
    if _uses_scm(data):
        fallback = tool.get("setuptools_scm", {}).get("fallback_version")
        base = scm_base(project_dir, fallback)
        return VersionSource("scm", base, name, None, "the latest git tag (setuptools-scm)")
    hatch_path = tool.get("hatch", {}).get("version", {}).get("path")
    if hatch_path:
        where = f"__version__ in {hatch_path} ([tool.hatch.version] path)"
        return _file_source(project_dir, project_dir / hatch_path, name, where)
    st_version = tool.get("setuptools", {}).get("dynamic", {}).get("version", {})
    if isinstance(st_version, dict) and st_version.get("attr"):
        module, _, _attr = str(st_version["attr"]).rpartition(".")
        path = _module_file(project_dir, module)
        return _file_source(project_dir, path, name, f"{st_version['attr']} (setuptools attr)")
    if isinstance(st_version, dict) and st_version.get("file"):
        files = st_version["file"]
        first = files[0] if isinstance(files, list) else files
        return _file_source(project_dir, project_dir / first, name, f"{first} (setuptools file)")
    if backend.startswith("flit_core") and name:
        module = tool.get("flit", {}).get("module", {}).get("name") or canonicalize_name(
            name
        ).replace("-", "_")
        path = _module_file(project_dir, module)
        return _file_source(project_dir, path, name, f"__version__ in {path.name} (flit)")
    if backend == "mesonpy" and (project_dir / "meson.build").is_file():
        path = project_dir / "meson.build"
        base = find_meson(path.read_text(encoding="utf-8")).group("v")
        return VersionSource(
            "meson", _check_version(base, "meson.build version"), name, path, "meson.build"
        )
    raise Misconfigured(
        "cannot tell where this project keeps its version (not a static [project] version, "
        "setuptools-scm, hatch-vcs, a __version__ file, or meson.build): pass --base-version "
        "X.Y.Z to `nightwheels version`, and set the printed version in your build yourself"
    )


def source_time(project_dir: Path, mode: str = "commit") -> datetime:
    """When the source was made: HEAD's commit time (the same on every CI job), else now."""
    if mode == "commit":
        stamp = git(project_dir, "log", "-1", "--format=%ct", "HEAD")
        if stamp and stamp.isdigit():
            return datetime.fromtimestamp(int(stamp), UTC)
    elif mode != "now":
        raise Misconfigured(f"unknown time source {mode!r}: use 'commit' or 'now'")
    return datetime.now(UTC)


def head_commit(project_dir: Path) -> str | None:
    return git(project_dir, "rev-parse", "HEAD")
