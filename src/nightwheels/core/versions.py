"""Version strings (PEP 440)."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from nightwheels.errors import InvalidVersion as InvalidVersionError


def normalize_version(version: str) -> str:
    try:
        return str(Version(version))
    except InvalidVersion:
        raise InvalidVersionError(f"{version!r} is not a valid version (PEP 440)") from None
