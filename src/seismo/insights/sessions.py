"""Running sessions as findings: overdue against their kind, or likely to fail.

Reads the sessions stage's predictions (`SessionService.running`, docs/sessions.md): a
session is overdue past the `sessions.overdue_quantile` of its kind's durations, and at
risk when its success probability is under 50 % — from the logistic model, or from its
kind's success rate once the kind has `sessions.min_history` finished sessions. One
finding per such session.
"""

from __future__ import annotations

from typing import Any

from seismo.insights.finding import Finding, Risk, duration_text

AT_RISK = 0.5  # failure risk above this is a finding…
HIGH_RISK = 0.75  # …a high one above this
HIGH_OVERDUE = 2.0  # an overdue session is high risk past this many times its limit


def session_finding(session: dict[str, Any], overdue_quantile: float) -> Finding | None:
    """A finding for one running session (a `running` entry with its `prediction`), or
    None when it is on time and not likely to fail."""
    p = session.get("prediction")
    if p is None:
        return None
    completion = p["completion"]
    elapsed = p["elapsed_s"]
    failure = p["failure_risk"]
    trusted = p["model"] == "logistic" or completion is not None
    at_risk = failure is not None and failure > AT_RISK and trusted
    overdue = bool(p["overdue"]) and completion is not None
    if not (overdue or at_risk):
        return None
    name = f"Session {session['id']}" + (f" ({session['kind']})" if session["kind"] else "")
    parts, risks, score = [], [], 0.0
    if overdue:
        limit = completion["overdue_after_s"]
        ratio = elapsed / limit if limit > 0 else elapsed
        risks.append("high" if ratio > HIGH_OVERDUE else "medium")
        score = max(score, ratio)
        parts.append(f"has run {duration_text(elapsed)}; {overdue_quantile:.0%} of the "
                     f"{completion['based_on']} finished sessions of its kind took at most "
                     f"{duration_text(limit)}")
    if at_risk:
        risks.append("high" if failure > HIGH_RISK else "medium")
        score = max(score, failure)
        parts.append(f"will likely fail: estimated success probability "
                     f"{p['success_probability']:.0%} ({p['model']} model)")
    risk: Risk = "high" if "high" in risks else "medium"
    action = ("Check whether it is stuck (its timeline, metrics and alerts: GET "
              f"/api/v1/sessions/{session['id']}); stop and retry it if it makes no progress."
              if overdue else
              "Look at what sessions like it that failed had in common (GET "
              "/api/v1/sessions/stats, model.top_weights) and at its early events; fix the "
              "cause or stop it before it wastes its run.")
    numbers = {"elapsed_s": elapsed, "overdue": overdue,
               "success_probability": p["success_probability"], "failure_risk": failure,
               "model": p["model"]}
    if completion is not None:
        numbers.update({k: completion[k] for k in (
            "overdue_after_s", "expected_duration_s", "p90_duration_s", "remaining_s",
            "based_on")})
    return Finding(kind="session_overdue" if overdue else "session_at_risk", risk=risk,
                   summary=f"{name} {' and '.join(parts)}", action=action,
                   subject={"session": session["id"], "kind": session["kind"],
                            "user": session["user"]},
                   numbers=numbers, score=score)


def session_findings(running: list[dict[str, Any]], overdue_quantile: float) -> list[Finding]:
    """Findings for the running sessions that are overdue or likely to fail."""
    found = [session_finding(s, overdue_quantile) for s in running]
    return [f for f in found if f is not None]
