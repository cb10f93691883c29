"""server.memory: the periodic malloc_trim thread starts, trims, and stops promptly."""

from __future__ import annotations

import platform
import threading
import time

import pytest

from nightwheels.server import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trimmer_trims_on_its_interval_and_stops() -> None:
    calls: list[int] = []
    trimmer = memory.MemoryTrimmer(0.01)
    real = trimmer._trim
    assert real is not None  # found in this C library
    trimmer._trim = lambda pad: calls.append(pad) or real(pad)
    trimmer.start()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    trimmer.stop()
    assert calls[:3] == [0, 0, 0]
    assert not any(t.name == "malloc-trim" for t in threading.enumerate())


def test_zero_interval_starts_nothing() -> None:
    trimmer = memory.MemoryTrimmer(0)
    trimmer.start()
    assert trimmer._thread is None
    trimmer.stop()
