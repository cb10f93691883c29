"""Atom feeds (RFC 4287), rendered without I/O; every text is XML-escaped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

__all__ = ["Entry", "render_atom"]


@dataclass(frozen=True)
class Entry:
    id: str  # a stable tag: URI
    title: str
    updated: datetime
    summary: str
    link: str | None = None


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def render_atom(feed_id: str, title: str, link: str, entries: list[Entry]) -> bytes:
    updated = max((e.updated for e in entries), default=None)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<id>{escape(feed_id)}</id>",
        f"<title>{escape(title)}</title>",
        f'<link rel="alternate" href={quoteattr(link)}/>',
        f"<updated>{_time(updated) if updated else '1970-01-01T00:00:00Z'}</updated>",
        "<author><name>nightwheels</name></author>",
    ]
    for e in entries:
        parts += [
            "<entry>",
            f"<id>{escape(e.id)}</id>",
            f"<title>{escape(e.title)}</title>",
            f"<updated>{_time(e.updated)}</updated>",
            f"<summary>{escape(e.summary)}</summary>",
            *([f'<link rel="alternate" href={quoteattr(e.link)}/>'] if e.link else []),
            "</entry>",
        ]
    parts.append("</feed>")
    return "\n".join(parts).encode()
