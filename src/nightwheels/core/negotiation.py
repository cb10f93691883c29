"""Content negotiation for the simple API (PEP 691): Accept with q-values, or ?format=."""

from __future__ import annotations

from functools import lru_cache

from nightwheels.core.simple_pages import HTML_TYPE, JSON_TYPE, LEGACY_HTML_TYPE

# Our preference when the client accepts several equally: JSON, then v1 HTML, then text/html.
SERVABLE = (JSON_TYPE, HTML_TYPE, LEGACY_HTML_TYPE)


@lru_cache(maxsize=256)
def choose_media_type(accept: str | None) -> str | None:
    """Pick the media type to serve, or ``None`` when nothing acceptable can be served (406)."""
    if not accept:
        return LEGACY_HTML_TYPE
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        fields = [p.strip() for p in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        if media in SERVABLE:
            candidates = [media]
        elif media in ("*/*", "application/*"):
            candidates = [JSON_TYPE, HTML_TYPE] if media == "application/*" else [LEGACY_HTML_TYPE]
        elif media == "text/*":
            candidates = [LEGACY_HTML_TYPE]
        else:
            continue
        for candidate in candidates:
            rank = (q, -SERVABLE.index(candidate), candidate)
            if best is None or rank[:2] > best[:2]:
                best = rank
    return best[2] if best else None


FORMAT_PARAMS = {
    "json": JSON_TYPE,
    "html": HTML_TYPE,
    JSON_TYPE: JSON_TYPE,
    HTML_TYPE: HTML_TYPE,
    LEGACY_HTML_TYPE: LEGACY_HTML_TYPE,
}
