"""`seismo mcp` on stdio, spawned with the SDK's own client: against a running server
(`--url`, `--token`: the token's role applies on the server) and on a data dir of its own."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from tests.mcp.helpers import data, text


def seismo_mcp(*args: str) -> Client:
    params = StdioServerParameters(command=sys.executable, args=["-m", "seismo", "mcp", *args],
                                   env=dict(os.environ))
    return Client(params, read_timeout_seconds=20)


async def test_stdio_against_a_server_uses_the_tokens_role(seeded: dict[str, Any]) -> None:
    srv, tokens = seeded["server"], seeded["tokens"]
    async with seismo_mcp("--url", srv.url, "--token", tokens["viewer"]) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"get_status", "acknowledge_alert", "query_range"} <= names
        assert data(await client.call_tool("get_status", {}))["series"] >= 3
        why = data(await client.call_tool("explain_alert", {"alert_id": seeded["alert_id"]}))
        assert why["rule"]["name"] == "HighCPU"
        refused = await client.call_tool("acknowledge_alert", {"alert_id": seeded["alert_id"]})
        assert refused.is_error
        assert "HTTP 403: token 'viewer' has role viewer" in text(refused)
        missing = await client.call_tool("slo_status", {"name": "nope"})
        assert missing.is_error and "HTTP 404: no SLO 'nope'" in text(missing)
        sessions = data(await client.call_tool("list_sessions", {"state": ["active"]}))
        assert [s["id"] for s in sessions["sessions"]] == ["etl-2"]
        one = data(await client.call_tool("get_session", {"session_id": "etl-1"}))
        assert one["session"]["status"] == "success" and len(one["timeline"]) == 3
        assert data(await client.call_tool("session_stats", {}))["kinds"]["etl"]["finished"] == 1
        energy = data(await client.call_tool("energy_stats", {"window": "1h"}))
        assert energy["stats"]["total_energy_kwh"] == 0.291667
        assert data(await client.call_tool("insights", {"limit": 3}))["shown"] <= 3
    async with seismo_mcp("--url", srv.url, "--token", tokens["operator"]) as client:
        event = data(await client.call_tool("add_event", {"type": "note", "message": "stdio"}))
        assert event["accepted"] == 1
        updates = data(await client.call_tool("subscribe", {
            "topic": "events", "filters": {"type": ["note"]}}))
        assert updates["updates"][-1]["event"]["message"] == "stdio"


async def test_stdio_with_an_engine_of_its_own(tmp_path: Path) -> None:
    async with seismo_mcp("--data-dir", str(tmp_path / "data"), "--no-collector") as client:
        stored = data(await client.call_tool("push_samples", {"samples": [
            {"metric": "temp_c", "labels": {"room": "lab"}, "value": 21.5}]}))
        assert stored["accepted"] == 1
        metrics = data(await client.call_tool("get_metrics", {"selector": "temp_c"}))
        assert metrics["series"][0]["series"] == 'temp_c{room="lab"}'
        assert metrics["series"][0]["value"] == 21.5
        raised = data(await client.call_tool("create_alert", {"name": "Hot"}))
        assert raised["alert"]["state"] == "firing"  # the data dir's owner runs as admin
        rule = data(await client.call_tool("create_rule", {"name": "Cold",
                                                           "expr": "temp_c < 5"}))
        assert rule["rule"]["source"] == "api"
        assert (tmp_path / "data" / "state.db").exists()


def test_seismo_mcp_needs_url_or_data_dir() -> None:
    import subprocess

    done = subprocess.run([sys.executable, "-m", "seismo", "mcp"], capture_output=True,
                          text=True, timeout=30, env=dict(os.environ))
    assert done.returncode == 2
    assert "give either --url" in done.stderr
