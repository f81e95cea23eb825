"""Energy from power samples: the trapezoid rule over irregular sampling, gaps left out.

Input is three columns sorted by series, then time (what `QueryEngine.samples` returns);
output is one row per series. Everything is vectorised over all the series at once.
Between two consecutive samples of a series, (t1 - t0) apart, the energy is the area of
the trapezoid (p0 + p1) / 2 · (t1 - t0); a pair further apart than `max_gap_ms` is a gap
(a meter offline, a collector down): nothing is counted for it and it is not "covered".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class SeriesEnergy:
    """Per-series figures over a window; every array is aligned with `slots`."""

    slots: np.ndarray  # int64
    readings: np.ndarray  # int64: finite samples in the window
    energy_kwh: np.ndarray  # float64
    covered_ms: np.ndarray  # int64: time between samples that was integrated
    peak_kw: np.ndarray  # float64: the highest reading
    last_ms: np.ndarray  # int64: the newest sample's time
    recent: np.ndarray  # int64: readings after `recent_after_ms`

    @staticmethod
    def concat(parts: list[SeriesEnergy]) -> SeriesEnergy:
        """One table from several (series read in chunks)."""
        if not parts:
            return integrate(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0),
                             max_gap_ms=1, recent_after_ms=0)
        return SeriesEnergy(*(np.concatenate([getattr(p, f) for p in parts]) for f in (
            "slots", "readings", "energy_kwh", "covered_ms", "peak_kw", "last_ms", "recent")))


def integrate(slots: np.ndarray, ts_ms: np.ndarray, power_kw: np.ndarray, *,
              max_gap_ms: int, recent_after_ms: int) -> SeriesEnergy:
    """Energy (kWh) and coverage per series from samples sorted by (slot, ts).

    Samples that are not finite are dropped first (their neighbours join up, if close
    enough). Two samples at the same time add no energy.

    >>> e = integrate(np.array([1, 1, 1, 1]), np.array([0, 1_800_000, 3_600_000, 9_000_000]),
    ...               np.array([1.0, 3.0, 3.0, 5.0]), max_gap_ms=3_600_000, recent_after_ms=0)
    >>> float(e.energy_kwh[0]), int(e.covered_ms[0]), int(e.readings[0])
    (2.5, 3600000, 4)
    """
    finite = np.isfinite(power_kw)
    slots, ts_ms, power_kw = slots[finite], ts_ms[finite], power_kw[finite]
    unique, first, counts = np.unique(slots, return_index=True, return_counts=True)
    n = len(unique)
    if n == 0:
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
        return SeriesEnergy(empty_i, empty_i, empty_f, empty_i, empty_f, empty_i, empty_i)
    group = np.repeat(np.arange(n), counts)
    dt = np.diff(ts_ms)
    joined = (group[1:] == group[:-1]) & (dt > 0) & (dt <= max_gap_ms)
    area = np.where(joined, (power_kw[:-1] + power_kw[1:]) * 0.5 * dt, 0.0)
    energy = np.bincount(group[1:], weights=area, minlength=n) / MS_PER_HOUR
    covered = np.bincount(group[1:], weights=np.where(joined, dt, 0), minlength=n)
    recent = np.bincount(group, weights=ts_ms > recent_after_ms, minlength=n)
    return SeriesEnergy(
        slots=unique.astype(np.int64), readings=counts.astype(np.int64), energy_kwh=energy,
        covered_ms=np.rint(covered).astype(np.int64),
        peak_kw=np.maximum.reduceat(power_kw, first),
        last_ms=ts_ms[first + counts - 1].astype(np.int64),
        recent=np.rint(recent).astype(np.int64))
