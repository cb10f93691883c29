"""A server-rendered SVG bar chart of uploads per day (no JavaScript, no library).

The SVG is built with Jinja's ``Markup`` escaping so that labels can never inject markup;
it carries a ``<title>``/``<desc>`` and each bar a ``<title>`` for screen readers and tooltips.
"""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

WIDTH = 720
HEIGHT = 180
LEFT = 40
BOTTOM = 24
TOP = 10


def _nice_max(value: int) -> int:
    """The smallest of 1, 2, 4, 6, 8 x 10^n at or above ``value`` (at least 1).

    Above 1 these are even, so the middle grid line falls on a whole number.
    """
    step = 1
    while True:
        for m in (1, 2, 4, 6, 8):
            if m * step >= value:
                return m * step
        step *= 10


def uploads_chart(days: list[tuple[date, int]], title: str = "Uploads per day") -> Markup:
    total = sum(c for _, c in days)
    top = _nice_max(max((c for _, c in days), default=0))
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - TOP - BOTTOM
    bar_w = plot_w / max(1, len(days))
    first = days[0][0].isoformat() if days else ""
    last = days[-1][0].isoformat() if days else ""
    parts = [
        Markup(
            '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="chart-title '
            'chart-desc" xmlns="http://www.w3.org/2000/svg">'
        ).format(w=WIDTH, h=HEIGHT),
        Markup('<title id="chart-title">{}</title>').format(title),
        Markup(
            '<desc id="chart-desc">{} files uploaded from {} to {}; busiest day {}.</desc>'
        ).format(total, first, last, max((c for _, c in days), default=0)),
    ]
    for frac in (0, 0.5, 1) if top > 1 else (0, 1):
        y = TOP + plot_h * (1 - frac)
        parts.append(
            Markup(
                '<line class="grid" x1="{x1}" x2="{x2}" y1="{y:.1f}" y2="{y:.1f}"/>'
                '<text class="axis" x="{tx}" y="{ty:.1f}" text-anchor="end">{v}</text>'
            ).format(x1=LEFT, x2=WIDTH - 8, y=y, tx=LEFT - 6, ty=y + 4, v=int(top * frac))
        )
    for i, (day, count) in enumerate(days):
        h = plot_h * count / top
        x = LEFT + i * bar_w
        parts.append(
            Markup(
                '<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}">'
                "<title>{d}: {c} upload{s}</title></rect>"
            ).format(
                x=x + 1,
                y=TOP + plot_h - h,
                w=max(1.0, bar_w - 2),
                h=h,
                d=day.isoformat(),
                c=count,
                s="" if count == 1 else "s",
            )
        )
    for i, (day, _) in enumerate(days):
        if i % 15 == 0 or i == len(days) - 1:
            anchor = "end" if i == len(days) - 1 else "start"
            parts.append(
                Markup(
                    '<text class="axis" x="{x:.1f}" y="{y}" text-anchor="{a}">{d}</text>'
                ).format(
                    x=LEFT + (i + (1 if anchor == "end" else 0)) * bar_w,
                    y=HEIGHT - 6,
                    a=anchor,
                    d=escape(day.strftime("%b %d")),
                )
            )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)
