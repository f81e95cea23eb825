"""The forecast service: selected series from the store, resampled, forecast, shaped as data.

`ForecastService.forecast` is what `GET /api/v1/forecast` (and any other door) calls: it
checks the request against the `forecast:` bounds, reads the history with the query
engine (avg per step), runs `forecast_many` on all the series at once and returns plain
dicts: values, prediction interval, backtest accuracy, model, time to threshold.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from seismo.config import Forecast as ForecastSettings
from seismo.errors import InvalidInput, Overloaded
from seismo.forecast.crossing import crossings
from seismo.forecast.model import Forecasts, forecast_many
from seismo.query.engine import QueryEngine, RangeQuery
from seismo.query.selector import Selector

NICE_STEPS_MS = (1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
                 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000,
                 43_200_000, 86_400_000)
HORIZON_POINTS = 60
"""Without `step`: the horizon in about this many steps (a nice step: 1m, 5m, 1h...)."""
HISTORY_POINTS = 1440
"""Without `history`: this many steps of history (1 day at 1 minute)."""
MAX_RUNNING = 2
"""Forecasts computed at once; more wait up to WAIT_S, then get 429."""
WAIT_S = 10.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def nice_step_ms(ms: float) -> int:
    """The smallest step of NICE_STEPS_MS at least `ms` (whole days beyond a day).

    >>> nice_step_ms(60_000), nice_step_ms(61_000), nice_step_ms(3 * 86_400_000 + 1)
    (60000, 120000, 345600000)
    """
    for step in NICE_STEPS_MS:
        if step >= ms:
            return step
    return math.ceil(ms / 86_400_000) * 86_400_000


def _none(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else float(value)


def _floats(row: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else v for v in row.tolist()]


class ForecastService:
    """Forecasts of stored series; plain object shared by REST, MCP and the CLI."""

    def __init__(self, query: QueryEngine, settings: ForecastSettings,
                 *, clock: Callable[[], int] = now_ms) -> None:
        self.query = query
        self.settings = settings
        self.clock = clock
        self._running = threading.BoundedSemaphore(MAX_RUNNING)

    def forecast(self, selector: Selector, horizon_ms: int, *, step_ms: int | None = None,
                 history_ms: int | None = None, threshold: float | None = None,
                 level: float | None = None) -> dict[str, Any]:
        """Forecast every selected series `horizon_ms` past now; see docs/forecast.md."""
        s = self.settings
        if horizon_ms <= 0:
            raise InvalidInput("horizon must be positive, such as 1h", field="horizon")
        level = s.level if level is None else level
        if not 0.5 <= level <= 0.999:
            raise InvalidInput("level must be between 0.5 and 0.999 (0.8: an 80 % interval)",
                               field="level")
        if threshold is not None and not math.isfinite(threshold):
            raise InvalidInput("threshold must be a finite number", field="threshold")
        step_ms = step_ms or nice_step_ms(horizon_ms / HORIZON_POINTS)
        horizon_points = -(-horizon_ms // step_ms)
        if horizon_points > s.max_horizon_points:
            raise InvalidInput(f"horizon is {horizon_points} steps of {step_ms} ms; at most "
                               f"{s.max_horizon_points}: increase step or shorten the horizon",
                               field="horizon")
        history_ms = history_ms or step_ms * HISTORY_POINTS
        columns = history_ms // step_ms
        if columns > s.max_history_points:
            raise InvalidInput(f"history is {columns} steps of {step_ms} ms; at most "
                               f"{s.max_history_points}: increase step or shorten history",
                               field="history")
        if columns < 2:
            raise InvalidInput("history must be at least two steps", field="history")
        selected = len(self.query.store.index.select(selector))
        if selected > s.max_series:
            raise InvalidInput(f"the selector matches {selected} series; at most "
                               f"{s.max_series} are forecast at once: narrow it",
                               field="selector")
        at = self.clock()
        last_bucket = at // step_ms * step_ms
        first_bucket = last_bucket - (columns - 1) * step_ms
        history = self.query.range(RangeQuery(selector, first_bucket, at, step_ms, "avg"))
        y = np.full((len(history), columns), np.nan)
        for row, series in enumerate(history):
            ts = np.asarray(series["timestamps"], np.int64)
            values = np.array(series["values"], dtype=np.float64)  # None -> nan
            col = (ts - first_bucket) // step_ms
            keep = (col >= 0) & (col < columns)
            y[row, col[keep]] = values[keep]
        if not self._running.acquire(timeout=WAIT_S):
            raise Overloaded(f"{MAX_RUNNING} forecasts are being computed; retry shortly",
                             retry_after_s=WAIT_S)
        try:
            result = forecast_many(y, step_ms, horizon_points, level=level)
        finally:
            self._running.release()
        ts = last_bucket + step_ms * np.arange(1, horizon_points + 1, dtype=np.int64)
        out = self._shape(history, result, ts, first_bucket, step_ms, threshold, at)
        return {"series": out, "step_ms": step_ms, "history_ms": columns * step_ms,
                "horizon_ms": horizon_ms, "level": level}

    @staticmethod
    def _shape(history: list[dict[str, Any]], f: Forecasts, ts: np.ndarray,
               first_bucket: int, step_ms: int, threshold: float | None, at: int
               ) -> list[dict[str, Any]]:
        cross = None
        if threshold is not None and len(history):
            last_ms = first_bucket + f.last_column * step_ms
            cross = crossings(f.last, last_ms, ts, f.mean, f.lower, f.upper, threshold)
        timestamps = ts.tolist()
        out = []
        for row, series in enumerate(history):
            doc: dict[str, Any] = {
                "metric": series["metric"], "labels": series["labels"],
                "timestamps": timestamps, "values": _floats(f.mean[row]),
                "lower": _floats(f.lower[row]), "upper": _floats(f.upper[row]),
                "mase": _none(f.mase[row]), "smape": _none(f.smape[row]),
                "model": f.model[row],
                "period_s": (int(f.period[row]) * step_ms / 1000 if f.period[row] > 1
                             else None),
                "crosses": None}
            if cross is not None and threshold is not None:
                at_ms = _none(cross["at"][row])
                doc["crosses"] = {
                    "threshold": threshold,
                    "direction": "down" if cross["falling"][row] else "up",
                    "at_ms": None if at_ms is None else round(at_ms),
                    "in_s": None if at_ms is None else max(0.0, (at_ms - at) / 1000),
                    "earliest_ms": _ms(cross["earliest"][row]),
                    "latest_ms": _ms(cross["latest"][row])}
            out.append(doc)
        return out


def _ms(value: float) -> int | None:
    return None if math.isnan(value) else round(value)
