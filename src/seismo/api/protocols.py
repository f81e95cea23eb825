"""Routes of the ecosystem's ingest protocols: Influx line protocol, Prometheus remote
write, OTLP/HTTP. Each decodes its wire format (seismo/ingest/) into ingest series and
hands them to `Engine.ingest`, so validation, durability, detectors and rules are the
same as for `POST /api/v1/ingest`. Replies follow what each protocol's clients expect.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from seismo.api.access import principal_of
from seismo.api.body import read_body
from seismo.engine import Engine, now_ms
from seismo.errors import InvalidInput
from seismo.ingest import influx, otlp, remote_write
from seismo.ingest.schema import IngestBody, SeriesIn

LINE_EXAMPLE = "cpu,host=web-1 usage_idle=97.5,usage_user=1.25 1700000000000000000\n"


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def _store(request: Request, series: list[SeriesIn], skipped: dict[str, int],
                 at_ms: int) -> dict[str, Any]:
    """Validate and store through the one ingest path; count what the decoder skipped."""
    engine = _engine(request)
    result = await engine.ingest(IngestBody(series=series), at_ms=at_ms,
                                 principal=principal_of(request))
    for reason, count in skipped.items():
        if count:
            engine.telemetry.samples_rejected.labels(reason).inc(count)
    return result


def _no_content(result: dict[str, Any], skipped: int) -> Response:
    """204 when every sample was stored; else 400 naming what was refused (the rest is
    stored, as InfluxDB's and Prometheus' partial writes)."""
    headers = {"X-Seismo-Skipped": str(skipped)} if skipped else None
    if not result["rejected"]:
        return Response(status_code=204, headers=headers)
    first = result["errors"][0]["reason"] if result["errors"] else "refused"
    return JSONResponse(
        {"error": f"partial write: {result['rejected']} sample(s) refused, "
                  f"{result['accepted']} stored; first: {first}", **result},
        status_code=400, headers=headers)


def build_protocol_router() -> APIRouter:
    router = APIRouter(tags=["protocols"])
    line_body = {"requestBody": {"content": {"text/plain": {"example": LINE_EXAMPLE}},
                                 "required": True}}

    async def line_protocol(request: Request, precision: str) -> Response:
        engine = _engine(request)
        body = await read_body(request, engine.settings.limits.max_body_bytes)
        at = now_ms()
        parsed = influx.parse(body, precision=precision, now_ms=at)
        result = await _store(request, parsed.series, {"string_field": parsed.skipped_fields},
                              at)
        return _no_content(result, parsed.skipped_fields)

    @router.post("/write", openapi_extra=line_body)
    async def influx_v1_write(request: Request, precision: str = "ns") -> Response:
        """InfluxDB 1.x line protocol (`db`, `rp`, `u`, `p` are ignored); 204 when stored."""
        return await line_protocol(request, precision)

    @router.post("/api/v2/write", openapi_extra=line_body)
    async def influx_v2_write(request: Request, precision: str = "ns") -> Response:
        """InfluxDB 2.x line protocol (`org`, `bucket` are ignored); 204 when stored."""
        return await line_protocol(request, precision)

    @router.post("/api/v1/write")
    async def prometheus_remote_write(request: Request) -> Response:
        """Prometheus remote-write 1.0 (protobuf + snappy); 204 when stored."""
        engine = _engine(request)
        limit = engine.settings.limits.max_body_bytes
        content_type = request.headers.get("content-type", "application/x-protobuf")
        if "io.prometheus.write.v2" in content_type:
            raise InvalidInput("remote-write 2.0 is not supported: send 1.0 "
                               "(protobuf_message: prometheus.WriteRequest)",
                               field="Content-Type")
        body = await read_body(request, limit, raw_encodings=("snappy",))
        if request.headers.get("content-encoding", "snappy").lower() == "snappy":
            body = remote_write.decompress(body, limit)
        decoded = remote_write.decode(body)
        result = await _store(request, decoded.series, {"nan_value": decoded.skipped_nan},
                              now_ms())
        return _no_content(result, decoded.skipped_nan)

    otlp_body = {"requestBody": {"required": True, "content": {
        "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": {"type": "object"}}}}}

    @router.post("/v1/metrics", openapi_extra=otlp_body, response_class=Response, responses={
        200: {"content": {"application/x-protobuf": {}, "application/json": {}},
              "description": "an ExportMetricsServiceResponse, in the request's encoding"}})
    async def otlp_metrics(request: Request) -> Response:
        """OTLP/HTTP metrics, protobuf or JSON; 200 with an ExportMetricsServiceResponse."""
        engine = _engine(request)
        body = await read_body(request, engine.settings.limits.max_body_bytes)
        content_type = request.headers.get("content-type", "application/x-protobuf")
        at = now_ms()
        decoded = otlp.decode(otlp.parse_request(body, content_type), at)
        result = await _store(request, decoded.series, {"otlp_skipped": decoded.skipped}, at)
        rejected = result["rejected"] + decoded.skipped
        parts = []
        if decoded.skipped:
            parts.append(f"{decoded.skipped} point(s) without a value or of an unsupported "
                         "type skipped")
        if result["rejected"]:
            first = result["errors"][0]["reason"] if result["errors"] else "refused"
            parts.append(f"{result['rejected']} sample(s) refused; first: {first}")
        message = "; ".join(parts)
        payload, media_type = otlp.reply(content_type, rejected, message)
        return Response(payload, media_type=media_type)

    return router
