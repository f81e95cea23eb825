"""Noisy alert rules and series with high anomaly rates: signals that need tuning.

A rule is noisy when it fired at least `insights.noisy_fired` times in
`insights.noisy_window` (counted from the alert history, `AlertLog.transition_counts`);
the advice depends on what the rule lacks: a `resolve:` condition (hysteresis), a `for:`
hold, a `keep_firing_for:`. Anomaly rates are the detectors' share of anomalous points
per series since start (`Engine.anomaly_rates`).
"""

from __future__ import annotations

from typing import Any

from seismo.alerting.rules import Rule
from seismo.insights.finding import Finding, describe


def noisy_rule_finding(count: dict[str, Any], rule: Rule | None, fired_min: int,
                       window: str) -> Finding | None:
    """A finding when a rule fired `fired_min` times or more in the window."""
    fired = int(count["fired"])
    if count["source"] != "rule" or fired < fired_min:
        return None
    name = count["rule"]
    advice = []
    if rule is not None:
        if rule.resolve is None:
            advice.append(f"add hysteresis: a `resolve:` condition a little inside the "
                          f"threshold of `{rule.expr}`, so it resolves only once clearly "
                          "back to normal")
        if rule.for_ms == 0:
            advice.append("add `for: 1m` so that a short blip does not fire")
        elif rule.keep_firing_for_ms == 0:
            advice.append("add `keep_firing_for: 5m` so that it does not resolve between "
                          "two close blips")
    if not advice:
        advice.append("raise its threshold or lengthen `for:`; the condition is true too "
                      "often to be worth a notification each time")
    text = "; ".join(advice)
    return Finding(
        kind="noisy_rule", risk="medium" if fired >= 3 * fired_min else "low",
        summary=(f"Rule {name} is noisy: it fired {fired} times and resolved "
                 f"{int(count['resolved'])} times in the last {window}, over "
                 f"{int(count['alerts'])} alert(s)"),
        action=text[0].upper() + text[1:] + ".",
        subject={"rule": name},
        numbers={"fired": fired, "resolved": int(count["resolved"]),
                 "alerts": int(count["alerts"]), "window": window,
                 "has_resolve": None if rule is None else rule.resolve is not None,
                 "for_s": None if rule is None else rule.for_ms / 1000,
                 "keep_firing_for_s": None if rule is None else rule.keep_firing_for_ms / 1000},
        score=float(fired))


def anomaly_rate_finding(row: dict[str, Any], threshold: float,
                         min_points: int) -> Finding | None:
    """A series whose share of anomalous points is `threshold` or more."""
    rate, points = float(row["anomaly_rate"]), int(row["points"])
    if rate < threshold or points < min_points:
        return None
    name = describe(row["metric"], row["labels"])
    return Finding(
        kind="anomaly_rate", risk="medium" if rate >= 0.2 else "low",
        summary=(f"{name} is anomalous {rate:.1%} of the time: {int(row['anomalous'])} of "
                 f"its {points} scored points (the threshold is {threshold:.0%})"),
        action=("Look at the series around its anomalies (GET /api/v1/anomalies?selector=…): "
                "if this is its normal behaviour, add a detect rule for it with a lower "
                "sensitivity or the right seasonality; if not, it is unstable and deserves "
                "an alert rule."),
        subject={"metric": row["metric"], "labels": row["labels"]},
        numbers={"anomaly_rate": rate, "points": points, "anomalous": int(row["anomalous"]),
                 "threshold": threshold},
        score=rate)
