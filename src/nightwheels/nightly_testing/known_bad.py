"""Known upstream regressions: is a culprit's first bad build marked known bad on its index?

An upstream admin marks a build known bad with a reason and a link to the fix
(``POST /api/v1/projects/<name>/known-bad``, docs/early-warning.md). ``nightwheels report``
asks the nightly index (``GET .../known-bad``, public) so that the downstream's tracking
issue says "known upstream regression: <link>" and nobody digs into something already known.
Best effort: an index that is not a nightwheels server, or does not answer, adds nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nightwheels.nightly_testing.results import Report

__all__ = ["KnownRegression", "fetch_known_bad", "server_of"]

# <server>/simple/, <server>/label/<label>/simple/, <server>/as-of/<when>/simple/
_INDEX = re.compile(r"^(?P<base>https?://.+?)(?:/label/[^/]+|/as-of/[^/]+)?/simple/?$")
MAX_CULPRITS = 10


@dataclass(frozen=True)
class KnownRegression:
    name: str  # the culprit
    version: str
    filename: str
    reason: str
    link: str | None


def server_of(index_url: str | None) -> str | None:
    """The nightwheels server behind a simple index URL, or None if it does not look like one."""
    match = _INDEX.match((index_url or "").strip())
    return match.group("base") if match else None


def _first_bad(report: Report) -> dict[str, str]:
    """Each culprit's first bad build, by sha256: culprit name -> sha256."""
    b = report.bisect
    if b is None:
        return {}
    found: dict[str, str] = {}
    for builds in [b.builds, *(r.builds for r in b.regressions)]:
        for c in builds:
            if c.first_bad is not None and c.first_bad.sha256:
                found.setdefault(c.name, c.first_bad.sha256)
    return dict(list(found.items())[:MAX_CULPRITS])


def fetch_known_bad(
    server: str, report: Report, client: Any | None = None
) -> list[KnownRegression]:
    """The culprits of ``report`` whose first bad build ``server`` marks known bad."""
    import httpx

    wanted = _first_bad(report)
    if not wanted:
        return []
    own = client is None
    client = client or httpx.Client(timeout=10)
    found: list[KnownRegression] = []
    try:
        for name, sha256 in wanted.items():
            url = f"{server.rstrip('/')}/api/v1/projects/{name}/known-bad"
            try:
                response = client.get(url)
                marks = response.json() if response.status_code == 200 else []
            except (httpx.HTTPError, ValueError):
                continue
            for mark in marks if isinstance(marks, list) else []:
                if isinstance(mark, dict) and mark.get("sha256") == sha256:
                    found.append(
                        KnownRegression(
                            name=name,
                            version=str(mark.get("version", "")),
                            filename=str(mark.get("filename", "")),
                            reason=str(mark.get("reason", "")),
                            link=mark.get("link") if isinstance(mark.get("link"), str) else None,
                        )
                    )
                    break
    finally:
        if own:
            client.close()
    return found
