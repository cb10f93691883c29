"""The two ways an upload shows progress: a rich bar on a terminal, plain lines in CI."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from nightwheels.core.sizes import format_size
from nightwheels.upload.client import FileResult, RetryPolicy
from nightwheels.upload.files import LocalDist
from nightwheels.upload.progress import PlainReporter, RichReporter, reporter_for


def dist(name: str, size: int = 12_345) -> LocalDist:
    return LocalDist(Path(name), name, "demo", "1.0", "bdist_wheel", "py3", "2.1", size, "0" * 64)


def test_plain_lines_are_numbered() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out)
    reporter.start(2, 24_690)
    reporter.retrying(dist("a.whl"), 1, "server error (HTTP 503): busy", 0.5)
    reporter.done(FileResult(dist("a.whl"), "uploaded"))
    reporter.done(FileResult(dist("b.whl"), "failed", "refused (HTTP 400): [bad] thing"))
    reporter.stop()
    lines = out.getvalue().splitlines()
    assert lines[0] == "uploading 2 files (24.1 KiB)"
    assert lines[1] == "retry     a.whl: server error (HTTP 503): busy; attempt 2 in 0.5 s"
    assert lines[2] == "[1/2] uploaded  a.whl (12.1 KiB)"
    assert lines[3] == "[2/2] failed    b.whl (12.1 KiB): refused (HTTP 400): [bad] thing"


def test_rich_bar_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    reporter = RichReporter(console)
    reporter.start(2, 24_690)
    reporter.retrying(dist("a.whl"), 1, "network error: [Errno 111] refused", 0.25)
    reporter.done(FileResult(dist("a.whl"), "unchanged"))
    reporter.done(FileResult(dist("b.whl"), "failed", "refused: [red]not markup[/]"))
    reporter.stop()
    text = out.getvalue()
    assert "unchanged a.whl (12.1 KiB)" in text
    assert "failed    b.whl (12.1 KiB): refused: [red]not markup[/]" in text  # shown as is
    assert "retry     a.whl: network error: [Errno 111] refused; attempt 2 in 0.2 s" in text
    assert "uploading" in text  # the bar was drawn


def test_reporter_choice_and_sizes() -> None:
    assert isinstance(reporter_for(ci=True), PlainReporter)
    assert isinstance(reporter_for(ci=False), RichReporter)
    sizes = (999, 1024, 2_500_000, 2 * 1024**3, 3 * 10**9, None)
    assert [format_size(n) for n in sizes] == ["999 B", "1 KiB", "2.4 MiB", "2 GiB", "2.8 GiB", "-"]


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(attempts=5, backoff=1.0, max_wait=5.0)
    for attempt, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (2.5, 5)], start=1):
        assert all(low <= policy.wait(attempt) <= high for _ in range(50))
    assert policy.wait(1, retry_after=3) == 3
    assert policy.wait(1, retry_after=60) == 5.0
