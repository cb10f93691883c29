"""Staging received files: on disk as they arrive, or in memory within a request's budget."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from nightwheels.errors import TooLarge
from nightwheels.storage.staging import MemoryBudget, StagingFile


def test_small_files_stay_in_memory_until_the_budget_runs_out(tmp_path: Path) -> None:
    budget = MemoryBudget(10_000)
    small = StagingFile(tmp_path, 1 << 20, budget)
    small.write(b"a" * 4000)
    staged = small.finish()
    assert staged.path is None and staged.data == b"a" * 4000
    assert staged.source().read() == b"a" * 4000
    assert list(tmp_path.iterdir()) == []  # nothing was written

    spilled = StagingFile(tmp_path, 1 << 20, budget)
    chunks = [b"b" * 3000, b"c" * 5000, b"d" * 100]  # the second one does not fit: to disk
    for chunk in chunks:
        spilled.write(chunk)
    on_disk = spilled.finish()
    assert on_disk.data is None and on_disk.path is not None
    assert on_disk.path.read_bytes() == b"".join(chunks) and on_disk.size == 8100
    assert on_disk.sha256 == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert budget.left == 10_000 - 4000  # what spilled to disk was given back
    on_disk.discard()
    staged.discard()  # nothing on disk: a no-op
    assert list(tmp_path.iterdir()) == []


def test_limits_hold_in_memory_too(tmp_path: Path) -> None:
    staging = StagingFile(tmp_path, 100, MemoryBudget(1 << 20))
    staging.write(b"x" * 100)
    with pytest.raises(TooLarge):
        staging.write(b"x")
    staging.discard()
    assert list(tmp_path.iterdir()) == []
    empty = StagingFile(tmp_path, 100, MemoryBudget(0)).finish()
    assert empty.data == b"" and empty.size == 0


def test_requests_share_the_process_budget(tmp_path: Path) -> None:
    process = MemoryBudget(5000)
    first, second = MemoryBudget(4000, process), MemoryBudget(4000, process)
    held = StagingFile(tmp_path, 1 << 20, first)
    held.write(b"a" * 4000)
    assert held.finish().data is not None and process.left == 1000
    crowded = StagingFile(tmp_path, 1 << 20, second)
    crowded.write(b"b" * 2000)  # within its request's share, not within the process's
    on_disk = crowded.finish()
    assert on_disk.path is not None and on_disk.data is None
    first.close()  # the first request is over: its share returns
    assert process.left == 5000
    after = StagingFile(tmp_path, 1 << 20, second)
    after.write(b"c" * 2000)
    assert after.finish().data == b"c" * 2000 and process.left == 3000
    second.close()
    assert process.left == 5000 and second.left == 4000
    on_disk.discard()
