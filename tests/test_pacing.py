"""core.pacing: steps spaced by 1/rate on an injected clock, no burst after a late step."""

from __future__ import annotations

import itertools

from nightwheels.core.pacing import Pacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_steps_are_spaced_by_the_rate() -> None:
    t = FakeTime()
    pacer = Pacer(4, t.clock, t.sleep)
    starts = []
    for _ in range(5):
        pacer.wait()
        starts.append(t.now)
        t.now += 0.05  # the step's own work
    assert [round(s - starts[0], 6) for s in starts] == [0, 0.25, 0.5, 0.75, 1.0]
    assert t.slept == [0.2] * 4


def test_a_late_step_earns_no_burst() -> None:
    t = FakeTime()
    pacer = Pacer(10, t.clock, t.sleep)
    pacer.wait()
    t.now += 1.0  # a step ten slots long
    pacer.wait()  # late: runs at once
    assert t.slept == []
    pacer.wait()  # the next one waits a full interval again
    assert t.slept == [0.1]


def test_zero_rate_never_sleeps() -> None:
    t = FakeTime()
    pacer = Pacer(0, t.clock, t.sleep)
    for _ in range(100):
        pacer.wait()
    assert t.slept == []


def test_cost_pacer_spaces_steps_by_their_measured_cost() -> None:
    from nightwheels.core.pacing import CostPacer

    t = FakeTime()
    pacer = CostPacer(0.25, clock=t.clock, sleep=t.sleep)
    starts = []
    for cost in (0.01, 0.001, 0.0, 0.02):
        pacer.wait()
        starts.append(t.now)
        t.now += 0.002  # the step's own work
        pacer.spent(cost)
    # each step waits four times the previous one's cost (from that step's start)
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(starts)]
    assert gaps == [0.04, 0.004, 0.002]
    capped = CostPacer(0.25, rate=100, clock=t.clock, sleep=t.sleep)
    capped.wait()
    capped.spent(0.0)
    before = t.now
    capped.wait()
    assert round(t.now - before, 6) == 0.01  # the rate is a ceiling
