"""Ingest and storage benchmark: seismo against VictoriaMetrics on the same data (issue 3).

Run with `make bench` (or `.venv/bin/python bench/ingest.py --help`). One run:

1. generates SERIES x POINTS random-walk samples (2 decimals, 10 s apart, ending now);
2. starts seismo (fresh data dir, free loopback port, --no-collector), posts the data in
   pre-encoded columnar batches from CLIENTS concurrent keep-alive clients, and measures
   durable samples/s, request latency p50/p99, server RSS and CPU, bytes/sample on disk
   after /api/v1/admin/flush, and query_range latency (1 series over 24 h at 1 m step;
   an avg over every series with group_by=job);
3. starts VictoriaMetrics and does the same through its JSON-lines /api/v1/import;
4. (--active-series N) starts a fresh seismo, ingests N distinct series with a few points
   each and reports server RSS.

Every server runs on 127.0.0.1 and is stopped in a `finally`. Server logs are kept in the
printed work directory (data directories are deleted unless --keep).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
STEP_MS = 10_000
METRIC = "bench_metric"
AIMS = {
    "samples_per_s": 300_000,
    "bytes_per_sample": 2.0,
    "query_1_series_ms": 50.0,
    "active_rss_mib": 1024.0,
}


# -- data -------------------------------------------------------------------------------


@dataclass
class Data:
    """series x points random walk: timestamps[points] shared, values[series, points]."""

    timestamps: np.ndarray  # int64 ms, ascending
    values: np.ndarray  # float64, exact 2-decimal numbers

    @property
    def samples(self) -> int:
        return int(self.values.size)


def generate(series: int, points: int, seed: int) -> Data:
    rng = np.random.default_rng(seed)
    end = (time.time_ns() // 1_000_000) // STEP_MS * STEP_MS - STEP_MS
    timestamps = end - STEP_MS * np.arange(points - 1, -1, -1, dtype=np.int64)
    offsets = rng.uniform(10, 100, size=(series, 1))
    walk = np.cumsum(rng.normal(0, 0.5, size=(series, points)), axis=1)
    values = np.round(offsets + walk, 2)
    return Data(timestamps, values)


def split(data: Data, batch: int, series_per_batch: int) -> list[tuple[int, int, int, int]]:
    """Batches as (series_lo, series_hi, point_lo, point_hi), in time order.

    A batch holds `series_per_batch` series x (batch / series_per_batch) points, like an
    agent that pushes the last few points of many series at once. Batch k of a series
    always carries points later than batch k-1, so every series is sent in time order.
    """
    n_series, n_points = data.values.shape
    per = max(1, batch // series_per_batch)
    out = []
    for p in range(0, n_points, per):
        for s in range(0, n_series, series_per_batch):
            out.append((s, min(s + series_per_batch, n_series), p, min(p + per, n_points)))
    return out


def seismo_body(data: Data, part: tuple[int, int, int, int], metric: str,
                labels: Callable[[int], dict[str, str]]) -> bytes:
    s0, s1, p0, p1 = part
    ts = data.timestamps[p0:p1].tolist()
    return msgspec.json.encode({"series": [
        {"metric": metric, "labels": labels(i), "timestamps": ts,
         "values": data.values[i, p0:p1].tolist()}
        for i in range(s0, s1)
    ]})


def vm_body(data: Data, part: tuple[int, int, int, int], metric: str,
            labels: Callable[[int], dict[str, str]]) -> bytes:
    s0, s1, p0, p1 = part
    ts = data.timestamps[p0:p1].tolist()
    lines = [
        msgspec.json.encode({"metric": {"__name__": metric, **labels(i)},
                             "values": data.values[i, p0:p1].tolist(), "timestamps": ts})
        for i in range(s0, s1)
    ]
    return b"\n".join(lines) + b"\n"


def bench_labels(i: int) -> dict[str, str]:
    return {"host": f"h{i}", "job": "bench"}


# -- processes --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server subprocess with its log file; stop() always terminates it."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path,
                 ready_path: str) -> None:
        self.name, self.argv, self.port, self.log_path = name, argv, port, log_path
        self.ready_url = f"http://127.0.0.1:{port}{ready_path}"
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self, timeout_s: float = 60.0) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=ROOT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} at start; "
                                   f"log: {self.log_path}\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout_s}s; log: {self.log_path}")

    @property
    def ps(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def rss(self) -> int:
        proc = self.ps
        return int(proc.memory_info().rss + sum(
            c.memory_info().rss for c in proc.children(recursive=True)))

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


def dir_bytes(*paths: Path) -> int:
    """Total apparent size of the regular files under `paths`."""
    total = 0
    for top in paths:
        for dirpath, _, files in os.walk(top):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


# -- load -------------------------------------------------------------------------------


@dataclass
class LoadResult:
    samples: int
    wall_s: float
    latencies_s: list[float]
    accepted: int = 0
    rejected: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.samples / self.wall_s if self.wall_s else 0.0

    def pct(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000


def percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def send_all(url: str, bodies: list[bytes], counts: list[int], clients: int,
             content_type: str, check: Callable[[httpx.Response, int], tuple[int, int]],
             server: Server, max_retries: int = 50) -> LoadResult:
    """POST every body once (in order, shared among `clients` threads); time the lot.

    `check` returns (accepted, rejected) from a 2xx reply. A 429/503 is retried after a
    pause (bounded); anything else is recorded as an error and the body is not resent.
    """
    lock = threading.Lock()
    state = {"next": 0, "accepted": 0, "rejected": 0, "retries": 0}
    latencies: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        with httpx.Client(timeout=120, headers={"content-type": content_type}) as client:
            while True:
                with lock:
                    i = state["next"]
                    if i >= len(bodies) or len(errors) > 20:
                        return
                    state["next"] = i + 1
                for _attempt in range(max_retries):
                    t0 = time.perf_counter()
                    try:
                        resp = client.post(url, content=bodies[i])
                    except httpx.HTTPError as exc:
                        with lock:
                            errors.append(f"batch {i}: {type(exc).__name__}: {exc}")
                        break
                    took = time.perf_counter() - t0
                    if resp.status_code in (429, 503):
                        with lock:
                            state["retries"] += 1
                        time.sleep(float(resp.headers.get("retry-after", "0.2") or 0.2))
                        continue
                    with lock:
                        latencies.append(took)
                    if resp.is_success:
                        acc, rej = check(resp, counts[i])
                        with lock:
                            state["accepted"] += acc
                            state["rejected"] += rej
                            if rej and len(errors) < 20:
                                errors.append(f"batch {i}: {rej} rejected: "
                                              f"{resp.text[:300]}")
                    else:
                        with lock:
                            errors.append(f"batch {i}: HTTP {resp.status_code}: "
                                          f"{resp.text[:300]}")
                    break
                else:
                    with lock:
                        errors.append(f"batch {i}: still refused after {max_retries} tries")

    me = psutil.Process()
    cpu0, mine0 = server.cpu_s(), sum(me.cpu_times()[:2])
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=3600)
    wall = time.perf_counter() - started
    result = LoadResult(sum(counts), wall, latencies, state["accepted"], state["rejected"],
                        state["retries"], errors)
    if server.alive():
        result.server_cpu_s = server.cpu_s() - cpu0
    result.client_cpu_s = sum(me.cpu_times()[:2]) - mine0
    return result


def seismo_check(resp: httpx.Response, sent: int) -> tuple[int, int]:
    body = resp.json()
    return int(body["accepted"]), int(body["rejected"])


def vm_check(resp: httpx.Response, sent: int) -> tuple[int, int]:
    return sent, 0  # 204, no counts; VictoriaMetrics acks before the data is on disk


def time_queries(client: httpx.Client, url: str, params: dict[str, str], runs: int,
                 expect: Callable[[Any], str | None]) -> dict[str, Any]:
    """Median/p99 latency of `runs` GETs (after one warm-up), and a sanity note."""
    warm = client.get(url, params=params)
    note = (f"HTTP {warm.status_code}: {warm.text[:200]}" if not warm.is_success
            else expect(warm.json()))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        resp = client.get(url, params=params)
        times.append(time.perf_counter() - t0)
        if not resp.is_success:
            note = f"HTTP {resp.status_code}: {resp.text[:200]}"
            break
    return {"median_ms": statistics.median(times) * 1000 if times else float("nan"),
            "p99_ms": percentile(times, 99) * 1000, "runs": len(times), "note": note}


def seismo_points(body: Any) -> str | None:
    series = body.get("series", [])
    points = sum(sum(v is not None for v in s["values"]) for s in series)
    return f"{len(series)} series, {points} non-empty buckets"


def vm_points(body: Any) -> str | None:
    series = body.get("data", {}).get("result", [])
    return f"{len(series)} series, {sum(len(s['values']) for s in series)} points"


# -- phases -----------------------------------------------------------------------------


def seismo_argv(port: int, data_dir: Path, config: Path | None = None) -> list[str]:
    argv = [sys.executable, "-m", "seismo", "serve", "--port", str(port),
            "--data-dir", str(data_dir), "--no-collector", "--log-level", "warning"]
    return argv + (["--config", str(config)] if config is not None else [])


def start_seismo(work: Path) -> Server:
    """`seismo serve` (no collector) on a free port, data and log under `work`; started."""
    port = free_port()
    argv = [sys.executable, "-m", "seismo", "serve", "--port", str(port), "--data-dir",
            str(work / "data"), "--no-collector"]
    server = Server("seismo", argv, port, work / "seismo.log", "/api/v1/health")
    server.start()
    return server


def rules_config(work: Path, count: int, series: int) -> Path | None:
    """A seismo.yaml with `count` alert rules over the bench series (bench/rule_eval.py's
    mix: thresholds, window rules, regex rules), routed nowhere: evaluation cost only."""
    if not count:
        return None
    from rule_eval import make_rules  # bench/rule_eval.py

    path = work / "rules.yaml"
    path.write_text(json.dumps({"rules": make_rules(count, series, METRIC)}))
    return path


def rules_catch_up(client: httpx.Client, samples: int, timeout_s: float = 300.0) -> float:
    """Seconds until the server's rule evaluation has seen every ingested sample."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith("seismo_rule_evaluated_samples_total ") and \
                    float(line.split()[1]) >= samples:
                return time.perf_counter() - t0
        time.sleep(0.05)
    return float("inf")


def run_seismo(args: argparse.Namespace, work: Path, data: Data,
               parts: list[tuple[int, int, int, int]]) -> dict[str, Any]:
    t0 = time.perf_counter()
    bodies = [seismo_body(data, p, METRIC, bench_labels) for p in parts]
    counts = [(p[1] - p[0]) * (p[3] - p[2]) for p in parts]
    print(f"  encoded {len(bodies)} seismo bodies ({sum(map(len, bodies)) / 1e6:.1f} MB) "
          f"in {time.perf_counter() - t0:.1f}s", flush=True)
    data_dir = work / "seismo-data"
    port = free_port()
    config = rules_config(work, args.rules, args.series)
    server = Server("seismo", seismo_argv(port, data_dir, config), port, work / "seismo.log",
                    "/api/v1/health")
    out: dict[str, Any] = {"log": str(server.log_path), "rules": args.rules}
    try:
        server.start()
        out["rss_start_mib"] = server.rss() / 2**20
        load = send_all(f"{server.base}/api/v1/ingest", bodies, counts, args.clients,
                        "application/json", seismo_check, server)
        out["load"] = load
        if not server.alive():
            out["crash"] = f"seismo exited with {server.proc.returncode if server.proc else '?'}"
            return out
        out["rss_end_mib"] = server.rss() / 2**20
        with httpx.Client(base_url=server.base, timeout=600) as client:
            if args.rules:
                out["rules_caught_up_s"] = rules_catch_up(client, sum(counts))
                print(f"  rules: every sample evaluated {out['rules_caught_up_s']:.2f} s after "
                      "the last ingest ack", flush=True)
            out["health_before_flush"] = client.get("/api/v1/health").json()["store"]
            end = int(data.timestamps[-1])
            day = {"start": str(end - 86_400_000), "end": str(end), "step": "1m", "agg": "avg"}
            queries = {
                "1 series, 24 h, 1 m step":
                    {"selector": f'{METRIC}{{host="h1"}}', **day},
                f"avg of {data.values.shape[0]} series, 24 h, 1 m step":
                    {"selector": METRIC, "group_by": "job", **day},
            }
            out["queries_head"] = {
                name: time_queries(client, "/api/v1/query_range", params, args.query_runs,
                                   seismo_points)
                for name, params in queries.items()
            }
            t = time.perf_counter()
            flushed = client.post("/api/v1/admin/flush")
            out["flush_s"] = time.perf_counter() - t
            out["flush"] = (flushed.json() if flushed.is_success
                            else f"HTTP {flushed.status_code}: {flushed.text[:300]}")
            out["health"] = client.get("/api/v1/health").json()["store"]
            out["rss_after_flush_mib"] = server.rss() / 2**20
            out["disk_bytes"] = dir_bytes(data_dir / "blocks", data_dir / "wal")
            out["disk_bytes_all"] = dir_bytes(data_dir)
            out["queries"] = {
                name: time_queries(client, "/api/v1/query_range", params, args.query_runs,
                                   seismo_points)
                for name, params in queries.items()
            }
        out["rss_final_mib"] = server.rss() / 2**20
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return out


def run_vm(args: argparse.Namespace, work: Path, data: Data,
           parts: list[tuple[int, int, int, int]]) -> dict[str, Any]:
    binary = shutil.which(args.vm) or args.vm
    if not Path(binary).exists():
        return {"skipped": f"{args.vm} not found"}
    bodies = [vm_body(data, p, METRIC, bench_labels) for p in parts]
    counts = [(p[1] - p[0]) * (p[3] - p[2]) for p in parts]
    data_dir = work / "vm-data"
    port = free_port()
    argv = [binary, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={data_dir}",
            "-retentionPeriod=100y"]
    server = Server("victoria-metrics", argv, port, work / "vm.log", "/health")
    out: dict[str, Any] = {"log": str(server.log_path)}
    try:
        server.start()
        out["version"] = vm_version(binary)
        load = send_all(f"{server.base}/api/v1/import", bodies, counts, args.clients,
                        "application/json", vm_check, server)
        out["load"] = load
        out["rss_end_mib"] = server.rss() / 2**20
        with httpx.Client(base_url=server.base, timeout=600) as client:
            client.get("/internal/force_flush")
            # The import is asynchronous: wait until every sample is searchable.
            deadline = time.monotonic() + 60
            seen = 0
            while time.monotonic() < deadline:
                resp = client.get("/api/v1/query", params={
                    "query": f"count_over_time({METRIC}[30d])", "time": str(time.time())})
                if resp.is_success:
                    seen = int(sum(float(r["value"][1]) for r in
                                   resp.json()["data"]["result"]))
                    if seen >= data.samples:
                        break
                time.sleep(1)
                client.get("/internal/force_flush")
            out["searchable_samples"] = seen
            # VictoriaMetrics 1.79 keeps fresh parts in memory and writes them out over the
            # next seconds; the size on disk while it runs is a moving target (it was seen
            # going 0.07 -> 0.7 -> 2.5 MB with plateaus of several seconds). Record it after
            # --vm-settle seconds, and take the figure after a clean shutdown (below), when
            # everything is on disk.
            time.sleep(args.vm_settle)
            client.get("/internal/force_flush")
            out["disk_bytes_running"] = dir_bytes(data_dir)
            end_s = int(data.timestamps[-1]) / 1000
            day = {"start": str(end_s - 86_400), "end": str(end_s), "step": "60"}
            queries = {
                "1 series, 24 h, 1 m step": {"query": f'{METRIC}{{host="h1"}}', **day},
                f"avg of {data.values.shape[0]} series, 24 h, 1 m step":
                    {"query": f"avg({METRIC})", **day},
            }
            out["queries"] = {
                name: time_queries(client, "/api/v1/query_range",
                                   {**params, "nocache": "1"}, args.query_runs, vm_points)
                for name, params in queries.items()
            }
        out["rss_final_mib"] = server.rss() / 2**20
        server.stop()  # SIGTERM: VictoriaMetrics flushes everything and exits
        out["exit_code"] = server.proc.returncode if server.proc else None
        # Samples (data/) and the series index (indexdb/); not cache/, which holds the
        # caches VictoriaMetrics saves on shutdown, nor its other small bookkeeping files.
        out["disk_bytes"] = dir_bytes(data_dir / "data", data_dir / "indexdb")
        out["disk_bytes_data"] = dir_bytes(data_dir / "data")
        out["disk_bytes_all"] = dir_bytes(data_dir)
        out["disk_bytes_by_dir"] = {p.name: dir_bytes(p) for p in sorted(data_dir.iterdir())
                                    if p.is_dir()}
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return out


def vm_version(binary: str) -> str:
    """`-version`, or the Debian package version (Debian builds print an empty one)."""
    for cmd in ([binary, "-version"], ["dpkg-query", "-W", "-f=${Version}", "victoria-metrics"]):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            got = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
            if got:
                return got
    return "unknown"


def run_active(args: argparse.Namespace, work: Path, clients: int, tag: str) -> dict[str, Any]:
    n, points = args.active_series, args.active_points
    data = generate(n, points, args.seed + 1)
    per_batch = max(1, args.batch // points)
    parts = [(s, min(s + per_batch, n), 0, points) for s in range(0, n, per_batch)]

    def labels(i: int) -> dict[str, str]:
        return {"id": str(i), "job": "bench"}

    bodies = [seismo_body(data, p, "bench_active", labels) for p in parts]
    counts = [(p[1] - p[0]) * (p[3] - p[2]) for p in parts]
    data_dir = work / f"seismo-{tag}-data"
    port = free_port()
    server = Server("seismo", seismo_argv(port, data_dir), port, work / f"seismo-{tag}.log",
                    "/api/v1/health")
    out: dict[str, Any] = {"log": str(server.log_path), "series": n, "points": points,
                           "clients": clients}
    try:
        server.start()
        out["rss_start_mib"] = server.rss() / 2**20
        load = send_all(f"{server.base}/api/v1/ingest", bodies, counts, clients,
                        "application/json", seismo_check, server)
        out["load"] = load
        if not server.alive():
            out["crash"] = f"seismo exited with {server.proc.returncode if server.proc else '?'}"
            return out
        time.sleep(2)
        out["rss_end_mib"] = server.rss() / 2**20
        with httpx.Client(base_url=server.base, timeout=600) as client:
            out["health"] = client.get("/api/v1/health").json()["store"]
            flushed = client.post("/api/v1/admin/flush")
            out["flush"] = (flushed.json() if flushed.is_success
                            else f"HTTP {flushed.status_code}: {flushed.text[:300]}")
            time.sleep(1)
            out["rss_after_flush_mib"] = server.rss() / 2**20
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return out


# -- report -----------------------------------------------------------------------------


def log_errors(path: Path) -> dict[str, int]:
    """Exception lines (`SomethingError: ...`) in a server log, with their counts."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            head = line.split(":", 1)[0]
            if head.isidentifier() and head.endswith(("Error", "Exception")):
                found[line[:200]] = found.get(line[:200], 0) + 1
    return found


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": model,
            "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "kernel": platform.release()}


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


def verdict(value: float | None, aim: float, lower_is_better: bool) -> str:
    if value is None or np.isnan(value):
        return "n/a"
    ok = value <= aim if lower_is_better else value >= aim
    return "meets" if ok else "misses"


def report(args: argparse.Namespace, data: Data, n_batches: int, res: dict[str, Any]) -> str:
    s, v = res.get("seismo", {}), res.get("vm", {})
    sl: LoadResult | None = s.get("load")
    vl: LoadResult | None = v.get("load")
    samples = data.samples
    s_bps = s["disk_bytes"] / samples if "disk_bytes" in s else None
    v_bps = v["disk_bytes"] / samples if "disk_bytes" in v else None
    q1 = "1 series, 24 h, 1 m step"
    qa = f"avg of {data.values.shape[0]} series, 24 h, 1 m step"

    def q(side: dict[str, Any], key: str, name: str, stat: str) -> float | None:
        got = side.get(key, {}).get(name)
        return None if got is None else float(got[stat])

    def ratio(x: float | None, y: float | None) -> str:
        return "n/a" if not x or not y else f"{x / y:.2f}"

    rows = [
        ("durable samples/s (ingest wall time)",
         sl.rate if sl else None, vl.rate if vl else None, 0,
         f"≥ {AIMS['samples_per_s']:,}", verdict(sl.rate if sl else None,
                                                 AIMS["samples_per_s"], False)),
        ("request latency p50 (ms)", sl.pct(50) if sl else None,
         vl.pct(50) if vl else None, 1, "", ""),
        ("request latency p99 (ms)", sl.pct(99) if sl else None,
         vl.pct(99) if vl else None, 1, "", ""),
        ("server CPU during ingest (% of one core)",
         100 * sl.server_cpu_s / sl.wall_s if sl else None,
         100 * vl.server_cpu_s / vl.wall_s if vl else None, 0, "", ""),
        ("server RSS after ingest (MiB)", s.get("rss_end_mib"), v.get("rss_end_mib"), 0,
         "", ""),
        ("bytes/sample on disk", s_bps, v_bps, 3, f"≤ {AIMS['bytes_per_sample']}",
         verdict(s_bps, AIMS["bytes_per_sample"], True)),
        (f"query: {q1}, median (ms)", q(s, "queries", q1, "median_ms"),
         q(v, "queries", q1, "median_ms"), 1, f"≤ {AIMS['query_1_series_ms']:g}",
         verdict(q(s, "queries", q1, "median_ms"), AIMS["query_1_series_ms"], True)),
        (f"query: {q1}, p99 (ms)", q(s, "queries", q1, "p99_ms"),
         q(v, "queries", q1, "p99_ms"), 1, "", ""),
        (f"query: {qa}, median (ms)", q(s, "queries", qa, "median_ms"),
         q(v, "queries", qa, "median_ms"), 1, "", ""),
        (f"query: {qa}, p99 (ms)", q(s, "queries", qa, "p99_ms"),
         q(v, "queries", qa, "p99_ms"), 1, "", ""),
        (f"query (before flush, from the head): {q1}, median (ms)",
         q(s, "queries_head", q1, "median_ms"), None, 1, "", ""),
        (f"query (before flush, from the head): {qa}, median (ms)",
         q(s, "queries_head", qa, "median_ms"), None, 1, "", ""),
    ]
    lines = [
        f"Data: {data.values.shape[0]:,} series x {data.values.shape[1]:,} points = "
        f"{samples:,} samples, {n_batches} batches of {args.batch:,} "
        f"({args.series_per_batch} series x {max(1, args.batch // args.series_per_batch)} "
        f"points), {args.clients} clients",
        "",
        "| figure | seismo | VictoriaMetrics | seismo/VM | aim | seismo vs aim |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, sv, vv, digits, aim, ok in rows:
        lines.append(f"| {name} | {fmt(sv, digits)} | {fmt(vv, digits)} | {ratio(sv, vv)} "
                     f"| {aim} | {ok} |")
    for key in ("active", "active-1client"):
        a = res.get(key)
        if not a or "series" not in a:
            continue
        al: LoadResult | None = a.get("load")
        stored = a.get("health", {}).get("series")
        complete = stored == a["series"] and al is not None and not al.errors
        rss = a.get("rss_end_mib")
        lines += [
            "",
            f"| {a['series']:,} active series ({a['points']} points each), "
            f"{a['clients']} client(s) | seismo | aim | seismo vs aim |",
            "|---|---:|---|---|",
            f"| series stored / failed requests | {stored:,} / "
            f"{len(al.errors) if al else 'n/a'} | {a['series']:,} / 0 | "
            f"{'ok' if complete else 'FAILED'} |",
            f"| server RSS at start (MiB) | {fmt(a.get('rss_start_mib'), 0)} | | |",
            f"| server RSS after ingest (MiB) | {fmt(rss, 0)} | "
            f"≤ {AIMS['active_rss_mib']:g} | "
            f"{verdict(rss, AIMS['active_rss_mib'], True) if complete else 'not valid'} |",
            f"| server RSS after flush (MiB) | {fmt(a.get('rss_after_flush_mib'), 0)} | | |",
            f"| ingest samples/s | {fmt(al.rate if al else None, 0)} | | |",
        ]
    return "\n".join(lines)


def jsonable(obj: Any) -> Any:
    if isinstance(obj, LoadResult):
        return {"samples": obj.samples, "wall_s": obj.wall_s, "rate": obj.rate,
                "p50_ms": obj.pct(50), "p99_ms": obj.pct(99), "requests": len(obj.latencies_s),
                "accepted": obj.accepted, "rejected": obj.rejected, "retries": obj.retries,
                "errors": obj.errors, "server_cpu_s": obj.server_cpu_s,
                "client_cpu_s": obj.client_cpu_s}
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def print_load(name: str, load: LoadResult) -> None:
    print(f"  {name}: {load.samples:,} samples in {load.wall_s:.2f}s = {load.rate:,.0f}/s; "
          f"p50 {load.pct(50):.1f} ms, p99 {load.pct(99):.1f} ms; "
          f"accepted {load.accepted:,}, rejected {load.rejected:,}, retries {load.retries}; "
          f"server CPU {load.server_cpu_s:.1f}s ({100 * load.server_cpu_s / load.wall_s:.0f}%), "
          f"bench client CPU {load.client_cpu_s:.1f}s", flush=True)
    for err in load.errors[:10]:
        print(f"    ! {err}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--points", type=int, default=2000)
    p.add_argument("--batch", type=int, default=10_000, help="samples per request")
    p.add_argument("--series-per-batch", type=int, default=1000,
                   help="series per request (points per series = batch / this)")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--query-runs", type=int, default=20)
    p.add_argument("--active-series", type=int, default=100_000, help="0 skips the phase")
    p.add_argument("--active-points", type=int, default=5)
    p.add_argument("--vm", default="victoria-metrics", help="binary; missing = skip")
    p.add_argument("--no-vm", action="store_true")
    p.add_argument("--vm-settle", type=float, default=5.0, help="seconds for VM merges")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rules", type=int, default=0,
                   help="alert rules over the series (bench/rule_eval.py's mix)")
    p.add_argument("--work-dir", type=Path, default=None, help="logs (and --keep data)")
    p.add_argument("--keep", action="store_true", help="keep the data directories")
    p.add_argument("--json", type=Path, default=None, help="also write results here")
    args = p.parse_args(argv)
    if args.series < 2 or args.points < 1 or args.batch < 1 or args.clients < 1:
        p.error("need --series >= 2, --points >= 1, --batch >= 1, --clients >= 1")
    args.series_per_batch = min(args.series_per_batch, args.series)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="seismo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    m = machine()
    print(f"seismo ingest benchmark, {started:%Y-%m-%d %H:%M} UTC; work dir {work}")
    print(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, "
          f"Python {m['python']}", flush=True)

    data = generate(args.series, args.points, args.seed)
    parts = split(data, args.batch, args.series_per_batch)
    print(f"data: {data.samples:,} samples, {len(parts)} batches", flush=True)
    results: dict[str, Any] = {"machine": m, "args": {k: str(v) for k, v in vars(args).items()},
                               "started": started.isoformat()}
    print("seismo:", flush=True)
    results["seismo"] = run_seismo(args, work, data, parts)
    if "load" in results["seismo"]:
        print_load("ingest", results["seismo"]["load"])
    if "crash" in results["seismo"]:
        print(f"  ! {results['seismo']['crash']}; log {results['seismo']['log']}")
    if not args.no_vm:
        print("VictoriaMetrics:", flush=True)
        results["vm"] = run_vm(args, work, data, parts)
        if "version" in results["vm"]:
            print(f"  version {results['vm']['version']}")
        if "load" in results["vm"]:
            print_load("import", results["vm"]["load"])
        if "skipped" in results["vm"]:
            print(f"  skipped: {results['vm']['skipped']}")
    if args.active_series > 0:
        print(f"seismo with {args.active_series:,} active series:", flush=True)
        a = results["active"] = run_active(args, work, args.clients, "active")
        if "load" in a:
            print_load("ingest", a["load"])
        if a.get("health", {}).get("series") != args.active_series or a["load"].errors:
            # Not every series got in (see the errors): measure RSS again with one client,
            # so that requests do not overlap, to still have a figure for the aim.
            print(f"  ! only {a.get('health', {}).get('series')} series stored; again with "
                  "1 client:", flush=True)
            a1 = results["active-1client"] = run_active(args, work, 1, "active-1client")
            if "load" in a1:
                print_load("ingest", a1["load"])

    s = results["seismo"]
    for key in ("flush", "health", "flush_s"):
        if key in s:
            print(f"  seismo {key}: {s[key]}")
    for side in ("seismo", "vm"):
        for name, qr in results.get(side, {}).get("queries", {}).items():
            print(f"  {side} query {name}: {qr['note']}")
    if "disk_bytes" in s:
        print(f"  seismo disk: {s['disk_bytes']:,} bytes in blocks/ + wal/ after the flush "
              f"({s['disk_bytes_all']:,} in the whole data dir, with state.db)")
    v = results.get("vm", {})
    if "disk_bytes" in v:
        print(f"  vm disk: {v['disk_bytes']:,} bytes in data/ + indexdb/ after shutdown "
              f"({v['disk_bytes_data']:,} in data/; by dir {v['disk_bytes_by_dir']}), "
              f"{v.get('disk_bytes_running', 0):,} bytes in all "
              f"while running {args.vm_settle:g}s after the import; "
              f"{v.get('searchable_samples', 0):,} samples searchable")
    for side in ("seismo", "active", "active-1client"):
        if side not in results:
            continue
        problems = log_errors(Path(results.get(side, {}).get("log", "/nonexistent")))
        if problems:
            print(f"  ! {side} server log {results[side]['log']} has errors:")
            for line, count in problems.items():
                print(f"    {count} x {line}")
        results[side]["log_errors"] = problems
    print()
    table = report(args, data, len(parts), results)
    print(table)
    results["table"] = table
    if args.json:
        args.json.write_text(json.dumps(jsonable(results), indent=2, default=str))
        print(f"\nresults written to {args.json}")
    print(f"\nlogs in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
