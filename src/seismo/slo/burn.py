"""Error budgets and burn rates: the arithmetic of an SLO, with no store and no clock.

Burn rate over a window = the window's error rate / the error budget (1 - objective): 1
spends the budget exactly over the SLO window, 14.4 spends 2 % of a 30-day budget in an
hour. Alerts are the multi-window, multi-burn-rate ones of the Google SRE workbook,
chapter 5 ("Alerting on SLOs", table 5-8): https://sre.google/workbook/alerting-on-slos/
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

WINDOWS: tuple[tuple[str, int], ...] = (
    ("5m", 300_000), ("30m", 1_800_000), ("1h", 3_600_000), ("6h", 21_600_000),
    ("3d", 259_200_000))
"""The burn-rate windows every SLO is judged over, besides its own window."""

STATUSES = ("ok", "warning", "breach", "exhausted")
Status = Literal["ok", "warning", "breach", "exhausted"]


@dataclass(frozen=True)
class Condition:
    """Fire when the burn rate is over `threshold` in both the long and the short window."""

    type: Literal["page", "ticket"]
    long: str
    short: str
    threshold: float

    @property
    def window(self) -> str:
        """The alert's `window` label: `1h/5m`."""
        return f"{self.long}/{self.short}"


CONDITIONS = (
    Condition("page", "1h", "5m", 14.4),  # 2 % of a 30-day budget in 1 h
    Condition("page", "6h", "30m", 6.0),  # 5 % in 6 h
    Condition("ticket", "3d", "6h", 1.0),  # 10 % in 3 d
)


@dataclass(frozen=True)
class WindowSLI:
    """An SLI over one window: events counted good and in total (samples, or counter
    increases), and what follows from them. None: no events in the window."""

    window: str
    good: float
    total: float
    sli: float | None
    error_rate: float | None
    burn_rate: float | None
    latency_percentile_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = {"good": _round(self.good), "total": _round(self.total), "sli": _round(self.sli),
               "error_rate": _round(self.error_rate), "burn_rate": _round(self.burn_rate)}
        if self.latency_percentile_s is not None:
            doc["latency_percentile_s"] = _round(self.latency_percentile_s)
        return doc


def window_sli(window: str, good: float, total: float, objective: float,
               latency_percentile_s: float | None = None) -> WindowSLI:
    """The SLI, error rate and burn rate of `good` out of `total` events.

    >>> w = window_sli("1h", good=985, total=1000, objective=0.999)
    >>> round(w.sli, 6), round(w.error_rate, 6), round(w.burn_rate, 6)
    (0.985, 0.015, 15.0)
    """
    if not total > 0 or not math.isfinite(total) or not math.isfinite(good):
        return WindowSLI(window, _finite(good), _finite(total), None, None, None,
                         latency_percentile_s)
    sli = min(1.0, max(0.0, good / total))  # counters read at slightly different times
    error_rate = 1.0 - sli
    return WindowSLI(window, good, total, sli, error_rate, burn_rate(error_rate, objective),
                     latency_percentile_s)


def burn_rate(error_rate: float, objective: float) -> float:
    """How many times faster than allowed the error budget is being spent.

    >>> burn_rate(0.001, 0.999), burn_rate(0.0144, 0.999)
    (1.0, 14.4)
    """
    return round(error_rate / (1.0 - objective), 12)


@dataclass(frozen=True)
class Verdict:
    """An SLO at one evaluation: budget left, status, and each alert condition's truth."""

    budget_remaining: float | None
    """1 - the burn rate over the SLO window: 1 untouched, 0 spent, below 0 overspent;
    None while the SLO window has no events."""
    status: Status
    conditions: tuple[tuple[Condition, bool, float | None, float | None], ...]
    """(condition, is true, long-window burn rate, short-window burn rate)."""


def judge(windows: Mapping[str, WindowSLI], slo_window: str) -> Verdict:
    """Budget remaining, status and alert conditions from the SLIs of every window.

    Status: `exhausted` when no budget is left, else `breach` when a page condition holds,
    `warning` when a ticket condition holds, else `ok`.
    """
    total = windows.get(slo_window)
    burn = None if total is None else total.burn_rate
    remaining = None if burn is None else 1.0 - burn
    conditions = []
    for c in CONDITIONS:
        long = windows[c.long].burn_rate if c.long in windows else None
        short = windows[c.short].burn_rate if c.short in windows else None
        is_true = long is not None and short is not None and long > c.threshold \
            and short > c.threshold
        conditions.append((c, is_true, long, short))
    status: Status = "ok"
    if remaining is not None and remaining <= 0:
        status = "exhausted"
    elif any(t for c, t, _, _ in conditions if c.type == "page"):
        status = "breach"
    elif any(t for c, t, _, _ in conditions if c.type == "ticket"):
        status = "warning"
    return Verdict(remaining, status, tuple(conditions))


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 9)
