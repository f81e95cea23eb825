"""Forecast rules: `forecast(disk_free[6h], 4h) < 0` — "the disk fills within four hours".

For each series a rule selects, the evaluator's recent samples over the rule's window are
resampled (`forecast.resample`), forecast `h` past the series' newest sample with damped
Holt-Winters (`forecast.forecast_many`, all series of a rule at once), and the rule is true
when the **point forecast at any step within h** satisfies the comparison. The alert's
value is the forecast at the horizon; `crosses_ms` is when the point forecast first meets
the condition (interpolated between steps), for the `$crosses_in` / `$crosses_at`
annotation variables.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from seismo.alerting.expr import Forecast
from seismo.alerting.windows import SeriesWindows
from seismo.forecast import first_crossing, forecast_many, resample, rule_step_ms

MIN_SAMPLES = 3
"""Samples a series needs in the window before it is forecast."""
OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class Outlook:
    """One series' forecast as a rule reads it."""

    is_true: bool
    value: float
    """The point forecast at the horizon."""
    crosses_ms: float | None
    """When the point forecast first meets the condition; None if it does not."""

    def variables(self, now_ms: int) -> dict[str, str]:
        """Annotation variables: `$crosses_in` (`2h13m`) and `$crosses_at` (RFC 3339)."""
        if self.crosses_ms is None:
            return {}
        moment = datetime.fromtimestamp(self.crosses_ms / 1000, UTC)
        return {"$crosses_in": format_duration_s(max(0.0, (self.crosses_ms - now_ms) / 1000)),
                "$crosses_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}


def format_duration_s(seconds: float) -> str:
    """The two largest units of a duration: `45s`, `5m30s`, `2h13m`, `1d4h`.

    >>> format_duration_s(8000), format_duration_s(42.4), format_duration_s(90_061)
    ('2h13m', '42s', '1d1h')
    """
    left = round(seconds)
    units = (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1))
    for i, (unit, size) in enumerate(units):
        if left >= size or unit == "s":
            major, rest = divmod(left, size)
            text = f"{major}{unit}"
            if unit != "s":
                minor_unit, minor_size = units[i + 1]
                if rest // minor_size:
                    text += f"{rest // minor_size}{minor_unit}"
            return text
    raise AssertionError("unreachable")


def outlooks(term: Forecast, op: str, threshold: float, windows: SeriesWindows,
             slots: Iterable[int], now_ms: int, last_ts: np.ndarray
             ) -> dict[int, Outlook | None]:
    """Forecast each slot's window and judge `forecast op threshold`.

    None for a series with no sample for longer than the horizon (`last_ts`, per slot: no
    forecast, not true). A series with fewer than MIN_SAMPLES samples kept in the window
    (new, or just after a restart) is left out: it is not judged this time.
    """
    found: dict[int, Outlook | None] = {}
    groups: dict[int, list[tuple[int, np.ndarray, int]]] = {}
    for slot in slots:
        newest = int(last_ts[slot]) if slot < len(last_ts) else None
        if newest is None or now_ms - newest > term.horizon_ms:
            found[slot] = None
            continue
        end = windows.newest_ms(slot)
        if end is None:
            continue
        ts, values = windows.window(slot, end, term.window_ms)
        if len(ts) < MIN_SAMPLES:
            continue
        step = rule_step_ms(ts, term.window_ms)
        row = resample(ts, values, end, step, max(1, term.window_ms // step))
        groups.setdefault(step, []).append((slot, row, end))
    for step, items in groups.items():
        columns = max(len(row) for _, row, _ in items)
        y = np.full((len(items), columns), np.nan)
        for i, (_, row, _) in enumerate(items):
            y[i, columns - len(row):] = row
        horizon = math.ceil(term.horizon_ms / step)
        f = forecast_many(y, step, horizon, backtest=False)
        with np.errstate(invalid="ignore"):
            holds = OPS[op](f.mean, threshold)
        offsets = step * np.arange(1, horizon + 1, dtype=np.int64)
        crosses = _first_true(f.mean, f.last, holds, offsets, op, threshold)
        for i, (slot, _, end) in enumerate(items):
            if f.model[i] == "none":
                found[slot] = None
                continue
            at = crosses[i]
            found[slot] = Outlook(bool(holds[i].any()), float(f.mean[i, -1]),
                                  None if math.isnan(at) else end + float(at))
    return found


def _first_true(mean: np.ndarray, last: np.ndarray, holds: np.ndarray, offsets: np.ndarray,
                op: str, threshold: float) -> np.ndarray:
    """Ms after the newest sample when the condition first holds (NaN: not in the horizon)."""
    n = len(mean)
    if op in ("<", "<=", ">", ">="):
        falling = np.full(n, op in ("<", "<="))
        at = first_crossing(mean, last, np.zeros(n, np.int64), offsets, threshold, falling)
        return np.where(holds.any(axis=1), at, np.nan)
    idx = np.argmax(holds, axis=1)
    return np.where(holds.any(axis=1), offsets[idx].astype(np.float64), np.nan)
