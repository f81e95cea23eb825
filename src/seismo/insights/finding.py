"""A finding: one plain-language statement, the numbers behind it, a risk and an action."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Risk = Literal["high", "medium", "low"]
RISKS: tuple[Risk, ...] = ("high", "medium", "low")
KINDS = ("trend", "capacity", "slo_budget", "model_degrading", "model_drift", "noisy_rule",
         "anomaly_rate", "session_overdue", "session_at_risk")


@dataclass(frozen=True)
class Finding:
    """`score` orders findings of the same risk (larger first); `subject` says what the
    finding is about (a series, a rule, an SLO, a model, a session)."""

    kind: str
    risk: Risk
    summary: str
    action: str
    subject: dict[str, Any]
    numbers: dict[str, Any] = field(default_factory=dict)
    score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "risk": self.risk, "summary": self.summary,
                "action": self.action, "subject": self.subject,
                "numbers": {k: _clean(v) for k, v in self.numbers.items()},
                "score": round(self.score, 6)}


def rank(findings: list[Finding]) -> list[Finding]:
    """Highest risk first, then by score."""
    return sorted(findings, key=lambda f: (RISKS.index(f.risk), -f.score, f.summary))


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


def describe(metric: str, labels: dict[str, str]) -> str:
    """`metric{a="1"}` as people write it."""
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}" if inner else metric


def duration_text(seconds: float) -> str:
    """`45 s`, `12 min`, `3.5 h`, `2.1 d`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"
