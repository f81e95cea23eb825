"""`RestBackend`: the MCP tools' operations on a running server, over its REST API.

Requests are `seismo.client.calls` (the client's route table) and replies go through its
one error mapping, so a 403 for the token's role comes back as `Forbidden`. Whom a call
runs as is the token's business: the server checks every request's role itself.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from seismo.auth import Principal
from seismo.client import calls
from seismo.client.calls import Call
from seismo.mcp.backend import Doc

T = TypeVar("T")


def _whole(reply: Doc) -> Doc:
    return reply


def _key(name: str) -> Any:
    def read(reply: Doc) -> Any:
        return reply[name]
    return read


def _seg(text: str) -> str:
    """A path segment, quoted: an id or name never reaches another route."""
    return quote(text, safe="")


def _present(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class RestBackend:
    """See the module docstring; close it with `aclose()`."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url + "/api/v1",
                                       headers=calls.auth_headers(token), timeout=timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    def caller(self, request: Any) -> Principal | None:
        return None

    async def _send(self, call: Call[T]) -> T:
        return await calls.send_async(self._http, self.url, call)

    # -- status, monitoring, stream ------------------------------------------------------

    async def health(self) -> Doc:
        return await self._send(calls.health())

    async def monitoring(self) -> Doc:
        return await self._send(Call("GET", "/monitoring", _whole))

    async def start_monitoring(self) -> Doc:
        return await self._send(Call("POST", "/monitoring/start", _whole))

    async def stop_monitoring(self) -> Doc:
        return await self._send(Call("POST", "/monitoring/stop", _whole))

    async def recent(self, topic: str, filters: dict[str, Any], since: int | None,
                     limit: int) -> Doc:
        params = _present(topic=topic, since=since, limit=limit, **filters)
        return await self._send(Call("GET", "/stream/recent", _whole, params=params))

    # -- series and queries --------------------------------------------------------------

    async def metric_names(self) -> list[str]:
        names: list[str] = await self._send(Call("GET", "/metric_names", _key("metrics")))
        return names

    async def series(self, selector: str, limit: int) -> list[Doc]:
        return await self._send(calls.series(selector, limit))

    async def instant(self, selector: str, window: str) -> list[Doc]:
        return await self._send(calls.query(selector, window))

    async def query_range(self, selector: str, start: str, end: str, step: str | None,
                          agg: str, group_by: list[str] | None) -> Doc:
        return await self._send(calls.query_range(selector, start, end, step, agg, group_by))

    async def ingest(self, samples: list[Doc]) -> Doc:
        return await self._send(calls.push(None, samples))

    # -- events and anomalies ------------------------------------------------------------

    async def events(self, type: str | None, source: str | None, start: str | None,
                     end: str | None, limit: int) -> list[Doc]:
        return await self._send(calls.events(type, source, start, end, limit))

    async def add_events(self, events: list[Doc]) -> Doc:
        return await self._send(calls.push_events(events))

    async def anomalies(self, selector: str | None, state: str | None, min_score: float,
                        start: str | None, end: str | None, limit: int) -> list[Doc]:
        params = _present(selector=selector, state=state, min_score=min_score, start=start,
                          end=end, limit=limit)
        rows: list[Doc] = await self._send(Call("GET", "/anomalies", _key("anomalies"),
                                                params=params))
        return rows

    async def anomaly_rates(self, selector: str) -> Doc:
        return await self._send(Call("GET", "/anomalies/rates", _whole,
                                     params={"selector": selector}))

    # -- alerts, rules, silences ---------------------------------------------------------

    async def alerts(self, state: list[str] | None, severity: list[str] | None,
                     rule: str | None, limit: int) -> list[Doc]:
        return await self._send(calls.alerts(
            None if state is None else ",".join(state),
            None if severity is None else ",".join(severity), rule, limit))

    async def alert(self, alert_id: str) -> Doc:
        return await self._send(Call("GET", f"/alerts/{_seg(alert_id)}", _whole))

    async def acknowledge(self, alert_id: str, comment: str, by: str | None) -> Doc:
        return await self._send(calls.alert_action(_seg(alert_id), "ack", comment, by))

    async def resolve(self, alert_id: str, comment: str, by: str | None) -> Doc:
        return await self._send(calls.alert_action(_seg(alert_id), "resolve", comment, by))

    async def raise_alert(self, name: str, labels: dict[str, str],
                          annotations: dict[str, str], severity: str,
                          ends_at: str | None) -> Doc:
        return await self._send(calls.raise_alert(name, labels, annotations, severity,
                                                  ends_at))

    async def rules(self) -> list[Doc]:
        return await self._send(calls.rules())

    async def rule(self, name: str) -> Doc:
        return await self._send(Call("GET", f"/rules/{_seg(name)}", _whole))

    async def put_rule(self, doc: Doc) -> Doc:
        return await self._send(Call("POST", "/rules", _whole, body=doc))

    async def delete_rule(self, name: str) -> None:
        await self._send(Call("DELETE", f"/rules/{_seg(name)}", _whole))

    async def silences(self, state: str | None) -> list[Doc]:
        return await self._send(calls.silences(state))

    async def add_silence(self, doc: Doc, by: str | None) -> Doc:
        return await self._send(Call("POST", "/silences", _whole,
                                     body={**doc, **_present(by=by)}))

    async def expire_silence(self, silence_id: str) -> Doc:
        return await self._send(calls.expire_silence(_seg(silence_id)))

    # -- models and SLOs -----------------------------------------------------------------

    async def models(self) -> list[Doc]:
        return await self._send(calls.models())

    async def model(self, name: str) -> Doc:
        return await self._send(calls.model(_seg(name)))

    async def register_model(self, doc: Doc) -> Doc:
        return await self._send(Call("POST", "/models", _whole, body=doc))

    async def record_predictions(self, name: str, version: str, items: list[Doc]) -> Doc:
        return await self._send(calls.record_predictions(_seg(name), version, items))

    async def record_outcomes(self, name: str, items: list[Doc]) -> Doc:
        return await self._send(calls.record_outcomes(_seg(name), items))

    async def model_metrics(self, name: str, version: str | None,
                            window: str | None) -> Doc:
        return await self._send(calls.model_report(_seg(name), "metrics", version=version,
                                                   window=window))

    async def model_drift(self, name: str, version: str | None, window: str | None) -> Doc:
        return await self._send(calls.model_report(_seg(name), "drift", version=version,
                                                   window=window))

    async def slos(self) -> list[Doc]:
        rows: list[Doc] = await self._send(Call("GET", "/slos", _key("slos")))
        return rows

    async def slo(self, name: str) -> Doc:
        return await self._send(Call("GET", f"/slos/{_seg(name)}", _whole))

    async def forecast(self, selector: str, horizon: str, step: str | None,
                       threshold: float | None, level: float | None) -> Doc:
        params = _present(selector=selector, horizon=horizon, step=step, threshold=threshold,
                          level=level)
        return await self._send(Call("GET", "/forecast", _whole, params=params))

    # -- sessions, energy, insights ------------------------------------------------------

    async def sessions(self, state: list[str] | None, kind: str | None, user: str | None,
                       sort: str, limit: int, cursor: str | None) -> Doc:
        params = _present(state=state, kind=kind, user=user, sort=sort, limit=limit,
                          cursor=cursor)
        return await self._send(Call("GET", "/sessions", _whole, params=params))

    async def session(self, session_id: str) -> Doc:
        return await self._send(Call("GET", f"/sessions/{_seg(session_id)}", _whole))

    async def session_stats(self) -> Doc:
        return await self._send(Call("GET", "/sessions/stats", _whole))

    async def energy_stats(self, selector: str | None, window: str | None) -> Doc:
        params = _present(selector=selector, window=window)
        return await self._send(Call("GET", "/energy/stats", _whole, params=params))

    async def insights(self, limit: int) -> Doc:
        return await self._send(Call("GET", "/insights", _whole, params={"limit": limit}))
