"""The REST routes as data, shared by `Client` and `AsyncClient`.

A `Call` says what to send and how to read the reply; `reply_of` is the one place where an
HTTP response becomes a reply or a `seismo.errors` exception, for both clients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from seismo.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    Overloaded,
    SeismoError,
    StorageUnavailable,
    TooLarge,
    Unauthorized,
)

T = TypeVar("T")
Reply = dict[str, Any]
_BY_STATUS: dict[int, type[SeismoError]] = {
    cls.status: cls
    for cls in (InvalidInput, Unauthorized, Forbidden, NotFound, TooLarge, StorageUnavailable)
}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request to `/api/v1` and how to read what comes back."""

    method: str
    path: str
    read: Callable[[Reply], T]
    params: dict[str, Any] | None = None
    body: Any = None


def error_for(status: int, message: str, *, field: str | None = None,
              retry_after: str | None = None) -> SeismoError:
    """The exception for an HTTP status and the server's `error` message."""
    text = f"HTTP {status}: {message}"
    if status == 429:
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else 1.0
        return Overloaded(text, retry_after_s=seconds)
    return _BY_STATUS.get(status, SeismoError)(text, field=field)


def reply_of(response: httpx.Response) -> Reply:
    """The JSON object of a successful response; otherwise raise the matching error."""
    try:
        reply = response.json()
    except ValueError:
        reply = None
    if response.is_success and isinstance(reply, dict):
        return reply
    message = reply.get("error") if isinstance(reply, dict) else None
    if not message:
        message = response.text.strip()[:200] or response.reason_phrase
    field = reply.get("field") if isinstance(reply, dict) else None
    raise error_for(response.status_code, message, field=field,
                    retry_after=response.headers.get("Retry-After"))


def unreachable(url: str, exc: Exception) -> SeismoError:
    return SeismoError(f"cannot reach seismo at {url}: {exc}")


def send(http: httpx.Client, url: str, call: Call[T]) -> T:
    """Make `call` over `http` (based at `url`'s `/api/v1`) and read its reply."""
    try:
        response = http.request(call.method, call.path, params=call.params, json=call.body)
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from None
    return call.read(reply_of(response))


async def send_async(http: httpx.AsyncClient, url: str, call: Call[T]) -> T:
    """`send` for asyncio."""
    try:
        response = await http.request(call.method, call.path, params=call.params,
                                      json=call.body)
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from None
    return call.read(reply_of(response))


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _whole(reply: Reply) -> Reply:
    return reply


def _list_of(key: str) -> Callable[[Reply], list[Reply]]:
    def read(reply: Reply) -> list[Reply]:
        items: list[Reply] = reply[key]
        return items
    return read


def _present(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def health() -> Call[Reply]:
    return Call("GET", "/health", _whole)


def push(series: Sequence[Mapping[str, Any]] | None,
         samples: Sequence[Mapping[str, Any]] | None) -> Call[Reply]:
    body = _present(series=None if series is None else list(series),
                    samples=None if samples is None else list(samples))
    return Call("POST", "/ingest", _whole, body=body)


def push_events(events: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Call[Reply]:
    body = dict(events) if isinstance(events, Mapping) else {"events": list(events)}
    return Call("POST", "/events", _whole, body=body)


def query(selector: str, window: str) -> Call[list[Reply]]:
    return Call("GET", "/query", _list_of("series"),
                params={"selector": selector, "window": window})


def query_range(selector: str, start: str | None, end: str | None, step: str | None,
                agg: str, group_by: Sequence[str] | None) -> Call[Reply]:
    params = _present(selector=selector, start=start, end=end, step=step, agg=agg,
                      group_by=None if group_by is None else ",".join(group_by))
    return Call("GET", "/query_range", _whole, params=params)


def forecast(selector: str, horizon: str, step: str | None, history: str | None,
             threshold: float | None, level: float | None) -> Call[Reply]:
    params = _present(selector=selector, horizon=horizon, step=step, history=history,
                      threshold=threshold, level=level)
    return Call("GET", "/forecast", _whole, params=params)


def series(selector: str, limit: int) -> Call[list[Reply]]:
    return Call("GET", "/series", _list_of("series"),
                params={"selector": selector, "limit": limit})


def events(type: str | None, source: str | None, start: str | None, end: str | None,
           limit: int) -> Call[list[Reply]]:
    return Call("GET", "/events", _list_of("events"),
                params=_present(type=type, source=source, start=start, end=end, limit=limit))


def alerts(state: str | None, severity: str | None, rule: str | None,
           limit: int) -> Call[list[Reply]]:
    return Call("GET", "/alerts", _list_of("alerts"),
                params=_present(state=state, severity=severity, rule=rule, limit=limit))


def raise_alert(name: str, labels: Mapping[str, str] | None,
                annotations: Mapping[str, str] | None, severity: str,
                ends_at: str | int | None) -> Call[Reply]:
    body = _present(name=name, labels=dict(labels or {}), annotations=dict(annotations or {}),
                    severity=severity, ends_at=ends_at)
    return Call("POST", "/alerts", _whole, body=body)


def alert_action(alert_id: str, action: str, comment: str, by: str | None) -> Call[Reply]:
    return Call("POST", f"/alerts/{alert_id}/{action}", _whole,
                body=_present(comment=comment, by=by))


def rules() -> Call[list[Reply]]:
    return Call("GET", "/rules", _list_of("rules"))


def silences(state: str | None) -> Call[list[Reply]]:
    return Call("GET", "/silences", _list_of("silences"), params=_present(state=state))


def add_silence(matchers: Mapping[str, str] | Sequence[Mapping[str, Any]], ends_at: str | int,
                comment: str, starts_at: str | int | None) -> Call[Reply]:
    matchers_doc = dict(matchers) if isinstance(matchers, Mapping) else list(matchers)
    body = _present(matchers=matchers_doc, ends_at=ends_at, starts_at=starts_at,
                    comment=comment)
    return Call("POST", "/silences", _whole, body=body)


def expire_silence(silence_id: str) -> Call[Reply]:
    return Call("DELETE", f"/silences/{silence_id}", _whole)


def register_model(name: str, version: str, task: str,
                   metadata: Mapping[str, Any] | None) -> Call[Reply]:
    body = _present(name=name, version=version, task=task,
                    metadata=None if metadata is None else dict(metadata))
    return Call("POST", "/models", _whole, body=body)


def models() -> Call[list[Reply]]:
    return Call("GET", "/models", _list_of("models"))


def model(name: str) -> Call[Reply]:
    return Call("GET", f"/models/{name}", _whole)


def record_predictions(name: str, version: str,
                       items: Sequence[Mapping[str, Any]]) -> Call[Reply]:
    return Call("POST", f"/models/{name}/predictions", _whole,
                body={"version": version, "items": [dict(i) for i in items]})


def record_outcomes(name: str, items: Sequence[Mapping[str, Any]]) -> Call[Reply]:
    return Call("POST", f"/models/{name}/outcomes", _whole,
                body={"items": [dict(i) for i in items]})


def model_report(name: str, what: str, **params: str | None) -> Call[Reply]:
    """`metrics`, `drift` or `compare` of a model."""
    return Call("GET", f"/models/{name}/{what}", _whole, params=_present(**params))
