"""Prometheus' HTTP query API under /prometheus/api/v1, for Grafana's Prometheus data source.

Same parameters (GET or form-encoded POST), same envelope and error types as
https://prometheus.io/docs/prometheus/latest/querying/api/; PromQL (the subset of
`query/promql.py`) runs in a worker thread. Thin: parse parameters, evaluate, format.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import numpy as np
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from seismo import __version__
from seismo.api.body import read_body
from seismo.engine import Engine, now_ms
from seismo.errors import InvalidInput, SeismoError
from seismo.query.promql import PromQLError, parse_duration_ms
from seismo.query.promql_eval import RawMatrix, Vectors, run_promql
from seismo.query.selector import SelectorError, parse_selector

PREFIX = "/prometheus/api/v1"
PROMETHEUS_VERSION = "2.42.0"  # the API level mirrored; Grafana picks features by it
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FRACTION = re.compile(r"(\.\d{6})\d+")
Params = dict[str, list[str]]
_encoder = msgspec.json.Encoder()


def format_value(v: float) -> str:
    """A sample value as Prometheus writes it (Go's FormatFloat(v, 'f', -1, 64)).

    >>> format_value(1.0), format_value(0.25), format_value(1e21), format_value(-math.inf)
    ('1', '0.25', '1000000000000000000000', '-Inf')
    """
    text = repr(v)
    if text[-2:] == ".0":
        return text[:-2]
    if "n" in text or "e" in text:  # nan, inf, or an exponent
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        return np.format_float_positional(v, trim="-")
    return text


def _timestamp(ts_ms: int) -> float | int:
    return ts_ms // 1000 if ts_ms % 1000 == 0 else ts_ms / 1000


def parse_time(text: str, name: str) -> int:
    """Milliseconds from unix seconds (`1700000000.5`) or RFC 3339 text."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise PromQLError(f'invalid parameter "{name}": cannot parse "{text}" to a '
                              "valid timestamp")
        whole = math.trunc(seconds)
        return whole * 1000 + round((seconds - whole) * 1000)  # as Prometheus rounds
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip()))
    except ValueError:
        raise PromQLError(f'invalid parameter "{name}": cannot parse "{text}" to a valid '
                          "timestamp") from None
    if moment.tzinfo is None:
        raise PromQLError(f'invalid parameter "{name}": "{text}" has no time zone')
    return round(moment.timestamp() * 1000)


def parse_step(text: str) -> int:
    """Milliseconds of a step given as float seconds (`15`, `0.5`) or a duration (`1m`)."""
    try:
        seconds = float(text)
    except ValueError:
        try:
            return parse_duration_ms(text)
        except PromQLError:
            raise PromQLError(f'invalid parameter "step": cannot parse "{text}" to a valid '
                              "duration") from None
    if not math.isfinite(seconds) or seconds * 1000 > 2**62:
        raise PromQLError(f'invalid parameter "step": cannot parse "{text}" to a valid '
                          "duration")
    return int(seconds * 1e9) // 1_000_000  # Go: a Duration in ns, then whole ms


def _one(params: Params, name: str, default: str | None = None) -> str:
    values = params.get(name)
    if values and values[0] != "":
        return values[0]
    if default is None:
        raise PromQLError(f'invalid parameter "{name}": missing')
    return default


def _matrix(steps: np.ndarray, value: Vectors | np.ndarray) -> list[dict[str, Any]]:
    times = [_timestamp(int(t)) for t in steps]
    if isinstance(value, np.ndarray):  # a scalar has a value (maybe NaN) at every step
        return [{"metric": {}, "values": [[t, format_value(float(v))]
                                          for t, v in zip(times, value, strict=True)]}]
    out: list[dict[str, Any]] = []
    for labels, row in zip(value.labels, value.values, strict=True):
        present = np.flatnonzero(~np.isnan(row)).tolist()
        cells = row.tolist()
        if present:
            out.append({"metric": labels,
                        "values": [[times[i], format_value(cells[i])] for i in present]})
    out.sort(key=lambda s: sorted(s["metric"].items()))
    return out


def _instant_result(at_ms: int, value: Vectors | np.ndarray | RawMatrix) -> dict[str, Any]:
    t = _timestamp(at_ms)
    if isinstance(value, np.ndarray):
        return {"resultType": "scalar", "result": [t, format_value(float(value[0]))]}
    if isinstance(value, RawMatrix):
        series = [{"metric": labels, "values": [[_timestamp(int(ts)), format_value(float(v))]
                                                for ts, v in zip(s.ts, s.values, strict=True)]}
                  for labels, s in zip(value.labels, value.samples, strict=True) if len(s.ts)]
        return {"resultType": "matrix", "result": series}
    vector = [{"metric": labels, "value": [t, format_value(float(row[0]))]}
              for labels, row in zip(value.labels, value.values, strict=True)
              if not math.isnan(row[0])]
    return {"resultType": "vector", "result": vector}


def _reply(data: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(data), status_code=status, media_type="application/json")


def _error(exc: SeismoError) -> Response:
    kind = exc.error_type if isinstance(exc, PromQLError) else (
        "bad_data" if exc.status == 400 else "execution")
    status = exc.status if exc.status != 500 else 422
    return _reply({"status": "error", "errorType": kind, "error": exc.message}, status)


def _selected_slots(engine: Engine, params: Params) -> list[int] | None:
    """Slots matching any `match[]` selector; None when there is no `match[]`."""
    texts = [t for t in params.get("match[]", []) if t]
    if not texts:
        return None
    slots: set[int] = set()
    for text in texts:
        try:
            selector = parse_selector(text, field_name="match[]")
        except SelectorError as exc:
            raise PromQLError(f'invalid parameter "match[]": {exc.message}') from None
        slots.update(engine.store.index.select(selector))
    return sorted(slots)


def build_prometheus_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["prometheus"])

    def endpoint(work: Callable[[Engine, Params], Any]
                 ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            engine: Engine = request.app.state.engine
            try:
                params: Params = {}
                for key, value in request.query_params.multi_items():
                    params.setdefault(key, []).append(value)
                content_type = request.headers.get("content-type", "")
                if request.method == "POST" and content_type.startswith(
                        "application/x-www-form-urlencoded"):
                    body = await read_body(request, engine.settings.limits.max_body_bytes)
                    for key, value in parse_qsl(body.decode("utf-8", "replace"),
                                                keep_blank_values=True):
                        params.setdefault(key, []).append(value)
                data = await run_in_threadpool(work, engine, params)
            except SeismoError as exc:
                return _error(exc)
            return _reply({"status": "success", "data": data})

        return handle

    def query(engine: Engine, params: Params) -> dict[str, Any]:
        at = parse_time(_one(params, "time", str(now_ms() / 1000)), "time")
        _, value = run_promql(engine.query, engine.settings.limits, _one(params, "query"),
                              at, at, 1, instant=True)
        return _instant_result(at, value)

    def query_range(engine: Engine, params: Params) -> dict[str, Any]:
        text = _one(params, "query")
        start = parse_time(_one(params, "start"), "start")
        end = parse_time(_one(params, "end"), "end")
        step = parse_step(_one(params, "step"))
        steps, value = run_promql(engine.query, engine.settings.limits, text, start, end, step)
        assert not isinstance(value, RawMatrix), "the evaluator refuses it in a range"
        return {"resultType": "matrix", "result": _matrix(steps, value)}

    def series(engine: Engine, params: Params) -> list[dict[str, str]]:
        slots = _selected_slots(engine, params)
        if slots is None:
            raise PromQLError("no match[] parameter provided")
        index = engine.store.index
        limit = _limit(params)
        return [{"__name__": index.info(s).metric, **index.info(s).labels}
                for s in slots[:limit]]

    def labels(engine: Engine, params: Params) -> list[str]:
        names = {"__name__"}
        index = engine.store.index
        for slot in _slots_or_all(engine, params):
            names.update(index.info(slot).labels)
        return sorted(names)[:_limit(params)]

    def label_values(name: str) -> Callable[[Engine, Params], list[str]]:
        def values(engine: Engine, params: Params) -> list[str]:
            if not _LABEL_NAME.fullmatch(name):
                raise PromQLError(f'invalid label name: "{name}"')
            index = engine.store.index
            found: set[str] = set()
            if name == "__name__" and "match[]" not in params:
                found.update(index.metrics())
            for slot in [] if found else _slots_or_all(engine, params):
                info = index.info(slot)
                value = info.metric if name == "__name__" else info.labels.get(name)
                if value:
                    found.add(value)
            return sorted(found)[:_limit(params)]

        return values

    def metadata(engine: Engine, params: Params) -> dict[str, list[dict[str, str]]]:
        names = engine.store.index.metrics()
        wanted = params.get("metric", [""])[0]
        if wanted:
            names = [n for n in names if n == wanted]
        return {n: [{"type": "unknown", "help": "", "unit": ""}] for n in names[:_limit(params)]}

    def buildinfo(engine: Engine, params: Params) -> dict[str, str]:
        return {"version": PROMETHEUS_VERSION, "revision": f"seismo {__version__}",
                "branch": "seismo", "buildUser": "seismo", "buildDate": "",
                "goVersion": "none"}

    both = ["GET", "POST"]
    router.add_api_route("/query", endpoint(query), methods=both,
                         summary="PromQL instant query (Prometheus API)")
    router.add_api_route("/query_range", endpoint(query_range), methods=both,
                         summary="PromQL range query (Prometheus API)")
    router.add_api_route("/series", endpoint(series), methods=both,
                         summary="Series matching match[] (Prometheus API)")
    router.add_api_route("/labels", endpoint(labels), methods=both,
                         summary="Label names (Prometheus API)")

    async def label_values_route(request: Request, name: str) -> Response:
        return await endpoint(label_values(name))(request)

    router.add_api_route("/label/{name}/values", label_values_route, methods=["GET"],
                         summary="Values of one label (Prometheus API)")
    router.add_api_route("/metadata", endpoint(metadata), methods=["GET"],
                         summary="Metric metadata (Prometheus API)")
    router.add_api_route("/status/buildinfo", endpoint(buildinfo), methods=["GET"],
                         summary="Build information (Prometheus API)")
    return router


def _limit(params: Params) -> int | None:
    text = _one(params, "limit", "0")
    try:
        limit = int(text)
    except ValueError:
        raise InvalidInput(f'invalid parameter "limit": cannot parse "{text}"') from None
    return limit if limit > 0 else None


def _slots_or_all(engine: Engine, params: Params) -> list[int] | range:
    slots = _selected_slots(engine, params)
    return range(len(engine.store.index)) if slots is None else slots
