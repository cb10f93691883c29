"""How ``nightwheels upload`` groups a folder into requests (no server needed)."""

from __future__ import annotations

from pathlib import Path

from nightwheels.upload.client import BATCH_BYTES, WHOLE_BODY
from nightwheels.upload.files import LocalDist
from nightwheels.upload.run import MIN_BATCH, plan_requests


def dist(i: int, size: int) -> LocalDist:
    name = f"demo-1.0-cp312-cp312-plat{i:03d}.whl"
    return LocalDist(Path(name), name, "demo", "1.0", "bdist_wheel", "cp312", "2.1", size, "0" * 64)


def sizes(plan: list[list[LocalDist]]) -> list[int]:
    return [len(files) for files in plan]


def test_many_small_files_are_spread_over_the_workers() -> None:
    small = [dist(i, 20_000) for i in range(200)]
    big = [dist(900, WHOLE_BODY + 1), dist(901, 50 * WHOLE_BODY)]
    plan = plan_requests(small + big, batch=50, jobs=8)
    assert plan[:2] == [[big[1]], [big[0]]]  # large files alone, largest first
    assert sizes(plan[2:]) == [25] * 8
    assert sorted(d.filename for files in plan for d in files) == sorted(
        d.filename for d in small + big
    )
    assert sizes(plan_requests(small, batch=10, jobs=8)) == [10] * 20  # --batch caps
    assert sizes(plan_requests(small, batch=1, jobs=8)) == [1] * 200  # legacy: one per request


def test_a_few_files_go_together_and_bytes_cap_a_batch() -> None:
    assert sizes(plan_requests([dist(i, 1000) for i in range(6)], batch=50, jobs=8)) == [6]
    assert MIN_BATCH > 6
    heavy = [dist(i, WHOLE_BODY) for i in range(5)]  # 4 MiB each: two fit in 8 MiB
    assert WHOLE_BODY * 2 <= BATCH_BYTES < WHOLE_BODY * 3
    assert sizes(plan_requests(heavy, batch=50, jobs=1)) == [2, 2, 1]
