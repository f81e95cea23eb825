"""Alert latency benchmark: threshold crossing to webhook POST, seismo against Prometheus +
Alertmanager (issue 6).

Run with `make bench` (or `.venv/bin/python bench/alert_latency.py --help`). One run starts
a webhook receiver on a loopback port (it notes when each POST arrives and which trial's
alert fires in it), then:

1. seismo (fresh data dir, --no-collector, anomaly detection off) with a seismo.yaml of one
   rule `bench_flip > 50`, a webhook channel to the receiver and a route with group_wait 0s;
   a separate process posts one sample of each of 1,000 `bench_bg` series every 100 ms.
   Trial i: t0 just before `POST /api/v1/ingest` of `bench_flip{trial="i"} 100` on a
   keep-alive connection; latency = arrival of the firing webhook for trial i - t0; then
   the value goes back to 0 (the alert resolves);
2. Prometheus + Alertmanager at their fastest sensible settings (1 s scrape and rule
   evaluation, `for: 0s`, group_wait 0s, group_interval 1s, group_by ['...']) scraping an
   exporter in this process that serves the same 1,000 series (values changing) and the
   probe. Trial i: t0 = when the exporter starts serving `bench_flip{trial="i"} 100`;
   latency = arrival of the firing webhook for trial i - t0; then the probe is dropped.

Trials run one at a time, each after a random pause (up to one ingest period for seismo, up
to one scrape interval for the peer) so that t0 falls at a random phase of the periodic
work. Everything runs on 127.0.0.1; every process is stopped in a `finally`; logs stay in
the printed work directory.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np

from ingest import Server, fmt, free_port, log_errors, machine  # bench/ingest.py

AIM_P99_MS = 50.0
FLIP, BACKGROUND = "bench_flip", "bench_bg"
INSTALL = "apt-get install -y prometheus prometheus-alertmanager"
PROMETHEUS_NAMES = ("prometheus",)
ALERTMANAGER_NAMES = ("prometheus-alertmanager", "alertmanager")  # Debian's name first
CONSECUTIVE_TIMEOUTS_MAX = 5  # a side that misses this many in a row is broken: stop it
SEISMO, PEER = "seismo", "Prometheus + Alertmanager"


# -- the webhook receiver ----------------------------------------------------------------


@dataclass
class Arrival:
    at: float  # time.perf_counter() when the POST's headers were read
    wall_s: float  # time.time() at the same moment
    starts_at_s: float | None  # the alert's startsAt (when the rule fired), epoch seconds


@dataclass
class Receiver:
    """Webhook receiver on a loopback port: the first firing arrival per (path, trial)."""

    firing: dict[tuple[str, str], Arrival] = field(default_factory=dict)
    posts: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver

            def do_POST(self) -> None:
                at, wall = time.perf_counter(), time.time()
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()
                receiver.record(self.path, at, wall, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.1,),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def record(self, path: str, at: float, wall: float, body: bytes) -> None:
        try:
            doc = json.loads(body)
            alerts = doc["alerts"]
        except (ValueError, KeyError, TypeError) as exc:
            with self.cond:
                if len(self.bad) < 20:
                    self.bad.append(f"{path}: not a webhook v4 body ({exc}): {body[:200]!r}")
            return
        with self.cond:
            self.posts[path] = self.posts.get(path, 0) + 1
            for alert in alerts:
                trial = alert.get("labels", {}).get("trial")
                if alert.get("status") == "resolved":
                    self.resolved[path] = self.resolved.get(path, 0) + 1
                elif trial is not None and (path, trial) not in self.firing:
                    self.firing[(path, trial)] = Arrival(at, wall,
                                                         epoch_s(alert.get("startsAt")))
            self.cond.notify_all()

    def wait(self, path: str, trial: str, timeout_s: float) -> Arrival | None:
        with self.cond:
            self.cond.wait_for(lambda: (path, trial) in self.firing, timeout_s)
            return self.firing.get((path, trial))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def epoch_s(rfc3339: Any) -> float | None:
    """Epoch seconds of an RFC 3339 time (Go's, with up to 9 fraction digits), or None."""
    if not isinstance(rfc3339, str):
        return None
    with contextlib.suppress(ValueError):
        return dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
    return None


# -- trials --------------------------------------------------------------------------------


@dataclass
class Trials:
    name: str
    asked: int
    latencies_s: list[float] = field(default_factory=list)
    after_fire_s: list[float] = field(default_factory=list)  # startsAt -> webhook arrival
    timed_out: int = 0
    errors: list[str] = field(default_factory=list)
    stopped: str = ""
    wall_s: float = 0.0

    def figures(self) -> dict[str, Any]:
        ms = np.asarray(self.latencies_s) * 1000
        after = np.asarray(self.after_fire_s) * 1000

        def pct(xs: np.ndarray, q: float) -> float | None:
            return float(np.percentile(xs, q)) if xs.size else None

        return {"system": self.name, "trials": self.asked, "measured": int(ms.size),
                "timed_out": self.timed_out, "p50_ms": pct(ms, 50), "p90_ms": pct(ms, 90),
                "p99_ms": pct(ms, 99), "max_ms": float(ms.max()) if ms.size else None,
                "after_fire_p50_ms": pct(after, 50), "after_fire_p99_ms": pct(after, 99),
                "wall_s": self.wall_s, "errors": self.errors, "stopped": self.stopped}


def run_trials(name: str, n: int, warmup: int, flip: Callable[[str], float],
               unflip: Callable[[str], None], receiver: Receiver, path: str,
               pause_s: Callable[[], float], timeout_s: float) -> Trials:
    """`warmup` uncounted trials, then `n` measured ones, strictly one after the other."""
    out = Trials(name, n)
    started = time.monotonic()
    consecutive = 0
    for i in range(warmup + n):
        measured = i >= warmup
        trial = str(i - warmup) if measured else f"warmup-{i}"
        time.sleep(pause_s())
        try:
            t0 = flip(trial)
        except (httpx.HTTPError, RuntimeError) as exc:
            out.errors.append(f"trial {trial}: {type(exc).__name__}: {exc}")
            if len(out.errors) >= CONSECUTIVE_TIMEOUTS_MAX:
                out.stopped = f"stopped after {len(out.errors)} errors"
                break
            continue
        got = receiver.wait(path, trial, timeout_s)
        try:
            unflip(trial)
        except (httpx.HTTPError, RuntimeError) as exc:
            out.errors.append(f"trial {trial} (back to 0): {type(exc).__name__}: {exc}")
        if got is None:
            consecutive += 1
            if measured:
                out.timed_out += 1
            else:
                out.stopped = (f"no firing webhook within {timeout_s:g}s for warm-up trial "
                               f"{i}: is the alert path wired? (see the log)")
                break
            if consecutive >= CONSECUTIVE_TIMEOUTS_MAX:
                out.stopped = f"stopped after {consecutive} timeouts in a row"
                break
            continue
        consecutive = 0
        if measured:
            out.latencies_s.append(got.at - t0)
            if got.starts_at_s is not None:
                out.after_fire_s.append(got.wall_s - got.starts_at_s)
            done = i - warmup + 1
            if done % 50 == 0 or done == n:
                ms = np.asarray(out.latencies_s) * 1000
                print(f"    {done}/{n} trials, p50 {np.percentile(ms, 50):.1f} ms, "
                      f"{out.timed_out} timed out, {time.monotonic() - started:.0f}s",
                      flush=True)
    out.wall_s = time.monotonic() - started
    return out


# -- seismo ------------------------------------------------------------------------------


SEISMO_YAML = """\
rules:
  - name: BenchHigh
    expr: '{flip} > 50'
    resolve: '{flip} < 50'
    severity: critical
channels:
  - {{name: bench, type: webhook, url: "{url}"}}
routes:
  - {{match: {{alertname: BenchHigh}}, channels: [bench], group_by: ["..."], group_wait: 0s,
     group_interval: 1s}}
"""


def background_ingest(url: str, series: int, period_s: float, max_s: float,
                      stop: EventType, results: Any) -> None:
    """(Own process) one sample of each `bench_bg` series every period_s, until `stop`."""
    encoder = msgspec.json.Encoder()
    labels = [{"series": str(k)} for k in range(series)]
    posted, late = 0, 0
    errors: list[str] = []
    request_s: list[float] = []
    start = time.monotonic()
    with httpx.Client(timeout=10, headers={"content-type": "application/json"}) as client:
        step = 0
        while not stop.is_set() and time.monotonic() - start < max_s:
            due = start + step * period_s
            now = time.monotonic()
            if now < due:
                stop.wait(due - now)
                continue
            if now - due > period_s:
                late += 1
            body = encoder.encode({"series": [
                {"metric": BACKGROUND, "labels": lab, "values": [float((k + step) % 40)]}
                for k, lab in enumerate(labels)]})
            t = time.perf_counter()
            try:
                resp = client.post(url, content=body)
                if resp.is_success:
                    posted += 1
                elif len(errors) < 10:
                    errors.append(f"HTTP {resp.status_code}: {resp.text[:200]}")
            except httpx.HTTPError as exc:
                if len(errors) < 10:
                    errors.append(f"{type(exc).__name__}: {exc}")
            request_s.append(time.perf_counter() - t)
            step += 1
    ms = np.asarray(request_s) * 1000
    results.put({"posted": posted, "steps": step, "late": late, "errors": errors,
                 "request_p50_ms": float(np.percentile(ms, 50)) if ms.size else None,
                 "request_p99_ms": float(np.percentile(ms, 99)) if ms.size else None})


def run_seismo(args: argparse.Namespace, work: Path, receiver: Receiver) -> dict[str, Any]:
    data_dir = work / "seismo-data"
    config = work / "seismo.yaml"
    config.write_text(SEISMO_YAML.format(flip=FLIP, url=receiver.url("/seismo")))
    port = free_port()
    # Anomaly detection scores every sample on its own thread, competing for the GIL with
    # the rules this measures.
    os.environ["SEISMO_DETECT__ENABLED"] = "false"
    argv = [sys.executable, "-m", "seismo", "serve", "--port", str(port), "--data-dir",
            str(data_dir), "--no-collector", "--config", str(config), "--log-level", "warning"]
    server = Server("seismo", argv, port, work / "seismo.log", "/api/v1/health")
    out: dict[str, Any] = {"log": str(server.log_path)}
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    results = ctx.Queue()
    load = ctx.Process(target=background_ingest, daemon=True, args=(
        f"{server.base}/api/v1/ingest", args.background_series, args.ingest_period,
        3600.0, stop, results))
    try:
        server.start()
        load.start()
        time.sleep(1)
        with httpx.Client(base_url=server.base, timeout=10,
                          headers={"content-type": "application/json"}) as client:
            client.get("/api/v1/health")  # the keep-alive connection exists before trial 0

            def post(trial: str, value: float) -> float:
                body = msgspec.json.encode({"series": [
                    {"metric": FLIP, "labels": {"trial": trial}, "values": [value]}]})
                t0 = time.perf_counter()
                resp = client.post("/api/v1/ingest", content=body)
                if not resp.is_success or resp.json().get("accepted") != 1:
                    raise RuntimeError(f"ingest: HTTP {resp.status_code}: {resp.text[:300]}")
                return t0

            def back_to_zero(trial: str) -> None:
                post(trial, 0.0)

            print(f"  seismo: {args.seismo_trials} trials, {args.background_series:,} "
                  f"background series every {args.ingest_period * 1000:g} ms", flush=True)
            out["trials"] = run_trials(
                SEISMO, args.seismo_trials, args.warmup_trials, lambda t: post(t, 100.0),
                back_to_zero, receiver, "/seismo",
                lambda: 0.05 + random.uniform(0, args.ingest_period), args.timeout)
        if not server.alive():
            out["crash"] = f"seismo exited with {server.proc.returncode if server.proc else '?'}"
    except (RuntimeError, httpx.HTTPError) as exc:  # e.g. seismo.yaml refused at start
        out["failed"] = str(exc)
    finally:
        stop.set()
        if load.pid is not None:
            with contextlib.suppress(Exception):
                out["background"] = results.get(timeout=15)
            load.join(timeout=10)
            if load.is_alive():
                load.kill()
        server.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return out


# -- Prometheus + Alertmanager -----------------------------------------------------------


PROMETHEUS_YAML = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: ["{rules}"]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]
scrape_configs:
  - job_name: bench
    static_configs: [{{targets: ["127.0.0.1:{exporter_port}"]}}]
"""

RULES_YAML = """\
groups:
  - name: bench
    interval: 1s
    rules:
      - alert: BenchHigh
        expr: {flip} > 50
        for: 0s
        labels: {{severity: critical}}
"""

ALERTMANAGER_YAML = """\
route:
  receiver: bench
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 24h
receivers:
  - name: bench
    webhook_configs:
      - url: "{url}"
        send_resolved: true
"""


class Exporter:
    """/metrics in the Prometheus text format: the background series and the probes."""

    def __init__(self, series: int) -> None:
        self.lock = threading.Lock()
        self.probes: dict[str, float] = {}
        self.scrapes = 0
        self.heads = [f'{BACKGROUND}{{series="{k}"}} ' for k in range(series)]
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                body = exporter.render()
                self.send_response(200)
                self.send_header("content-type", "text/plain; version=0.0.4")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.1,),
                                       daemon=True)
        self.thread.start()

    def render(self) -> bytes:
        with self.lock:
            self.scrapes += 1
            step, probes = self.scrapes, dict(self.probes)
        lines = [f"{head}{(k + step) % 40}" for k, head in enumerate(self.heads)]
        lines += [f'{FLIP}{{trial="{t}"}} {v:g}' for t, v in probes.items()]
        return ("\n".join(lines) + "\n").encode()

    def flip(self, trial: str) -> float:
        """Serve the probe of `trial` at 100 from now on; the moment it is served."""
        with self.lock:
            self.probes[trial] = 100.0
            return time.perf_counter()

    def drop(self, trial: str) -> None:
        with self.lock:
            self.probes.pop(trial, None)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def find_binary(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
        if os.access(f"/usr/bin/{name}", os.X_OK):
            return f"/usr/bin/{name}"
    return None


def version_of(binary: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run([binary, "--version"], capture_output=True, text=True,
                              timeout=10)
        return ((done.stdout or done.stderr).splitlines() or ["?"])[0]
    return "?"


def wait_peer_ready(prom: Server, exporter: Exporter, timeout_s: float = 60.0) -> str | None:
    """None once Prometheus scrapes the exporter and knows the Alertmanager; else why not."""
    deadline = time.monotonic() + timeout_s
    why = "not polled"
    with httpx.Client(base_url=prom.base, timeout=5) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                targets = client.get("/api/v1/targets").json()["data"]["activeTargets"]
                ams = client.get("/api/v1/alertmanagers").json()["data"]
                healthy = [t for t in targets if t["health"] == "up"]
                if healthy and ams["activeAlertmanagers"] and exporter.scrapes >= 2:
                    return None
                why = (f"targets {[t['health'] for t in targets]}, "
                       f"{len(ams['activeAlertmanagers'])} Alertmanager(s)")
            time.sleep(0.5)
    return f"Prometheus not ready after {timeout_s:g}s: {why}"


def scrape_to_evaluation_ms(prom: Server) -> float | None:
    """How long after each scrape starts the rule group is evaluated (mod 1 s).

    Prometheus spreads scrapes and rule groups over their interval by hashes of the target
    and of the group, so this phase (and the peer's p50, about 500 ms + it) changes from
    run to run with the exporter's port.
    """
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        with httpx.Client(base_url=prom.base, timeout=5) as client:
            target = client.get("/api/v1/targets").json()["data"]["activeTargets"][0]
            group = client.get("/api/v1/rules").json()["data"]["groups"][0]
        scraped, evaluated = epoch_s(target["lastScrape"]), epoch_s(group["lastEvaluation"])
        if scraped is not None and evaluated is not None:
            return ((evaluated - scraped) % 1.0) * 1000
    return None


def run_peer(args: argparse.Namespace, work: Path, receiver: Receiver, prom_bin: str,
             am_bin: str) -> dict[str, Any]:
    am_port, prom_port = free_port(), free_port()
    exporter = Exporter(args.background_series)
    (work / "alertmanager.yml").write_text(ALERTMANAGER_YAML.format(url=receiver.url("/am")))
    (work / "rules.yml").write_text(RULES_YAML.format(flip=FLIP))
    (work / "prometheus.yml").write_text(PROMETHEUS_YAML.format(
        rules=work / "rules.yml", am_port=am_port, exporter_port=exporter.port))
    am = Server("alertmanager", [
        am_bin, f"--config.file={work / 'alertmanager.yml'}",
        f"--storage.path={work / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
        "--cluster.listen-address=", "--log.level=warn"],
        am_port, work / "alertmanager.log", "/-/ready")
    prom = Server("prometheus", [
        prom_bin, f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={work / 'prom-data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
        prom_port, work / "prometheus.log", "/-/ready")
    out: dict[str, Any] = {"logs": [str(am.log_path), str(prom.log_path)],
                           "versions": [version_of(prom_bin), version_of(am_bin)]}
    try:
        am.start()
        prom.start()
        not_ready = wait_peer_ready(prom, exporter)
        if not_ready:
            out["failed"] = not_ready
            return out
        print(f"  {PEER}: {args.peer_trials} trials, {args.background_series:,} background "
              f"series scraped every 1 s", flush=True)
        out["trials"] = run_trials(
            PEER, args.peer_trials, args.warmup_trials, exporter.flip, exporter.drop,
            receiver, "/am", lambda: 0.05 + random.uniform(0, 1.0), args.timeout)
        out["scrapes"] = exporter.scrapes
        out["phase_ms"] = scrape_to_evaluation_ms(prom)
        for server in (am, prom):
            if not server.alive():
                out["crash"] = f"{server.name} exited; log: {server.log_path}"
    except RuntimeError as exc:
        out["failed"] = str(exc)
    finally:
        prom.stop()
        am.stop()
        exporter.close()
        if not args.keep:
            for name in ("prom-data", "am-data"):
                shutil.rmtree(work / name, ignore_errors=True)
    return out


# -- report ------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def report(figures: list[dict[str, Any]]) -> str:
    lines = [
        "| system | trials | timed out | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | "
        "rule fired → webhook p50 / p99 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        lines.append(
            f"| {f['system']} | {f['measured']} of {f['trials']} | {f['timed_out']} | "
            f"{fmt(f['p50_ms'])} | {fmt(f['p90_ms'])} | {fmt(f['p99_ms'])} | "
            f"{fmt(f['max_ms'])} | {fmt(f['after_fire_p50_ms'])} / "
            f"{fmt(f['after_fire_p99_ms'])} |")
    by = {f["system"]: f for f in figures}
    seismo, peer = by.get(SEISMO), by.get(PEER)
    if seismo and peer:
        r50 = ratio(peer["p50_ms"], seismo["p50_ms"])
        r99 = ratio(peer["p99_ms"], seismo["p99_ms"])
        lines += ["", f"ratio {PEER} / seismo: p50 × {fmt(r50)}, p99 × {fmt(r99)}"]
    if seismo:
        p99 = seismo["p99_ms"]
        ok = "n/a" if p99 is None else ("meets" if p99 <= AIM_P99_MS else "misses")
        lines += ["", f"aim: seismo p99 ≤ {AIM_P99_MS:g} ms: {ok}"]
    return "\n".join(lines)


def problems_of(name: str, res: dict[str, Any]) -> list[str]:
    found = [f"{name}: {res[k]}" for k in ("failed", "crash") if k in res]
    trials: Trials | None = res.get("trials")
    if trials is not None:
        if trials.timed_out:
            found.append(f"{name}: {trials.timed_out} trials got no webhook within the "
                         f"timeout (left out of the percentiles)")
        if trials.stopped:
            found.append(f"{name}: {trials.stopped}")
        found += [f"{name}: {e}" for e in trials.errors[:10]]
    bg = res.get("background", {})
    found += [f"{name} background ingest: {e}" for e in bg.get("errors", [])]
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--trials", "--seismo-trials", dest="seismo_trials", type=int,
                   default=200, help="measured seismo trials")
    p.add_argument("--peer-trials", type=int, default=200, help="measured Prometheus + "
                   "Alertmanager trials (1.2 to 1.7 s each)")
    p.add_argument("--warmup-trials", type=int, default=2, help="uncounted trials first")
    p.add_argument("--only", choices=("seismo", "peer"), default=None,
                   help="run one side only")
    p.add_argument("--background-series", type=int, default=1000)
    p.add_argument("--ingest-period", type=float, default=0.1, help="seconds between "
                   "background ingest requests to seismo (one sample of each series)")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for a "
                   "trial's webhook")
    p.add_argument("--work-dir", type=Path, default=None, help="where configs and logs go")
    p.add_argument("--keep", action="store_true", help="keep the data directories")
    p.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    args = p.parse_args(argv)
    if not (0 < args.seismo_trials <= 10_000 and 0 < args.peer_trials <= 10_000
            and 0 <= args.warmup_trials <= 20 and 0 <= args.background_series <= 100_000
            and 0.01 <= args.ingest_period <= 10 and 1 <= args.timeout <= 120):
        p.error("need 0 < trials <= 10000, 0 <= --warmup-trials <= 20, "
                "0 <= --background-series <= 100000, 0.01 <= --ingest-period <= 10, "
                "1 <= --timeout <= 120")
    sides = [args.only] if args.only else ["seismo", "peer"]
    prom_bin, am_bin = find_binary(PROMETHEUS_NAMES), find_binary(ALERTMANAGER_NAMES)
    problems: list[str] = []
    if "peer" in sides and not (prom_bin and am_bin):
        missing = "prometheus" if not prom_bin else "alertmanager"
        if args.only:
            p.error(f"{missing} not found; install with: {INSTALL}")
        problems.append(f"{missing} not found, the peer is skipped; install with: {INSTALL}")
        sides.remove("peer")

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="seismo-alert-latency-"))
    work.mkdir(parents=True, exist_ok=True)
    m = machine()
    print(f"seismo alert latency benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; "
          f"work dir {work}")
    print(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, "
          f"Python {m['python']}", flush=True)
    receiver = Receiver()
    results: dict[str, dict[str, Any]] = {}
    try:
        if "seismo" in sides:
            results[SEISMO] = run_seismo(args, work, receiver)
        if "peer" in sides:
            assert prom_bin and am_bin
            results[PEER] = run_peer(args, work, receiver, prom_bin, am_bin)
    finally:
        receiver.close()
    figures = [res["trials"].figures() for res in results.values() if "trials" in res]
    for name, res in results.items():
        problems += problems_of(name, res)
    seismo_log = results.get(SEISMO, {}).get("log")
    if seismo_log:
        problems += [f"seismo log: {n} x {line}"
                     for line, n in log_errors(Path(seismo_log)).items()]
    problems += [f"receiver: {b}" for b in receiver.bad]

    print()
    print(f"threshold crossing → webhook POST arriving at a local receiver, trials one at a "
          f"time, {args.background_series:,} other series ingested meanwhile")
    if PEER in results:
        print(f"peer: {', '.join(results[PEER]['versions'])}; 1 s scrape and evaluation, "
              f"for: 0s, group_wait 0s, group_interval 1s; rule evaluation "
              f"{fmt(results[PEER].get('phase_ms'), 0)} ms after each scrape in this run "
              f"(Prometheus sets that phase from hashes: it changes from run to run)")
    print()
    print(report(figures))
    print(f"\nwebhooks received: {receiver.posts}; resolved alerts in them: {receiver.resolved}")
    bg = results.get(SEISMO, {}).get("background")
    if bg:
        print(f"seismo background ingest: {bg['posted']} requests of "
              f"{args.background_series:,} samples, request p50 {fmt(bg['request_p50_ms'])} "
              f"ms / p99 {fmt(bg['request_p99_ms'])} ms, {bg['late']} over a period late")
    if problems:
        print("\nPROBLEMS:")
        for line in problems:
            print(f"  ! {line}")
    print(f"\nlogs and configs in {work}")
    if args.json:
        print(json.dumps({"machine": m, "aim_p99_ms": AIM_P99_MS, "figures": figures,
                          "background": bg,
                          "peer_scrape_to_evaluation_ms": results.get(PEER, {}).get("phase_ms"),
                          "problems": problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
