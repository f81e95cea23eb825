"""The demo workloads store plausible series and deploy events through the ingest path."""

from __future__ import annotations

import time
from pathlib import Path

from seismo.collector.demo import DemoWorkload
from seismo.config import load_settings
from seismo.engine import Engine, now_ms
from seismo.query.selector import parse_selector


def test_demo_tick_stores_workloads_and_a_deploy(tmp_path: Path) -> None:
    engine = Engine(load_settings(None, {"data_dir": tmp_path, "collector": False},
                                  environ={}))
    demo = DemoWorkload(engine, seed=7)
    engine.start()
    try:
        demo._next_deploy = time.monotonic()  # due now
        demo.tick()
        demo.tick()
        found = engine.query.instant(parse_selector('{__name__=~".+"}'), 60, now_ms())
        events = engine.events.query(type="deploy", limit=10)
    finally:
        engine.stop()
    metrics = {s["metric"] for s in found}
    assert metrics == {"http_requests_total", "http_request_duration_seconds", "queue_depth",
                       "power_watts", "machine_power_watts", "session_progress"}
    machines = {s["labels"]["machine"] for s in found if s["metric"] == "machine_power_watts"}
    assert len(machines) == 8
    assert all(s["value"] is not None and s["value"] >= 0 for s in found)
    meters = {s["labels"]["meter"] for s in found if s["metric"] == "power_watts"}
    assert meters == {"solar-1", "grid", "hvac"}
    assert len(events) == 1 and events[0].source == "demo-ci"
