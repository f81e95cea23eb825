"""The demo factory: load cycles by day and week, off periods and the injected faults."""

from __future__ import annotations

import random

from seismo.collector.factory import (
    DRIFT_MACHINE,
    MACHINES,
    METRIC,
    STUCK_MACHINE,
    Factory,
    shift_load,
)

HOUR = 3_600_000
MONDAY = 4 * 86_400_000  # 1970-01-05 was a Monday


def readings(factory: Factory, at_ms: int) -> dict[str, float]:
    return {s.labels["machine"]: s.values[0] for s in factory.sample(at_ms)}


def test_load_follows_shifts_and_the_week() -> None:
    assert shift_load(MONDAY + 10 * HOUR) > 0.5
    assert shift_load(MONDAY + 3 * HOUR) == 0.0  # night
    assert shift_load(MONDAY + 5 * 86_400_000 + 10 * HOUR) > 0  # Saturday morning
    assert shift_load(MONDAY + 5 * 86_400_000 + 16 * HOUR) == 0.0  # Saturday afternoon
    assert shift_load(MONDAY + 6 * 86_400_000 + 10 * HOUR) == 0.0  # Sunday


def test_machines_faults_and_off_periods() -> None:
    factory = Factory(random.Random(3), started_ms=MONDAY)
    series = factory.sample(MONDAY + 10 * HOUR)
    assert len(series) == len(MACHINES) == 8
    assert {s.metric for s in series} == {METRIC}
    assert all(set(s.labels) == {"machine", "line"} for s in series)
    sunday = readings(factory, MONDAY + 6 * 86_400_000 + 10 * HOUR)
    utilities = {m.name for m in MACHINES if m.always_on}
    assert all(sunday[m] > 0 for m in utilities)
    assert sum(sunday[m] == 0 for m in sunday if m not in utilities) >= 5  # mostly off
    # the stuck sensor repeats one value from minute 20 to 29 of every hour
    at = MONDAY + 10 * HOUR + 20 * 60_000
    stuck = [readings(factory, at + i * 1000)[STUCK_MACHINE] for i in range(30)]
    assert len(set(stuck)) == 1
    free = [readings(factory, at + 15 * 60_000 + i * 1000)[STUCK_MACHINE] for i in range(30)]
    assert len(set(free)) > 10
    # the drift: the compressor draws more as the day goes on (same night-time load)
    early = [readings(factory, MONDAY + 1 * HOUR + i * 1000)[DRIFT_MACHINE] for i in range(200)]
    late = [readings(factory, MONDAY + 23 * HOUR + i * 1000)[DRIFT_MACHINE] for i in range(200)]
    assert sorted(late)[100] > 1.2 * sorted(early)[100]
