"""Ingest over real HTTP: both forms, gzip, partial rejection, and a table of bad inputs."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import httpx
import pytest

from tests.server import ServerProcess


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def count(client: httpx.Client, selector: str) -> int:
    reply = client.get("/query_range", params={
        "selector": selector, "start": str(now_ms() - 86_400_000), "end": str(now_ms() + 60_000),
        "step": "1d", "agg": "count",
    })
    assert reply.status_code == 200, reply.text
    return int(sum(sum(v for v in s["values"] if v) for s in reply.json()["series"]))


def test_columnar_ingest_then_query(client: httpx.Client) -> None:
    t0 = now_ms() - 60_000
    body = {"series": [{"metric": "col_cpu", "labels": {"host": "a"},
                        "timestamps": [t0, t0 + 10_000, t0 + 20_000], "values": [1.5, 2.5, 3.5]}]}
    reply = client.post("/ingest", json=body)
    assert reply.status_code == 200
    assert reply.json() == {"accepted": 3, "rejected": 0, "errors": []}
    latest = client.get("/query", params={"selector": 'col_cpu{host="a"}', "window": "5m"}).json()
    (series,) = latest["series"]
    assert series["labels"] == {"host": "a"}
    assert series["value"] == 3.5 and series["timestamp"] == t0 + 20_000
    assert series["window"]["count"] == 3
    assert series["window"]["mean"] == pytest.approx(2.5)
    assert series["window"]["max"] == 3.5
    ranged = client.get("/query_range", params={
        "selector": "col_cpu", "start": str(t0), "end": str(t0 + 20_000), "step": "10s",
        "agg": "max"}).json()["series"]
    assert ranged[0]["values"] == [1.5, 2.5, 3.5]
    assert ranged[0]["timestamps"] == [t0 // 10_000 * 10_000 + i * 10_000 for i in range(3)]


def test_row_form_with_missing_timestamp_means_now(client: httpx.Client) -> None:
    before = now_ms()
    reply = client.post("/ingest", json={"samples": [
        {"metric": "row_temp", "labels": {"room": "1"}, "value": 21.5},
        {"metric": "row_temp", "labels": {"room": "2"}, "value": 19.0, "timestamp": before - 5},
    ]})
    assert reply.json() == {"accepted": 2, "rejected": 0, "errors": []}
    latest = {s["labels"]["room"]: s for s in
              client.get("/query", params={"selector": "row_temp"}).json()["series"]}
    assert latest["1"]["value"] == 21.5 and latest["1"]["timestamp"] >= before
    assert latest["2"]["timestamp"] == before - 5


def test_gzip_body(client: httpx.Client) -> None:
    body = json.dumps({"samples": [{"metric": "gz_metric", "value": 7}]}).encode()
    reply = client.post("/ingest", content=gzip.compress(body),
                        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert reply.json()["accepted"] == 1
    assert client.get("/query", params={"selector": "gz_metric"}).json()["series"][0]["value"] == 7


def test_partial_batch_stores_good_samples_and_lists_bad_ones(client: httpx.Client) -> None:
    t = now_ms()
    reply = client.post("/ingest", json={"series": [
        {"metric": "part_ok", "timestamps": [t - 2000, t - 1000, t + 3_600_000],
         "values": [1.0, None, 2.0]},
        {"metric": "9bad", "values": [1.0, 2.0]},
        {"metric": "part_ok2", "labels": {"__x": "y"}, "values": [1.0]},
    ]}).json()
    assert reply["accepted"] == 1
    assert reply["rejected"] == 5
    reasons = {(e.get("series"), e.get("index")): e["reason"] for e in reply["errors"]}
    assert "null" in reasons[(0, 1)]
    assert "future" in reasons[(0, 2)]
    assert "metric name '9bad'" in reasons[(1, None)]
    assert "label name '__x'" in reasons[(2, None)]
    assert count(client, "part_ok") == 1
    assert client.get("/series", params={"selector": '{__name__=~"9bad|part_ok2"}'}).json() == {
        "series": []}


BAD_BODIES: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("not json", b"{nope", {}, 400, "malformed body"),
    ("wrong type", b'{"series": [{"metric": "m", "values": "x"}]}', {}, 400, "values"),
    ("label value not a string", b'{"samples": [{"metric": "m", "value": 1, '
     b'"labels": {"a": 1}}]}', {}, 400, "samples[0].labels"),
    ("unknown field", b'{"series": [], "extra": 1}', {}, 400, "extra"),
    ("no series nor samples", b"{}", {}, 400, "series"),
    ("bad gzip", b"not gzip at all", {"Content-Encoding": "gzip"}, 400, "gzip"),
    ("unknown encoding", b"{}", {"Content-Encoding": "br"}, 400, "Content-Encoding"),
    ("array body", b"[1, 2]", {}, 400, "malformed body"),
    ("value out of float range", b'{"samples": [{"metric": "m", "value": 1e999}]}', {}, 400,
     "samples[0].value"),
]


@pytest.mark.parametrize(("name", "body", "headers", "status", "needle"), BAD_BODIES,
                         ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_are_refused_and_store_nothing(
    client: httpx.Client, name: str, body: bytes, headers: dict[str, str], status: int,
    needle: str,
) -> None:
    before = client.get("/health").json()["store"]
    reply = client.post("/ingest", content=body,
                        headers={"Content-Type": "application/json", **headers})
    assert reply.status_code == status, reply.text
    error: dict[str, Any] = reply.json()
    assert needle in json.dumps(error)
    after = client.get("/health").json()["store"]
    assert after["head_samples"] + after["block_samples"] == \
        before["head_samples"] + before["block_samples"]


BAD_SAMPLES = [
    ({"metric": "bad-metric", "value": 1}, "metric name"),
    ({"metric": "m_ok", "labels": {"0bad": "x"}, "value": 1}, "label name"),
    ({"metric": "m_ok", "labels": {"big": "x" * 2000}, "value": 1}, "label 'big'"),
    ({"metric": "m_ok", "labels": {f"l{i}": "v" for i in range(31)}, "value": 1}, "31 labels"),
    ({"metric": "m_ok", "value": None}, "null"),
    ({"metric": "m_ok", "value": 1, "timestamp": 1}, "retention"),
    ({"metric": "m_ok", "value": 1, "timestamp": 10**13 * 4}, "future"),
]


@pytest.mark.parametrize(("sample", "needle"), BAD_SAMPLES, ids=[s[1] for s in BAD_SAMPLES])
def test_bad_samples_are_listed_with_reason(
    client: httpx.Client, sample: dict[str, Any], needle: str
) -> None:
    reply = client.post("/ingest", json={"samples": [sample]})
    assert reply.status_code == 200
    body = reply.json()
    assert body["accepted"] == 0 and body["rejected"] == 1
    assert body["errors"][0]["index"] == 0
    assert needle in body["errors"][0]["reason"]


def test_body_over_limit_is_413(tmp_path: Any) -> None:
    srv = ServerProcess(tmp_path / "data", "--no-collector",
                        env={"SEISMO_LIMITS__MAX_BODY_BYTES": "2000"}).start()
    try:
        big = json.dumps({"samples": [{"metric": "m", "value": i} for i in range(200)]})
        reply = httpx.post(srv.url + "/api/v1/ingest", content=big)
        assert reply.status_code == 413
        assert "2000" in reply.json()["error"]
        # Small on the wire, too big once inflated: refused too (zip bombs).
        bomb = gzip.compress(b'{"samples": []' + b" " * 100_000 + b"}")
        reply = httpx.post(srv.url + "/api/v1/ingest", content=bomb,
                           headers={"Content-Encoding": "gzip"})
        assert reply.status_code == 413
        assert httpx.get(srv.url + "/api/v1/health").json()["store"]["series"] == 0
    finally:
        srv.stop()


def test_cardinality_limit_refuses_new_series_but_known_ones_flow(tmp_path: Any) -> None:
    srv = ServerProcess(tmp_path / "data", "--no-collector",
                        env={"SEISMO_LIMITS__MAX_SERIES": "2"}).start()
    try:
        url = srv.url + "/api/v1/ingest"
        first = httpx.post(url, json={"samples": [
            {"metric": "c", "labels": {"i": "1"}, "value": 1},
            {"metric": "c", "labels": {"i": "2"}, "value": 1}]}).json()
        assert first["accepted"] == 2
        second = httpx.post(url, json={"samples": [
            {"metric": "c", "labels": {"i": "3"}, "value": 1},
            {"metric": "c", "labels": {"i": "1"}, "value": 2}]}).json()
        assert second["accepted"] == 1 and second["rejected"] == 1
        assert "series limit of 2" in second["errors"][0]["reason"]
        assert second["errors"][0]["index"] == 0
    finally:
        srv.stop()


def test_out_of_order_within_tolerance_accepted_and_duplicate_replaces(
    client: httpx.Client,
) -> None:
    t = (now_ms() - 10 * 60_000) // 1000 * 1000
    post = lambda ts, v: client.post("/ingest", json={  # noqa: E731
        "samples": [{"metric": "ooo", "value": v, "timestamp": ts}]}).json()
    assert post(t, 1.0)["accepted"] == 1
    assert post(t - 60_000, 2.0)["accepted"] == 1  # a minute late: within the 1 h tolerance
    late = post(t - 2 * 3_600_000, 3.0)  # two hours late: refused
    assert late["rejected"] == 1 and "out-of-order" in late["errors"][0]["reason"]
    assert post(t, 5.0)["accepted"] == 1  # same timestamp: replaces
    series = client.get("/query_range", params={
        "selector": "ooo", "start": str(t - 120_000), "end": str(t), "step": "1s",
        "agg": "max"}).json()["series"][0]
    assert dict(zip(series["timestamps"], series["values"], strict=True)) == {
        t - 60_000: 2.0, t: 5.0}
