"""SVG badges for READMEs ("nightly | 2 days ago"), in the flat style people know.

Pure: text in, bytes out. Every text is XML-escaped; widths are estimated from the
character count (Verdana 11px averages about 6.5 px), which is what such badges do.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

__all__ = ["COLOURS", "render_badge"]

COLOURS = {
    "green": "#2e7d32",
    "yellow": "#b58900",
    "orange": "#c65f00",
    "red": "#c62828",
    "grey": "#5f6368",
    "blue": "#1e63b5",
}
_CHAR = 6.5
_PAD = 10
MAX_TEXT = 60


def _width(text: str) -> int:
    return int(len(text) * _CHAR + 2 * _PAD)


def render_badge(label: str, message: str, colour: str) -> bytes:
    label, message = label[:MAX_TEXT], message[:MAX_TEXT]
    fill = COLOURS.get(colour, COLOURS["grey"])
    left, right = _width(label), _width(message)
    total = left + right
    title = escape(f"{label}: {message}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        f'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{fill}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        f'font-size="11"><text x="{left / 2:.1f}" y="14">{escape(label)}</text>'
        f'<text x="{left + right / 2:.1f}" y="14">{escape(message)}</text></g></svg>'
    ).encode()
