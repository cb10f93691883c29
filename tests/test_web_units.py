"""Pure parts of the web UI: freshness rules, the SVG chart, template filters, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest

from nightwheels.core.expiry import FreshnessPolicy, State, assess
from nightwheels.web.chart import uploads_chart
from nightwheels.web.templating import ago, env, filesize, http_url, page_root

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY = FreshnessPolicy()


@pytest.mark.parametrize(
    ("days", "state", "expires_in"),
    [
        (0, State.FRESH, 30),
        (14.9, State.FRESH, 16),
        (15, State.WARN, 15),
        (24.5, State.WARN, 6),
        (25, State.FINAL, 5),
        (29.99, State.FINAL, 1),
        (30, State.EXPIRED, 0),
        (45, State.EXPIRED, -15),
    ],
)
def test_freshness_thresholds(days: float, state: State, expires_in: int) -> None:
    f = assess(NOW - timedelta(days=days), NOW, POLICY)
    assert f.state is state
    assert f.expires_in_days == expires_in
    assert f.stale == (state is not State.FRESH)


def test_freshness_edge_cases() -> None:
    assert assess(None, NOW, POLICY).state is State.EMPTY
    assert not assess(None, NOW, POLICY).stale
    exempt = assess(NOW - timedelta(days=400), NOW, FreshnessPolicy(exempt=True))
    assert exempt.state is State.EXEMPT and not exempt.stale and exempt.expires_in_days is None
    future = assess(NOW + timedelta(hours=1), NOW, POLICY)  # clock skew between servers
    assert future.state is State.FRESH and future.age_days == 0
    short = assess(NOW - timedelta(days=8), NOW, FreshnessPolicy(days=7, warn_days=3, final_days=5))
    assert short.state is State.EXPIRED
    assert "expired 1 day ago" in short.summary
    assert "expire in 30 days" in assess(NOW, NOW, POLICY).summary


def test_chart_is_valid_svg_with_one_bar_per_day() -> None:
    days = [(date(2026, 10, 1) + timedelta(days=i), i % 7) for i in range(60)]
    svg = str(uploads_chart(days, "Uploads <per> day"))
    root = ET.fromstring(svg)  # well-formed XML
    ns = {"s": "http://www.w3.org/2000/svg"}
    bars = root.findall("s:rect", ns)
    assert len(bars) == 60
    assert root.find("s:title", ns).text == "Uploads <per> day"  # escaped in the markup
    assert "&lt;per&gt;" in svg
    heights = [float(b.get("height")) for b in bars]
    assert heights[0] == 0 and max(heights) == heights[6]
    assert bars[6].find("s:title", ns).text == "2026-10-07: 6 uploads"


def test_chart_without_uploads() -> None:
    days = [(date(2026, 10, 1) + timedelta(days=i), 0) for i in range(60)]
    root = ET.fromstring(str(uploads_chart(days)))
    assert all(float(r.get("height")) == 0 for r in root.iter("{http://www.w3.org/2000/svg}rect"))


def test_filters() -> None:
    assert filesize(999) == "999 B"
    assert filesize(1536) == "1.5 KiB"
    assert filesize(5 * 1024**3) == "5 GiB"
    assert ago(NOW - timedelta(days=3, hours=2), NOW) == "3 days ago"
    assert ago(NOW - timedelta(seconds=20), NOW) == "just now"
    assert http_url("https://github.com/numpy/numpy") == "https://github.com/numpy/numpy"
    assert http_url("javascript:alert(1)") is None
    assert http_url("data:text/html,<script>") is None
    assert http_url("//evil.example") is None
    assert page_root("/") == "./"
    assert page_root("/project/numpy/") == "../../"
    assert page_root("/account/tokens") == "../"


def test_templates_autoescape() -> None:
    template = env.from_string("<p title='{{ v }}'>{{ v }}</p>")
    out = template.render(v="<script>alert('x')</script>")
    assert "<script>" not in out
    assert "&#39;" in out  # quotes escaped inside attributes too
