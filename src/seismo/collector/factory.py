"""A small factory for `seismo serve --demo`: eight machines' power, with faults.

`machine_power_watts{machine, line}` once a second per machine. Load follows the clock
(UTC): two shifts on weekdays (06:00–22:00) with a lunch dip, a morning shift on
Saturdays, idle or off at night and on Sundays; utilities run around the clock. Faults
are injected so that the energy view and the detectors have something to show: short
spikes, a stuck sensor (cnc-2 repeats one value for ten minutes of every hour), a slow
drift (compressor-1 draws 2 % more every hour, a leak that is fixed at midnight) and
random stops of a few minutes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from seismo.ingest.schema import SeriesIn

METRIC = "machine_power_watts"
STUCK_MACHINE = "cnc-2"
DRIFT_MACHINE = "compressor-1"
STUCK_MINUTES = range(20, 30)  # of every hour
DRIFT_PER_HOUR = 0.02


@dataclass(frozen=True)
class Machine:
    name: str
    line: str
    rated_kw: float
    idle_kw: float
    always_on: bool = False  # utilities: never off, lower load at night


MACHINES = (
    Machine("press-1", "line-a", 45.0, 4.0),
    Machine("press-2", "line-a", 45.0, 4.0),
    Machine("cnc-1", "line-a", 22.0, 2.0),
    Machine("cnc-2", "line-b", 22.0, 2.0),
    Machine("oven-1", "line-b", 60.0, 8.0),
    Machine("conveyor-1", "line-b", 7.5, 1.0),
    Machine("compressor-1", "utilities", 30.0, 6.0, always_on=True),
    Machine("chiller-1", "utilities", 40.0, 10.0, always_on=True),
)


def shift_load(at_ms: int) -> float:
    """The share of rated load the plant runs at (0: closed), by UTC weekday and hour."""
    day = (at_ms // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday; 0 is Monday
    hour = (at_ms / 3_600_000) % 24
    if day == 6 or (day == 5 and not 6 <= hour < 14) or (day < 5 and not 6 <= hour < 22):
        return 0.0
    wave = 0.75 + 0.15 * math.sin(math.pi * (hour - 6) / 8)
    return wave * (0.6 if 12 <= hour < 12.5 else 1.0)


class Factory:
    """Produces one reading per machine for a given time; keeps the faults' state."""

    def __init__(self, rng: random.Random, started_ms: int) -> None:
        self.rng = rng
        self.started_ms = started_ms
        self._stopped_until: dict[str, int] = {}
        self._stuck_value: float | None = None

    def sample(self, at_ms: int) -> list[SeriesIn]:
        load = shift_load(at_ms)
        out = []
        for m in MACHINES:
            watts = 1000 * self._kw(m, load, at_ms)
            if m.name == STUCK_MACHINE:
                if (at_ms // 60_000) % 60 in STUCK_MINUTES:
                    if self._stuck_value is None:
                        self._stuck_value = watts
                    watts = self._stuck_value
                else:
                    self._stuck_value = None
            out.append(SeriesIn(metric=METRIC, values=[round(max(watts, 0.0), 1)],
                                labels={"machine": m.name, "line": m.line}))
        return out

    def _kw(self, m: Machine, load: float, at_ms: int) -> float:
        rng = self.rng
        if m.always_on:
            kw = m.idle_kw + (m.rated_kw - m.idle_kw) * max(load, 0.3) * rng.uniform(0.9, 1.1)
        elif load == 0.0:
            return 0.0 if rng.random() < 0.98 else m.idle_kw * rng.uniform(0.5, 1.0)
        else:
            if at_ms < self._stopped_until.get(m.name, 0):
                return m.idle_kw * rng.uniform(0.9, 1.1)  # a stop: idle, not off
            if rng.random() < 0.0005:
                self._stopped_until[m.name] = at_ms + rng.randint(120, 600) * 1000
            kw = m.idle_kw + (m.rated_kw - m.idle_kw) * load * rng.uniform(0.85, 1.05)
        if m.name == DRIFT_MACHINE:
            hours = ((at_ms - self.started_ms) / 3_600_000) % 24
            kw *= 1 + DRIFT_PER_HOUR * hours
        if rng.random() < 0.002:
            kw *= rng.uniform(2.0, 3.0)  # a spike: a jam, an inrush
        return kw
