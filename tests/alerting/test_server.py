"""Alerting in a real server: rules on ingest → alert → webhook at a local receiver.

Each test starts `seismo serve` with a seismo.yaml of rules, channels and routes, ingests
over HTTP and checks what a receiver gets and what the API shows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.receiver import Receiver
from tests.server import ServerProcess, free_port, wait_for

ENV = {"SEISMO_DETECT__ENABLED": "false"}


def config(tmp_path: Path, receiver_url: str, **extra: Any) -> Path:
    doc = {
        "rules": [{"name": "HighCPU", "expr": 'cpu{host=~"web.*"} > 90',
                   "resolve": "cpu < 80", "severity": "critical",
                   "labels": {"team": "infra"},
                   "annotations": {"summary": "CPU {{ $value }}% on {{ $labels.host }}"}}],
        "channels": [{"name": "oncall", "type": "webhook", "url": receiver_url + "/hook",
                      "bearer_token": "s3cret-token"}],
        "routes": [{"match": {"team": "infra"}, "channels": ["oncall"],
                    "group_by": ["alertname", "host"], "group_wait": "0s",
                    "group_interval": "1s"}],
        "alerting": {"tick_s": 0.05, "outbox_backoff_max_s": 0.5},
        **extra,
    }
    path = tmp_path / "seismo.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def serve(tmp_path: Path, cfg: Path) -> ServerProcess:
    return ServerProcess(tmp_path / "data", "--no-collector", "--config", str(cfg),
                         env=ENV).start()


def push(client: httpx.Client, metric: str, value: float, **labels: str) -> None:
    reply = client.post("/api/v1/ingest", json={"samples": [
        {"metric": metric, "labels": labels, "value": value}]})
    assert reply.status_code == 200 and reply.json()["accepted"] == 1, reply.text



def test_threshold_alert_reaches_webhook_then_ack_and_resolve(tmp_path: Path,
                                                               receiver: Receiver) -> None:
    server = serve(tmp_path, config(tmp_path, receiver.url))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            push(client, "cpu", 50, host="web-1")
            push(client, "cpu", 97, host="web-1")
            first = receiver.wait(1)[0]
            assert first.path == "/hook"
            assert first.headers["Authorization"] == "Bearer s3cret-token"
            body = first.json()
            assert body["version"] == "4" and body["status"] == "firing"
            assert body["receiver"] == "oncall"
            assert body["groupLabels"] == {"alertname": "HighCPU", "host": "web-1"}
            assert body["groupKey"].endswith(':{alertname="HighCPU", host="web-1"}')
            (alert,) = body["alerts"]
            assert alert["labels"] == {"alertname": "HighCPU", "host": "web-1",
                                       "severity": "critical", "team": "infra"}
            assert alert["annotations"] == {"summary": "CPU 97% on web-1"}
            assert alert["endsAt"] == "0001-01-01T00:00:00Z"

            alerts = client.get("/api/v1/alerts", params={"state": "firing"}).json()["alerts"]
            assert [a["labels"]["host"] for a in alerts] == ["web-1"]
            alert_id = alerts[0]["id"]
            assert alert_id == alert["fingerprint"]

            # Between resolve (80) and fire (90): hysteresis keeps it firing.
            push(client, "cpu", 85, host="web-1")
            reply = client.post(f"/api/v1/alerts/{alert_id}/ack",
                                json={"comment": "on it", "by": "alice"})
            assert reply.status_code == 200, reply.text
            assert reply.json()["state"] == "acknowledged"
            assert reply.json()["ack_by"] == "alice"
            again = client.post(f"/api/v1/alerts/{alert_id}/ack", json={})
            assert again.status_code == 400 and again.json()["field"] == "state"

            push(client, "cpu", 70, host="web-1")
            resolved = receiver.wait(2)[1].json()
            assert resolved["status"] == "resolved"
            assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"

            detail = client.get(f"/api/v1/alerts/{alert_id}").json()
            assert detail["state"] == "resolved"
            assert [(t["from"], t["to"]) for t in detail["transitions"]] == [
                (None, "firing"), ("firing", "acknowledged"), ("acknowledged", "resolved")]
            assert detail["transitions"][1]["comment"] == "on it"
            channels = client.get("/api/v1/channels").json()["channels"]
            assert "s3cret-token" not in str(channels)
            wait_for(lambda: 'seismo_notifications{state="sent"} 2.0'
                     in client.get("/metrics").text)
            metrics = client.get("/metrics").text
            assert "seismo_alert_rules 1.0" in metrics and "seismo_alerts_active 0.0" in metrics
    finally:
        server.stop()
    assert "s3cret-token" not in server.log.read_text()


def test_bad_rules_are_refused_with_the_reason(tmp_path: Path, receiver: Receiver) -> None:
    server = serve(tmp_path, config(tmp_path, receiver.url))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            bad = client.post("/api/v1/rules", json={"name": "X", "expr": "rate(x[5]) > 1"})
            assert bad.status_code == 400
            assert bad.json()["field"] == "rule.expr" and bad.json()["position"] == 7
            assert client.post("/api/v1/rules", json={"name": "X", "expr": "x > 1",
                                                      "severity": "urgent"}
                               ).json()["field"] == "rule.severity"
            assert client.post("/api/v1/rules", json={"name": "X", "expr": "x > 1",
                                                      "colour": "red"}
                               ).json()["field"] == "rule.colour"
            file_rule = client.delete("/api/v1/rules/HighCPU")
            assert file_rule.status_code == 400 and "seismo.yaml" in file_rule.json()["error"]

            made = client.post("/api/v1/rules", json={"name": "Disk", "expr": "disk > 90",
                                                      "for": "0s", "severity": "high"})
            assert made.status_code == 201, made.text
            assert made.json()["source"] == "api"
            dup = client.post("/api/v1/rules", json={"name": "Disk", "expr": "disk > 1"})
            assert dup.status_code == 400 and dup.json()["field"] == "rule.name"
            push(client, "disk", 95, mount="/")
            wait_for(lambda: client.get("/api/v1/alerts", params={"rule": "Disk"}).json()
                     ["alerts"])
            changed = client.put("/api/v1/rules/Disk", json={"expr": "disk > 99"})
            assert changed.status_code == 200 and changed.json()["expr"] == "disk > 99"
            alerts = client.get("/api/v1/alerts", params={"rule": "Disk"}).json()["alerts"]
            assert alerts[0]["state"] == "resolved"  # its expression changed
            assert client.delete("/api/v1/rules/Disk").status_code == 200
            assert client.get("/api/v1/rules/Disk").status_code == 404
            names = [r["name"] for r in client.get("/api/v1/rules").json()["rules"]]
            assert names == ["HighCPU"]
    finally:
        server.stop()


def test_rule_file_hot_reload_keeps_old_rules_on_error(tmp_path: Path,
                                                       receiver: Receiver) -> None:
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text("rules:\n  - name: Mem\n    expr: mem > 90\n")
    cfg = config(tmp_path, receiver.url,
                 alerting={"rule_files": [str(rule_file)], "reload_interval_s": 0.1,
                           "tick_s": 0.05})
    server = serve(tmp_path, cfg)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            names = [r["name"] for r in client.get("/api/v1/rules").json()["rules"]]
            assert names == ["HighCPU", "Mem"]
            rule_file.write_text("rules:\n  - name: Mem\n    expr: mem > 80\n"
                                 "  - name: Swap\n    expr: swap >>> 1\n")
            files = wait_for(lambda: [f for f in client.get("/api/v1/rules").json()["files"]
                                      if not f["ok"]])
            assert "line 4" in files[0]["error"] and "position" in files[0]["error"]
            rules = client.get("/api/v1/rules").json()["rules"]
            assert [(r["name"], r["expr"]) for r in rules] == [
                ("HighCPU", 'cpu{host=~"web.*"} > 90'), ("Mem", "mem > 90")]
            rule_file.write_text("rules:\n  - name: Swap\n    expr: swap > 1\n")
            wait_for(lambda: [r["name"] for r in client.get("/api/v1/rules").json()["rules"]]
                     == ["HighCPU", "Swap"])
    finally:
        server.stop()


def test_custom_alert_silence_and_restart(tmp_path: Path, receiver: Receiver) -> None:
    server = serve(tmp_path, config(tmp_path, receiver.url))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            silence = client.post("/api/v1/silences", json={
                "matchers": {"host": "web-2"}, "ends_at": "now+1h", "comment": "maintenance"})
            assert silence.status_code == 201, silence.text
            push(client, "cpu", 99, host="web-2")
            alert = wait_for(lambda: client.get("/api/v1/alerts").json()["alerts"])[0]
            assert alert["state"] == "firing" and alert["silenced_by"] == [silence.json()["id"]]

            custom = client.post("/api/v1/alerts", json={
                "name": "BackupFailed", "labels": {"team": "infra", "job": "nightly"},
                "annotations": {"summary": "backup did not finish"}, "severity": "high"})
            assert custom.status_code == 201, custom.text
            assert custom.json()["state"] == "firing"
            body = receiver.wait(1)[0].json()  # the silenced one is not sent
            assert body["alerts"][0]["labels"]["alertname"] == "BackupFailed"
            assert body["alerts"][0]["annotations"] == {"summary": "backup did not finish"}
            bad = client.post("/api/v1/alerts", json={"name": "X", "severity": "loud"})
            assert bad.status_code == 400 and bad.json()["field"] == "alert.severity"
            # Delivered and recorded as sent (a kill between the two would send it again).
            wait_for(lambda: client.get("/api/v1/outbox").json()["counts"].get("sent") == 1)
        server.kill()  # kill -9: alerts and silences are durable
        server = serve(tmp_path, config(tmp_path, receiver.url))
        with httpx.Client(base_url=server.url, timeout=10) as client:
            firing = client.get("/api/v1/alerts", params={"state": "firing"}).json()["alerts"]
            assert sorted(a["labels"]["alertname"] for a in firing) == ["BackupFailed",
                                                                        "HighCPU"]
            assert client.get("/api/v1/silences").json()["silences"][0]["state"] == "active"
            custom_id = next(a["id"] for a in firing
                             if a["labels"]["alertname"] == "BackupFailed")
            done = client.post(f"/api/v1/alerts/{custom_id}/resolve", json={"comment": "rerun"})
            assert done.status_code == 200 and done.json()["state"] == "resolved"
            # Not notified again after the restart; its resolve is.
            second = receiver.wait(2)[1].json()
            assert second["status"] == "resolved", second
            assert second["alerts"][0]["labels"]["alertname"] == "BackupFailed"
        time.sleep(0.3)
        assert len(receiver.requests) == 2
    finally:
        server.stop()


def test_outbox_survives_kill_and_receiver_outage(tmp_path: Path) -> None:
    port = free_port()  # the receiver is down: nothing listens here yet
    cfg = config(tmp_path, f"http://127.0.0.1:{port}")
    server = serve(tmp_path, cfg)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(3):
                push(client, "cpu", 95, host=f"web-{i}")
            wait_for(lambda: client.get("/api/v1/outbox", params={"state": "pending"}).json()
                     ["counts"].get("pending", 0) == 3)
        server.kill()
        server = serve(tmp_path, cfg)
        with Receiver(port) as receiver:
            got = receiver.wait(3)
            time.sleep(0.5)  # nothing more arrives: each was sent once
            assert len(receiver.requests) == 3
            hosts = sorted(r.json()["alerts"][0]["labels"]["host"] for r in got)
            assert hosts == ["web-0", "web-1", "web-2"]
    finally:
        server.stop()


def test_transitions_are_streamed_on_the_alerts_topic(tmp_path: Path,
                                                      receiver: Receiver) -> None:
    server = serve(tmp_path, config(tmp_path, receiver.url))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            params = [("topic", "alerts"), ("severity", "critical"), ("state", "firing"),
                      ("state", "resolved")]
            with client.stream("GET", "/api/v1/stream/sse", params=params) as response:
                push(client, "cpu", 99, host="web-7")
                push(client, "cpu", 10, host="web-7")
                got = []
                for line in response.iter_lines():
                    if line.startswith("data: ") and '"type":"alert"' in line:
                        got.append(json.loads(line[6:])["alert"])
                        if len(got) == 2:
                            break
            assert [(d["state"], d["transition"]["from"]) for d in got] == [
                ("firing", None), ("resolved", "firing")]
            assert got[0]["labels"]["host"] == "web-7" and got[0]["rule"] == "HighCPU"
            assert isinstance(got[0]["sid"], str)
    finally:
        server.stop()
