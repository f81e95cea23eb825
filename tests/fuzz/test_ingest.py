"""Fuzzing the ingest decoders (Influx line protocol, remote write, OTLP): a bad body is
refused with InvalidInput/TooLarge, never an unhandled exception."""

from __future__ import annotations

import json
from typing import Any

import cramjam
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from seismo.ingest import influx, otlp, remote_write
from tests.fuzz.strategies import FUZZ, grammar_text, json_values, refuses_cleanly

LINE_PIECES = ["cpu", ",", "host=a", " ", "value=1", "value=1i", "value=-2u", "x=t",
               "x=false", 'msg="hi"', '"', "\\", "\\ ", "=", "1.5e308", "1e999", "nan",
               "1700000000000000000", "-1", "_", "\n", "#", "é", "\t", "99999999999999999999"]


@FUZZ
@given(grammar_text(LINE_PIECES, max_size=20), st.sampled_from(["ns", "us", "ms", "s", "h"]))
def test_line_protocol_never_fails_unhandled(text: str, precision: str) -> None:
    refuses_cleanly(lambda: influx.parse(text.encode(), precision=precision,
                                         now_ms=1_700_000_000_000))


@FUZZ
@given(st.binary(max_size=200))
def test_line_protocol_bytes_never_fail_unhandled(body: bytes) -> None:
    refuses_cleanly(lambda: influx.parse(body, now_ms=0))


VALID_WRITE = remote_write.decompress(remote_write.encode([
    ({"__name__": "up", "job": "node"}, [(1000, 1.0), (2000, 0.0)]),
    ({"__name__": "temp", "room": "é"}, [(1000, 21.5)]),
]), 1 << 20)


@st.composite
def mutated_writes(draw: st.DrawFn) -> bytes:
    """The valid WriteRequest truncated, with bytes flipped, inserted or deleted."""
    raw = bytearray(VALID_WRITE[:draw(st.integers(0, len(VALID_WRITE)))])
    for _ in range(draw(st.integers(0, 4))):
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        how = draw(st.sampled_from(["flip", "insert", "delete"]))
        if how == "flip":
            raw[at] = draw(st.integers(0, 255))
        elif how == "insert":
            raw.insert(at, draw(st.integers(0, 255)))
        else:
            del raw[at]
    return bytes(raw)


@FUZZ
@given(st.binary(max_size=200) | mutated_writes())
def test_remote_write_decoder_never_fails_unhandled(raw: bytes) -> None:
    refuses_cleanly(lambda: remote_write.decode(raw))


@FUZZ
@given(st.binary(max_size=100) | mutated_writes()
       | mutated_writes().map(lambda raw: bytes(cramjam.snappy.compress_raw(raw))))
def test_remote_write_decompress_then_decode_never_fails_unhandled(body: bytes) -> None:
    refuses_cleanly(lambda: remote_write.decode(remote_write.decompress(body, 1 << 16)))


def _otlp_json(metric: Any) -> bytes:
    return json.dumps({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "api"}}]},
        "scopeMetrics": [{"metrics": [metric]}]}]}).encode()


otlp_metrics = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["cpu", "", "a.b-c", "é"]) | json_values,
    "gauge": st.fixed_dictionaries({"dataPoints": st.lists(st.fixed_dictionaries({}, optional={
        "asDouble": json_values, "asInt": json_values, "timeUnixNano": json_values,
        "attributes": json_values, "flags": json_values}), max_size=3)}) | json_values,
    "sum": json_values, "histogram": json_values, "summary": json_values,
    "exponentialHistogram": json_values,
})


@FUZZ
@given(otlp_metrics.map(_otlp_json) | json_values.map(lambda v: json.dumps(v).encode())
       | st.binary(max_size=100))
def test_otlp_json_never_fails_unhandled(body: bytes) -> None:
    refuses_cleanly(lambda: otlp.decode(otlp.parse_request(body, "application/json"), 0))


VALID_OTLP = otlp.parse_request(_otlp_json({"name": "cpu", "gauge": {"dataPoints": [
    {"asDouble": 0.5, "timeUnixNano": "1700000000000000000"}]}}), "application/json")
VALID_PROTO = ExportMetricsServiceRequest.SerializeToString(VALID_OTLP)


@FUZZ
@given(st.binary(max_size=200)
       | st.tuples(st.integers(0, len(VALID_PROTO)), st.binary(max_size=8)).map(
           lambda cut: VALID_PROTO[:cut[0]] + cut[1] + VALID_PROTO[cut[0] + len(cut[1]):]))
def test_otlp_protobuf_never_fails_unhandled(body: bytes) -> None:
    refuses_cleanly(lambda: otlp.decode(otlp.parse_request(body, "application/x-protobuf"),
                                        0))
