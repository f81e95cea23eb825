"""MCP over streamable HTTP at /mcp on a real server, with the SDK's own client: every
tool against real data, roles from bearer tokens, bad arguments as tool errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.mcp.helpers import data, http_client, text

SEED_001 = {"start_monitoring", "stop_monitoring", "get_status", "subscribe", "add_event",
            "get_metrics", "get_analytics", "ml_status", "record_prediction",
            "record_outcome", "ml_performance", "get_active_alerts", "acknowledge_alert",
            "resolve_alert", "create_alert", "dashboard_snapshot"}
MORE = {"list_metrics", "list_series", "query_range", "explain_alert", "list_silences",
        "add_silence", "expire_silence", "slo_status", "list_events", "list_anomalies",
        "push_samples", "register_model", "list_rules", "create_rule", "delete_rule",
        "forecast", "list_sessions", "get_session", "session_stats", "energy_stats",
        "insights"}


async def test_every_tool_is_listed_with_schemas(seeded: dict[str, Any]) -> None:
    async with http_client(seeded["server"], seeded["tokens"]["viewer"]) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) >= SEED_001 | MORE
        for tool in tools.values():
            assert tool.description, tool.name
            assert tool.input_schema["type"] == "object"
            assert tool.output_schema is not None, tool.name
        assert tools["query_range"].input_schema["properties"]["max_points"]["maximum"] == 200
        assert tools["get_status"].annotations.read_only_hint is True
        assert tools["acknowledge_alert"].annotations.read_only_hint is False


async def test_read_tools_on_real_data(seeded: dict[str, Any]) -> None:
    alert_id = seeded["alert_id"]
    async with http_client(seeded["server"], seeded["tokens"]["viewer"]) as client:
        status = data(await client.call_tool("get_status", {}))
        assert status["status"] == "ok" and status["series"] >= 3

        names = data(await client.call_tool("list_metrics", {"match": "cpu"}))
        assert names["metrics"] == ["cpu_usage"]
        found = data(await client.call_tool("list_series", {"selector": "cpu_usage"}))
        assert found["series"] == ['cpu_usage{host="a"}', 'cpu_usage{host="b"}']

        metrics = data(await client.call_tool("get_metrics", {
            "selector": 'cpu_usage{host="a"}', "window": "15m"}))
        assert metrics["series"][0]["value"] == 97.0 and metrics["series"][0]["count"] == 60

        ranged = data(await client.call_tool("query_range", {
            "selector": "cpu_usage", "start": "now-15m", "max_points": 20, "agg": "max"}))
        assert ranged["series_count"] == 2
        for s in ranged["series"]:
            assert 0 < len(s["values"]) <= 20 and len(s["timestamps"]) == len(s["values"])
        peak = {s["series"]: s["summary"]["max"] for s in ranged["series"]}
        assert peak['cpu_usage{host="a"}'] == 97.0

        total = data(await client.call_tool("query_range", {
            "selector": '{__name__=~".+"}', "group_by": [], "agg": "count",
            "start": "now-15m", "max_points": 10}))
        assert total["series_count"] == 1

        analytics = data(await client.call_tool("get_analytics", {
            "selector": "cpu_usage", "window": "15m", "top": 1}))
        assert analytics["series"] == 2
        assert analytics["top_movers"][0]["series"] == 'cpu_usage{host="a"}'

        active = data(await client.call_tool("get_active_alerts", {}))
        assert active["by_state"]["firing"] >= 1
        assert any(a["id"] == alert_id and a["rule"] == "HighCPU" for a in active["alerts"])

        why = data(await client.call_tool("explain_alert", {"alert_id": alert_id}))
        assert why["rule"]["expr"] == "cpu_usage > 90"
        assert why["alert"]["labels"] == {"host": "a"}
        assert [v["series"] for v in why["values"]] == ['cpu_usage{host="a"}']
        # The 97 spike lifts its (avg) bucket above the 30-34 the series otherwise holds.
        assert why["values"][0]["summary"]["max"] > 36
        assert any(e["type"] == "deploy" for e in why["events"])
        assert why["transitions"][-1]["to"] == "firing"

        events = data(await client.call_tool("list_events", {"type": "deploy"}))
        assert events["rows"][0]["attributes"] == {"version": "1.2"}
        data(await client.call_tool("list_anomalies", {"selector": "cpu_usage"}))

        models = data(await client.call_tool("ml_status", {}))
        assert [m["name"] for m in models["models"]] == ["churn"]
        perf = data(await client.call_tool("ml_performance", {"model": "churn",
                                                              "window": "1h"}))
        assert perf["version"] == "v1" and perf["metrics"]["predictions"] == 40
        assert perf["metrics"]["outcomes"] == 40 and perf["metrics"]["accuracy"] is not None
        assert perf["drift"] is not None

        slos = data(await client.call_tool("slo_status", {}))
        assert [s["name"] for s in slos["slos"]] == ["api-availability"]
        one = data(await client.call_tool("slo_status", {"name": "api-availability"}))
        assert one["count"] == 1 and "conditions" in one["slos"][0]

        rules = data(await client.call_tool("list_rules", {}))
        assert rules["rules"][0]["name"] == "HighCPU"

        snapshot = data(await client.call_tool("dashboard_snapshot", {}))
        assert snapshot["series"] >= 3 and snapshot["alerts"]["by_state"]["firing"] >= 1
        assert snapshot["slos"][0]["name"] == "api-availability"
        assert snapshot["models"]["names"] == ["churn"]

        first = data(await client.call_tool("subscribe", {"topic": "alerts", "cursor": 0}))
        assert any(u["alert"]["rule"] == "HighCPU" for u in first["updates"])
        after = data(await client.call_tool("subscribe", {"topic": "alerts",
                                                          "cursor": first["cursor"]}))
        assert after["updates"] == [] and after["cursor"] == first["cursor"]
        samples = data(await client.call_tool("subscribe", {
            "topic": "samples", "selector": 'cpu_usage{host="b"}', "limit": 5}))
        assert samples["updates"][0]["series"][0]["series"] == 'cpu_usage{host="b"}'


async def test_resources_and_prompt(seeded: dict[str, Any]) -> None:
    async with http_client(seeded["server"], seeded["tokens"]["viewer"]) as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert uris == {"seismo://rules", "seismo://slos", "seismo://models"}
        rules = (await client.read_resource("seismo://rules")).contents[0]
        assert "name: HighCPU" in rules.text and "expr: cpu_usage > 90" in rules.text
        slos = (await client.read_resource("seismo://slos")).contents[0]
        assert "name: api-availability" in slos.text
        models = (await client.read_resource("seismo://models")).contents[0]
        assert '"churn"' in models.text
        prompt = await client.get_prompt("investigate_alert", {"alert_id": "abc123"})
        body = prompt.messages[0].content.text
        assert 'explain_alert(alert_id="abc123")' in body


async def test_operator_writes(seeded: dict[str, Any]) -> None:
    async with http_client(seeded["server"], seeded["tokens"]["operator"]) as client:
        stored = data(await client.call_tool("push_samples", {"samples": [
            {"metric": "queue_depth", "labels": {"q": "jobs"}, "value": 7}]}))
        assert stored == {"accepted": 1, "rejected": 0, "errors": []}
        event = data(await client.call_tool("add_event", {
            "type": "incident", "message": "paged", "severity": "high"}))
        assert event["events"][0]["type"] == "incident"

        raised = data(await client.call_tool("create_alert", {
            "name": "DiskFull", "severity": "critical", "labels": {"host": "z"},
            "annotations": {"summary": "disk full on z"}}))
        alert_id = raised["alert"]["id"]
        assert raised["alert"]["state"] == "firing"
        acked = data(await client.call_tool("acknowledge_alert", {
            "alert_id": alert_id, "comment": "looking"}))
        assert acked["alert"]["state"] == "acknowledged"
        assert acked["alert"]["ack_by"] == "operator"  # the token's name
        resolved = data(await client.call_tool("resolve_alert", {"alert_id": alert_id}))
        assert resolved["alert"]["state"] == "resolved"

        silence = data(await client.call_tool("add_silence", {
            "matchers": {"alertname": "HighCPU"}, "comment": "maintenance",
            "duration": "30m"}))["silence"]
        listed = data(await client.call_tool("list_silences", {"state": "active"}))
        assert silence["id"] in [s["id"] for s in listed["silences"]]
        expired = data(await client.call_tool("expire_silence", {"silence_id": silence["id"]}))
        assert expired["silence"]["state"] == "expired"

        data(await client.call_tool("register_model", {"name": "eta", "version": "v1",
                                                       "task": "regression"}))
        recorded = data(await client.call_tool("record_prediction", {
            "model": "eta", "version": "v1",
            "predictions": [{"id": "r1", "prediction": 12.5, "features": {"km": 3}}]}))
        assert recorded["reply"]["accepted"] == 1
        outcome = data(await client.call_tool("record_outcome", {
            "model": "eta", "outcomes": [{"id": "r1", "actual": 14}]}))
        assert outcome["reply"]["matched"] == 1

        stopped = data(await client.call_tool("stop_monitoring", {}))
        assert stopped["processors"]["detectors"] is False
        started = data(await client.call_tool("start_monitoring", {}))
        assert started["processors"]["detectors"] is True
        assert started["collectors"][0] == {"name": "host collector", "running": True}
        data(await client.call_tool("stop_monitoring", {}))

        refused = await client.call_tool("create_rule", {"name": "X", "expr": "x > 1"})
        assert refused.is_error and "needs admin" in text(refused)


async def test_admin_changes_rules(seeded: dict[str, Any]) -> None:
    async with http_client(seeded["server"], seeded["tokens"]["admin"]) as client:
        made = data(await client.call_tool("create_rule", {
            "name": "SlowQueue", "expr": "queue_depth > 100", "for_duration": "1m"}))
        assert made["rule"]["for"] == "60s"
        bad = await client.call_tool("create_rule", {"name": "Bad", "expr": "queue_depth >"})
        assert bad.is_error and "expr" in text(bad)
        assert data(await client.call_tool("delete_rule", {"name": "SlowQueue"})) == {
            "deleted": "SlowQueue"}


async def test_a_viewer_may_read_but_not_write(seeded: dict[str, Any]) -> None:
    async with http_client(seeded["server"], seeded["tokens"]["viewer"]) as client:
        for name, args in (("acknowledge_alert", {"alert_id": seeded["alert_id"]}),
                           ("add_event", {"type": "deploy"}),
                           ("start_monitoring", {}),
                           ("record_outcome", {"model": "churn",
                                               "outcomes": [{"id": "p1", "actual": 1}]})):
            result = await client.call_tool(name, args)
            assert result.is_error, name
            assert f"token 'viewer' has role viewer; the tool {name} needs operator" in \
                text(result)
        data(await client.call_tool("get_active_alerts", {}))
    alert = httpx.get(f"{seeded['server'].url}/api/v1/alerts/{seeded['alert_id']}",
                      headers={"Authorization": f"Bearer {seeded['tokens']['viewer']}"},
                      timeout=10).json()
    assert alert["state"] == "firing"  # nothing changed


async def test_no_token_or_a_bad_one_is_refused(seeded: dict[str, Any]) -> None:
    srv = seeded["server"]
    for token in (None, "smo_wrong"):
        reply = httpx.post(srv.url + "/mcp", timeout=10, json={},
                           headers={} if token is None else {"Authorization": f"Bearer {token}"})
        assert reply.status_code == 401
    with pytest.raises(Exception):  # noqa: B017 - the SDK wraps the 401 in its own errors
        async with http_client(srv, None) as client:
            await client.list_tools()


async def test_bad_arguments_are_tool_errors(seeded: dict[str, Any]) -> None:
    async with http_client(seeded["server"], seeded["tokens"]["operator"]) as client:
        cases = {
            ("query_range", '{"selector": "cpu_usage{"}'): "selector",
            ("query_range", '{"selector": "{__name__=~\\".+\\"}", "max_series": 1}'):
                "selector",
            ("get_metrics", '{"selector": "cpu_usage", "window": "soon"}'): "window",
            ("acknowledge_alert", '{"alert_id": "nope"}'): "no alert 'nope'",
            ("list_events", '{"limit": 0}'): "limit",
            ("subscribe", '{"topic": "weather"}'): "topic",
            ("subscribe", '{"topic": "samples"}'): "selector",
            ("ml_performance", '{"model": "nope"}'): "nope",
            ("push_samples", '{"samples": [{"metric": "1bad", "value": 1}]}'): "",
            ("add_silence", '{"matchers": {}, "comment": "x"}'): "matchers",
            ("explain_alert", '{"alert_id": "nope"}'): "no alert",
        }
        import json

        for (name, raw), needle in cases.items():
            result = await client.call_tool(name, json.loads(raw))
            if name == "push_samples":  # refused samples are counted, not an error
                assert data(result)["rejected"] == 1
                continue
            assert result.is_error, (name, raw)
            assert needle in text(result), (name, text(result))
        unknown = await client.call_tool("no_such_tool", {})
        assert unknown.is_error
        assert data(await client.call_tool("get_status", {}))["status"] == "ok"
    assert httpx.get(seeded["server"].url + "/api/v1/health", timeout=10).status_code == 200


async def test_forecast(seeded: dict[str, Any]) -> None:
    async with http_client(seeded["server"], seeded["tokens"]["viewer"]) as client:
        ahead = data(await client.call_tool("forecast", {
            "selector": 'cpu_usage{host="b"}', "horizon": "10m", "threshold": 100,
            "max_points": 10}))
        assert ahead["horizon_ms"] == 600_000
        [series] = ahead["series"]
        assert series["series"] == 'cpu_usage{host="b"}'
        assert len(series["values"]) <= 10 and len(series["lower"]) == len(series["values"])
        bad = await client.call_tool("forecast", {"selector": "cpu_usage", "horizon": "-1h"})
        assert bad.is_error and "horizon" in text(bad)


async def test_sessions_energy_and_insights(seeded: dict[str, Any]) -> None:
    async with http_client(seeded["server"], seeded["tokens"]["viewer"]) as client:
        active = data(await client.call_tool("list_sessions", {
            "state": ["active"], "sort": "duration"}))
        assert [s["id"] for s in active["sessions"]] == ["etl-2"]
        running = active["sessions"][0]
        assert running["kind"] == "etl" and running["user"] == "bo"
        assert running["prediction"]["overdue"] is False
        every = data(await client.call_tool("list_sessions", {"kind": "etl", "limit": 1}))
        assert every["shown"] == 1 and every["cursor"]
        rest = data(await client.call_tool("list_sessions", {
            "kind": "etl", "limit": 1, "cursor": every["cursor"]}))
        assert {every["sessions"][0]["id"], rest["sessions"][0]["id"]} == {"etl-1", "etl-2"}

        one = data(await client.call_tool("get_session", {"session_id": "etl-1"}))
        assert one["session"]["state"] == "finished" and one["session"]["status"] == "success"
        assert one["session"]["duration_s"] == 60.0
        assert one["summary"]["by_type"] == {"session.start": 1, "tool_error": 1,
                                             "session.end": 1}
        assert [e["type"] for e in one["timeline"]] == ["session.start", "tool_error",
                                                        "session.end"]
        missing = await client.call_tool("get_session", {"session_id": "nope"})
        assert missing.is_error and "no session 'nope'" in text(missing)

        stats = data(await client.call_tool("session_stats", {}))
        etl = stats["kinds"]["etl"]
        assert etl["active"] == 1 and etl["finished"] == 1
        assert etl["by_status"] == {"success": 1}
        assert stats["model"]["kind"] == "rate"

        changes = data(await client.call_tool("subscribe", {"topic": "sessions", "cursor": 0}))
        assert [(u["session"]["id"], u["session"]["change"]) for u in changes["updates"]
                ][:2] == [("etl-1", "start"), ("etl-1", "update")]
        ends = data(await client.call_tool("subscribe", {
            "topic": "sessions", "cursor": 0, "filters": {"state": ["finished"]}}))
        assert [u["session"]["id"] for u in ends["updates"]] == ["etl-1"]

        energy = data(await client.call_tool("energy_stats", {"window": "1h"}))
        assert energy["parameters"]["selector"] == "machine_power_watts"
        assert len(energy["stats"]) == 16
        assert energy["stats"]["total_readings"] == 3
        assert energy["stats"]["total_energy_kwh"] == 0.291667
        assert energy["stats"]["peak_power_kw"] == 2.0
        assert energy["stats"]["active_machines"] == 1
        assert [m["machine"] for m in energy["machines"]] == ["m1"]
        bad = await client.call_tool("energy_stats", {"window": "soon"})
        assert bad.is_error and "window" in text(bad)

        found = data(await client.call_tool("insights", {"limit": 5}))
        assert found["shown"] <= 5 and found["shown"] == len(found["findings"])
        for finding in found["findings"]:
            assert {"kind", "risk", "summary", "action"} <= set(finding)
