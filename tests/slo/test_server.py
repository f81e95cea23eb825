"""SLOs in a real server: seed 004's examples load, burn-rate alerts fire and resolve
through the alert lifecycle (GET /api/v1/alerts), the CRUD routes refuse bad input."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from seismo.config import load_settings
from seismo.slo import parse_slos
from tests.server import ServerProcess, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "slos.yaml"
ENV = {"SEISMO_DETECT__ENABLED": "false"}
CHECKOUT = {"name": "checkout", "objective": 0.99, "window": "30d",
            "sli": {"latency": "checkout_seconds", "threshold_s": 1}}


def test_the_seed_004_examples_load_as_is() -> None:
    settings = load_settings(EXAMPLES, environ={})
    slos = {s.name: s for s in parse_slos(settings.slos)}
    assert {n: (s.sli.kind, round(s.objective, 6)) for n, s in slos.items()} == {
        "api-latency": ("latency", 0.95), "api-errors": ("ratio", 0.99),
        "api-availability": ("availability", 0.999)}
    assert slos["api-latency"].sli.threshold_s == 2.0
    assert settings.slo.interval_s == 10


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    tmp = tmp_path_factory.mktemp("slo")
    doc = yaml.safe_load(EXAMPLES.read_text())
    doc["slos"].append(CHECKOUT)
    doc["slo"] = {"interval_s": 0.1}
    doc["alerting"] = {"tick_s": 0.05}
    config = tmp / "seismo.yaml"
    config.write_text(yaml.safe_dump(doc))
    server = ServerProcess(tmp / "data", "--no-collector", "--config", str(config),
                           env=ENV).start()
    try:
        with httpx.Client(base_url=server.url + "/api/v1", timeout=10) as c:
            yield c
    finally:
        server.stop()



def push(client: httpx.Client, instance: str, values: list[float]) -> None:
    start = int(time.time() * 1000) - len(values)
    reply = client.post("/ingest", json={"series": [{
        "metric": "checkout_seconds", "labels": {"instance": instance},
        "timestamps": [start + i for i in range(len(values))], "values": values}]})
    assert reply.status_code == 200 and reply.json()["accepted"] == len(values), reply.text


def slo_alerts(client: httpx.Client) -> dict[str, str]:
    rows = client.get("/alerts", params={"rule": "SLOErrorBudgetBurn"}).json()["alerts"]
    return {r["labels"]["window"]: r["state"] for r in rows if r["labels"]["slo"] == "checkout"}


def test_burn_rate_alerts_fire_and_resolve(client: httpx.Client) -> None:
    listed = {s["name"]: s for s in client.get("/slos").json()["slos"]}
    assert set(listed) == {"api-latency", "api-errors", "api-availability", "checkout"}
    assert listed["api-errors"]["source"] == "seismo.yaml"

    push(client, "a", [5.0] * 10)  # every request slow: burn 100 in every window
    fired = {"1h/5m": "firing", "6h/30m": "firing", "3d/6h": "firing"}
    wait_for(lambda: slo_alerts(client) == fired)
    status = client.get("/slos/checkout").json()
    assert status["status"] == "exhausted" and status["budget_remaining"] == pytest.approx(-99)
    assert status["burn_rates"]["5m"] == pytest.approx(100.0)
    assert {a["labels"]["window"] for a in status["alerts"]} == set(fired)
    page = client.get("/alerts", params={"state": "firing", "severity": "critical"}).json()
    assert {a["labels"]["window"] for a in page["alerts"]} == {"1h/5m", "6h/30m"}
    assert all(a["source"] == "slo" for a in page["alerts"])

    push(client, "b", [0.1] * 1990)  # 10 slow of 2000: 0.5 % against a 1 % budget
    wait_for(lambda: set(slo_alerts(client).values()) == {"resolved"})
    status = client.get("/slos/checkout").json()
    assert status["status"] == "ok" and status["alerts"] == []
    assert status["budget_remaining"] == pytest.approx(0.5)
    assert status["sli_by_window"]["1h"] == pytest.approx(0.995)
    one = client.get("/alerts", params={"rule": "SLOErrorBudgetBurn"}).json()["alerts"][0]
    detail = client.get(f"/alerts/{one['id']}").json()
    assert [t["to"] for t in detail["transitions"]] == ["firing", "resolved"]
    burn = wait_for(lambda: client.get("/query", params={
        "selector": 'slo_burn_rate{slo="checkout", window="5m"}'}).json()["series"])
    assert burn[0]["value"] == pytest.approx(0.5)


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({**CHECKOUT, "name": "x", "objective": 1.5}, "slo.objective", "between 0 and 1"),
    ({**CHECKOUT, "name": "x", "sli": {"latency": "x{"}}, "slo.sli.threshold_s", "required"),
    ({**CHECKOUT, "name": "x", "window": "forever"}, "slo.window", "not a duration"),
    ({"name": "x", "sli": {"good": "a"}}, "slo.sli.total", "total is required"),
    ([CHECKOUT], "body", "JSON object"),
])
def test_a_bad_slo_is_refused_with_field_and_reason(client: httpx.Client, body: Any,
                                                    field: str, reason: str) -> None:
    reply = client.post("/slos", json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["field"] == field and reason in reply.json()["error"]
    assert "x" not in {s["name"] for s in client.get("/slos").json()["slos"]}


def test_slos_made_over_the_api(client: httpx.Client) -> None:
    body = {"name": "search", "objective": 0.999, "sli": {"availability": "search_up"}}
    created = client.post("/slos", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "ok" and created.json()["source"] == "api"
    assert client.post("/slos", json=body).status_code == 400  # exists: PUT replaces
    replaced = client.put("/slos/search", json={**body, "objective": 0.99})
    assert replaced.status_code == 200 and replaced.json()["objective"] == 0.99
    assert client.put("/slos/search", json={**body, "name": "other"}).status_code == 400
    assert client.delete("/slos/search").json() == {"deleted": "search"}
    assert client.get("/slos/search").status_code == 404
    assert client.delete("/slos/api-errors").json()["field"] == "name"  # from seismo.yaml
    assert client.post("/slos", content=b"{not json").status_code == 400
