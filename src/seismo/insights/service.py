"""The insights stage: ask every other stage what deserves attention, rank the answers.

On request (nothing runs in the background): trends and capacity over the series the
selector picks (`trends.py`), SLO budgets and models (`budgets.py`), noisy rules and
anomaly rates (`noise.py`), overdue and at-risk running sessions (`sessions.py`, from the
sessions stage's predictions). Each check reads what its stage already keeps; a check
that fails is reported under `errors` and the others still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from seismo.config import parse_duration_s
from seismo.errors import SeismoError
from seismo.insights import budgets, noise, sessions, trends
from seismo.insights.finding import Finding, rank
from seismo.query.engine import RangeQuery
from seismo.query.selector import parse_selector
from seismo.store.series import series_id

if TYPE_CHECKING:
    from seismo.engine import Engine

log = logging.getLogger(__name__)
POINTS = 60  # step averages per series over the window
CHUNK_SERIES = 500
MAX_MODEL_VERSIONS = 50


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class InsightService:
    """See the module docstring; `engine` is the service layer it reads from."""

    def __init__(self, engine: Engine, clock: Callable[[], int] = now_ms) -> None:
        self.engine = engine
        self.settings = engine.settings.insights
        self.clock = clock

    def findings(self, selector: str | None = None, limit: int = 50) -> dict[str, Any]:
        """Ranked findings: highest risk first (docs/insights.md)."""
        text = self.settings.selector if selector is None or not selector.strip() else selector
        sel = parse_selector(text)
        at = self.clock()
        found: list[Finding] = []
        checked: dict[str, int] = {}
        errors: dict[str, str] = {}
        checks: list[tuple[str, Callable[[], tuple[list[Finding], int]]]] = [
            ("series", lambda: self._trends(sel, at)),
            ("slos", self._slos), ("models", self._models),
            ("rules", lambda: self._noisy_rules(at)),
            ("anomaly_rates", lambda: self._anomaly_rates(sel)),
            ("sessions", self._session_findings)]
        for name, check in checks:
            try:
                more, count = check()
            except SeismoError as exc:
                errors[name] = exc.message
                continue
            except Exception:
                log.exception("insight check %s failed", name)
                errors[name] = "internal error; see the server log"
                continue
            found += more
            checked[name] = count
        ranked = rank(found)
        return {"generated_ms": at, "selector": text, "window": self.settings.window,
                "total": len(ranked), "findings": [f.to_dict() for f in ranked[:limit]],
                "checked": checked, "errors": errors}

    def jobs(self) -> dict[str, Any]:
        """Running sessions with their predictions (`GET /api/v1/insights/jobs`, the route's
        name from before sessions; docs/sessions.md)."""
        return self.engine.sessions.running()

    # -- checks ---------------------------------------------------------------------------

    def _trends(self, sel: Any, at: int) -> tuple[list[Finding], int]:
        s = self.settings
        index = self.engine.store.index
        slots = [slot for slot in index.select(sel) if trends.is_examined(index.info(slot).metric)]
        slots = slots[:s.max_series]
        window_ms = int(parse_duration_s(s.window) * 1000)
        step_ms = max(1000, window_ms // POINTS)
        capacity = [(rule, set(index.select(parse_selector(rule.selector))))
                    for rule in s.capacity]
        out: list[Finding] = []
        for i in range(0, len(slots), CHUNK_SERIES):
            chunk = tuple(slots[i:i + CHUNK_SERIES])
            q = RangeQuery(sel, at - window_ms, at, step_ms, "avg", slots=chunk)
            for series in self.engine.query.range(q):
                values = np.array([np.nan if v is None else v for v in series["values"]],
                                  dtype=np.float64)
                trend = trends.fit_trend(np.asarray(series["timestamps"], np.int64), values)
                if trend is None or not trend.is_significant(s.trend_p_value,
                                                             s.trend_min_change):
                    continue
                metric, labels = series["metric"], series["labels"]
                out.append(trends.trend_finding(metric, labels, trend, s.window))
                slot = index.slot_of_id(series_id(metric, labels))
                for rule, matched in capacity:
                    if slot in matched:
                        finding = trends.capacity_finding(metric, labels, trend, rule)
                        if finding is not None:
                            out.append(finding)
        return out, len(slots)

    def _slos(self) -> tuple[list[Finding], int]:
        statuses = self.engine.slos.list_status()
        found = [budgets.slo_finding(st, self.settings.slo_budget_low) for st in statuses]
        return [f for f in found if f is not None], len(statuses)

    def _models(self) -> tuple[list[Finding], int]:
        service = self.engine.models
        out: list[Finding] = []
        judged = 0
        for name, model in list(service.registry.models.items()):
            for version in list(model.versions)[-MAX_MODEL_VERSIONS:]:
                if judged >= MAX_MODEL_VERSIONS:
                    break
                judged += 1
                out += budgets.model_findings(service.drift(name, version))
        return out, judged

    def _noisy_rules(self, at: int) -> tuple[list[Finding], int]:
        s = self.settings
        since = at - int(parse_duration_s(s.noisy_window) * 1000)
        alerting = self.engine.alerting
        counts = alerting.log.transition_counts(since)
        rules = {rule.name: rule for rule in alerting.rules()}
        found = [noise.noisy_rule_finding(c, rules.get(c["rule"]), s.noisy_fired,
                                          s.noisy_window) for c in counts]
        return [f for f in found if f is not None], len(counts)

    def _anomaly_rates(self, sel: Any) -> tuple[list[Finding], int]:
        s = self.settings
        rows = self.engine.anomaly_rates(sel)["series"]
        found = [noise.anomaly_rate_finding(r, s.anomaly_rate, s.anomaly_min_points)
                 for r in rows if trends.is_examined(r["metric"])]
        return [f for f in found if f is not None], len(rows)

    def _session_findings(self) -> tuple[list[Finding], int]:
        report = self.engine.sessions.running()
        quantile = self.engine.settings.sessions.overdue_quantile
        return sessions.session_findings(report["running"], quantile), report["running_total"]
