"""`EngineBackend`: the MCP tools' operations on the engine in this process.

Each method does what the REST route of the same name does (parse, call the engine or
its service, return the route's reply), with blocking work off the event loop. Used by
the server's `/mcp` endpoint and by `seismo mcp --data-dir` (an embedded engine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from seismo.alerting.service import AlertService
from seismo.api.access import principal_of
from seismo.auth import Principal
from seismo.engine import Engine, now_ms
from seismo.errors import InvalidInput, Unauthorized
from seismo.ingest.schema import decode_events, decode_ingest
from seismo.mcp.backend import Doc
from seismo.models import ModelService
from seismo.query.engine import RangeQuery
from seismo.query.selector import parse_selector
from seismo.query.timeparse import parse_step_ms, parse_time_ms, parse_window_s, time_bounds

T = TypeVar("T")


async def _off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


class EngineBackend:
    """See the module docstring. `local` is whom stdio calls run as (the data dir's owner:
    the anonymous admin); HTTP calls run as the principal access control found."""

    def __init__(self, engine: Engine, local: Principal | None = None) -> None:
        self.engine = engine
        self.local = local

    def caller(self, request: Any) -> Principal | None:
        if request is None:
            if self.local is None:
                raise Unauthorized("no caller: this endpoint serves HTTP requests only")
            return self.local
        principal = principal_of(request)
        if principal is None:  # access control sets one for every /mcp request
            raise Unauthorized("missing token: send Authorization: Bearer <token>")
        return principal

    def _alerting(self) -> AlertService:
        if not self.engine.settings.alerting.enabled:
            raise InvalidInput("alerting is disabled (alerting.enabled: false)",
                               field="alerting")
        return self.engine.alerting

    def _models(self) -> ModelService:
        if not self.engine.settings.models.enabled:
            raise InvalidInput("model monitoring is disabled (models.enabled: false)",
                               field="models")
        return self.engine.models

    # -- status, monitoring, stream ------------------------------------------------------

    async def health(self) -> Doc:
        return self.engine.health()

    async def monitoring(self) -> Doc:
        return self.engine.monitoring()

    async def start_monitoring(self) -> Doc:
        return await _off_loop(self.engine.start_monitoring)

    async def stop_monitoring(self) -> Doc:
        return await _off_loop(self.engine.stop_monitoring)

    async def recent(self, topic: str, filters: dict[str, Any], since: int | None,
                     limit: int) -> Doc:
        return self.engine.hub.recent(topic, filters, since, limit)

    # -- series and queries --------------------------------------------------------------

    async def metric_names(self) -> list[str]:
        return self.engine.store.index.metrics()

    async def series(self, selector: str, limit: int) -> list[Doc]:
        return self.engine.query.series(parse_selector(selector), limit)

    async def instant(self, selector: str, window: str) -> list[Doc]:
        return await _off_loop(self.engine.query.instant, parse_selector(selector),
                               parse_window_s(window), now_ms())

    async def query_range(self, selector: str, start: str, end: str, step: str | None,
                          agg: str, group_by: list[str] | None) -> Doc:
        at = now_ms()
        end_ms = parse_time_ms(end, now_ms=at, default=at, field="end")
        start_ms = parse_time_ms(start, now_ms=at, default=end_ms - 3_600_000, field="start")
        step_ms = parse_step_ms(step) or max(1000, (end_ms - start_ms) // 500)
        q = RangeQuery(parse_selector(selector), start_ms, end_ms, step_ms, agg,
                       None if group_by is None else tuple(group_by))
        return {"series": await _off_loop(self.engine.query_range, q), "step_ms": step_ms}

    async def ingest(self, samples: list[Doc]) -> Doc:
        body = decode_ingest(msgspec.json.encode({"samples": samples}))
        return await self.engine.ingest(body)

    # -- events and anomalies ------------------------------------------------------------

    async def events(self, type: str | None, source: str | None, start: str | None,
                     end: str | None, limit: int) -> list[Doc]:
        found = await _off_loop(self.engine.events.query, type=type, source=source,
                                limit=limit, **time_bounds(start, end, now_ms()))
        return [e.to_dict() for e in found]

    async def add_events(self, events: list[Doc]) -> Doc:
        items = decode_events(msgspec.json.encode({"events": events}))
        stored = await _off_loop(self.engine.add_events, items)
        return {"accepted": len(stored), "events": [e.to_dict() for e in stored]}

    async def anomalies(self, selector: str | None, state: str | None, min_score: float,
                        start: str | None, end: str | None, limit: int) -> list[Doc]:
        found = await _off_loop(
            self.engine.find_anomalies, None if selector is None else parse_selector(selector),
            min_score=min_score, state=state, limit=limit, **time_bounds(start, end, now_ms()))
        return [a.to_dict() for a in found]

    async def anomaly_rates(self, selector: str) -> Doc:
        return await _off_loop(self.engine.anomaly_rates, parse_selector(selector))

    # -- alerts, rules, silences ---------------------------------------------------------

    async def alerts(self, state: list[str] | None, severity: list[str] | None,
                     rule: str | None, limit: int) -> list[Doc]:
        return await _off_loop(self._alerting().list_alerts, state=state, severity=severity,
                               rule=rule, limit=limit)

    async def alert(self, alert_id: str) -> Doc:
        return await _off_loop(self._alerting().get_alert, alert_id)

    async def acknowledge(self, alert_id: str, comment: str, by: str | None) -> Doc:
        return await _off_loop(self._alerting().acknowledge, alert_id, by or "anonymous",
                               comment)

    async def resolve(self, alert_id: str, comment: str, by: str | None) -> Doc:
        return await _off_loop(self._alerting().resolve, alert_id, by or "anonymous", comment)

    async def raise_alert(self, name: str, labels: dict[str, str],
                          annotations: dict[str, str], severity: str,
                          ends_at: str | None) -> Doc:
        service = self._alerting()
        ends_at_ms = None if ends_at is None else parse_time_ms(
            ends_at, now_ms=service.clock(), default=0, field="ends_at")
        return await _off_loop(service.raise_alert, name, labels=labels,
                               annotations=annotations, severity=severity,
                               ends_at_ms=ends_at_ms)

    async def rules(self) -> list[Doc]:
        return [r.to_dict() for r in self._alerting().rules()]

    async def rule(self, name: str) -> Doc:
        return self._alerting().get_rule(name).to_dict()

    async def put_rule(self, doc: Doc) -> Doc:
        return (await _off_loop(self._alerting().put_rule, doc)).to_dict()

    async def delete_rule(self, name: str) -> None:
        await _off_loop(self._alerting().delete_rule, name)

    async def silences(self, state: str | None) -> list[Doc]:
        return self._alerting().list_silences(state)

    async def add_silence(self, doc: Doc, by: str | None) -> Doc:
        return await _off_loop(self._alerting().add_silence, doc, by or "anonymous")

    async def expire_silence(self, silence_id: str) -> Doc:
        return await _off_loop(self._alerting().expire_silence, silence_id)

    # -- models and SLOs -----------------------------------------------------------------

    async def models(self) -> list[Doc]:
        return self._models().list_models()

    async def model(self, name: str) -> Doc:
        return self._models().describe(name)

    async def register_model(self, doc: Doc) -> Doc:
        reply, _ = await _off_loop(self._models().register, doc)
        return reply

    async def record_predictions(self, name: str, version: str, items: list[Doc]) -> Doc:
        service = self._models()
        raw = msgspec.json.encode({"version": version, "items": items})
        record = service.prepare_predictions(name, raw)
        return await asyncio.wrap_future(service.submit(record))

    async def record_outcomes(self, name: str, items: list[Doc]) -> Doc:
        service = self._models()
        record = service.prepare_outcomes(name, msgspec.json.encode({"items": items}))
        return await asyncio.wrap_future(service.submit(record))

    async def model_metrics(self, name: str, version: str | None,
                            window: str | None) -> Doc:
        return await _off_loop(self._models().metrics, name, version, window, None)

    async def model_drift(self, name: str, version: str | None, window: str | None) -> Doc:
        return await _off_loop(self._models().drift, name, version, window, None)

    async def slos(self) -> list[Doc]:
        return await _off_loop(self.engine.slos.list_status)

    async def slo(self, name: str) -> Doc:
        return await _off_loop(self.engine.slos.status, name)

    async def forecast(self, selector: str, horizon: str, step: str | None,
                       threshold: float | None, level: float | None) -> Doc:
        horizon_ms = parse_step_ms(horizon, field="horizon")
        if horizon_ms is None:
            raise InvalidInput("horizon is required, such as 1h", field="horizon")
        return await _off_loop(self.engine.forecasts.forecast, parse_selector(selector),
                               horizon_ms, step_ms=parse_step_ms(step, field="step"),
                               threshold=threshold, level=level)

    # -- sessions, energy, insights ------------------------------------------------------

    async def sessions(self, state: list[str] | None, kind: str | None, user: str | None,
                       sort: str, limit: int, cursor: str | None) -> Doc:
        return await _off_loop(self.engine.sessions.list, state=state, kind=kind, user=user,
                               sort=sort, limit=limit, cursor=cursor)

    async def session(self, session_id: str) -> Doc:
        return await _off_loop(self.engine.sessions.get, session_id)

    async def session_stats(self) -> Doc:
        return await _off_loop(self.engine.sessions.stats)

    async def energy_stats(self, selector: str | None, window: str | None) -> Doc:
        return await _off_loop(self.engine.energy.stats, selector, window)

    async def insights(self, limit: int) -> Doc:
        return await _off_loop(self.engine.insights.findings, None, limit)
