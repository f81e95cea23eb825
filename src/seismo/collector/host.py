"""Host metrics: CPU, load, memory, swap, disk, network and seismo's own process.

A daemon thread samples psutil every `collector_interval_s` and feeds the result through
the same validation and ingest path as `POST /api/v1/ingest`, so host series behave like
any other (detectors, rules, the stream see them).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import psutil

from seismo.collector.periodic import Periodic
from seismo.engine import Engine, now_ms
from seismo.ingest.schema import IngestBody, SeriesIn

log = logging.getLogger(__name__)


def mount_of(path: Path) -> str:
    """The mount point of the filesystem that holds `path` (the longest matching prefix)."""
    target = os.path.realpath(path)
    best = "/"
    try:
        partitions = psutil.disk_partitions(all=True)
    except OSError:
        return best
    for part in partitions:
        mount = part.mountpoint
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best):
            best = mount
    return best


class HostCollector(Periodic):
    """Samples the host every interval and ingests it as `host_*` and `seismo_process_*`."""

    name = "host collector"

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine.settings.collector_interval_s)
        self.engine = engine
        self.host = socket.gethostname()
        self._process = psutil.Process()
        data_dir = engine.settings.data_dir
        self.mounts = sorted({"/", mount_of(data_dir if data_dir.exists() else Path.cwd())})

    def start(self) -> None:
        # The first cpu_percent call only sets the baseline and returns zeros.
        psutil.cpu_percent(interval=None, percpu=True)
        self._process.cpu_percent(interval=None)
        super().start()

    def step(self) -> int:
        return self.collect_once()

    def collect_once(self) -> int:
        """Sample the host once and ingest it; return how many samples were stored."""
        at = now_ms()
        body = IngestBody(series=self.sample())
        prepared = self.engine.validator.columnar(body.series or [], at)
        if prepared.rejected:
            log.warning("host metrics: %d samples refused: %s", prepared.rejected,
                        prepared.errors[:1])
        self.engine.ingestor.submit_blocking(prepared.batch)
        return len(prepared.batch)

    def sample(self) -> list[SeriesIn]:
        """One reading of every host metric, one value per series, timestamp left to ingest."""
        out: list[SeriesIn] = []

        def add(metric: str, value: float, **labels: str) -> None:
            out.append(SeriesIn(metric=metric, values=[float(value)],
                                labels={"host": self.host, **labels}))

        per_core = psutil.cpu_percent(interval=None, percpu=True)
        if per_core:
            add("host_cpu_usage_percent", sum(per_core) / len(per_core), cpu="total")
        for i, pct in enumerate(per_core):
            add("host_cpu_usage_percent", pct, cpu=str(i))
        try:
            load1, load5, load15 = psutil.getloadavg()
        except OSError:
            pass
        else:
            add("host_load1", load1)
            add("host_load5", load5)
            add("host_load15", load15)
        memory = psutil.virtual_memory()
        add("host_memory_used_bytes", memory.total - memory.available)
        add("host_memory_available_bytes", memory.available)
        add("host_memory_usage_percent", memory.percent)
        swap = psutil.swap_memory()
        add("host_swap_used_bytes", swap.used)
        add("host_swap_usage_percent", swap.percent)
        for mount in self.mounts:
            try:
                usage = psutil.disk_usage(mount)
            except OSError:
                continue
            add("host_disk_usage_percent", usage.percent, mount=mount)
            add("host_disk_used_bytes", usage.used, mount=mount)
        disk_io = psutil.disk_io_counters()
        if disk_io is not None:
            add("host_disk_read_bytes_total", disk_io.read_bytes)
            add("host_disk_written_bytes_total", disk_io.write_bytes)
        net_io = psutil.net_io_counters()
        add("host_network_received_bytes_total", net_io.bytes_recv)
        add("host_network_sent_bytes_total", net_io.bytes_sent)
        add("host_processes", len(psutil.pids()))
        with self._process.oneshot():
            add("seismo_process_cpu_percent", self._process.cpu_percent(interval=None))
            add("seismo_process_rss_bytes", self._process.memory_info().rss)
        return out
