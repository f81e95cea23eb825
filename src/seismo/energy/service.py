"""The energy stage: statistics of the power series a selector picks, on request and live.

`stats()` checks its parameters (InvalidInput names the field), reads the samples of the
window through `QueryEngine.samples` a chunk of series at a time (so memory stays bounded
whatever the selector), integrates them (`integrate.py`) and summarises (`stats.py`).
`latest()` serves the `stats` topic: the configured selector's figures, recomputed on a
thread of their own at most every `energy.refresh_s`, never on the event loop.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from seismo.config import Energy, parse_duration_s
from seismo.energy.integrate import SeriesEnergy, integrate
from seismo.energy.stats import RATE_WINDOW_MS, Prices, summarize
from seismo.errors import InvalidInput
from seismo.query.engine import QueryEngine
from seismo.query.selector import Selector, parse_selector
from seismo.store.series import SeriesIndex

log = logging.getLogger(__name__)
CHUNK_SERIES = 64  # series read and integrated together
MAX_WINDOW_S = 366 * 86_400
UNITS_KW = {"W": 0.001, "kW": 1.0}
STREAM_MACHINES = 10  # machines listed in the `stats` topic's energy part


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _duration_s(text: str, field: str) -> float:
    try:
        seconds = parse_duration_s(text)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=field) from None
    if seconds <= 0:
        raise InvalidInput(f"{field} must be positive", field=field)
    return seconds


def _price(value: float | None, default: float, field: str) -> float:
    if value is None:
        return default
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"{field} must be a finite number >= 0", field=field)
    return float(value)


class EnergyService:
    """See the module docstring. `count_anomalies(selector, start_ms, end_ms)` counts the
    anomaly log's incidents of the selected series overlapping the window."""

    def __init__(self, settings: Energy, query: QueryEngine, index: SeriesIndex,
                 count_anomalies: Callable[[Selector, int, int], int],
                 clock: Callable[[], int] = now_ms) -> None:
        self.settings = settings
        self.query = query
        self.index = index
        self.count_anomalies = count_anomalies
        self.clock = clock
        self._latest: dict[str, Any] | None = None
        self._refreshed_at: float | None = None
        self._refreshing: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def stats(self, selector: str | None = None, window: str | None = None, *,
              unit: str | None = None, tariff: float | None = None,
              carbon: float | None = None, active_within: str | None = None,
              at_ms: int | None = None) -> dict[str, Any]:
        """The 16 statistics of seed 003 and consumption per machine (docs/energy.md)."""
        s = self.settings
        text = s.selector if selector is None or not selector.strip() else selector
        sel = parse_selector(text)
        window_text = window or s.window
        window_s = _duration_s(window_text, "window")
        if window_s > MAX_WINDOW_S:
            raise InvalidInput("window must be at most 366d", field="window")
        within_text = active_within or s.active_within
        within_s = _duration_s(within_text, "active_within")
        unit = s.unit if unit is None else unit
        if unit not in UNITS_KW:
            raise InvalidInput(f"unit must be one of {', '.join(UNITS_KW)}: the unit the "
                               "series' values are in", field="unit")
        prices = Prices(_price(tariff, s.tariff, "tariff"), _price(carbon, s.carbon, "carbon"),
                        s.currency)
        end_ms = self.clock() if at_ms is None else at_ms
        window_ms = int(window_s * 1000)
        start_ms = end_ms - window_ms + 1  # the window is (end - window, end]
        slots = self.index.select(sel)
        if len(slots) > s.max_series:
            raise InvalidInput(f"selector matches {len(slots)} series, over energy.max_series "
                               f"({s.max_series}); narrow it", field="selector")
        max_gap_ms = int(parse_duration_s(s.max_gap) * 1000)
        recent_after = end_ms - min(window_ms, RATE_WINDOW_MS)
        parts = []
        for i in range(0, len(slots), CHUNK_SERIES):
            slot_col, ts, values = self.query.samples(slots[i:i + CHUNK_SERIES], start_ms,
                                                      end_ms)
            parts.append(integrate(slot_col, ts, values * UNITS_KW[unit],
                                   max_gap_ms=max_gap_ms, recent_after_ms=recent_after))
        energy = SeriesEnergy.concat(parts)
        machine_of, labels_of = {}, {}
        for slot in energy.slots.tolist():
            info = self.index.info(slot)
            machine_of[slot] = info.labels.get(s.machine_label) or _series_name(
                info.metric, info.labels)
            labels_of[slot] = info.labels
        doc = summarize(energy, machine_of=machine_of, labels_of=labels_of,
                        window_ms=window_ms, end_ms=end_ms, active_within_ms=int(within_s * 1000),
                        prices=prices, anomalies=self.count_anomalies(sel, start_ms, end_ms))
        return {"selector": text, "window": window_text, "start_ms": start_ms,
                "end_ms": end_ms, "unit": unit, "tariff_per_kwh": prices.tariff,
                "currency": prices.currency, "carbon_kg_per_kwh": prices.carbon,
                "max_gap": s.max_gap, "active_within": within_text, **doc}

    # -- the `stats` topic --------------------------------------------------------------

    def latest(self) -> dict[str, Any] | None:
        """The configured selector's statistics as last computed (None before the first);
        starts a recomputation in the background when they are older than `refresh_s`."""
        with self._lock:
            due = (self._refreshed_at is None
                   or time.monotonic() - self._refreshed_at >= self.settings.refresh_s)
            if due and self._refreshing is None and not self._stopped:
                self._refreshing = threading.Thread(target=self._refresh, daemon=True,
                                                    name="seismo-energy")
                self._refreshing.start()
            return self._latest

    def _refresh(self) -> None:
        try:
            doc = self.stats()
            doc["machines"] = doc["machines"][:STREAM_MACHINES]
            self._latest = doc
        except Exception:
            log.exception("energy statistics for the stats topic failed; will retry")
        finally:
            with self._lock:
                self._refreshed_at = time.monotonic()
                self._refreshing = None

    def stop(self) -> None:
        """No more refreshes; wait for one under way (before the store closes)."""
        with self._lock:
            self._stopped = True
            thread = self._refreshing
        if thread is not None:
            thread.join(timeout=30)


def _series_name(metric: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"

