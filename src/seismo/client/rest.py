"""`Client` (blocking) and `AsyncClient` (asyncio): the same methods over `/api/v1`.

Both build their requests from `calls`, and errors come back as `seismo.errors` exceptions
carrying the server's message, so a remote server is handled like the in-process engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from seismo.client import calls
from seismo.client.backoff import Backoff
from seismo.client.monitor import ModelMonitor
from seismo.client.stream import Subscription

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8765"
Reply = dict[str, Any]
Rows = Sequence[Mapping[str, Any]]


class Client:
    """Talks to one server; use it as a context manager or call `close()`.

    `token` is sent as `Authorization: Bearer`. Every method raises a `SeismoError`
    subclass on failure: `InvalidInput` (400, with `field`), `Unauthorized`, `Forbidden`,
    `NotFound`, `TooLarge`, `Overloaded` (with `retry_after_s`), `StorageUnavailable`.
    """

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self._http = httpx.Client(base_url=self.url + "/api/v1",
                                  headers=calls.auth_headers(token), timeout=timeout_s)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def health(self) -> Reply:
        """Status, version, uptime and the state of the store."""
        return self._send(calls.health())

    def push(self, series: Rows | None = None, samples: Rows | None = None) -> Reply:
        """Store columnar `series` and/or row `samples`; return accepted/rejected/errors."""
        return self._send(calls.push(series, samples))

    def push_events(self, events: Mapping[str, Any] | Rows) -> Reply:
        """Store one event (a dict) or several (a list), all or none: `{"accepted", "events"}`."""
        return self._send(calls.push_events(events))

    def query(self, selector: str, window: str = "5m") -> list[Reply]:
        """Latest value and window stats of every series the selector matches."""
        return self._send(calls.query(selector, window))

    def query_range(self, selector: str, *, start: str | None = None, end: str | None = None,
                    step: str | None = None, agg: str = "avg",
                    group_by: Sequence[str] | None = None) -> Reply:
        """Step buckets of the selected series: `{"series": [...], "step_ms": n}`."""
        return self._send(calls.query_range(selector, start, end, step, agg, group_by))

    def forecast(self, selector: str, horizon: str = "1h", *, step: str | None = None,
                 history: str | None = None, threshold: float | None = None,
                 level: float | None = None) -> Reply:
        """Forecast of the selected series with intervals and backtest accuracy
        (docs/forecast.md): `{"series": [{"values", "lower", "upper", "mase", ...}], ...}`."""
        return self._send(calls.forecast(selector, horizon, step, history, threshold, level))

    def series(self, selector: str, limit: int = 10_000) -> list[Reply]:
        """The series a selector matches: `[{"metric", "labels", "id"}]`."""
        return self._send(calls.series(selector, limit))

    def events(self, *, type: str | None = None, source: str | None = None,
               start: str | None = None, end: str | None = None,
               limit: int = 100) -> list[Reply]:
        """Stored events, newest first."""
        return self._send(calls.events(type, source, start, end, limit))

    def alerts(self, *, state: str | None = None, severity: str | None = None,
               rule: str | None = None, limit: int = 100) -> list[Reply]:
        """Alerts, most recently changed first (`state`, `severity`: comma-separated)."""
        return self._send(calls.alerts(state, severity, rule, limit))

    def raise_alert(self, name: str, *, labels: Mapping[str, str] | None = None,
                    annotations: Mapping[str, str] | None = None, severity: str = "high",
                    ends_at: str | int | None = None) -> Reply:
        """Raise a custom alert (posting it again refreshes it)."""
        return self._send(calls.raise_alert(name, labels, annotations, severity, ends_at))

    def acknowledge(self, alert_id: str, comment: str = "", by: str | None = None) -> Reply:
        """Acknowledge a firing alert."""
        return self._send(calls.alert_action(alert_id, "ack", comment, by))

    def resolve(self, alert_id: str, comment: str = "", by: str | None = None) -> Reply:
        """Resolve an active alert by hand."""
        return self._send(calls.alert_action(alert_id, "resolve", comment, by))

    def rules(self) -> list[Reply]:
        """Every alert rule."""
        return self._send(calls.rules())

    def silences(self, state: str | None = None) -> list[Reply]:
        """Silences: pending, active, expired."""
        return self._send(calls.silences(state))

    def add_silence(self, matchers: Mapping[str, str] | Rows, *, ends_at: str | int,
                    comment: str, starts_at: str | int | None = None) -> Reply:
        """Silence alerts whose labels match until `ends_at`."""
        return self._send(calls.add_silence(matchers, ends_at, comment, starts_at))

    def expire_silence(self, silence_id: str) -> Reply:
        """End a silence now."""
        return self._send(calls.expire_silence(silence_id))

    def register_model(self, name: str, version: str, task: str,
                       metadata: Mapping[str, Any] | None = None) -> Reply:
        """Register a model version (`task`: classification or regression)."""
        return self._send(calls.register_model(name, version, task, metadata))

    def models(self) -> list[Reply]:
        """Every registered model with its versions."""
        return self._send(calls.models())

    def model(self, name: str) -> Reply:
        """One model: versions with totals, features, classes."""
        return self._send(calls.model(name))

    def record_predictions(self, name: str, version: str, items: Rows) -> Reply:
        """Record predictions `[{id, features, prediction, probability?, latency_ms?}]`."""
        return self._send(calls.record_predictions(name, version, items))

    def record_outcomes(self, name: str, items: Rows) -> Reply:
        """Record outcomes `[{id, actual}]`: matched, updated, unknown (kept waiting)."""
        return self._send(calls.record_outcomes(name, items))

    def model_metrics(self, name: str, version: str | None = None,
                      window: str | None = None) -> Reply:
        """Quality, latency and volume of a version over a window."""
        return self._send(calls.model_report(name, "metrics", version=version, window=window))

    def model_drift(self, name: str, version: str | None = None, window: str | None = None,
                    reference: str | None = None) -> Reply:
        """Drift per feature and of the predictions against a reference."""
        return self._send(calls.model_report(name, "drift", version=version, window=window,
                                             reference=reference))

    def compare_models(self, name: str, a: str, b: str, window: str | None = None) -> Reply:
        """Two versions on the same window."""
        return self._send(calls.model_report(name, "compare", a=a, b=b, window=window))

    def monitor(self, model: str, version: str, **options: Any) -> ModelMonitor:
        """A `ModelMonitor` for one model version on this server (see its options)."""
        return ModelMonitor(self.url, self.token, model, version, **options)

    def _send(self, call: calls.Call[T]) -> T:
        return calls.send(self._http, self.url, call)


class AsyncClient:
    """`Client` for asyncio, plus `subscribe()` to the live stream; use `async with`."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._http = httpx.AsyncClient(base_url=self.url + "/api/v1",
                                       headers=calls.auth_headers(token), timeout=timeout_s)
        self._subscriptions: set[Subscription] = set()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every open subscription and the HTTP connections."""
        for subscription in list(self._subscriptions):
            await subscription.aclose()
        await self._http.aclose()

    async def health(self) -> Reply:
        """Status, version, uptime and the state of the store."""
        return await self._send(calls.health())

    async def push(self, series: Rows | None = None, samples: Rows | None = None) -> Reply:
        """Store columnar `series` and/or row `samples`; return accepted/rejected/errors."""
        return await self._send(calls.push(series, samples))

    async def push_events(self, events: Mapping[str, Any] | Rows) -> Reply:
        """Store one event (a dict) or several (a list), all or none: `{"accepted", "events"}`."""
        return await self._send(calls.push_events(events))

    async def query(self, selector: str, window: str = "5m") -> list[Reply]:
        """Latest value and window stats of every series the selector matches."""
        return await self._send(calls.query(selector, window))

    async def query_range(self, selector: str, *, start: str | None = None,
                          end: str | None = None, step: str | None = None, agg: str = "avg",
                          group_by: Sequence[str] | None = None) -> Reply:
        """Step buckets of the selected series: `{"series": [...], "step_ms": n}`."""
        return await self._send(calls.query_range(selector, start, end, step, agg, group_by))

    async def forecast(self, selector: str, horizon: str = "1h", *, step: str | None = None,
                       history: str | None = None, threshold: float | None = None,
                       level: float | None = None) -> Reply:
        """Forecast of the selected series with intervals and backtest accuracy
        (docs/forecast.md): `{"series": [{"values", "lower", "upper", "mase", ...}], ...}`."""
        return await self._send(calls.forecast(selector, horizon, step, history, threshold,
                                               level))

    async def series(self, selector: str, limit: int = 10_000) -> list[Reply]:
        """The series a selector matches: `[{"metric", "labels", "id"}]`."""
        return await self._send(calls.series(selector, limit))

    async def events(self, *, type: str | None = None, source: str | None = None,
                     start: str | None = None, end: str | None = None,
                     limit: int = 100) -> list[Reply]:
        """Stored events, newest first."""
        return await self._send(calls.events(type, source, start, end, limit))

    def subscribe(self, topic: str, *, selector: str | None = None, since: int | None = None,
                  idle_timeout_s: float = 40.0, backoff: Backoff | None = None,
                  on_retry: Callable[[Exception, float], None] | None = None,
                  **filters: str | list[str]) -> Subscription:
        """The topic's messages (and `gap`s) as an async iterator that reconnects by itself.

        Filters are those of docs/stream.md (`type=`, `source=`, `severity=`, ...). After a
        lost connection, or when nothing (not even a heartbeat) came for `idle_timeout_s`,
        it reconnects after `backoff` (default: 0.2 s doubling up to 10 s, full jitter) and
        resumes after the last seq it yielded. `on_retry(error, delay_s)` is called before
        each wait. A refused subscription raises `InvalidInput` naming the field; close
        codes 4401 and 4403 raise `Unauthorized` and `Forbidden`. Close it with `aclose()`
        (or `async with`, or by closing the client).
        """
        subscription = Subscription(
            self.url, topic, {"selector": selector, **filters}, token=self.token,
            since=since, idle_timeout_s=idle_timeout_s, open_timeout_s=self.timeout_s,
            backoff=backoff, on_retry=on_retry, on_close=self._subscriptions.discard)
        self._subscriptions.add(subscription)
        return subscription

    async def alerts(self, *, state: str | None = None, severity: str | None = None,
               rule: str | None = None, limit: int = 100) -> list[Reply]:
        """Alerts, most recently changed first (`state`, `severity`: comma-separated)."""
        return await self._send(calls.alerts(state, severity, rule, limit))

    async def raise_alert(self, name: str, *, labels: Mapping[str, str] | None = None,
                    annotations: Mapping[str, str] | None = None, severity: str = "high",
                    ends_at: str | int | None = None) -> Reply:
        """Raise a custom alert (posting it again refreshes it)."""
        return await self._send(calls.raise_alert(name, labels, annotations, severity, ends_at))

    async def acknowledge(self, alert_id: str, comment: str = "", by: str | None = None) -> Reply:
        """Acknowledge a firing alert."""
        return await self._send(calls.alert_action(alert_id, "ack", comment, by))

    async def resolve(self, alert_id: str, comment: str = "", by: str | None = None) -> Reply:
        """Resolve an active alert by hand."""
        return await self._send(calls.alert_action(alert_id, "resolve", comment, by))

    async def rules(self) -> list[Reply]:
        """Every alert rule."""
        return await self._send(calls.rules())

    async def silences(self, state: str | None = None) -> list[Reply]:
        """Silences: pending, active, expired."""
        return await self._send(calls.silences(state))

    async def add_silence(self, matchers: Mapping[str, str] | Rows, *, ends_at: str | int,
                    comment: str, starts_at: str | int | None = None) -> Reply:
        """Silence alerts whose labels match until `ends_at`."""
        return await self._send(calls.add_silence(matchers, ends_at, comment, starts_at))

    async def expire_silence(self, silence_id: str) -> Reply:
        """End a silence now."""
        return await self._send(calls.expire_silence(silence_id))

    async def register_model(self, name: str, version: str, task: str,
                             metadata: Mapping[str, Any] | None = None) -> Reply:
        """Register a model version (`task`: classification or regression)."""
        return await self._send(calls.register_model(name, version, task, metadata))

    async def models(self) -> list[Reply]:
        """Every registered model with its versions."""
        return await self._send(calls.models())

    async def model(self, name: str) -> Reply:
        """One model: versions with totals, features, classes."""
        return await self._send(calls.model(name))

    async def record_predictions(self, name: str, version: str, items: Rows) -> Reply:
        """Record predictions `[{id, features, prediction, probability?, latency_ms?}]`."""
        return await self._send(calls.record_predictions(name, version, items))

    async def record_outcomes(self, name: str, items: Rows) -> Reply:
        """Record outcomes `[{id, actual}]`: matched, updated, unknown (kept waiting)."""
        return await self._send(calls.record_outcomes(name, items))

    async def model_metrics(self, name: str, version: str | None = None,
                            window: str | None = None) -> Reply:
        """Quality, latency and volume of a version over a window."""
        return await self._send(calls.model_report(name, "metrics", version=version,
                                                   window=window))

    async def model_drift(self, name: str, version: str | None = None,
                          window: str | None = None, reference: str | None = None) -> Reply:
        """Drift per feature and of the predictions against a reference."""
        return await self._send(calls.model_report(name, "drift", version=version,
                                                   window=window, reference=reference))

    async def compare_models(self, name: str, a: str, b: str,
                             window: str | None = None) -> Reply:
        """Two versions on the same window."""
        return await self._send(calls.model_report(name, "compare", a=a, b=b, window=window))

    def monitor(self, model: str, version: str, **options: Any) -> ModelMonitor:
        """A `ModelMonitor` (it has its own thread and connection; close it)."""
        return ModelMonitor(self.url, self.token, model, version, **options)

    async def _send(self, call: calls.Call[T]) -> T:
        return await calls.send_async(self._http, self.url, call)


