"""Distribution filenames: wheels (PEP 427/491) and sdists (PEP 625).

A file's identity in the index is not its filename but (normalised name, normalised
version, wheel tags): ``projA-12.0-1-py3-none-any.whl`` (a build tag) and
``proja-12.0.0-py3-none-any.whl`` are the same file as ``proja-12.0-py3-none-any.whl``
to an installer, so they are to the index too. See :attr:`DistFilename.version_key` and
:attr:`DistFilename.tag_key`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.tags import Tag, parse_tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from nightwheels.errors import InvalidFilename

PackageType = Literal["bdist_wheel", "sdist"]

MAX_FILENAME_LENGTH = 255
_SAFE_CHARS = re.compile(r"^[A-Za-z0-9._+!-]+$")


@dataclass(frozen=True)
class DistFilename:
    filename: str
    name: NormalizedName
    version: Version
    packagetype: PackageType
    tags: frozenset[Tag]
    build: tuple[int, str] | tuple[()]

    @property
    def version_key(self) -> str:
        """The version as installers compare it: ``12.0`` and ``12.0.0`` are one."""
        return version_key(self.version)

    @property
    def tag_key(self) -> str:
        """``sdist``, or the wheel's tag set in one canonical spelling (sorted, lower case).

        A filename's tags are a product of interpreters, ABIs and platforms, so the
        sorted factors name the set exactly (``py3.py2-none-any`` is ``py2.py3-none-any``).
        """
        if self.packagetype == "sdist":
            return SDIST_KEY
        parts = zip(*((t.interpreter, t.abi, t.platform) for t in self.tags), strict=True)
        return "-".join(".".join(sorted(set(values))) for values in parts)

    def overlaps(self, version_key: str, tag_key: str) -> bool:
        """Whether a file recorded with these keys serves some install this one serves."""
        if version_key != self.version_key:
            return False
        if SDIST_KEY in (tag_key, self.tag_key):
            return tag_key == self.tag_key
        return tag_key == self.tag_key or not self.tags.isdisjoint(parse_tag(tag_key))


SDIST_KEY = "sdist"


def version_key(version: Version) -> str:
    return canonicalize_version(version, strip_trailing_zero=True)


def check_safe(filename: str) -> None:
    """Refuse anything that could be a path or trick a shell, a log or an HTML page."""
    if not filename or len(filename) > MAX_FILENAME_LENGTH:
        raise InvalidFilename(f"filename must be 1-{MAX_FILENAME_LENGTH} characters")
    if "/" in filename or "\\" in filename or filename.startswith(".") or ".." in filename:
        raise InvalidFilename(f"{filename!r} is not a plain filename: it must not contain a path")
    if not _SAFE_CHARS.match(filename):
        raise InvalidFilename(
            f"{filename!r} contains characters that are not allowed in a distribution filename"
        )


def parse_filename(filename: str) -> DistFilename:
    """Parse a wheel or sdist filename, raising :class:`InvalidFilename` with the reason."""
    check_safe(filename)
    if filename.endswith(".whl"):
        try:
            name, version, build, tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, ValueError) as exc:
            raise InvalidFilename(f"invalid wheel filename {filename!r}: {exc}") from None
        for tag in tags:
            if not (tag.interpreter and tag.abi and tag.platform):
                raise InvalidFilename(f"invalid wheel tags in {filename!r}")
        return DistFilename(filename, name, version, "bdist_wheel", frozenset(tags), build)
    if filename.endswith(".tar.gz"):
        try:
            name, version = parse_sdist_filename(filename)
        except (InvalidSdistFilename, ValueError) as exc:
            raise InvalidFilename(f"invalid sdist filename {filename!r}: {exc}") from None
        return DistFilename(filename, name, version, "sdist", frozenset(), ())
    raise InvalidFilename(
        f"{filename!r} is not a wheel (.whl) or source distribution (.tar.gz) filename"
    )
