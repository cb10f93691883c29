"""Rendering of the Simple Repository API pages (PEP 503, 691, 700, 658/714, 592, 792;
PEP 708's ``tracks`` only where a server turns it on).

Pure functions from listings to bytes: the server caches their output, and the static
export writes it to files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from html import escape

from packaging.version import InvalidVersion, Version

# What every page declares: 1.1 PEP 700 fields, 1.2 PEP 708 (tracks: optional, off by
# default), 1.3 PEP 740 (provenance: optional, not served), 1.4 PEP 792 project status.
API_VERSION = "1.4"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
LEGACY_HTML_TYPE = "text/html"


@dataclass(frozen=True)
class FileEntry:
    filename: str
    url: str  # relative to the page, or absolute
    sha256: str
    size: int
    upload_time: datetime
    version: str
    requires_python: str | None = None
    metadata_sha256: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None


@dataclass(frozen=True)
class ProjectListing:
    name: str  # normalised
    serial: int
    files: tuple[FileEntry, ...]
    tracks: tuple[str, ...] = ()
    status: str = "active"  # PEP 792; a quarantined project lists no files
    status_reason: str | None = None


def format_upload_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def sorted_versions(files: tuple[FileEntry, ...]) -> list[str]:
    return sorted({f.version for f in files}, key=_version_key)


def render_project_html(listing: ProjectListing) -> bytes:
    name = escape(listing.name)
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        f'<meta name="pypi:repository-version" content="{API_VERSION}">',
    ]
    lines += [f'<meta name="pypi:tracks" content="{escape(url)}">' for url in listing.tracks]
    if listing.status != "active":
        lines.append(f'<meta name="pypi:project-status" content="{escape(listing.status)}">')
        if listing.status_reason:
            reason = escape(listing.status_reason)
            lines.append(f'<meta name="pypi:project-status-reason" content="{reason}">')
    lines += [f"<title>Links for {name}</title>", "</head>", "<body>", f"<h1>Links for {name}</h1>"]
    for f in listing.files:
        attrs = [f'href="{escape(f.url)}#sha256={f.sha256}"']
        if f.requires_python:
            attrs.append(f'data-requires-python="{escape(f.requires_python)}"')
        if f.metadata_sha256:
            attrs.append(f'data-core-metadata="sha256={f.metadata_sha256}"')
            attrs.append(f'data-dist-info-metadata="sha256={f.metadata_sha256}"')
        if f.yanked:
            attrs.append(f'data-yanked="{escape(f.yanked_reason or "")}"')
        lines.append(f"<a {' '.join(attrs)}>{escape(f.filename)}</a><br>")
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode()


def _file_json(f: FileEntry) -> dict[str, object]:
    entry: dict[str, object] = {
        "filename": f.filename,
        "url": f.url,
        "hashes": {"sha256": f.sha256},
        "size": f.size,
        "upload-time": format_upload_time(f.upload_time),
    }
    if f.requires_python:
        entry["requires-python"] = f.requires_python
    metadata: object = {"sha256": f.metadata_sha256} if f.metadata_sha256 else False
    entry["core-metadata"] = metadata
    entry["dist-info-metadata"] = metadata
    entry["yanked"] = (f.yanked_reason or True) if f.yanked else False
    return entry


def render_project_json(listing: ProjectListing) -> bytes:
    meta: dict[str, object] = {"api-version": API_VERSION}
    if listing.tracks:
        meta["tracks"] = list(listing.tracks)
    doc: dict[str, object] = {
        "meta": meta,
        "name": listing.name,
        "versions": sorted_versions(listing.files),
        "files": [_file_json(f) for f in listing.files],
    }
    if listing.status != "active":
        status: dict[str, str] = {"status": listing.status}
        if listing.status_reason:
            status["reason"] = listing.status_reason
        doc["project-status"] = status
    return json.dumps(doc, separators=(",", ":")).encode()


def render_index_html(names: list[str]) -> bytes:
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        f'<meta name="pypi:repository-version" content="{API_VERSION}">',
        "<title>Simple index</title>",
        "</head>",
        "<body>",
    ]
    lines += [f'<a href="{escape(n)}/">{escape(n)}</a><br>' for n in names]
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode()


def render_index_json(names: list[str]) -> bytes:
    doc = {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in names]}
    return json.dumps(doc, separators=(",", ":")).encode()
