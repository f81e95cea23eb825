"""Disk full: seismo on a small tmpfs, filled under steady load, in a few full/free cycles.

Each cycle leaves `headroom_mb` free next to a filler file and ingests (columnar batches
of integer values, unique timestamps per series, plus events) until the store refuses,
then takes the last free bytes too. While full: ingest must answer 507/503 with an error
saying so (never 500, never 200), health stays 200 and says "degraded", events, rules,
silences, a custom alert and a block cut (admin/flush) fail cleanly or succeed, and the
first cycle kills the server with -9 and restarts it on the full disk. Then the space
comes back (filler deleted, or the tmpfs remounted bigger): ingest must be accepted again
without a restart, a block cut works, the custom alert reaches the webhook and a rule
added over the API fires and reaches it too. At the end (FULL) the server is stopped and
started again; every acknowledged sample (count and sum per series) and event is read
back. The figure is "lost: 0 of N". Needs root (mount); the tmpfs is unmounted in a
`finally`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from ingest import Server, free_port, seismo_argv

METRIC = "diskfull_load"
EVENT_TYPE = "diskfull_load"
CLEAN = (503, 507)  # how a refused durable write must be answered
# A reply to a refused write must say why in words a user understands.
FULL_WORDS = ("no space", "disk full", "disk is full", "space left", "durable", "storage")

FULL: dict[str, Any] = {
    "tmpfs_mb": 48, "headroom_mb": 6, "clients": 2, "series": 40, "points": 50,
    "rate_per_client": 10.0, "cycles": 3, "full_hold_s": 4.0, "block_max_samples": 200_000,
    "final_restart": True,
}
SMOKE: dict[str, Any] = {
    "tmpfs_mb": 8, "headroom_mb": 1, "clients": 1, "series": 20, "points": 50,
    "rate_per_client": 40.0, "cycles": 1, "full_hold_s": 0.5, "block_max_samples": 20_000,
    "final_restart": False,  # the kill -9 restart on the full disk is the one restart
}


# -- the tmpfs --------------------------------------------------------------------------


def mount_tmpfs(path: Path, size_mb: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                   check=True, capture_output=True, text=True, timeout=30)


def remount(path: Path, size_mb: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size_mb}m", str(path)],
                   check=True, capture_output=True, text=True, timeout=30)


def unmount(path: Path) -> None:
    done = subprocess.run(["umount", str(path)], capture_output=True, timeout=30)
    if done.returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path: Path, filler: Path, headroom: int) -> int:
    """Grow `filler` until only `headroom` bytes are free on `path`; return its size."""
    chunk = b"\0" * (1 << 20)
    with filler.open("ab") as fh:
        for _ in range(100_000):
            left = free_bytes(path) - headroom
            if left <= 0:
                break
            try:
                fh.write(chunk[: min(len(chunk), left)])
                fh.flush()
            except OSError:
                break
    return filler.stat().st_size


# -- peers ------------------------------------------------------------------------------


class Receiver:
    """A webhook receiver (http.server in a thread) that keeps every alert name it got."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    for alert in json.loads(body)["alerts"]:
                        with outer.lock:
                            outer.names.append(alert["labels"]["alertname"])
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()

    def got(self, name: str) -> bool:
        with self.lock:
            return name in self.names


def config(work: Path, hook: str, block_max_samples: int) -> Path:
    path = work / "seismo.yaml"
    path.write_text(json.dumps({
        "block_max_samples": block_max_samples,
        "rules": [{"name": "DiskfullProbe", "expr": 'diskfull_probe{cycle="0"} > 100',
                   "for": "0s", "severity": "high"}],
        "channels": [{"name": "hook", "type": "webhook", "url": hook}],
        "routes": [{"match": {}, "channels": ["hook"], "group_by": ["alertname"],
                    "group_wait": "0s", "group_interval": "1s"}],
    }))
    return path


# -- load -------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients sent and what seismo answered, shared by the feeder threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: dict[str, list[int]] = field(default_factory=dict)  # series → [count, sum]
    acked_samples: int = 0
    acked_events: int = 0
    refused: int = 0  # 503/507 to ingest
    refused_events: int = 0
    bad: list[str] = field(default_factory=list)  # replies that break the contract
    errors: list[str] = field(default_factory=list)  # texts of the 503/507 replies
    unknown: int = 0  # requests without a reply (server killed or restarting)
    unknown_samples: int = 0  # their samples: stored or not, either is right
    last_ack_at: float = 0.0
    last_refusal_at: float = 0.0

    def note_bad(self, what: str) -> None:
        with self.lock:
            if len(self.bad) < 20:
                self.bad.append(what)


class Feeder(threading.Thread):
    """One client: columnar batches of its own series at a steady rate, and events."""

    def __init__(self, no: int, base: str, tally: Tally, t0_ms: int, series: int,
                 points: int, rate: float, stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"diskfull-feeder-{no}")
        self.no, self.base, self.tally, self.t0_ms = no, base, tally, t0_ms
        self.series, self.points, self.period_s, self.stop = series, points, 1.0 / rate, stop
        self.next_point = 0
        self.pause = threading.Event()

    def batch(self) -> tuple[dict[str, Any], list[tuple[str, int, int]]]:
        k0 = self.next_point
        self.next_point += self.points
        ts = [self.t0_ms + 10 * k for k in range(k0, k0 + self.points)]
        body, parts = [], []
        for s in range(self.series):
            name = f"{self.no}-{s}"
            values = [(k * 7 + s) % 1000 for k in range(k0, k0 + self.points)]
            body.append({"metric": METRIC, "labels": {"s": name}, "timestamps": ts,
                         "values": [float(v) for v in values]})
            parts.append((name, len(values), sum(values)))
        return {"series": body}, parts

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as http:
            for n in range(10**7):
                if self.stop.is_set():
                    return
                if self.pause.is_set():
                    time.sleep(0.05)
                    continue
                started = time.monotonic()
                self.send(http, n)
                time.sleep(max(0.0, self.period_s - (time.monotonic() - started)))

    def send(self, http: httpx.Client, n: int) -> None:
        body, parts = self.batch()
        t = self.tally
        try:
            reply = http.post("/api/v1/ingest", json=body)
        except httpx.HTTPError:
            with t.lock:
                t.unknown += 1
                t.unknown_samples += sum(p[1] for p in parts)
            time.sleep(0.1)
            return
        if reply.status_code == 200:
            accepted = reply.json().get("accepted")
            if accepted != sum(p[1] for p in parts):
                t.note_bad(f"ingest 200 with accepted={accepted}: {reply.text[:200]}")
            with t.lock:
                for name, count, total in parts:
                    c = t.acked.setdefault(name, [0, 0])
                    c[0] += count
                    c[1] += total
                t.acked_samples += sum(p[1] for p in parts)
                t.last_ack_at = time.monotonic()
        elif reply.status_code in CLEAN and says_full(reply):
            with t.lock:
                t.refused += 1
                t.last_refusal_at = time.monotonic()
                if reply.text[:200] not in t.errors and len(t.errors) < 5:
                    t.errors.append(reply.text[:200])
        else:
            t.note_bad(f"ingest {reply.status_code}: {reply.text[:200]}")
        if n % 5 == 0:
            self.send_event(http, n)

    def send_event(self, http: httpx.Client, n: int) -> None:
        t = self.tally
        try:
            reply = http.post("/api/v1/events", json={"type": EVENT_TYPE,
                                                      "source": f"{self.no}-{n}"})
        except httpx.HTTPError:
            with t.lock:
                t.unknown += 1
            return
        if reply.is_success:
            with t.lock:
                t.acked_events += 1
        elif reply.status_code in CLEAN and says_full(reply):
            with t.lock:
                t.refused_events += 1
        else:
            t.note_bad(f"event {reply.status_code}: {reply.text[:200]}")


def says_full(reply: httpx.Response) -> bool:
    try:
        text = str(reply.json().get("error", "")).lower()
    except ValueError:
        return False
    return any(w in text for w in FULL_WORDS)


# -- probes -----------------------------------------------------------------------------


def probe_writes(base: str, cycle: int, tally: Tally) -> dict[str, Any]:
    """Every other kind of write once on the full disk: each must be 2xx or a clean 503/507."""
    ends = "now+1h"
    calls = {
        "health": ("GET", "/api/v1/health", None),
        "event": ("POST", "/api/v1/events", {"type": "diskfull_probe", "source": str(cycle)}),
        "rule": ("POST", "/api/v1/rules", {"name": f"FullProbeRule{cycle}",
                                           "expr": f'diskfull_never{{c="{cycle}"}} > 1'}),
        "silence": ("POST", "/api/v1/silences", {"matchers": {"alertname": "Nothing"},
                                                 "ends_at": ends, "comment": "disk full"}),
        "alert": ("POST", "/api/v1/alerts", {"name": f"FullCustom{cycle}", "severity": "high"}),
        "flush": ("POST", "/api/v1/admin/flush", None),
    }
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=30) as http:
        for name, (method, path, body) in calls.items():
            t0 = time.monotonic()
            try:
                reply = http.request(method, path, json=body)
            except httpx.HTTPError as exc:
                tally.note_bad(f"{name} while full: no reply ({type(exc).__name__})")
                out[name] = "no reply"
                continue
            ms = round((time.monotonic() - t0) * 1000)
            out[name] = f"{reply.status_code} in {ms} ms"
            clean = reply.status_code in CLEAN and says_full(reply)
            if name == "health":
                if reply.status_code != 200:
                    tally.note_bad(f"health while full: {reply.status_code} {reply.text[:200]}")
                else:
                    out["health_status"] = reply.json().get("status")
            elif not (reply.is_success or clean):
                tally.note_bad(f"{name} while full: {reply.status_code} {reply.text[:200]}")
            if name == "alert" and (reply.is_success or clean):
                out["alert_sent"] = f"FullCustom{cycle}"
    return out


def wait_for(cond: Any, timeout_s: float, every_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every_s)
    return bool(cond())


def fires_after_recovery(base: str, cycle: int, receiver: Receiver) -> float | None:
    """Add a rule over the API, ingest a sample over it; seconds until the webhook got it."""
    name = f"DiskfullRecovered{cycle}"
    with httpx.Client(base_url=base, timeout=30) as http:
        reply = http.post("/api/v1/rules", json={
            "name": name, "expr": f'diskfull_probe{{cycle="{cycle}"}} > 100', "for": "0s",
            "severity": "high"})
        if reply.status_code != 201:
            return None
        started = time.monotonic()
        sample = {"series": [{"metric": "diskfull_probe", "labels": {"cycle": str(cycle)},
                              "timestamps": [int(time.time() * 1000)], "values": [500.0]}]}
        if http.post("/api/v1/ingest", json=sample).status_code != 200:
            return None
        if not wait_for(lambda: receiver.got(name), 15.0):
            return None
        return time.monotonic() - started


def read_back(base: str, t0_ms: int, tally: Tally) -> dict[str, Any]:
    """Every acknowledged sample (count and sum per series) and event, read back."""
    end = int(time.time() * 1000) + 60_000
    stored: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, timeout=120) as http:
        for agg in ("count", "sum"):
            reply = http.get("/api/v1/query_range", params={
                "selector": METRIC, "start": str(t0_ms), "end": str(end), "step": "5m",
                "agg": agg})
            reply.raise_for_status()
            for s in reply.json()["series"]:
                total = sum(v for v in s["values"] if v is not None)
                stored.setdefault(s["labels"]["s"], [0, 0])[0 if agg == "count" else 1] = total
        events = http.get("/api/v1/events", params={"type": EVENT_TYPE, "limit": 10_000})
        events.raise_for_status()
        stored_events = len(events.json()["events"])
    lost = wrong = extra = 0
    for name, (count, total) in tally.acked.items():
        got_count, got_sum = stored.get(name, [0, 0])
        lost += max(0, count - int(got_count))
        extra += max(0, int(got_count) - count)
        if got_count == count and got_sum != total:
            wrong += 1
    return {"lost": lost, "extra": extra, "series_with_wrong_sum": wrong,
            "series_stored": len(stored), "events_stored": stored_events,
            "events_lost": max(0, tally.acked_events - stored_events)}


# -- the scenario -----------------------------------------------------------------------


def run(work: Path, *, tmpfs_mb: int, headroom_mb: float, clients: int, series: int,
        points: int, rate_per_client: float, cycles: int, full_hold_s: float,
        block_max_samples: int, final_restart: bool, fill_timeout_s: float = 60.0,
        recovery_timeout_s: float = 30.0) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    receiver = Receiver()
    cfg = config(work, receiver.url, block_max_samples)
    port = free_port()
    srv = Server("seismo", seismo_argv(port, data, cfg), port, work / "seismo.log",
                 "/api/v1/health")
    tally = Tally()
    stop = threading.Event()
    feeders: list[Feeder] = []
    checks: list[str] = []
    ok = True
    figures: dict[str, Any] = {"tmpfs_mb": tmpfs_mb, "clients": clients,
                               "samples_per_batch": series * points, "cycles": []}

    def check(cond: bool, text: str) -> None:
        nonlocal ok
        ok &= bool(cond)
        checks.append(f"{'ok' if cond else 'FAILED'}: {text}")

    t0_ms = (int(time.time() * 1000) // 1000) * 1000 - 2 * 3600_000
    started = time.monotonic()
    timeline: dict[str, float] = {}  # seconds since the start, of each step

    def mark(step: str) -> None:
        timeline[step] = round(time.monotonic() - started, 1)

    filler = data / "filler.bin"
    custom_alerts: list[str] = []
    mount_tmpfs(data, tmpfs_mb)
    try:
        receiver.start()
        srv.start()
        mark("started")
        feeders = [Feeder(i, srv.base, tally, t0_ms, series, points, rate_per_client, stop)
                   for i in range(clients)]
        for f in feeders:
            f.start()
        for cycle in range(1, cycles + 1):
            c: dict[str, Any] = {"cycle": cycle}
            c["filler_mb"] = round(fill(data, filler, int(headroom_mb * 2**20)) / 2**20, 1)
            refused0, filled_at = tally.refused, time.monotonic()
            full = wait_for(lambda r=refused0: tally.refused >= r + 3, fill_timeout_s)
            c["fill_s"] = round(time.monotonic() - filled_at, 1)
            check(full, f"cycle {cycle}: ingest refused with 503/507 once the disk filled "
                        f"({tally.refused - refused0} refusals in {c['fill_s']} s)")
            mark(f"full{cycle}")
            if not full:
                break
            # Take what a block cut may have freed meanwhile too: the disk stays full now.
            fill(data, filler, 0)
            time.sleep(full_hold_s)  # the feeders keep hitting the full disk
            c["free_bytes_when_full"] = free_bytes(data)
            c["probes"] = probe_writes(srv.base, cycle, tally)
            check(c["probes"].get("health_status") == "degraded",
                  f"cycle {cycle}: health 200 and says the store is degraded "
                  f"({c['probes'].get('health')}, {c['probes'].get('health_status')})")
            if "alert_sent" in c["probes"]:
                custom_alerts.append(c["probes"]["alert_sent"])
            if cycle == 1:  # kill -9 on the full disk, then start again on it
                assert srv.proc is not None
                srv.proc.kill()
                srv.proc.wait(timeout=30)
                srv.stop()
                try:
                    srv.start()
                    check(True, "restart after kill -9 on the full disk")
                except RuntimeError as exc:
                    check(False, f"restart after kill -9 on the full disk: {exc}"[:300])
                    break
                mark(f"restarted_full{cycle}")
                time.sleep(full_hold_s)
            # space comes back: the filler goes, or (last cycle) the tmpfs grows
            freed_at = time.monotonic()
            if cycle == cycles and cycles > 1:
                remount(data, tmpfs_mb * 2)
                filler.unlink()
                c["freed_by"] = f"remount to {tmpfs_mb * 2} MB"
            else:
                filler.unlink()
                c["freed_by"] = "deleting the filler"
            back = wait_for(lambda t=freed_at: tally.last_ack_at > t, recovery_timeout_s,
                            every_s=0.01)
            c["recovery_s"] = round(time.monotonic() - freed_at, 2) if back else None
            check(back, f"cycle {cycle}: ingest accepted again {c['recovery_s']} s after "
                        f"the space came back, without a restart")
            if custom_alerts and custom_alerts[-1] == f"FullCustom{cycle}":
                # the client retries the custom alert that may have got a 507 while full
                again = httpx.post(srv.base + "/api/v1/alerts", timeout=30, json={
                    "name": custom_alerts[-1], "severity": "high"})
                check(again.is_success, f"cycle {cycle}: custom alert posted again after "
                                        f"recovery: {again.status_code}")
            flushed = httpx.post(srv.base + "/api/v1/admin/flush", timeout=60)
            c["flush_after"] = flushed.status_code
            check(flushed.status_code == 200,
                  f"cycle {cycle}: block cut after recovery: {flushed.status_code}")
            fired = fires_after_recovery(srv.base, cycle, receiver)
            c["alert_after_s"] = None if fired is None else round(fired, 2)
            check(fired is not None, f"cycle {cycle}: a rule added after recovery fired and "
                                     f"reached the webhook ({c['alert_after_s']} s)")
            figures["cycles"].append(c)
            mark(f"recovered{cycle}")
        for f in feeders:
            f.pause.set()
        time.sleep(0.3)
        delivered = wait_for(lambda: all(receiver.got(n) for n in custom_alerts), 20.0)
        check(delivered, f"custom alerts raised while full (and retried after) reached the "
                         f"webhook ({sum(map(receiver.got, custom_alerts))} of "
                         f"{len(custom_alerts)})")
        mark("delivered")
        if final_restart:  # terminate: a clean stop, then read everything back after a start
            srv.stop()
            mark("stopped")
            srv.start()
            mark("restarted")
        got = read_back(srv.base, t0_ms, tally)
        mark("read_back")
        figures.update(got)
        figures.update({
            "acknowledged": tally.acked_samples, "events_acknowledged": tally.acked_events,
            "refused_507_503": tally.refused, "events_refused": tally.refused_events,
            "no_reply": tally.unknown, "no_reply_samples": tally.unknown_samples,
            "error_text": tally.errors[:2], "bad_replies": tally.bad,
            "figure": f"lost: {got['lost']} of {tally.acked_samples}",
        })
        check(tally.acked_samples > 0 and got["lost"] == 0,
              f"lost: {got['lost']} of {tally.acked_samples} acknowledged samples")
        check(got["extra"] <= tally.unknown_samples,
              f"nothing refused was stored: {got['extra']} samples more than acknowledged, "
              f"at most {tally.unknown_samples} were sent without a reply")
        check(got["series_with_wrong_sum"] == 0,
              f"per-series sums match ({got['series_with_wrong_sum']} series differ)")
        check(got["events_lost"] == 0,
              f"events lost: {got['events_lost']} of {tally.acked_events}")
        check(not tally.bad, f"no 500, no other bad reply ({len(tally.bad)}: "
                             f"{'; '.join(tally.bad[:3])})"[:400])
        check(tally.refused > 0 and bool(tally.errors),
              f"{tally.refused} ingest replies 503/507 saying the disk is full")
        check(srv.alive(), "server alive at the end")
    finally:
        stop.set()
        for f in feeders:
            f.join(timeout=30)
        srv.stop()
        receiver.stop()
        unmount(data)
    figures["timeline_s"] = timeline
    figures["ok"] = ok
    figures["checks"] = checks
    return figures
