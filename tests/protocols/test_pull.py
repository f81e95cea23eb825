"""Scraping and MQTT against a real server: it scrapes real `/metrics` pages (its own and a
dead target) and subscribes to the Mosquitto broker on 127.0.0.1:1883."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from seismo.config import load_settings
from seismo.errors import ConfigError
from tests.server import ServerProcess, free_port

PREFIX = f"seismo-test-{uuid.uuid4().hex[:8]}"


def broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    work = tmp_path_factory.mktemp("pull")
    port = free_port()
    dead = free_port()  # nothing listens there
    config = work / "seismo.yaml"
    config.write_text(json.dumps({
        "scrape_configs": [
            {"job_name": "self", "scrape_interval": "2s", "scrape_timeout": "2s",
             "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"env": "t"}},
                                {"targets": [f"127.0.0.1:{dead}"], "labels": {"env": "t"}},
                                {"targets": ["127.0.0.1:9"], "labels": {"env": "skip"}}],
             "relabel_configs": [{"source_labels": ["env"], "regex": "skip",
                                  "action": "drop"}]},
            {"job_name": "metadata", "scrape_interval": "1s", "scrape_timeout": "1s",
             "static_configs": [{"targets": ["169.254.169.254:80"]}]}],
        "mqtt": {"reconnect_min_s": 1, "reconnect_max_s": 2, "flush_interval_s": 0.05,
                 "subscriptions": [
                     {"topic": f"{PREFIX}/+/power", "metric": "mq_power_watts",
                      "labels": {"machine": "<+1>", "site": "plant"}},
                     {"topic": f"{PREFIX}/json/#", "metric": "mq_json",
                      "labels": {"path": "<#>"}, "value": "data.v"}]},
    }))
    srv = ServerProcess(work / "data", "--no-collector", "--config", str(config))
    srv.port = port
    srv.start(timeout_s=90)  # a loaded CI machine starts it slowly
    yield srv
    srv.stop()


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def wait_latest(http: httpx.Client, selector: str, count: int = 1,
                timeout_s: float = 15.0) -> dict[tuple[tuple[str, str], ...], Any]:
    deadline = time.monotonic() + timeout_s
    found: dict[tuple[tuple[str, str], ...], Any] = {}
    while time.monotonic() < deadline:
        reply = http.get("/api/v1/query", params={"selector": selector, "window": "1h"})
        found = {tuple(sorted(s["labels"].items())): s for s in reply.json()["series"]}
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{selector}: {len(found)} of {count} series after {timeout_s} s")


def test_scrape_up_duration_and_samples(server: ServerProcess, http: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while True:  # a scrape of a loaded machine may time out (up 0); the next one is due
        ups = wait_latest(http, 'up{job="self"}', count=2)
        by_instance = {dict(k)["instance"]: s["value"] for k, s in ups.items()}
        if by_instance[f"127.0.0.1:{server.port}"] == 1.0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert by_instance[f"127.0.0.1:{server.port}"] == 1.0
    assert len(by_instance) == 2 and sorted(by_instance.values()) == [0.0, 1.0]
    assert "127.0.0.1:9" not in by_instance  # dropped by relabel_configs
    durations = wait_latest(http, 'scrape_duration_seconds{job="self"}', count=2)
    assert all(0 <= s["value"] < 2 for s in durations.values())
    scraped = wait_latest(http, 'seismo_samples_ingested_total{job="self",env="t"}')
    assert next(iter(scraped.values()))["value"] > 0


def test_a_metadata_address_is_never_scraped(server: ServerProcess,
                                             http: httpx.Client) -> None:
    (up,) = wait_latest(http, 'up{job="metadata"}').values()
    assert up["value"] == 0.0
    (scraped,) = wait_latest(http, 'scrape_samples_scraped{job="metadata"}').values()
    assert scraped["value"] == 0.0


@pytest.mark.skipif(not broker_up(), reason="no MQTT broker on 127.0.0.1:1883")
def test_mqtt_messages_become_samples(server: ServerProcess, http: httpx.Client) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # until the server's subscription is live
            client.publish(f"{PREFIX}/m1/power", b"12.5", qos=1).wait_for_publish(5)
            reply = http.get("/api/v1/query", params={"selector": "mq_power_watts"})
            if reply.json()["series"]:
                break
            time.sleep(0.2)
        for topic, payload in ((f"{PREFIX}/m2/power", b'{"value": 3}'),
                               (f"{PREFIX}/m3/power", b"not a number"),
                               (f"{PREFIX}/json/a/b", b'{"data": {"v": 7}}')):
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
    power = wait_latest(http, "mq_power_watts", count=2)
    assert {dict(k)["machine"]: s["value"] for k, s in power.items()} == {"m1": 12.5, "m2": 3.0}
    assert all(dict(k)["site"] == "plant" for k in power)
    (labels, sample), = wait_latest(http, "mq_json").items()
    assert dict(labels) == {"path": "a/b"} and sample["value"] == 7.0
    metrics = http.get("/metrics").text
    assert 'seismo_samples_rejected_total{reason="mqtt_payload"} 1.0' in metrics


def test_a_bad_scrape_config_stops_the_start(tmp_path: Path) -> None:
    config = tmp_path / "seismo.yaml"
    config.write_text(json.dumps({"scrape_configs": [{"job_name": "x", "static_configs": [
        {"targets": ["a:1"]}], "relabel_configs": [{"source_labels": ["job"],
                                                     "regex": "("}]}]}))
    with pytest.raises(ConfigError, match="bad regex"):
        load_settings(config, {}, environ={})
