"""The energy API and the `stats` topic's energy part, against a real server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.server import ServerProcess

pytestmark = pytest.mark.timeout(60)
MIN = 60_000


@pytest.fixture(scope="module")
def energy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"SEISMO_DETECT__ENABLED": "false", "SEISMO_ENERGY__REFRESH_S": "0.2",
           "SEISMO_STREAM__STATS_INTERVAL_S": "0.2", "SEISMO_ENERGY__TARIFF": "0.3"}
    srv = ServerProcess(tmp_path_factory.mktemp("energy") / "data", "--no-collector", env=env)
    srv.start()
    now = int(time.time() * 1000) // 1000 * 1000
    body = {"series": [
        {"metric": "machine_power_watts", "labels": {"machine": "m1", "line": "a"},
         "timestamps": [now - 10 * MIN, now - 5 * MIN, now], "values": [1000, 2000, 2000]},
        {"metric": "machine_power_watts", "labels": {"machine": "m2", "line": "b"},
         "timestamps": [now - 12 * MIN, now - 6 * MIN], "values": [6000, 6000]}]}
    reply = httpx.post(srv.url + "/api/v1/ingest", json=body, timeout=10)
    assert reply.status_code == 200 and reply.json()["accepted"] == 5, reply.text
    yield srv
    srv.stop()


def test_stats_over_http(energy_server: ServerProcess) -> None:
    with httpx.Client(base_url=energy_server.url + "/api/v1", timeout=10) as client:
        s = client.get("/energy/stats", params={"window": "1h", "carbon": "0.25"}).json()
        # m1: 1.5 kW · 5 min + 2 kW · 5 min; m2: 6 kW · 6 min
        energy = 1.5 / 12 + 2 / 12 + 6 / 10
        assert s["selector"] == "machine_power_watts" and s["total_readings"] == 5
        assert s["total_energy_kwh"] == pytest.approx(energy, abs=1e-6)
        assert s["cost_total"] == pytest.approx(0.3 * energy, abs=1e-4)  # tariff from env
        assert s["co2_kg"] == pytest.approx(0.25 * energy, abs=1e-4)  # carbon from the query
        assert s["cost_per_day"] == pytest.approx(0.3 * energy * 24, abs=1e-3)
        assert s["peak_power_kw"] == 6.0
        assert s["active_machines"] == 1  # m2 last reported 6 min ago; active_within 5m
        assert client.get("/energy/stats", params={"active_within": "10m"}
                          ).json()["active_machines"] == 2
        assert [m["machine"] for m in s["machines"]] == ["m2", "m1"]
        only_a = client.get("/energy/stats",
                            params={"selector": 'machine_power_watts{line="a"}'}).json()
        assert only_a["series"] == 1 and only_a["machines"][0]["labels"]["line"] == "a"


@pytest.mark.parametrize(("params", "field"), [
    ({"window": "yesterday"}, "window"), ({"unit": "hp"}, "unit"), ({"tariff": "-2"}, "tariff"),
    ({"tariff": "cheap"}, "tariff"), ({"carbon": "-0.1"}, "carbon"),
    ({"active_within": "0m"}, "active_within"), ({"selector": "power{"}, "selector")])
def test_bad_parameters_are_400_naming_the_field(energy_server: ServerProcess,
                                                  params: dict[str, str], field: str) -> None:
    reply = httpx.get(energy_server.url + "/api/v1/energy/stats", params=params, timeout=10)
    assert reply.status_code == 400, reply.text
    assert reply.json()["field"] == field and reply.json()["error"]


async def test_stats_topic_carries_the_energy_part(energy_server: ServerProcess) -> None:
    url = energy_server.url.replace("http://", "ws://") + "/api/v1/stream"
    async with connect(url) as ws, asyncio.timeout(15):
        await ws.send(json.dumps({"op": "subscribe", "topic": "stats"}))
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "stats" and "energy" in message["stats"]:
                energy = message["stats"]["energy"]
                if energy["total_readings"] == 5:
                    break
    assert energy["selector"] == "machine_power_watts" and energy["window"] == "24h"
    assert energy["total_energy_kwh"] == pytest.approx(1.5 / 12 + 2 / 12 + 6 / 10, abs=1e-6)
    assert {m["machine"] for m in energy["machines"]} == {"m1", "m2"}

