"""The host collector feeds real psutil readings through the ingest path into the store."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from seismo.collector.host import HostCollector
from seismo.config import load_settings
from seismo.engine import Engine, now_ms
from seismo.query.selector import parse_selector

EXPECTED = {
    "host_cpu_usage_percent", "host_load1", "host_load5", "host_load15",
    "host_memory_used_bytes", "host_memory_available_bytes", "host_memory_usage_percent",
    "host_swap_used_bytes", "host_swap_usage_percent", "host_disk_usage_percent",
    "host_disk_used_bytes", "host_network_received_bytes_total",
    "host_network_sent_bytes_total", "host_processes", "seismo_process_cpu_percent",
    "seismo_process_rss_bytes",
}


def _engine(tmp_path: Path, interval_s: float = 0.2) -> Engine:
    settings = load_settings(None, {"data_dir": tmp_path, "collector": True,
                                    "collector_interval_s": interval_s}, environ={})
    return Engine(settings)


def _latest(engine: Engine) -> list[dict[str, Any]]:
    return engine.query.instant(parse_selector('{__name__=~".+"}'), 60, now_ms())


def test_collector_stores_host_metrics(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    engine.background.append(HostCollector(engine))
    engine.start()
    try:
        deadline = time.monotonic() + 5
        while not engine.query.series(parse_selector("host_cpu_usage_percent")):
            assert time.monotonic() < deadline, "no host metrics after 5 s"
            time.sleep(0.05)
        found = _latest(engine)
        while any(s["value"] is None for s in found):  # series exist before the fsync
            assert time.monotonic() < deadline, "host series without values after 5 s"
            time.sleep(0.05)
            found = _latest(engine)
    finally:
        engine.stop()

    by_metric: dict[str, list[dict[str, Any]]] = {}
    for series in found:
        by_metric.setdefault(series["metric"], []).append(series)
    assert set(by_metric) >= EXPECTED
    assert all(s["labels"]["host"] == socket.gethostname() for s in found)

    cpus = {s["labels"]["cpu"]: s["value"] for s in by_metric["host_cpu_usage_percent"]}
    assert "total" in cpus and "0" in cpus
    assert all(0 <= v <= 100 for v in cpus.values())

    def value(metric: str) -> float:
        result: float = by_metric[metric][0]["value"]
        return result

    assert 0 < value("host_memory_usage_percent") <= 100
    assert value("host_memory_used_bytes") > 0
    assert value("host_memory_available_bytes") > 0
    assert value("host_load1") >= 0
    assert value("host_processes") >= 1
    assert value("seismo_process_rss_bytes") > 10_000_000  # a Python with numpy loaded
    disks = by_metric["host_disk_usage_percent"]
    assert "/" in {s["labels"]["mount"] for s in disks}
    assert all(0 <= s["value"] <= 100 for s in disks)


def test_one_tick_is_fast(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    collector = HostCollector(engine)
    engine.start()
    try:
        collector.collect_once()  # the first tick creates the series
        started = time.perf_counter()
        series = collector.sample()
        elapsed = time.perf_counter() - started
        stored = collector.collect_once()
    finally:
        engine.stop()
    assert elapsed < 0.05
    assert stored == len(series) >= len(EXPECTED)


def test_a_failing_store_does_not_kill_the_thread(tmp_path: Path) -> None:
    engine = _engine(tmp_path, interval_s=0.05)
    collector = HostCollector(engine)
    engine.start()
    engine.ingestor.stop()  # every tick now meets StorageUnavailable
    collector.start()
    try:
        time.sleep(0.3)
        assert collector._thread is not None and collector._thread.is_alive()
    finally:
        collector.stop()
        engine.stop()
