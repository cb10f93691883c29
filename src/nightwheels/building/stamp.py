"""The nightly version rule (pure): ``X.Y.Z.devYYYYMMDDHHMM``.

A nightly must sort above the last release it follows and below the release it leads to,
later builds above earlier ones, with no local ``+`` part (indexes and pip treat local
versions badly: they are not ordered against each other as users expect and cannot be
uploaded to most indexes). The dev number is the UTC build time, so nightlies order by time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from packaging.version import InvalidVersion, Version

from nightwheels.errors import InvalidVersion as InvalidVersionError

STAMP_FORMAT = "%Y%m%d%H%M"


def parse_base(text: str) -> Version:
    try:
        return Version(text.strip().removeprefix("v").removeprefix("V"))
    except InvalidVersion:
        raise InvalidVersionError(f"{text!r} is not a valid version (PEP 440)") from None


def next_base(version: Version) -> str:
    """The version a nightly of ``version`` leads to, without any dev part.

    ``2.1.0.dev0`` -> ``2.1.0`` (a development version already names its target);
    ``2.1.0rc1`` -> ``2.1.0rc2`` (after a pre-release comes the next one);
    ``2.0.0`` or ``2.0.0.post1`` -> ``2.0.1`` (after a release, the next patch), as
    setuptools-scm's default "guess-next-dev" scheme does for a tagged release.
    """
    epoch = f"{version.epoch}!" if version.epoch else ""
    release = ".".join(str(part) for part in version.release)
    if version.is_devrelease:
        pre = "".join(f"{p[0]}{p[1]}" for p in [version.pre] if p)
        post = f".post{version.post}" if version.post is not None else ""
        return f"{epoch}{release}{pre}{post}"
    if version.pre is not None:
        kind, number = version.pre
        return f"{epoch}{release}{kind}{number + 1}"
    parts = list(version.release)
    parts[-1] += 1
    return epoch + ".".join(str(part) for part in parts)


def nightly_version(base: str | Version, when: datetime) -> Version:
    """The nightly version for ``base`` built from a source dated ``when``."""
    version = base if isinstance(base, Version) else parse_base(base)
    if when.tzinfo is None:
        raise ValueError("the build time must be timezone-aware")
    stamp = when.astimezone(UTC).strftime(STAMP_FORMAT)
    return Version(f"{next_base(version)}.dev{stamp}")
