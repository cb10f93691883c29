"""Checking that an environment holds exactly the nightlies that were chosen. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from packaging.utils import NormalizedName
from packaging.version import InvalidVersion, Version

from nightwheels.nightly_testing.environment import Installed
from nightwheels.nightly_testing.index import IndexFile


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def verify_nightlies(
    pinned: Mapping[NormalizedName, IndexFile],
    installed: Mapping[NormalizedName, Installed],
    nightly_index_url: str,
) -> list[str]:
    """Every way in which the environment differs from the plan; empty when it matches.

    Each pinned nightly must be installed, at the chosen dev version, from the chosen
    file (PEP 610 ``direct_url.json``); uv has checked the file's sha256 against the
    index. No other package may have come from the nightly index's host.
    """
    problems: list[str] = []
    for name, chosen in sorted(pinned.items()):
        got = installed.get(name)
        if got is None:
            problems.append(f"{name}: the nightly {chosen.filename} was not installed")
            continue
        try:
            same_version = Version(got.version) == chosen.version
        except InvalidVersion:
            same_version = False
        if not same_version:
            problems.append(
                f"{name}: {got.version} is installed, not the nightly {chosen.version} "
                f"({chosen.filename})"
            )
        elif not chosen.version.is_devrelease:
            problems.append(f"{name}: {chosen.version} is not a dev build")
        if got.url is None or got.url.split("#", 1)[0] != chosen.url:
            problems.append(
                f"{name}: installed from {got.url or 'an index'}, not from the nightly file "
                f"{chosen.url}"
            )
    nightly_origin = _origin(nightly_index_url)
    for name, got in sorted(installed.items()):
        if name in pinned or got.url is None:
            continue
        if got.url.startswith(("http://", "https://")) and _origin(got.url) == nightly_origin:
            problems.append(f"{name}: came from the nightly index ({got.url}) without being asked")
    return problems
