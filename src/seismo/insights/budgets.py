"""SLO error budgets at risk, and ML models whose quality falls or whose inputs drift.

Both read what their stages already judged: `SLOEvaluator.list_status()` (budget left,
burn rates, status; docs/slo.md) and `ModelService.drift()` (the primary metric against
its reference, drift tests per feature; docs/models.md).
"""

from __future__ import annotations

from typing import Any

from seismo.config import parse_duration_s
from seismo.insights.finding import Finding, Risk, duration_text


def slo_finding(status: dict[str, Any], budget_low: float) -> Finding | None:
    """An SLO whose status is not ok, or whose budget left is under `budget_low`."""
    name = status["name"]
    state = status["status"]
    remaining = status.get("budget_remaining")
    low = remaining is not None and remaining < budget_low
    if state == "ok" and not low:
        return None
    risk: Risk = ("high" if state in ("breach", "exhausted") else
                  "medium" if state == "warning" or (remaining is not None and remaining < 0.1)
                  else "low")
    burn = status.get("burn_rates", {}).get("1h")
    window_s = parse_duration_s(status["window"])
    eta_s = None
    if remaining is not None and remaining > 0 and burn:
        eta_s = remaining * window_s / burn  # burn 1 spends the whole budget in one window
    left = "no" if remaining is None else f"{max(remaining, 0):.0%} of its"
    summary = f"SLO {name} is {state}: {left} error budget left"
    if burn is not None:
        summary += f", burning {burn:.3g}× the sustainable rate over the last hour"
    if eta_s is not None:
        summary += f"; at this rate the budget is spent in {duration_text(eta_s)}"
    return Finding(
        kind="slo_budget", risk=risk, summary=summary,
        action=("Slow down risky changes (freeze deploys) and find what spends the budget: "
                f"the SLI's bad events (GET /api/v1/slos/{name}); page if it keeps burning."),
        subject={"slo": name},
        numbers={"status": state, "budget_remaining": remaining, "burn_rate_1h": burn,
                 "objective": status.get("objective"), "window": status["window"],
                 "budget_spent_in_s": eta_s},
        score=1.0 - (remaining if remaining is not None else 0.0))


def model_findings(drift: dict[str, Any]) -> list[Finding]:
    """A model version whose primary metric fell (`alert`) or whose inputs drifted."""
    out = []
    name, version = drift["model"], drift["version"]
    subject = {"model": name, "version": version}
    perf = drift["performance"]
    if perf["status"] == "alert":
        change = perf["relative_change"]
        out.append(Finding(
            kind="model_degrading", risk="high",
            summary=(f"Model {name} {version} is degrading: {perf['metric']} went from "
                     f"{perf['reference']:.4g} to {perf['current']:.4g} ({change:+.1%}) "
                     f"against its reference, over the last {drift['window']}"),
            action=("Check recent outcomes and input data for a change; retrain, or roll "
                    f"back to the previous version (GET /api/v1/models/{name}/compare)."),
            subject=subject,
            numbers={"metric": perf["metric"], "reference": perf["reference"],
                     "current": perf["current"], "relative_change": change,
                     "threshold": perf["threshold"]},
            score=abs(change)))
    if drift["status"] == "alert":
        drifted = drift["drifted"]
        psi = {f: drift["features"][f].get("tests", {}).get("psi", {}).get("value")
               for f in drifted if f in drift["features"]}
        out.append(Finding(
            kind="model_drift", risk="medium",
            summary=(f"Model {name} {version} sees drifting inputs: "
                     f"{', '.join(drifted)} moved away from the reference distribution "
                     f"over the last {drift['window']}"),
            action=(f"Compare the drifted features with the training data (GET "
                    f"/api/v1/models/{name}/drift); retrain if the shift is real, fix the "
                    "pipeline if it is a bug."),
            subject=subject, numbers={"drifted": drifted, "psi": psi},
            score=float(len(drifted))))
    return out
