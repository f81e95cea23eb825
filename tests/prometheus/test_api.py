"""The Prometheus query API of a real seismo server: envelope, parameters, errors, listings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.server import ServerProcess

T0_S = (int(time.time()) // 60 - 60) * 60  # whole minutes, an hour ago (retention)
API = "/prometheus/api/v1"


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        body = {"series": [
            {"metric": "promapi_hits_total", "labels": {"path": p},
             "timestamps": [(T0_S + i) * 1000 for i in range(60)],
             "values": [float(i * k) for i in range(60)]}
            for p, k in (("/a", 1), ("/b", 3))]}
        assert client.post("/api/v1/ingest", json=body).json()["rejected"] == 0
        yield client


def test_a_range_query_has_prometheus_envelope(http: httpx.Client) -> None:
    reply = http.get(API + "/query_range", params={
        "query": "sum by (path) (rate(promapi_hits_total[10s]))",
        "start": T0_S + 20, "end": T0_S + 22, "step": "1"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"path": "/a"},
         "values": [[T0_S + 20, "1"], [T0_S + 21, "1"], [T0_S + 22, "1"]]},
        {"metric": {"path": "/b"},
         "values": [[T0_S + 20, "3"], [T0_S + 21, "3"], [T0_S + 22, "3"]]}]}}


def test_instant_queries_give_vectors_and_scalars(http: httpx.Client) -> None:
    at = T0_S + 30.5
    vector = http.get(API + "/query", params={"query": 'promapi_hits_total{path="/b"}',
                                               "time": at}).json()
    assert vector["data"] == {"resultType": "vector", "result": [{
        "metric": {"__name__": "promapi_hits_total", "path": "/b"}, "value": [at, "90"]}]}
    scalar = http.post(API + "/query", data={"query": "1 / 4", "time": str(at)}).json()
    assert scalar["data"] == {"resultType": "scalar", "result": [at, "0.25"]}
    assert http.get(API + "/query", params={"query": "1/0"}).json()["data"]["result"][1] \
        == "+Inf"


def test_times_are_unix_seconds_or_rfc3339_and_steps_durations_or_seconds(
        http: httpx.Client) -> None:
    rfc = datetime.fromtimestamp(T0_S + 20, UTC).isoformat().replace("+00:00", "Z")
    query = {"query": "promapi_hits_total"}
    by_seconds = http.get(API + "/query_range", params={
        **query, "start": T0_S + 20, "end": T0_S + 80, "step": 60}).json()
    by_text = http.get(API + "/query_range", params={
        **query, "start": rfc, "end": T0_S + 80, "step": "1m"}).json()
    assert by_seconds == by_text
    assert [len(s["values"]) for s in by_text["data"]["result"]] == [2, 2]


@pytest.mark.parametrize("params,reason", [
    ({}, 'invalid parameter "query"'),
    ({"query": "holt_winters(promapi_hits_total[1m], 0.3, 0.3)"},
     "function holt_winters is not supported"),
    ({"query": "promapi_hits_total[1m:10s]"}, "subqueries"),
    ({"query": "promapi_hits_total", "start": "yesterday"}, 'invalid parameter "start"'),
    ({"query": "promapi_hits_total", "step": "fast"}, 'invalid parameter "step"'),
    ({"query": "promapi_hits_total", "end": T0_S - 10}, "end timestamp must not be before"),
    ({"query": "promapi_hits_total", "step": "0"}, "zero or negative query resolution"),
    ({"query": "promapi_hits_total", "step": "0.001"}, "exceeded maximum resolution of 11,000"),
    ({"query": "promapi_hits_total[5m]"}, 'invalid expression type "range vector"'),
])
def test_bad_requests_are_400_bad_data(http: httpx.Client, params: dict[str, object],
                                       reason: str) -> None:
    full = {"start": T0_S, "end": T0_S + 60, "step": "15s", **params}
    reply = http.get(API + "/query_range", params=full)  # type: ignore[arg-type]
    assert reply.status_code == 400
    body = reply.json()
    assert body["status"] == "error" and body["errorType"] == "bad_data"
    assert reason in body["error"]


def test_matching_errors_are_422_execution(http: httpx.Client) -> None:
    reply = http.get(API + "/query", params={
        "query": "promapi_hits_total + on() promapi_hits_total", "time": T0_S + 30})
    assert reply.status_code == 422
    assert reply.json()["errorType"] == "execution"


def test_series_labels_and_values(http: httpx.Client) -> None:
    match = {"match[]": "promapi_hits_total"}
    series = http.post(API + "/series", data=match).json()
    assert sorted(s["path"] for s in series["data"]) == ["/a", "/b"]
    assert http.get(API + "/series").json()["error"] == "no match[] parameter provided"
    assert http.get(API + "/labels", params=match).json()["data"] == ["__name__", "path"]
    assert http.get(API + "/label/path/values", params=match).json()["data"] == ["/a", "/b"]
    names = http.get(API + "/label/__name__/values").json()["data"]
    assert "promapi_hits_total" in names and names == sorted(names)
    assert http.get(API + "/label/path/values", params={**match, "limit": 1}).json()[
        "data"] == ["/a"]
    assert http.get(API + "/label/bad-name/values").status_code == 400


def test_metadata_and_buildinfo(http: httpx.Client) -> None:
    meta = http.get(API + "/metadata", params={"metric": "promapi_hits_total"}).json()
    assert meta == {"status": "success", "data": {"promapi_hits_total": [
        {"type": "unknown", "help": "", "unit": ""}]}}
    info = http.get(API + "/status/buildinfo").json()["data"]
    assert info["version"].count(".") == 2 and "seismo" in info["revision"]
