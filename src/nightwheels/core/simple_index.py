"""Reading another index's simple pages (PEP 503 HTML, PEP 691 JSON), without I/O.

What a mirror needs from a project page: each file's name, URL, sha256, upload time
(PEP 700), yank status (PEP 592) and whether its core metadata is served (PEP 658/714).
Pages come from servers we do not control: URLs are resolved against the page and only
``http``/``https`` ones are kept, and a malformed entry is skipped with a reason rather
than guessed at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

__all__ = [
    "ACCEPT",
    "JSON_TYPE",
    "ProjectPage",
    "RemoteFile",
    "SimplePageError",
    "parse_index_page",
    "parse_project_page",
]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
# JSON first (it carries upload times), HTML from indexes that only speak PEP 503.
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


class SimplePageError(ValueError):
    """A page that is not a simple-API page at all."""


@dataclass(frozen=True)
class RemoteFile:
    filename: str
    url: str
    sha256: str | None
    upload_time: datetime | None = None
    yanked: str | None = None  # the reason ("" when yanked without one); None: not yanked
    metadata_sha256: str | None = None  # PEP 658: served, with this digest
    metadata_served: bool = False


@dataclass(frozen=True)
class ProjectPage:
    files: list[RemoteFile]
    skipped: list[str]  # why entries were left out


def _is_web_url(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def _digest(value: object) -> str | None:
    if isinstance(value, str):
        value = value.strip().lower()
        if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            return value
    return None


def _upload_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _yanked(value: object) -> str | None:
    if value is True:
        return ""
    if isinstance(value, str):
        return value
    return None


def _json_files(page: dict[str, object], base_url: str) -> ProjectPage:
    files, skipped = [], []
    entries = page.get("files")
    if not isinstance(entries, list):
        raise SimplePageError("the JSON page has no 'files' list")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
            skipped.append("an entry without a filename")
            continue
        filename = entry["filename"]
        url = urljoin(base_url, str(entry.get("url", "")))
        if not _is_web_url(url):
            skipped.append(f"{filename}: its URL is not http(s)")
            continue
        hashes = entry.get("hashes") if isinstance(entry.get("hashes"), dict) else {}
        metadata = entry.get("core-metadata", entry.get("dist-info-metadata", False))
        files.append(
            RemoteFile(
                filename=filename,
                url=urldefrag(url).url,
                sha256=_digest(hashes.get("sha256")),
                upload_time=_upload_time(entry.get("upload-time")),
                yanked=_yanked(entry.get("yanked")),
                metadata_sha256=_digest(metadata.get("sha256"))
                if isinstance(metadata, dict)
                else None,
                metadata_served=bool(metadata),
            )
        )
    return ProjectPage(files, skipped)


class _Links(HTMLParser):
    """The ``<a>`` elements of a PEP 503 page: attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.links.append((self._current, "".join(self._text).strip()))
            self._current = None


def _fragment_sha256(fragment: str) -> str | None:
    name, _, value = fragment.partition("=")
    return _digest(value) if name == "sha256" else None


def _html_files(text: str, base_url: str) -> ProjectPage:
    parser = _Links()
    parser.feed(text)
    files, skipped = [], []
    for attrs, label in parser.links:
        href = attrs.get("href")
        if not href or not label:
            continue
        url, fragment = urldefrag(urljoin(base_url, href))
        if not _is_web_url(url):
            skipped.append(f"{label}: its URL is not http(s)")
            continue
        metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        yanked = attrs.get("data-yanked")
        files.append(
            RemoteFile(
                filename=label,
                url=url,
                sha256=_fragment_sha256(fragment),
                yanked=None if "data-yanked" not in attrs else (yanked or ""),
                metadata_sha256=_fragment_sha256(metadata) if metadata else None,
                metadata_served=metadata is not None and metadata != "false",
            )
        )
    return ProjectPage(files, skipped)


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in (JSON_TYPE, "application/json")


def parse_project_page(content_type: str, body: bytes, page_url: str) -> ProjectPage:
    """The files a project page lists (JSON by PEP 691, HTML by PEP 503)."""
    if _is_json(content_type):
        try:
            page = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SimplePageError(f"the JSON page does not parse: {exc}") from None
        if not isinstance(page, dict):
            raise SimplePageError("the JSON page is not an object")
        return _json_files(page, page_url)
    return _html_files(body.decode("utf-8", "replace"), page_url)


def parse_index_page(content_type: str, body: bytes) -> list[str]:
    """The project names the root page lists."""
    if _is_json(content_type):
        try:
            page = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SimplePageError(f"the JSON index does not parse: {exc}") from None
        projects = page.get("projects") if isinstance(page, dict) else None
        if not isinstance(projects, list):
            raise SimplePageError("the JSON index has no 'projects' list")
        return [
            p["name"] for p in projects if isinstance(p, dict) and isinstance(p.get("name"), str)
        ]
    parser = _Links()
    parser.feed(body.decode("utf-8", "replace"))
    return [label for _, label in parser.links if label]
