"""A reader for Simple Repository API indexes: PEP 691 JSON first, PEP 503 HTML otherwise.

JSON pages carry PEP 700 upload times, which date bisection needs; HTML-only indexes
still work for installing, without upload times. Pages are read with the standard
library's keep-alive client of ``nightwheels upload`` (``upload.http``): importing httpx
was a third of ``nightwheels test``'s start-up, measured against doing it by hand.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urldefrag, urljoin, urlsplit

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from nightwheels import __version__
from nightwheels.errors import IndexUnavailable
from nightwheels.upload import http

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
MAX_REDIRECTS = 5
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


@dataclass(frozen=True)
class IndexFile:
    """One distribution file as an index lists it."""

    name: NormalizedName
    filename: str
    url: str  # absolute, without fragment
    version: Version
    sha256: str | None
    upload_time: datetime | None
    requires_python: str | None
    yanked: bool
    tags: frozenset[Tag]  # empty for sdists

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, as PEP 700 writes upload times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_file(
    page_url: str,
    href: str,
    filename: str | None,
    hashes: dict[str, str],
    upload_time: str | None,
    requires_python: str | None,
    yanked: object,
) -> IndexFile | None:
    url, fragment = urldefrag(urljoin(page_url, href))
    filename = filename or url.rsplit("/", 1)[-1]
    if fragment.startswith("sha256=") and "sha256" not in hashes:
        hashes = {**hashes, "sha256": fragment.removeprefix("sha256=")}
    try:
        if filename.endswith(".whl"):
            name, version, _build, tags = parse_wheel_filename(filename)
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            tags = frozenset()
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None
    when = None
    if upload_time:
        try:
            when = parse_time(upload_time)
        except ValueError:
            when = None
    return IndexFile(
        name=name,
        filename=filename,
        url=url,
        version=version,
        sha256=hashes.get("sha256"),
        upload_time=when,
        requires_python=requires_python or None,
        yanked=bool(yanked),
        tags=frozenset(tags),
    )


def _links(html: str) -> list[dict[str, str | None]]:
    """The ``<a>`` elements of a PEP 503 page: their attributes, and ``#text``, their text.

    html.parser is loaded only for an HTML page (most indexes answer in JSON): importing it
    was 3% of ``nightwheels test``'s start-up.
    """
    from html.parser import HTMLParser

    class LinkParser(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.links: list[dict[str, str | None]] = []
            self._current: dict[str, str | None] | None = None
            self._text: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "a":
                self._current = dict(attrs)
                self._text = []

        def handle_data(self, data: str) -> None:
            if self._current is not None:
                self._text.append(data)

        def handle_endtag(self, tag: str) -> None:
            if tag == "a" and self._current is not None:
                self._current["#text"] = "".join(self._text).strip()
                self.links.append(self._current)
                self._current = None

    parser = LinkParser()
    parser.feed(html)
    return parser.links


@dataclass(frozen=True)
class _Page:
    url: str  # after redirects
    response: http.Response

    @property
    def text(self) -> str:
        return self.response.text

    def json(self) -> object:
        return self.response.json()


class SimpleIndex:
    """One index root URL (``.../simple/``), read with one HTTP client."""

    def __init__(self, url: str) -> None:
        if not url.endswith("/"):
            url += "/"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise IndexUnavailable(f"{url!r} is not an http(s) index URL")
        self.url = url
        self._clients: dict[str, http.Client] = {}  # per origin; each thread its connection
        self._lock = threading.Lock()

    def _client(self, origin: str) -> http.Client:
        with self._lock:
            client = self._clients.get(origin)
            if client is None:
                headers = {"User-Agent": f"nightwheels/{__version__}"}
                client = self._clients[origin] = http.Client(origin, headers, timeout=60)
            return client

    def _get(self, url: str) -> _Page | None:
        """GET ``url`` (redirects followed, connection failures retried twice)."""
        where = url
        for _redirect in range(MAX_REDIRECTS + 1):
            parts = urlsplit(where)
            try:
                client = self._client(f"{parts.scheme}://{parts.netloc}")
            except ValueError:
                raise IndexUnavailable(
                    f"cannot read {url}: {where!r} is not an http(s) URL"
                ) from None
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            for attempt in range(3):
                try:
                    response = client.request("GET", target, None, {"Accept": ACCEPT})
                    break
                except http.TransportError as exc:
                    if attempt == 2 or not exc.connect:
                        raise IndexUnavailable(f"cannot read {url}: {exc.reason}") from None
            location = response.headers.get("location")
            if response.status in (301, 302, 303, 307, 308) and location:
                where = urljoin(where, location)
                continue
            if response.status == 404:
                return None
            if response.status >= 400:
                raise IndexUnavailable(f"{url} answered HTTP {response.status}")
            return _Page(where, response)
        raise IndexUnavailable(f"{url} redirects more than {MAX_REDIRECTS} times")

    @staticmethod
    def _is_json(page: _Page) -> bool:
        content_type = page.response.headers.get("content-type", "")
        return content_type.split(";")[0].strip() == JSON_TYPE

    def project_names(self) -> set[NormalizedName]:
        response = self._get(self.url)
        if response is None:
            raise IndexUnavailable(f"{self.url} is not a package index (HTTP 404)")
        if self._is_json(response):
            try:
                projects = response.json()["projects"]  # type: ignore[index]
                return {canonicalize_name(p["name"]) for p in projects}
            except (ValueError, KeyError, TypeError):
                raise IndexUnavailable(f"{self.url} is not a valid PEP 691 JSON index") from None
        links = _links(response.text)
        return {canonicalize_name(str(link.get("#text") or "")) for link in links} - {""}

    def files(self, name: str, *, root: str | None = None) -> list[IndexFile] | None:
        """The files of project ``name``, or None when the index does not have it."""
        page = urljoin(root or self.url, canonicalize_name(name) + "/")
        response = self._get(page)
        if response is None:
            return None
        page = response.url
        out: list[IndexFile] = []
        if self._is_json(response):
            try:
                entries = response.json()["files"]  # type: ignore[index]
            except (ValueError, KeyError, TypeError):
                raise IndexUnavailable(f"{page} is not a valid PEP 691 JSON page") from None
            for e in entries:
                parsed = _parse_file(
                    page,
                    e.get("url", ""),
                    e.get("filename"),
                    dict(e.get("hashes") or {}),
                    e.get("upload-time"),
                    e.get("requires-python"),
                    e.get("yanked", False),
                )
                if parsed is not None:
                    out.append(parsed)
            return out
        for link in _links(response.text):
            href = link.get("href")
            if not href:
                continue
            yanked = link.get("data-yanked")
            parsed = _parse_file(
                page,
                href,
                str(link.get("#text") or "") or None,
                {},
                None,
                link.get("data-requires-python"),
                yanked is not None,
            )
            if parsed is not None:
                out.append(parsed)
        return out

    def as_of_root(self, template: str, when: datetime) -> str:
        return template.replace("{when}", format_time(when))

    def files_as_of(self, name: str, template: str, when: datetime) -> list[IndexFile] | None:
        """The files the index listed at ``when`` (its history view), None if it has none."""
        return self.files(name, root=self.as_of_root(template, when))

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def default_history_template(index_url: str) -> str:
    """``http://host/simple/`` -> ``http://host/as-of/{when}/simple/``."""
    if not index_url.endswith("/"):
        index_url += "/"
    head, sep, _tail = index_url.rstrip("/").rpartition("/")
    last = index_url.rstrip("/").rsplit("/", 1)[-1]
    return f"{head}{sep}as-of/{{when}}/{last}/"


def latest_stable(files: list[IndexFile]) -> Version | None:
    """The highest final (not pre-, dev- or yanked) release among ``files``."""
    versions = [f.version for f in files if not f.yanked and not f.version.is_prerelease]
    return max(versions) if versions else None
