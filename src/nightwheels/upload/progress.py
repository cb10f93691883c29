"""Showing an upload as it goes: a rich progress bar on a terminal, plain lines in CI logs.

rich is imported only by :class:`RichReporter`: CI runs never load it.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Protocol, TextIO

from nightwheels.core.sizes import format_size

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from nightwheels.upload.client import FileResult
    from nightwheels.upload.files import LocalDist


def describe(result: FileResult) -> str:
    line = f"{result.outcome:<9} {result.dist.filename} ({format_size(result.dist.size)})"
    if result.reason:
        line += f": {result.reason}"
    return line


class Reporter(Protocol):
    def start(self, files: int, size: int) -> None: ...
    def retrying(self, dist: LocalDist, attempt: int, reason: str, wait: float) -> None: ...
    def done(self, result: FileResult) -> None: ...
    def stop(self) -> None: ...


class PlainReporter:
    """One line per finished file, numbered: readable in CI logs, safe from threads."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.total = 0
        self.count = 0
        self._header: str | None = None
        self._lock = threading.Lock()

    def _print(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def start(self, files: int, size: int) -> None:
        # Printed with the first news: a run stopped at once (refused token, no server)
        # is then the one line that says why.
        self.total = files
        self._header = f"uploading {files} file{'s' if files != 1 else ''} ({format_size(size)})"

    def _print_header(self) -> None:
        header, self._header = self._header, None
        if header:
            print(header, file=self.stream, flush=True)

    def retrying(self, dist: LocalDist, attempt: int, reason: str, wait: float) -> None:
        with self._lock:
            self._print_header()
        self._print(f"retry     {dist.filename}: {reason}; attempt {attempt + 1} in {wait:.1f} s")

    def done(self, result: FileResult) -> None:
        with self._lock:
            self._print_header()
            self.count += 1
            width = len(str(self.total))
            print(f"[{self.count:>{width}}/{self.total}] {describe(result)}", file=self.stream)
            self.stream.flush()

    def stop(self) -> None:
        pass


class RichReporter:
    """A progress bar (bytes, speed, time left) with finished files listed above it."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.console = console or Console()
        self.progress = Progress(
            TextColumn("uploading"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.task: TaskID | None = None
        self._lock = threading.Lock()

    def start(self, files: int, size: int) -> None:
        self.task = self.progress.add_task("upload", total=size)
        self.progress.start()

    def retrying(self, dist: LocalDist, attempt: int, reason: str, wait: float) -> None:
        from rich.markup import escape

        self.progress.console.print(
            f"[yellow]retry[/]     {escape(dist.filename)}: {escape(reason)}; "
            f"attempt {attempt + 1} in {wait:.1f} s",
            markup=True,
            highlight=False,
        )

    def done(self, result: FileResult) -> None:
        from rich.markup import escape

        with self._lock:
            colour = "red" if result.outcome == "failed" else "green"
            self.progress.console.print(
                f"[{colour}]{result.outcome:<9}[/] " + escape(describe(result)[10:]),
                markup=True,
                highlight=False,
            )
            if self.task is not None:
                self.progress.advance(self.task, result.dist.size)

    def stop(self) -> None:
        self.progress.stop()


def reporter_for(ci: bool) -> Reporter:
    return PlainReporter() if ci else RichReporter()
