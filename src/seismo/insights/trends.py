"""Trends and capacity: which series are rising or falling, and which will cross a limit.

Each series is read as step averages over `insights.window` (about 60 points). The slope
is the Theil-Sen estimator (the median of pairwise slopes, robust to spikes: Sen 1968,
"Estimates of the regression coefficient based on Kendall's tau"); its significance is
the Mann-Kendall test, i.e. Kendall's tau between time and value (scipy). A trend is a
finding only when it is significant *and* large: the change over the window is at least
`trend_min_change` of the series' level and three times its noise around the line.
Capacity extrapolates a significant trend linearly to a configured threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from seismo.config import CapacityRule, parse_duration_s
from seismo.insights.finding import Finding, Risk, describe, duration_text

MIN_POINTS = 12
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
OWN_PREFIXES = ("anomaly_band_", "slo_", "model_")  # judged by their own checks


@dataclass(frozen=True)
class Trend:
    """A line through a series: `value ≈ intercept + slope_per_s · (t - first_ms) / 1000`."""

    slope_per_s: float
    intercept: float
    p_value: float
    change: float  # slope × the span of the points
    level: float  # median value
    noise: float  # standard deviation around the line
    points: int
    first_ms: int
    last_ms: int

    @property
    def fitted_last(self) -> float:
        """The line's value at the newest point."""
        return self.intercept + self.slope_per_s * (self.last_ms - self.first_ms) / 1000

    def is_significant(self, p_value: float, min_change: float) -> bool:
        """Significant (Mann-Kendall) and large against the level and the noise."""
        size = abs(self.change)
        return (self.p_value < p_value and size > 0 and size >= min_change * abs(self.level)
                and size >= 3 * self.noise)


def fit_trend(ts_ms: np.ndarray, values: np.ndarray) -> Trend | None:
    """Theil-Sen line and Mann-Kendall p-value; None with fewer than 12 finite points.

    >>> t = np.arange(20) * 60_000
    >>> trend = fit_trend(t, 5.0 + 0.5 * np.arange(20))
    >>> round(trend.slope_per_s * 60, 6), trend.p_value < 1e-6, round(trend.change, 6)
    (0.5, True, 9.5)
    """
    keep = np.isfinite(values)
    ts_ms, values = ts_ms[keep], values[keep]
    if len(values) < MIN_POINTS:
        return None
    t_s = (ts_ms - ts_ms[0]) / 1000.0
    slope, intercept, _, _ = stats.theilslopes(values, t_s)
    constant = np.ptp(values) == 0
    p_value = 1.0 if constant else float(stats.kendalltau(t_s, values).pvalue)
    residual = values - (intercept + slope * t_s)
    return Trend(slope_per_s=float(slope), intercept=float(intercept),
                 p_value=p_value if math.isfinite(p_value) else 1.0,
                 change=float(slope * t_s[-1]), level=float(np.median(values)),
                 noise=float(np.std(residual)), points=len(values),
                 first_ms=int(ts_ms[0]), last_ms=int(ts_ms[-1]))


def is_examined(metric: str) -> bool:
    """Counters always rise and seismo's own derived series have checks of their own."""
    return not metric.endswith(COUNTER_SUFFIXES) and not metric.startswith(OWN_PREFIXES)


def trend_finding(metric: str, labels: dict[str, str], trend: Trend, window: str) -> Finding:
    """A significant trend as a finding (medium when it moved half its level or more)."""
    rising = trend.change > 0
    relative = abs(trend.change) / abs(trend.level) if trend.level else math.inf
    name = describe(metric, labels)
    percent = f" ({100 * trend.change / abs(trend.level):+.0f} %)" if trend.level else ""
    per_hour = trend.slope_per_s * 3600
    summary = (f"{name} is {'rising' if rising else 'falling'}: {trend.change:+.4g} over the "
               f"last {window}{percent}, {per_hour:+.4g} per hour (Theil-Sen slope; "
               f"Mann-Kendall p = {trend.p_value:.1e}, {trend.points} points)")
    action = ("Find what drives the growth (traffic, a leak, a deploy) before it reaches a "
              "limit; add a capacity rule (insights.capacity) or a forecast alert for it."
              if rising else
              "Check that the fall is expected (less traffic, a stopped producer); if it is "
              "a resource running out, add a capacity rule with direction: below.")
    risk: Risk = "medium" if relative >= 0.5 else "low"
    return Finding(
        kind="trend", risk=risk, summary=summary,
        action=action, subject={"metric": metric, "labels": labels},
        numbers={"direction": "rising" if rising else "falling",
                 "slope_per_hour": per_hour, "change": trend.change,
                 "relative_change": None if math.isinf(relative) else relative,
                 "level": trend.level, "noise": trend.noise, "p_value": trend.p_value,
                 "points": trend.points, "first_ms": trend.first_ms, "last_ms": trend.last_ms},
        score=min(relative, 1e6))


def capacity_finding(metric: str, labels: dict[str, str], trend: Trend,
                     rule: CapacityRule) -> Finding | None:
    """When the trend's line crosses `rule.threshold` within `rule.horizon`, a finding."""
    up = rule.direction == "above"
    if (trend.slope_per_s > 0) != up or trend.slope_per_s == 0:
        return None
    now_value = trend.fitted_last
    eta_s = max(0.0, (rule.threshold - now_value) / trend.slope_per_s)
    horizon_s = parse_duration_s(rule.horizon)
    if eta_s > horizon_s:
        return None
    risk: Risk = "high" if eta_s <= 86_400 else "medium" if eta_s <= 3 * 86_400 else "low"
    name = describe(metric, labels)
    verb = "rise above" if up else "fall below"
    when = "has crossed it" if eta_s == 0 else f"in about {duration_text(eta_s)}"
    return Finding(
        kind="capacity", risk=risk,
        summary=(f"{name} will {verb} {rule.threshold:g} {when} at its current pace "
                 f"({trend.slope_per_s * 3600:+.4g} per hour, now about {now_value:.4g}; "
                 f"linear extrapolation of the Theil-Sen line)"),
        action=(f"Add capacity or cut the load before {name} reaches {rule.threshold:g}; "
                f"alert ahead of time with a rule such as forecast({metric}[1h], "
                f"{rule.horizon}) {'>' if up else '<'} {rule.threshold:g}."),
        subject={"metric": metric, "labels": labels},
        numbers={"threshold": rule.threshold, "direction": rule.direction,
                 "eta_s": eta_s, "eta_ms": trend.last_ms + int(eta_s * 1000),
                 "current": now_value, "slope_per_hour": trend.slope_per_s * 3600,
                 "p_value": trend.p_value, "horizon": rule.horizon},
        score=1.0 / (1.0 + eta_s / 3600))
