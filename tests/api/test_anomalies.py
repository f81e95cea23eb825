"""Anomalies end to end on a real server: ingest → detectors → record, API and stream."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np
from websockets.asyncio.client import connect

from tests.server import ServerProcess

ENV = {"SEISMO_DETECT__WARMUP": "50"}


def push_incident(http: httpx.Client, host: str) -> int:
    """300 calm points of latency{host} at 1 s steps with one spike; the spike's time."""
    values = 20 + np.random.default_rng(7).normal(0, 0.5, 300)
    values[250] = 60
    t0 = int(time.time() * 1000) - 300_000
    ts = (t0 + 1000 * np.arange(300)).tolist()
    for start in range(0, 300, 50):
        reply = http.post("/api/v1/ingest", json={"series": [{
            "metric": "latency", "labels": {"host": host},
            "timestamps": ts[start:start + 50], "values": values[start:start + 50].tolist()}]})
        assert reply.status_code == 200, reply.text
    return int(ts[250])


def wait_for_anomalies(http: httpx.Client, selector: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = http.get("/api/v1/anomalies", params={"selector": selector}).json()
        if found["anomalies"]:
            return list(found["anomalies"])
        time.sleep(0.1)
    raise AssertionError("no anomaly recorded")


def wait_for_band(http: httpx.Client, spike_ms: int) -> dict[str, list[float | None]]:
    deadline = time.monotonic() + 15
    while True:
        reply = http.get("/api/v1/query_range", params={
            "selector": 'latency{host="a"}', "band": "true", "step": "60s",
            "start": str(spike_ms - 300_000), "end": str(spike_ms + 60_000)})
        assert reply.status_code == 200, reply.text
        [series] = reply.json()["series"]
        if sum(e is not None for e in series["expected"]) >= 3 or time.monotonic() > deadline:
            return dict(series)
        time.sleep(0.2)


async def test_a_spike_becomes_an_anomaly_in_the_api_the_stream_and_after_restart(
        fresh_server: ServerProcess) -> None:
    fresh_server.env.update(ENV)
    fresh_server.start()
    ws_url = fresh_server.url.replace("http://", "ws://") + "/api/v1/stream"
    async with connect(ws_url) as ws:
        await ws.send(json.dumps({"op": "subscribe", "topic": "anomalies",
                                  "selector": 'latency{host="a"}'}))
        with httpx.Client(base_url=fresh_server.url, timeout=10) as http:
            await asyncio.to_thread(push_incident, http, "b")  # not ours to see
            spike_ms = await asyncio.to_thread(push_incident, http, "a")
            async with asyncio.timeout(15):
                while (message := json.loads(await ws.recv()))["type"] != "anomaly":
                    pass
    streamed = message["anomaly"]
    assert streamed["labels"] == {"host": "a"} and streamed["state"] == "open"
    assert streamed["start_ms"] == spike_ms and streamed["kind"] == "spike"

    with httpx.Client(base_url=fresh_server.url, timeout=10) as http:
        [stored] = wait_for_anomalies(http, 'latency{host="a"}')
        assert stored["actual"] == 60.0 and 0 < stored["score"] <= 1  # type: ignore[operator]
        assert stored["lower"] < stored["expected"] < stored["upper"]  # type: ignore[operator]
        assert http.get("/api/v1/anomalies", params={"kind": "drop"}).json() == {
            "anomalies": []}
        rates = http.get("/api/v1/anomalies/rates", params={"selector": "latency"}).json()
        assert rates["points"] == 600 and 0 < rates["anomaly_rate"] < 0.05
        band = wait_for_band(http, spike_ms)
        known = [i for i, e in enumerate(band["expected"]) if e is not None]
        assert len(known) >= 3  # one band point a minute over ~4 warmed-up minutes
        for i in known:
            assert band["lower"][i] <= band["expected"][i] <= band["upper"][i]
            assert 15 < band["expected"][i] < 25  # the calm level, not the spike
        reply = http.get("/api/v1/query_range", params={
            "selector": "latency", "band": "true", "group_by": "host"})
        assert reply.status_code == 400 and reply.json()["field"] == "band"
        for params, field in [({"kind": "wobble"}, "kind"), ({"state": "x"}, "state"),
                              ({"selector": "latency{"}, "selector"),
                              ({"min_score": "2"}, "min_score")]:
            reply = http.get("/api/v1/anomalies", params=params)
            assert reply.status_code == 400 and reply.json()["field"] == field
    fresh_server.stop()
    assert (fresh_server.data_dir / "detect" / "state.npz").stat().st_size > 0
    fresh_server.start()
    with httpx.Client(base_url=fresh_server.url, timeout=10) as http:
        [again] = wait_for_anomalies(http, 'latency{host="a"}')
        assert again["id"] == stored["id"]
