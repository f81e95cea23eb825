"""Alerts across a kill -9 (found by bench/chaos/crash.py): a kill between an alert's change
and the notification its group sends later (the group_wait of a new alert, the
group_interval of a resolve) loses no notification, since the restarted server reads in
the outbox what the channels heard; and an alert firing again continues its episodes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import httpx
import yaml

from seismo.notify import Alert, Notification, Reason
from seismo.notify.outbox import Outbox
from tests.receiver import Receiver
from tests.server import ServerProcess

ENV = {"SEISMO_DETECT__ENABLED": "false"}


def serve(tmp_path: Path, receiver: Receiver, severity: str, group_wait: str,
          group_interval: str) -> ServerProcess:
    path = tmp_path / "seismo.yaml"
    path.write_text(yaml.safe_dump({
        "rules": [{"name": "Hot", "expr": "temp > 90", "severity": severity}],
        "channels": [{"name": "oncall", "type": "webhook", "url": receiver.url + "/hook"}],
        "routes": [{"channels": ["oncall"], "group_wait": group_wait,
                    "group_interval": group_interval}],
        "alerting": {"tick_s": 0.05},
    }))
    return ServerProcess(tmp_path / "data", "--no-collector", "--config", str(path),
                         env=ENV).start()


def push(url: str, value: float) -> None:
    reply = httpx.post(url + "/api/v1/ingest", json={"samples": [
        {"metric": "temp", "labels": {"room": "a"}, "value": value}]})
    assert reply.status_code == 200 and reply.json()["accepted"] == 1, reply.text


def state(url: str) -> str:
    alerts = httpx.get(url + "/api/v1/alerts").json()["alerts"]
    return str(alerts[0]["state"]) if alerts else "none"


def wait_state(url: str, want: str) -> None:
    deadline = time.monotonic() + 10
    while state(url) != want and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state(url) == want


def test_resolve_waiting_for_its_group_interval_is_notified_after_kill(tmp_path: Path) -> None:
    with Receiver() as receiver:
        server = serve(tmp_path, receiver, "critical", "0s", "2s")
        try:
            push(server.url, 95)
            first = receiver.wait(1)[0].json()
            assert first["status"] == "firing"
            push(server.url, 10)
            wait_state(server.url, "resolved")
            server.kill()  # within the 2 s before the group would have sent "resolved"
            assert len(receiver.requests) == 1
            server.start()
            second = receiver.wait(2, timeout_s=15)[1].json()
            assert second["status"] == "resolved"
            assert second["alerts"][0]["startsAt"] == first["alerts"][0]["startsAt"]
        finally:
            server.stop()


def test_alert_still_in_its_group_wait_is_notified_after_kill(tmp_path: Path) -> None:
    with Receiver() as receiver:
        server = serve(tmp_path, receiver, "high", "1s", "1m")
        try:
            push(server.url, 95)
            wait_state(server.url, "firing")
            server.kill()  # within the group_wait: nobody was told yet
            assert receiver.requests == []
            server.start()
            first = receiver.wait(1, timeout_s=15)[0].json()
            assert first["status"] == "firing"
            assert first["alerts"][0]["labels"]["alertname"] == "Hot"
        finally:
            server.stop()


def test_alert_told_before_the_kill_is_not_notified_again(tmp_path: Path) -> None:
    with Receiver() as receiver:
        server = serve(tmp_path, receiver, "critical", "0s", "1s")
        try:
            push(server.url, 95)
            receiver.wait(1)
            deadline = time.monotonic() + 10
            while (httpx.get(server.url + "/api/v1/outbox").json()["counts"].get("sent") != 1
                   and time.monotonic() < deadline):
                time.sleep(0.02)
            server.kill()
            server.start()
            time.sleep(1.5)  # a group_wait and a group_interval
            assert len(receiver.requests) == 1
            push(server.url, 10)  # and its resolve still reaches the receiver
            assert receiver.wait(2, timeout_s=10)[1].json()["status"] == "resolved"
        finally:
            server.stop()


def test_outbox_told_lists_the_alerts_of_stored_notifications(tmp_path: Path) -> None:
    now = [1_000]
    outbox = Outbox(tmp_path / "state.db", dict, clock=lambda: now[0])
    try:
        def put(fp: str, status: Literal["firing", "resolved"], starts: int) -> None:
            alert = Alert(fp, status, {"alertname": "Hot"}, {}, starts_at_ms=starts,
                          ends_at_ms=None if status == "firing" else starts + 5)
            outbox.put("oncall", Notification("oncall", "{}:{}", {}, (alert,), Reason.FIRST,
                                              now[0]))

        put("a", "firing", 900)
        now[0] = 2_000
        put("a", "resolved", 900)
        put("b", "firing", 1_950)
        assert outbox.told(0) == ({("a", "firing", 900), ("a", "resolved", 900),
                                   ("b", "firing", 1_950)}, 0)
        assert outbox.told(1_500)[0] == {("a", "resolved", 900), ("b", "firing", 1_950)}
    finally:
        outbox.close()


def test_firing_again_after_a_restart_continues_the_episode_count(tmp_path: Path) -> None:
    with Receiver() as receiver:
        server = serve(tmp_path, receiver, "critical", "0s", "1s")
        try:
            push(server.url, 95)
            wait_state(server.url, "firing")
            push(server.url, 10)
            wait_state(server.url, "resolved")
            server.kill()
            server.start()
            push(server.url, 95)
            wait_state(server.url, "firing")
            (alert,) = httpx.get(server.url + "/api/v1/alerts").json()["alerts"]
            assert alert["episode"] == 2
            steps = httpx.get(server.url + f"/api/v1/alerts/{alert['id']}").json()
            assert [(t["episode"], t["from"], t["to"]) for t in steps["transitions"]] == [
                (1, None, "firing"), (1, "firing", "resolved"), (2, "resolved", "firing")]
        finally:
            server.stop()
