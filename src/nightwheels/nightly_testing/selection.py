"""Which nightly file an install would take, for one interpreter. Pure rules, no I/O.

The same rule an installer applies (newest version, then the most specific wheel tag),
restricted to what a nightly is: a wheel of a dev release, not yanked, whose
``Requires-Python`` admits the interpreter, uploaded no later than ``before`` when a
date is given (the ``--exclude-newer`` rule on PEP 700 upload times).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.version import Version

from nightwheels.nightly_testing.index import IndexFile


@dataclass(frozen=True)
class Target:
    """The interpreter the tests run on."""

    python_version: str  # e.g. "3.11.7"
    tags: tuple[Tag, ...]  # most preferred first (packaging.tags.sys_tags order)
    markers: dict[str, str]

    @property
    def platform_tag(self) -> str:
        return str(self.tags[0]) if self.tags else "unknown"


@dataclass(frozen=True)
class Missing:
    reason: str


def _python_ok(requires_python: str | None, python: Version) -> bool:
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(python, prereleases=True)
    except InvalidSpecifier:
        return True  # installers ignore an invalid Requires-Python; so do we


def choose(
    files: Sequence[IndexFile], target: Target, *, before: datetime | None = None
) -> IndexFile | Missing:
    """The nightly wheel to install for ``target``, or why there is none."""
    if not files:
        return Missing("the index lists no files")
    python = Version(target.python_version)
    rank = {tag: i for i, tag in enumerate(target.tags)}
    candidates = [f for f in files if not f.yanked]
    if not candidates:
        return Missing("every file is yanked")
    if before is not None:
        candidates = [f for f in candidates if f.upload_time and f.upload_time <= before]
        if not candidates:
            return Missing(f"no file was uploaded before {before:%Y-%m-%dT%H:%M:%SZ}")
    dev = [f for f in candidates if f.version.is_devrelease]
    if not dev:
        versions = ", ".join(sorted({str(f.version) for f in candidates}))
        return Missing(f"no dev build (the index has only {versions})")
    wheels = [f for f in dev if f.is_wheel]
    if not wheels:
        return Missing("no wheel (only source distributions, which are not built here)")
    fit_python = [f for f in wheels if _python_ok(f.requires_python, python)]
    if not fit_python:
        needs = sorted({f.requires_python or "" for f in wheels})
        return Missing(f"no wheel for Python {target.python_version} (requires {', '.join(needs)})")
    fit = [f for f in fit_python if f.tags & rank.keys()]
    if not fit:
        available = sorted({str(t) for f in fit_python for t in f.tags})
        shown = ", ".join(available[:8]) + (", ..." if len(available) > 8 else "")
        return Missing(
            f"no wheel for this platform ({target.platform_tag}); the nightlies are for: {shown}"
        )

    def key(f: IndexFile) -> tuple[Version, int, float, str]:
        best_tag = min(rank[t] for t in f.tags if t in rank)
        uploaded = f.upload_time.timestamp() if f.upload_time else 0.0
        return (f.version, -best_tag, uploaded, f.filename)

    return max(fit, key=key)
