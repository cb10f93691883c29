"""Distribution filenames: wheels (PEP 427/491) and sdists (PEP 625)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
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
