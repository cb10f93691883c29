"""HTTP negotiation for the simple API, pure: media type (PEP 691: ``Accept`` with q-values,
or ``?format=``), content coding (``Accept-Encoding``) and ``If-None-Match`` (RFC 9110).
"""

from __future__ import annotations

import re
from functools import lru_cache

from nightwheels.core.simple_pages import HTML_TYPE, JSON_TYPE, LEGACY_HTML_TYPE

__all__ = [
    "FORMAT_PARAMS",
    "LATEST_HTML_TYPE",
    "LATEST_JSON_TYPE",
    "accepts_gzip",
    "choose_media_type",
    "etag_matches",
    "format_media_type",
]

# PEP 691: "latest" names the newest version of each format this server serves.
LATEST_JSON_TYPE = "application/vnd.pypi.simple.latest+json"
LATEST_HTML_TYPE = "application/vnd.pypi.simple.latest+html"
_ALIASES = {LATEST_JSON_TYPE: JSON_TYPE, LATEST_HTML_TYPE: HTML_TYPE}
# Our preference when the client accepts several equally: JSON, then v1 HTML, then text/html.
SERVABLE = (JSON_TYPE, HTML_TYPE, LEGACY_HTML_TYPE)
_WILDCARDS = {
    "*/*": (LEGACY_HTML_TYPE,),  # a browser or an old tool: the page as PEP 503 serves it
    "application/*": (JSON_TYPE, HTML_TYPE),
    "text/*": (LEGACY_HTML_TYPE,),
}
MAX_CACHED_HEADER = 256  # longer headers are parsed each time, never kept


def _q(params: list[str]) -> float:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0  # also refuses nan
    return 1.0


def _choose(accept: str) -> str | None:
    best: tuple[float, int] | None = None
    chosen: str | None = None
    for part in accept.split(","):
        fields = part.split(";")
        media = fields[0].strip().lower()
        q = _q(fields[1:])
        if not media or q <= 0:
            continue
        media = _ALIASES.get(media, media)
        candidates = (media,) if media in SERVABLE else _WILDCARDS.get(media, ())
        for candidate in candidates:
            rank = (q, -SERVABLE.index(candidate))
            if best is None or rank > best:
                best, chosen = rank, candidate
    return chosen


@lru_cache(maxsize=256)
def _choose_cached(accept: str) -> str | None:
    return _choose(accept)


def choose_media_type(accept: str | None) -> str | None:
    """The media type to serve for ``Accept``, or ``None`` when nothing acceptable can be
    served (406). No header: text/html, as PEP 503 serves it."""
    if not accept:
        return LEGACY_HTML_TYPE
    if len(accept) > MAX_CACHED_HEADER:
        return _choose(accept)
    return _choose_cached(accept)


FORMAT_PARAMS = {
    "json": JSON_TYPE,
    "html": HTML_TYPE,
    **{media: media for media in SERVABLE},
    **_ALIASES,
}


def format_media_type(value: str) -> str | None:
    """``?format=`` as PyPI offers it: a media type (or ``json``/``html``); ``None`` if unknown."""
    return FORMAT_PARAMS.get(value.strip().lower())


def _accepts_gzip(header: str) -> bool:
    gzip = star = None
    for part in header.split(","):
        fields = part.split(";")
        coding = fields[0].strip().lower()
        if coding in ("gzip", "x-gzip"):
            gzip = _q(fields[1:])
        elif coding == "*":
            star = _q(fields[1:])
    if gzip is not None:
        return gzip > 0
    return star is not None and star > 0


@lru_cache(maxsize=64)
def _accepts_gzip_cached(header: str) -> bool:
    return _accepts_gzip(header)


def accepts_gzip(header: str | None) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (``gzip;q=0`` does not)."""
    if not header:
        return False
    if len(header) > MAX_CACHED_HEADER:
        return _accepts_gzip(header)
    return _accepts_gzip_cached(header)


# RFC 9110 entity-tag: [W/] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text.
_LIST_ITEM = re.compile(r'[ \t]*(?:W/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?:,|$)')


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 ``If-None-Match``: ``*``, or a list of entity tags compared weakly.

    A malformed header matches nothing (the request is served in full), so a value that
    merely contains the tag (``garbage"<tag>"garbage``) is no match.
    """
    header = if_none_match.strip(" \t,")
    if header == "*":
        return True
    opaque = etag[2:] if etag.startswith("W/") else etag
    position, found = 0, False
    while position < len(header):
        item = _LIST_ITEM.match(header, position)
        if item is None or item.end() == position:
            return False
        found = found or item.group(1) == opaque
        position = item.end()
    return found
