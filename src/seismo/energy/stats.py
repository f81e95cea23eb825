"""The 16 energy statistics of seed 003 from per-series energy, prices and a window.

Plain arithmetic over `SeriesEnergy` (see `integrate.py`); the exact definition of every
field is in docs/energy.md, next to the seed name it stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from seismo.energy.integrate import MS_PER_HOUR, SeriesEnergy

MS_PER_DAY = 86_400_000
RATE_WINDOW_MS = 300_000  # `data_rate_per_min` counts the readings of the last 5 minutes
SEED_FIELDS = {  # seed 003's name → the field here
    "total_readings": "total_readings", "total_energy": "total_energy_kwh",
    "data_rate": "data_rate_per_min", "uptime_days": "uptime_days",
    "uptime_percent": "uptime_percent", "readings_per_minute": "readings_per_min",
    "energy_per_hour": "energy_per_hour_kwh", "peak_power": "peak_power_kw",
    "avg_power": "avg_power_kw", "efficiency": "load_factor",
    "estimated_cost": "cost_total", "cost_per_day": "cost_per_day",
    "carbon_footprint": "co2_kg", "carbon_per_day": "co2_kg_per_day",
    "total_anomalies": "anomalies", "active_machines_today": "active_machines",
}


@dataclass(frozen=True)
class Prices:
    """What a kWh costs and emits."""

    tariff: float  # currency per kWh
    carbon: float  # kg CO2 per kWh
    currency: str = "USD"


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def summarize(e: SeriesEnergy, *, machine_of: Mapping[int, str], window_ms: int,
              end_ms: int, active_within_ms: int, prices: Prices, anomalies: int,
              labels_of: Mapping[int, dict[str, str]] | None = None,
              max_machines: int = 100) -> dict[str, Any]:
    """The statistics (seed 003's 16) and consumption per machine, highest first.

    `machine_of` names the machine of each slot (several series may share one).
    `recent` in `e` must count the readings after `end_ms - min(window, 5 min)`.
    """
    rate_ms = min(window_ms, RATE_WINDOW_MS)
    readings = int(e.readings.sum())
    energy = float(e.energy_kwh.sum())
    covered_ms = float(e.covered_ms.sum())
    days = window_ms / MS_PER_DAY
    series = len(e.slots)
    uptime_ms = covered_ms / series if series else 0.0
    peak = float(e.peak_kw.max()) if series else None
    avg = energy / (covered_ms / MS_PER_HOUR) if covered_ms > 0 else None
    machines = _machines(e, machine_of, labels_of or {}, window_ms=window_ms,
                         active_after_ms=end_ms - active_within_ms, prices=prices)
    return {
        "series": series,
        "total_readings": readings,
        "total_energy_kwh": _r(energy),
        "data_rate_per_min": _r(float(e.recent.sum()) / (rate_ms / 60_000), 3),
        "uptime_days": _r(uptime_ms / MS_PER_DAY),
        "uptime_percent": _r(100 * uptime_ms / window_ms, 3),
        "readings_per_min": _r(readings / (window_ms / 60_000), 3),
        "energy_per_hour_kwh": _r(energy / (window_ms / MS_PER_HOUR)),
        "peak_power_kw": _r(peak),
        "avg_power_kw": _r(avg),
        "load_factor": _r(avg / peak) if avg is not None and peak else None,
        "cost_total": _r(energy * prices.tariff, 4),
        "cost_per_day": _r(energy * prices.tariff / days, 4),
        "co2_kg": _r(energy * prices.carbon, 4),
        "co2_kg_per_day": _r(energy * prices.carbon / days, 4),
        "anomalies": anomalies,
        "active_machines": sum(1 for m in machines if m["active"]),
        "machines_total": len(machines),
        "machines": machines[:max_machines],
    }


def _machines(e: SeriesEnergy, machine_of: Mapping[int, str],
              labels_of: Mapping[int, dict[str, str]], *, window_ms: int,
              active_after_ms: int, prices: Prices) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for i, slot in enumerate(e.slots.tolist()):
        name = machine_of.get(slot, str(slot))
        row = rows.setdefault(name, {"machine": name, "labels": labels_of.get(slot, {}),
                                     "series": 0, "readings": 0, "energy_kwh": 0.0,
                                     "covered_ms": 0, "peak_power_kw": -np.inf,
                                     "last_ms": 0})
        row["series"] += 1
        row["readings"] += int(e.readings[i])
        row["energy_kwh"] += float(e.energy_kwh[i])
        row["covered_ms"] += int(e.covered_ms[i])
        row["peak_power_kw"] = max(row["peak_power_kw"], float(e.peak_kw[i]))
        row["last_ms"] = max(row["last_ms"], int(e.last_ms[i]))
    out = []
    for row in rows.values():
        covered_ms = row.pop("covered_ms")
        kwh = row["energy_kwh"]
        out.append({
            **row, "energy_kwh": _r(kwh), "cost": _r(kwh * prices.tariff, 4),
            "co2_kg": _r(kwh * prices.carbon, 4), "peak_power_kw": _r(row["peak_power_kw"]),
            "avg_power_kw": _r(kwh / (covered_ms / MS_PER_HOUR)) if covered_ms else None,
            "uptime_percent": _r(100 * covered_ms / (window_ms * row["series"]), 3),
            "active": row["last_ms"] > active_after_ms})
    out.sort(key=lambda r: (-(r["energy_kwh"] or 0.0), r["machine"]))
    return out
