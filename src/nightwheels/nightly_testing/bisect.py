"""Finding the culprit: which nightly (or pair) breaks the tests, then which build. Pure.

Both searches take a predicate that runs the failing tests in a fresh environment and
says whether they still fail; the caller counts and records the runs.

Packages (group testing). With the nightlies ordered p1..pn, all of them failing
(known) and none of them passing (the stable baseline, one run), find the shortest
failing prefix p1..pk by binary search (ceil(log2 n) runs): pk is needed for the failure.
If pk alone fails (one run), it is the culprit: about log2(n) + 2 runs in all. Otherwise
the failure needs pk and an earlier nightly: a second binary search over prefixes
p1..pj plus pk finds the partner pj.

Builds (by date). With the culprit's builds oldest to newest and the newest failing,
try the oldest; if it passes, binary search between them for the first failing build.
This assumes a regression stays once introduced, as ``git bisect`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class CulpritSearch:
    culprits: tuple[str, ...]
    baseline_fails: bool
    runs: list[tuple[frozenset[str], bool]] = field(default_factory=list)


def find_culprits(
    names: Sequence[str],
    fails_with: Callable[[frozenset[str]], bool],
    *,
    baseline_passes: bool = False,
) -> CulpritSearch:
    """``fails_with(S)``: do the tests fail with the nightlies in S (the rest stable)?

    ``baseline_passes``: the caller has already run the tests with no nightlies.
    """
    order = list(names)
    runs: list[tuple[frozenset[str], bool]] = []

    def probe(subset: frozenset[str]) -> bool:
        result = fails_with(subset)
        runs.append((subset, result))
        return result

    if not baseline_passes and probe(frozenset()):
        return CulpritSearch((), baseline_fails=True, runs=runs)
    if len(order) == 1:
        return CulpritSearch((order[0],), baseline_fails=False, runs=runs)

    def prefix(k: int) -> frozenset[str]:
        return frozenset(order[:k])

    low, high = 0, len(order)  # prefix(low) passes, prefix(high) fails
    while high - low > 1:
        middle = (low + high) // 2
        if probe(prefix(middle)):
            high = middle
        else:
            low = middle
    needed = order[high - 1]
    if high == 1 or probe(frozenset({needed})):
        return CulpritSearch((needed,), baseline_fails=False, runs=runs)
    # prefix(j) + needed: fails for j = high - 1, passes for j = 0.
    low, high_j = 0, high - 1
    while high_j - low > 1:
        middle = (low + high_j) // 2
        if probe(prefix(middle) | {needed}):
            high_j = middle
        else:
            low = middle
    return CulpritSearch((order[high_j - 1], needed), baseline_fails=False, runs=runs)


@dataclass
class BuildSearch(Generic[T]):
    last_good: T | None
    first_bad: T
    runs: int


def find_first_bad(
    builds: Sequence[T], fails_with: Callable[[T], bool], *, first_passes: bool = False
) -> BuildSearch[T]:
    """``builds`` oldest first; the last one is known to fail (``first_passes``: and the
    first one known to pass, as the first bad build of an earlier regression does)."""
    if not builds:
        raise ValueError("no builds to search")
    runs = 0
    if len(builds) == 1:
        return BuildSearch(None, builds[0], runs)
    if not first_passes:
        runs += 1
        if fails_with(builds[0]):
            return BuildSearch(None, builds[0], runs)
    low, high = 0, len(builds) - 1
    while high - low > 1:
        middle = (low + high) // 2
        runs += 1
        if fails_with(builds[middle]):
            high = middle
        else:
            low = middle
    return BuildSearch(builds[low], builds[high], runs)
