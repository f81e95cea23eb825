"""Energy statistics against values computed by hand: gaps, irregular intervals, prices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from seismo.config import load_settings
from seismo.energy import SEED_FIELDS, integrate
from seismo.engine import Engine, now_ms
from seismo.errors import InvalidInput
from seismo.ingest.schema import SeriesIn

MIN = 60_000
HOUR = 3_600_000


def test_trapezoids_skip_gaps_and_join_across_dropped_values() -> None:
    slots = np.array([3, 3, 3, 3, 3, 7, 7, 7])
    ts = np.array([0, 30 * MIN, 60 * MIN, 150 * MIN, 160 * MIN, 0, 10_000, 70_000])
    kw = np.array([1.0, 3.0, 3.0, 5.0, 5.0, 2.0, 4.0, 4.0])
    e = integrate(slots, ts, kw, max_gap_ms=HOUR, recent_after_ms=155 * MIN)
    assert e.slots.tolist() == [3, 7]
    # slot 3: 2 kW · 0.5 h + 3 kW · 0.5 h, the 90 min gap skipped, then 5 kW · 10 min
    assert e.energy_kwh[0] == pytest.approx(1.0 + 1.5 + 5 / 6)
    # slot 7: (2 + 4) / 2 kW · 10 s + 4 kW · 60 s = 270 kJ
    assert e.energy_kwh[1] == pytest.approx(270 / 3600)
    assert e.covered_ms.tolist() == [70 * MIN, 70_000]
    assert e.readings.tolist() == [5, 3]
    assert e.peak_kw.tolist() == [5.0, 4.0]
    assert e.last_ms.tolist() == [160 * MIN, 70_000]
    assert e.recent.tolist() == [1, 0]
    # a NaN reading is dropped: its neighbours join up when close enough
    e = integrate(np.array([1, 1, 1]), np.array([0, MIN, 2 * MIN]), np.array([6.0, np.nan, 6.0]),
                  max_gap_ms=5 * MIN, recent_after_ms=0)
    assert e.energy_kwh[0] == pytest.approx(6 * 2 / 60) and e.readings[0] == 2
    # a lone sample, and two samples at the same time, add nothing
    e = integrate(np.array([1, 2, 2]), np.array([0, 5, 5]), np.array([9.0, 1.0, 2.0]),
                  max_gap_ms=MIN, recent_after_ms=0)
    assert e.energy_kwh.tolist() == [0.0, 0.0] and e.covered_ms.tolist() == [0, 0]


def test_every_seed_statistic_has_a_field() -> None:
    assert len(SEED_FIELDS) == 16 and len(set(SEED_FIELDS.values())) == 16


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    settings = load_settings(None, {"data_dir": tmp_path, "collector": False},
                             environ={"SEISMO_DETECT__ENABLED": "false",
                                      "SEISMO_ENERGY__MAX_GAP": "1h"})
    eng = Engine(settings)
    eng.start()
    yield eng
    eng.stop()


def ingest(engine: Engine, series: list[SeriesIn], at_ms: int) -> None:
    prepared = engine.validator.columnar(series, at_ms)
    assert prepared.rejected == 0, prepared.errors
    engine.ingestor.submit_blocking(prepared.batch)


def test_statistics_of_two_machines_by_hand(engine: Engine) -> None:
    end = now_ms() // 1000 * 1000
    base = end - 160 * MIN
    ingest(engine, [
        SeriesIn(metric="machine_power_watts", labels={"machine": "m1", "line": "a"},
                 timestamps=[base + m * MIN for m in (0, 30, 60, 150, 160)],
                 values=[1000, 3000, 3000, 5000, 5000]),
        SeriesIn(metric="machine_power_watts", labels={"machine": "m2", "line": "a"},
                 timestamps=[base, base + 10_000, base + 70_000], values=[2000, 4000, 4000]),
        SeriesIn(metric="other_watts", labels={"machine": "m3"}, timestamps=[base],
                 values=[1e6]),
    ], end)
    s = engine.energy.stats(tariff=0.2, carbon=0.4, active_within="15m", at_ms=end)
    energy = 1.0 + 1.5 + 5 / 6 + 270 / 3600
    covered_h = (70 * MIN + 70_000) / HOUR
    assert s["series"] == 2 and s["total_readings"] == 8
    assert s["total_energy_kwh"] == pytest.approx(energy, abs=1e-6)
    assert s["cost_total"] == pytest.approx(0.2 * energy, abs=1e-4)
    assert s["cost_per_day"] == pytest.approx(0.2 * energy, abs=1e-4)  # a 24 h window
    assert s["co2_kg"] == pytest.approx(0.4 * energy, abs=1e-4)
    assert s["co2_kg_per_day"] == pytest.approx(0.4 * energy, abs=1e-4)
    assert s["energy_per_hour_kwh"] == pytest.approx(energy / 24, abs=1e-6)
    assert s["peak_power_kw"] == 5.0
    assert s["avg_power_kw"] == pytest.approx(energy / covered_h, abs=1e-6)
    assert s["load_factor"] == pytest.approx(energy / covered_h / 5.0, abs=1e-6)
    mean_covered_ms = (70 * MIN + 70_000) / 2
    assert s["uptime_percent"] == pytest.approx(100 * mean_covered_ms / (24 * HOUR), abs=1e-3)
    assert s["uptime_days"] == pytest.approx(mean_covered_ms / (24 * HOUR), abs=1e-6)
    assert s["data_rate_per_min"] == pytest.approx(1 / 5)  # m1's last reading, in 5 min
    assert s["readings_per_min"] == pytest.approx(8 / 1440, abs=1e-3)
    assert s["active_machines"] == 1 and s["anomalies"] == 0
    m1, m2 = s["machines"]
    assert (m1["machine"], m1["active"], m2["machine"], m2["active"]) == ("m1", True, "m2",
                                                                          False)
    assert m1["energy_kwh"] == pytest.approx(1.0 + 1.5 + 5 / 6, abs=1e-6)
    assert m2["avg_power_kw"] == pytest.approx((270 / 3600) / (70 / 3600), abs=1e-6)
    # per day over a 2-day window is half the total; kW series need no conversion
    s2 = engine.energy.stats(window="2d", unit="kW", tariff=0.2, at_ms=end)
    assert s2["total_energy_kwh"] == pytest.approx(1000 * energy, abs=1e-3)
    assert s2["cost_per_day"] == pytest.approx(0.2 * 1000 * energy / 2, abs=1e-2)
    # a shorter window cuts the samples before it
    s3 = engine.energy.stats(window="15m", at_ms=end)
    assert s3["total_readings"] == 2 and s3["total_energy_kwh"] == pytest.approx(5 / 6)


def test_gap_setting_and_defaults(engine: Engine) -> None:
    end = now_ms() // 1000 * 1000
    ingest(engine, [SeriesIn(metric="machine_power_watts", labels={"machine": "x"},
                             timestamps=[end - 3 * HOUR, end - HOUR, end],
                             values=[2000, 2000, 2000])], end)
    s = engine.energy.stats(at_ms=end)  # max_gap 1h: the first 2 h interval is a gap
    assert s["total_energy_kwh"] == pytest.approx(2.0)
    assert s["tariff_per_kwh"] == 0.12 and s["carbon_kg_per_kwh"] == 0.5
    assert s["cost_total"] == pytest.approx(0.24) and s["co2_kg"] == pytest.approx(1.0)
    assert engine.energy.stats(selector="nothing_here", at_ms=end)["total_readings"] == 0


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"window": "soon"}, "window"), ({"window": "0s"}, "window"), ({"window": "400d"}, "window"),
    ({"unit": "MW"}, "unit"), ({"tariff": -1.0}, "tariff"), ({"carbon": float("nan")}, "carbon"),
    ({"active_within": "-"}, "active_within"), ({"selector": "x{"}, "selector")])
def test_bad_parameters_name_the_field(engine: Engine, kwargs: dict[str, object],
                                       field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        engine.energy.stats(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
