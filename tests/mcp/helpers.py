"""A real server with data in it for the MCP tests: series with a spike, a firing rule,
events, a model with predictions and outcomes, an SLO, a finished and a running session,
a machine's power series; and MCP clients for it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from tests.server import ServerProcess

WAIT_S = 15.0


def seed(srv: ServerProcess, admin: str) -> dict[str, Any]:
    """Fill the server; returns the firing alert's id."""
    now = int(time.time() * 1000)
    with httpx.Client(base_url=srv.url + "/api/v1", timeout=10,
                      headers={"Authorization": f"Bearer {admin}"}) as http:
        rule = {"name": "HighCPU", "expr": "cpu_usage > 90", "severity": "high",
                "annotations": {"summary": "CPU {{ $value }} on {{ $labels.host }}"}}
        http.post("/rules", json=rule).raise_for_status()
        http.post("/events", json={"type": "deploy", "source": "ci",
                                   "attributes": {"version": "1.2"},
                                   "timestamp": now - 120_000}).raise_for_status()
        series = []
        for host, peak in (("a", 97.0), ("b", 40.0)):
            ts = [now - 600_000 + i * 10_000 for i in range(60)]
            values = [30.0 + (i % 5) for i in range(59)] + [peak]
            series.append({"metric": "cpu_usage", "labels": {"host": host},
                           "timestamps": ts, "values": values})
        series.append({"metric": "requests_total", "labels": {"svc": "api"},
                       "timestamps": [now - 1000], "values": [100.0]})
        series.append({"metric": "machine_power_watts", "labels": {"machine": "m1"},
                       "timestamps": [now - 600_000, now - 300_000, now],
                       "values": [1000.0, 2000.0, 2000.0]})  # 0.291667 kWh (docs/energy.md)
        reply = http.post("/ingest", json={"series": series}).json()
        assert reply["accepted"] == 124, reply
        http.post("/events", json={"events": [
            {"type": "session.start", "timestamp": now - 90_000,
             "attributes": {"session": "etl-1", "kind": "etl", "user": "ana"}},
            {"type": "tool_error", "severity": "high", "timestamp": now - 60_000,
             "attributes": {"session": "etl-1"}},
            {"type": "session.end", "timestamp": now - 30_000,
             "attributes": {"session": "etl-1", "status": "success"}},
            {"type": "session.start", "timestamp": now - 20_000,
             "attributes": {"session": "etl-2", "kind": "etl", "user": "bo"}},
        ]}).raise_for_status()
        http.post("/models", json={"name": "churn", "version": "v1",
                                   "task": "classification"}).raise_for_status()
        items = [{"id": f"p{i}", "features": {"tenure": i, "plan": "pro" if i % 2 else "free"},
                  "prediction": i % 2, "probability": 0.8 if i % 2 else 0.3}
                 for i in range(40)]
        http.post("/models/churn/predictions",
                  json={"version": "v1", "items": items}).raise_for_status()
        http.post("/models/churn/outcomes", json={"items": [
            {"id": f"p{i}", "actual": 1 if i % 3 else 0} for i in range(40)]}
        ).raise_for_status()
        http.post("/slos", json={"name": "api-availability", "objective": 0.99,
                                 "window": "1h", "sli": {"good": "requests_total",
                                                         "total": "requests_total"}}
                  ).raise_for_status()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            alerts = http.get("/alerts", params={"state": "firing", "rule": "HighCPU"}).json()
            if alerts["alerts"]:
                return {"alert_id": alerts["alerts"][0]["id"]}
            time.sleep(0.05)
    raise AssertionError("HighCPU did not fire")


@asynccontextmanager
async def http_client(srv: ServerProcess, token: str | None) -> AsyncIterator[Client]:
    """The SDK's client over streamable HTTP to `/mcp`, with a bearer token."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=20) as http:
        transport = streamable_http_client(srv.url + "/mcp", http_client=http)
        async with Client(transport, read_timeout_seconds=20) as client:
            yield client


def data(result: CallToolResult) -> dict[str, Any]:
    """A successful tool call's structured result."""
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    return result.structured_content


def text(result: CallToolResult) -> str:
    first = result.content[0] if result.content else None
    return getattr(first, "text", json.dumps(result.structured_content))
