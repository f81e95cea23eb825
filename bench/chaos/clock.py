"""Chaos scenario: wall-clock jumps, and out-of-order / late data across block boundaries.

Part 1, clock jumps. seismo runs with `clockshift.so` preloaded (built here from
clockshift.c): its wall clock (CLOCK_REALTIME, gettimeofday, time) is stepped by the
offsets written to a file, its monotonic clock is not, as with an NTP step. Steady ingest
runs throughout (client-stamped samples, a client-stamped heartbeat, server-stamped
samples, events). Each phase makes one alert wait out `for`, fires one with
`keep_firing_for` and clears it, makes the receiver of the latter fail for a while (so its
notification is in backoff), and steps the clock in the middle of all that. Checked: the
server's wall clock moved (a server-stamped sample, the `future` and retention limits) and
its uptime did not; the head is still cut into blocks at `block_duration`; every alert
transition and notification happens once, on time by the real clock (nothing early after
a forward jump, nothing stalled after a backward one, no `absent()` or repeat caused by
the jump); retries keep their backoff; health stays fast; every acknowledged sample and
event is there at the end.

Part 2, late data. A series is ingested and cut into a block, then late samples between
the block's samples, duplicates of block samples, a batch spanning the block's end, and
samples beyond `out_of_order_tolerance` (refused: `out_of_order`) and in the future
(refused: `future`) arrive; another block is cut, and more duplicates stay in the head and
WAL. `query_range` at a 1 s step must give exactly the expected values (newest write wins,
one sample per timestamp), before and after a kill -9 and restart, after another cut and
after the blocks are compacted into one.
Part 2 runs on the same server, its clock still shifted; the acknowledged samples and
events of part 1 are checked again after the restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ingest import Server, free_port, seismo_argv

HERE = Path(__file__).resolve().parent
FULL: dict[str, Any] = {"jumps": [3600, -3600, 86400, -600], "for_s": 20.0, "keep_s": 20.0,
                        "fail_s": 5.0, "block_s": 5.0, "clients": 2, "late_series": 20}
SMOKE: dict[str, Any] = {"jumps": [3600, -3600], "for_s": 1.5, "keep_s": 1.5,
                         "fail_s": 1.0, "block_s": 1.5, "clients": 1, "late_series": 3}
MAX_FUTURE_S = 600
RETENTION_S = 30 * 86400  # the default
JUMP_AT_S = 0.5  # into each phase
CLEAR_AT_S = 0.3  # the keep_firing_for alert's condition clears
BACKOFF_MAX_S = 2.0  # the flaky webhook's retries: due at most this long after a failure
SLACK_S = 1.5  # how late a transition or notification may be, by the real clock
EARLY_S = 0.25  # how early (sample latency, tick granularity)
STEP_MS = 50  # client timestamps are multiples of this


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def build_shim(work: Path) -> Path:
    out = work / "clockshift.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(out),
                    str(HERE / "clockshift.c"), "-ldl"], check=True, capture_output=True,
                   timeout=60)
    return out


def shim_env(shim: Path, offset_file: Path) -> dict[str, str]:
    return {"LD_PRELOAD": str(shim), "CLOCKSHIFT_FILE": str(offset_file)}


def set_offset(offset_file: Path, seconds: float) -> None:
    tmp = offset_file.with_suffix(".tmp")
    tmp.write_text(f"{seconds}\n")
    os.replace(tmp, offset_file)


def check_shim(shim: Path, work: Path) -> tuple[bool, str]:
    """In a child process with the shim: the wall clock moves by the offset, monotonic not."""
    offset_file = work / "shim-test-offset"
    set_offset(offset_file, 0)
    code = ("import sys, time\n"
            "w0, m0 = time.time(), time.monotonic()\n"
            "open(sys.argv[1], 'w').write('-3600.5')\n"
            "time.sleep(0.05)\n"
            "print(time.time() - w0, time.monotonic() - m0)\n")
    env = {**os.environ, **shim_env(shim, offset_file)}
    out = subprocess.run([sys.executable, "-c", code, str(offset_file)], env=env,
                         capture_output=True, text=True, timeout=30, check=True).stdout
    wall_d, mono_d = (float(x) for x in out.split())
    ok = abs(wall_d + 3600.5 - mono_d) < 0.05 and 0.04 < mono_d < 5
    return ok, f"shim: wall moved {wall_d:+.2f} s, monotonic {mono_d:+.2f} s (want -3600.5, ~0.05)"


# -- real peers ---------------------------------------------------------------------------


@dataclass
class Receiver:
    """Webhook receiver: /flaky answers 500 until `fail_until` (monotonic), /steady 200."""

    fail_until: float = 0.0
    hits: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.monotonic()
                status = 500 if self.path == "/flaky" and at < receiver.fail_until else 200
                with contextlib.suppress(ValueError):
                    doc = json.loads(body)
                    with receiver.lock:
                        receiver.hits.append({"at": at, "path": self.path, "status": status,
                                              "doc": doc})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return httpd


def config_yaml(receiver_port: int, for_s: float, keep_s: float, block_s: float) -> str:
    hook = f"http://127.0.0.1:{receiver_port}"
    route = "group_by: ['...'], group_wait: 0s, group_interval: 500ms, repeat_interval: 30m"
    absent_s = max(5.0, for_s / 2)
    return f"""\
limits: {{max_future_s: {MAX_FUTURE_S}}}
alerting: {{outbox_backoff_max_s: {BACKOFF_MAX_S}}}
block_duration: {block_s}s
detect: {{enabled: false}}
channels:
  - {{name: flaky, type: webhook, url: "{hook}/flaky"}}
  - {{name: steady, type: webhook, url: "{hook}/steady"}}
routes:
  - {{match: {{alertname: Keep}}, channels: [flaky], {route}}}
  - {{match_re: {{alertname: "Pend|Gone"}}, channels: [steady], {route}}}
rules:
  - {{name: Pend, expr: 'clk_pend > 90', for: {for_s}s, severity: high}}
  - {{name: Keep, expr: 'clk_keep > 90', keep_firing_for: {keep_s}s, severity: high}}
  - {{name: Gone, expr: 'absent(clk_heartbeat{{job="hb"}}, {absent_s}s)', severity: high}}
"""


# -- steady load --------------------------------------------------------------------------


@dataclass
class Load:
    """What the steady clients sent and what the server acknowledged."""

    acked: dict[str, dict[int, float]] = field(default_factory=dict)  # series -> ts -> value
    acked_stamped: dict[str, list[float]] = field(default_factory=dict)  # server-stamped
    acked_events: list[int] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> samples
    errors: list[str] = field(default_factory=list)  # 5xx, transport errors, bad replies
    latencies: list[float] = field(default_factory=list)
    health_latencies: list[float] = field(default_factory=list)
    health_fail: int = 0
    phase: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def post_ingest(client: httpx.Client, body: dict[str, Any], load: Load) -> dict[str, Any] | None:
    """POST /ingest; the reply on 200 or 400-with-errors, None (and an error noted) else."""
    started = time.monotonic()
    try:
        r = client.post("/api/v1/ingest", json=body)
    except httpx.HTTPError as exc:
        with load.lock:
            load.errors.append(f"ingest: {type(exc).__name__}")
        return None
    with load.lock:
        load.latencies.append(time.monotonic() - started)
    doc = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code == 200 or (r.status_code == 400 and "errors" in doc):
        for err in doc.get("errors", []):
            reason = str(err.get("reason", "")) or "no reason"
            code = reason.split(":")[0] if ":" in reason else reason
            with load.lock:
                load.rejected[code[:60]] = load.rejected.get(code[:60], 0) + 1
        return dict(doc)
    with load.lock:
        load.errors.append(f"ingest: HTTP {r.status_code} {r.text[:120]}")
    return None


def client_loop(base: str, c: int, load: Load, deadline: float) -> None:
    """Client `c`: every ~100 ms two client-stamped samples of clk_steady{client=c}, one
    heartbeat, one server-stamped clk_stamped{client=c,phase=p}; every 5th round an event."""
    last_ts, seq = 0, 0
    with httpx.Client(base_url=base, timeout=10) as client:
        while not load.stop.is_set() and time.monotonic() < deadline:
            ts = []
            for _ in range(2):
                last_ts = max(last_ts + STEP_MS, wall_ms() // STEP_MS * STEP_MS)
                ts.append(last_ts)
            values = [float(seq), float(seq + 1)]
            seq += 2
            name = f'clk_steady{{client="{c}"}}'
            stamped = f'clk_stamped{{client="{c}",phase="{load.phase}"}}'
            body = {"series": [
                {"metric": "clk_steady", "labels": {"client": str(c)}, "timestamps": ts,
                 "values": values},
                {"metric": "clk_heartbeat", "labels": {"job": "hb", "client": str(c)},
                 "timestamps": [ts[-1]], "values": [1.0]},
                {"metric": "clk_stamped", "labels": {"client": str(c), "phase": str(load.phase)},
                 "values": [float(seq)]},
            ]}
            doc = post_ingest(client, body, load)
            if doc is not None:
                bad = {(e.get("series"), e.get("index")) for e in doc.get("errors", [])}
                with load.lock:
                    for j, (t, v) in enumerate(zip(ts, values, strict=True)):
                        if (0, j) not in bad:
                            load.acked.setdefault(name, {})[t] = v
                    if (2, 0) not in bad:
                        load.acked_stamped.setdefault(stamped, []).append(float(seq))
            if seq % 10 == 0:
                with contextlib.suppress(httpx.HTTPError):
                    r = client.post("/api/v1/events", json={
                        "type": "clk.tick", "source": f"client{c}", "attributes": {"seq": seq}})
                    if r.status_code in (200, 201):
                        with load.lock:
                            load.acked_events.append(seq * 100 + c)
            load.stop.wait(0.1)


def health_loop(base: str, load: Load, deadline: float) -> None:
    with httpx.Client(base_url=base, timeout=5) as client:
        while not load.stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                ok = client.get("/api/v1/health").status_code == 200
            except httpx.HTTPError:
                ok = False
            with load.lock:
                load.health_latencies.append(time.monotonic() - started)
                load.health_fail += not ok
            load.stop.wait(0.1)


# -- part 1 -------------------------------------------------------------------------------


def set_value(client: httpx.Client, metric: str, phase: int, value: float,
              stamp: bool = True) -> None:
    """One sample, client-stamped (real time) unless `stamp` is False (server time)."""
    entry: dict[str, Any] = {"metric": metric, "labels": {"phase": str(phase)},
                             "values": [value]}
    if stamp:
        entry["timestamps"] = [wall_ms()]
    r = client.post("/api/v1/ingest", json={"series": [entry]})
    r.raise_for_status()
    if r.json().get("accepted") != 1:
        raise RuntimeError(f"{metric}{{phase={phase}}} = {value} refused: {r.text}")


def stamped_ts(client: httpx.Client, selector: str) -> int | None:
    """Timestamp of the newest sample of one series, by `query`."""
    r = client.get("/api/v1/query", params={"selector": selector, "window": "1m"})
    series = r.json().get("series", []) if r.status_code == 200 else []
    if not series:
        return None
    return int(series[0]["timestamp"])


def run_phase(client: httpx.Client, receiver: Receiver, offset_file: Path, phase: int,
              jump: float, offset_before: float, for_s: float, keep_s: float, fail_s: float,
              checks: list[str], figures: dict[str, Any], load: Load) -> float:
    """One jump with alerts in flight; returns the phase's start (monotonic)."""
    load.phase = phase
    segment0 = int(client.get("/api/v1/health").json()["store"]["wal_segment"])
    t0 = time.monotonic()
    receiver.fail_until = t0 + fail_s
    set_value(client, "clk_pend", phase, 95.0)
    set_value(client, "clk_keep", phase, 95.0)
    time.sleep(max(0.0, t0 + CLEAR_AT_S - time.monotonic()))
    set_value(client, "clk_keep", phase, 50.0)
    time.sleep(max(0.0, t0 + JUMP_AT_S - time.monotonic()))
    offset = offset_before + jump
    uptime0 = float(client.get("/api/v1/health").json()["uptime_s"])
    m0 = time.monotonic()
    set_offset(offset_file, offset)
    time.sleep(0.1)
    # The server's wall clock moved: a sample without timestamp gets the shifted "now" ...
    probe = f'clk_probe{{phase="{phase}"}}'
    set_value(client, "clk_probe", phase, 1.0, stamp=False)
    got = stamped_ts(client, probe)
    want = wall_ms() + int(offset * 1000)
    moved = got is not None and abs(got - want) < 5000
    # ... and its limits with it: just inside the future limit and the retention is
    # stored, just past them is refused with the reason.
    server_now = wall_ms() + int(offset * 1000)
    probes = [("future_in", server_now + (MAX_FUTURE_S - 60) * 1000),
              ("future_past", server_now + (MAX_FUTURE_S + 60) * 1000),
              ("old_in", server_now - (RETENTION_S - 3600) * 1000),
              ("old_past", server_now - (RETENTION_S + 3600) * 1000)]
    r = client.post("/api/v1/ingest", json={"series": [
        {"metric": "clk_limits", "labels": {"phase": str(phase), "k": k}, "timestamps": [ts],
         "values": [1.0]} for k, ts in probes]})
    doc = r.json()
    reasons = {int(e["series"]): str(e.get("reason", "")) for e in doc.get("errors", [])}
    future_ok = (r.status_code in (200, 400) and doc.get("accepted") == 2
                 and doc.get("rejected") == 2 and "future" in reasons.get(1, "")
                 and "retention" in reasons.get(3, ""))
    for i, key in ((1, "future (probe)"), (3, "too old (probe)")):
        if i in reasons:
            load.rejected[key] = load.rejected.get(key, 0) + 1
    # The monotonic clock (uptime) did not move.
    uptime1 = float(client.get("/api/v1/health").json()["uptime_s"])
    real = time.monotonic() - m0
    uptime_ok = abs((uptime1 - uptime0) - real) < 1.0
    ok = moved and future_ok and uptime_ok
    checks.append(f"jump {jump:+g} s (offset now {offset:+g} s): server-stamped sample "
                  f"{'at shifted now' if moved else f'NOT shifted (ts {got}, want ~{want})'}, "
                  f"future and retention limits "
                  f"{'shifted' if future_ok else f'NOT shifted ({r.status_code} {reasons})'}"
                  f", uptime +{uptime1 - uptime0:.2f} s over {real:.2f} s real")
    # Let the rest of the phase play out: pend fires at for_s, clears at for_s + 1.
    clear_pend = max(for_s + 1.0, JUMP_AT_S + 0.5)
    time.sleep(max(0.0, t0 + clear_pend - time.monotonic()))
    set_value(client, "clk_pend", phase, 50.0)
    end = max(clear_pend, CLEAR_AT_S + keep_s, 2 * fail_s + 1.0) + SLACK_S
    time.sleep(max(0.0, t0 + end - time.monotonic()))
    # The head kept being cut into blocks at its pace (block_duration on the monotonic clock).
    cuts = int(client.get("/api/v1/health").json()["store"]["wal_segment"]) - segment0
    figures.setdefault("block_cuts", []).append(cuts)
    if cuts < 1:
        ok = False
        checks.append(f"phase {phase}: no block cut in {end:.1f} s (block_duration "
                      f"{figures['block_s']} s)")
    figures.setdefault("clock_moved", []).append(moved and future_ok)
    figures.setdefault("uptime_steady", []).append(uptime_ok)
    figures["phases_ok"] = figures.get("phases_ok", True) and ok
    return t0


def judge_notifications(receiver: Receiver, starts: list[float], for_s: float, keep_s: float,
                        fail_s: float, checks: list[str]) -> tuple[int, bool]:
    """Spurious or mistimed notifications (and whether retries kept their backoff)."""
    with receiver.lock:
        hits = list(receiver.hits)
    spurious = 0
    backoff_ok = True
    for phase, t0 in enumerate(starts):
        clear_pend = max(for_s + 1.0, JUMP_AT_S + 0.5)
        want = {
            ("steady", "Pend", "firing"): (for_s - EARLY_S, for_s + SLACK_S),
            ("steady", "Pend", "resolved"): (clear_pend - EARLY_S, clear_pend + SLACK_S),
            ("flaky", "Keep", "firing"): (fail_s - EARLY_S, fail_s + BACKOFF_MAX_S + SLACK_S),
            ("flaky", "Keep", "resolved"): (CLEAR_AT_S + keep_s - EARLY_S,
                                            CLEAR_AT_S + keep_s + SLACK_S),
        }
        for (path, name, status), (lo, hi) in want.items():
            times = [h["at"] - t0 for h in hits if h["path"] == "/" + path
                     and h["status"] == 200 for a in h["doc"].get("alerts", [])
                     if a["labels"].get("alertname") == name
                     and a["labels"].get("phase") == str(phase) and a["status"] == status]
            good = len(times) == 1 and lo <= times[0] <= hi
            spurious += 0 if good else max(1, abs(len(times) - 1))
            if not good:
                checks.append(f"phase {phase}: {name} {status} delivered at "
                              f"{[round(t, 2) for t in times]} s, want once in "
                              f"[{lo:.2f}, {hi:.2f}]")
        failed = sorted(h["at"] for h in hits if h["path"] == "/flaky" and h["status"] == 500
                        and t0 <= h["at"] < t0 + fail_s + 0.1)
        gaps = np.diff(failed) if len(failed) > 1 else np.array([1.0])
        if not failed or gaps.min() < 0.2:
            backoff_ok = False
            checks.append(f"phase {phase}: failed attempts at {[round(t - t0, 2) for t in failed]}"
                          " s: retries rushed or missing")
    others = [h for h in hits if h["status"] == 200 and any(
        a["labels"].get("alertname") == "Gone" or h["doc"].get("reason") == "repeat"
        for a in h["doc"].get("alerts", []))]
    if others:
        checks.append(f"{len(others)} notifications of absent() or repeats (spurious)")
    return spurious + len(others), backoff_ok


def count_transitions(client: httpx.Client, phases: int) -> tuple[int, list[str]]:
    """Alert transitions beyond the expected ones (Pend: pending, firing, resolved; Keep:
    firing, resolved; Gone: none), per phase, from the durable history."""
    extra, notes = 0, []
    alerts = client.get("/api/v1/alerts", params={"limit": 1000}).json()["alerts"]
    seen: dict[tuple[str, str], list[str]] = {}
    for alert in alerts:
        doc = client.get(f"/api/v1/alerts/{alert['id']}").json()
        key = (alert["rule"], alert["labels"].get("phase", ""))
        seen[key] = seen.get(key, []) + [t["to"] for t in doc.get("transitions", [])]
    want = {("Pend", str(p)): ["pending", "firing", "resolved"] for p in range(phases)}
    want |= {("Keep", str(p)): ["firing", "resolved"] for p in range(phases)}
    for key in sorted(set(want) | set(seen)):
        got, expected = seen.get(key, []), want.get(key, [])
        if got != expected:
            extra += max(1, abs(len(got) - len(expected)))
            notes.append(f"{key[0]}{{phase={key[1]}}}: transitions {got}, want {expected}")
    return extra, notes


def verify_load(client: httpx.Client, load: Load, span: tuple[int, int]) -> tuple[int, int, int]:
    """(lost, wrong, checked) over every acknowledged sample and event."""
    lost = wrong = checked = 0
    for name, expected in load.acked.items():
        ts = sorted(expected)
        for lo in range(0, len(ts), 9000):
            chunk = ts[lo:lo + 9000]
            r = client.get("/api/v1/query_range", params={
                "selector": name, "start": chunk[0], "end": chunk[-1] + STEP_MS,
                "step": f"{STEP_MS}ms", "agg": "max"})
            r.raise_for_status()
            series = r.json()["series"]
            stored = dict(zip(series[0]["timestamps"], series[0]["values"], strict=True)) \
                if series else {}
            for t in chunk:
                checked += 1
                if t not in stored or stored[t] is None:
                    lost += 1
                elif stored[t] != expected[t]:
                    wrong += 1
    start, end = span
    for name, values in load.acked_stamped.items():
        r = client.get("/api/v1/query_range", params={
            "selector": name, "start": start, "end": end, "step": "1h", "agg": "count"})
        r.raise_for_status()
        series = r.json()["series"]
        stored = sum(v for v in series[0]["values"] if v) if series else 0
        checked += len(values)
        lost += max(0, len(values) - int(stored))
        wrong += max(0, int(stored) - len(values))
    r = client.get("/api/v1/events", params={"type": "clk.tick", "start": start, "end": end,
                                              "limit": 10000})
    r.raise_for_status()
    got = {int(e["attributes"]["seq"]) * 100 + int(e["source"][len("client"):])
           for e in r.json()["events"]}
    checked += len(load.acked_events)
    lost += len(set(load.acked_events) - got)
    return lost, wrong, checked


# -- part 2 -------------------------------------------------------------------------------


def late_plan(t0: int, k: int) -> list[tuple[str, list[tuple[int, float]]]]:
    """Writes of series k in order: (stage, [(ts, value)]); seconds from t0, 1 s apart."""
    s = 1000
    base = 10000.0 * k
    return [
        ("block", [(t0 + 2 * i * s, base + i) for i in range(100)]),            # 0..198 even
        ("flush", []),
        ("late", [(t0 + (2 * i + 1) * s, base + 500 + i) for i in range(50)]),  # odd 1..99
        ("dup_block", [(t0 + 2 * i * s, base + 1000 + i) for i in range(10, 30)]),  # 20..58
        ("span", [(t0 + i * s, base + 2000 + i) for i in range(190, 231)]),     # over the end
        ("flush", []),
        ("dup_head", [(t0 + 2 * i * s, base + 3000 + i) for i in range(30, 40)]  # 60..78
         + [(t0 + (2 * i + 1) * s, base + 4000 + i) for i in range(5)]),      # odd 1..9
    ]


def compare_late(client: httpx.Client, t0: int, expected: list[dict[int, float]]) -> int:
    """Points where query_range (1 s step) differs from `expected`: a missing or extra
    timestamp, a wrong value, or more than one stored sample in a bucket."""
    r_avg = client.get("/api/v1/query_range", params={
        "selector": "late", "start": t0 - 10_000, "end": t0 + 240_000, "step": "1s"})
    r_cnt = client.get("/api/v1/query_range", params={
        "selector": "late", "start": t0 - 10_000, "end": t0 + 240_000, "step": "1s",
        "agg": "count"})
    r_avg.raise_for_status()
    r_cnt.raise_for_status()
    counts = {s["labels"]["k"]: dict(zip(s["timestamps"], s["values"], strict=True))
              for s in r_cnt.json()["series"]}
    bad = 0
    for s in r_avg.json()["series"]:
        k = int(s["labels"]["k"])
        got = {t: v for t, v in zip(s["timestamps"], s["values"], strict=True) if v is not None}
        want = expected[k]
        bad += len(set(got) ^ set(want))
        bad += sum(1 for t in set(got) & set(want) if got[t] != want[t])
        bad += sum(1 for t, n in counts[str(k)].items() if n is not None and n > 1)
    bad += len(expected) - len(r_avg.json()["series"])
    return bad


def late_data(client: httpx.Client, series: int, offset: float,
              checks: list[str]) -> tuple[int, list[dict[int, float]], int, int]:
    """Write the late-data plan (flushing where it says), then two samples that must be
    refused; (acknowledged, expected points, written, refused with the right reason)."""
    t0 = (wall_ms() - 1_800_000) // 1000 * 1000
    plans = [late_plan(t0, k) for k in range(series)]
    expected: list[dict[int, float]] = [{} for _ in range(series)]
    acked = written = 0
    for stage in range(len(plans[0])):
        if plans[0][stage][0] == "flush":
            client.post("/api/v1/admin/flush").raise_for_status()
            continue
        body = {"series": [
            {"metric": "late", "labels": {"k": str(k)},
             "timestamps": [t for t, _ in plans[k][stage][1]],
             "values": [v for _, v in plans[k][stage][1]]} for k in range(series)]}
        r = client.post("/api/v1/ingest", json=body)
        r.raise_for_status()
        doc = r.json()
        if doc.get("rejected"):
            checks.append(f"late data: stage {plans[0][stage][0]} refused {doc['errors'][:2]}")
        acked += doc["accepted"]
        for k in range(series):
            written += len(plans[k][stage][1])
            expected[k].update(plans[k][stage][1])
    refused_ok = 0
    server_now = wall_ms() + int(offset * 1000)
    for ts, reason in ((t0 + 230_000 - 3_600_000 - 60_000, "out-of-order"),
                       (server_now + (MAX_FUTURE_S + 60) * 1000, "future")):
        r = client.post("/api/v1/ingest", json={"series": [
            {"metric": "late", "labels": {"k": "0"}, "timestamps": [ts], "values": [-1.0]}]})
        doc = r.json()
        said = " ".join(str(e.get("reason", "")) for e in doc.get("errors", []))
        good = (r.status_code in (200, 400) and doc.get("accepted") == 0
                and doc.get("rejected") == 1 and reason in said)
        refused_ok += good
        if not good:
            checks.append(f"late data: a sample {reason} answered {r.status_code} {doc}")
    return acked, expected, written, refused_ok


def wait_compacted(client: httpx.Client, timeout_s: float = 10.0) -> bool:
    """Wait (bounded) until the upkeep thread has merged the small blocks into one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get("/api/v1/health").json()["store"]["blocks"] == 1:
            return True
        time.sleep(0.2)
    return False


def start_server(server: Server, shim: Path, offset_file: Path) -> None:
    """Start with the shim preloaded (Server.start takes no environment)."""
    saved = {k: os.environ.get(k) for k in ("LD_PRELOAD", "CLOCKSHIFT_FILE")}
    os.environ.update(shim_env(shim, offset_file))
    try:
        server.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- the scenario ---------------------------------------------------------------------------


def run(work: Path, jumps: list[float], for_s: float, keep_s: float, fail_s: float,
        block_s: float, clients: int, late_series: int) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    checks: list[str] = []
    shim = build_shim(work)
    shim_ok, note = check_shim(shim, work)
    checks.append(note)
    figures: dict[str, Any] = {"jumps_applied": 0, "block_s": block_s}
    offset_file = work / "clock-offset"
    set_offset(offset_file, 0)
    receiver = Receiver()
    httpd = receiver.serve()
    port = free_port()
    config = work / "clock.yaml"
    config.write_text(config_yaml(httpd.server_address[1], for_s, keep_s, block_s))
    server = Server("seismo", seismo_argv(port, work / "data", config), port,
                    work / "seismo.log", "/api/v1/health")
    load = Load()
    threads: list[threading.Thread] = []
    started_wall = wall_ms()
    late: dict[str, int] = {}
    try:
        start_server(server, shim, offset_file)
        deadline = time.monotonic() + 60 + len(jumps) * (max(for_s, keep_s, 2 * fail_s) + 10)
        threads = [threading.Thread(target=client_loop, args=(server.base, c, load, deadline),
                                    daemon=True) for c in range(clients)]
        threads.append(threading.Thread(target=health_loop, args=(server.base, load, deadline),
                                        daemon=True))
        for t in threads:
            t.start()
        starts = []
        offset = 0.0
        with httpx.Client(base_url=server.base, timeout=30) as client:
            time.sleep(0.5)
            for phase, jump in enumerate(jumps):
                starts.append(run_phase(client, receiver, offset_file, phase, jump, offset,
                                        for_s, keep_s, fail_s, checks, figures, load))
                offset += jump
                figures["jumps_applied"] += 1
            load.stop.set()
            for t in threads:
                t.join(timeout=15)
            spurious_n, backoff_ok = judge_notifications(receiver, starts, for_s, keep_s,
                                                         fail_s, checks)
            extra, notes = count_transitions(client, len(jumps))
            checks.extend(notes)
            span = (started_wall - 7_200_000,
                    wall_ms() + int((max(offset, 0) + 7200) * 1000))
            lost, wrong, checked = verify_load(client, load, span)
            # Part 2 on the same (clock-shifted) server; then kill -9 and restart.
            late_acked, expected, written, refused_ok = late_data(client, late_series, offset,
                                                                  checks)
            t0 = min(min(e) for e in expected)
            late["before_restart"] = compare_late(client, t0, expected)
            figures["alive_before_kill"] = server.alive()
            assert server.proc is not None
            server.proc.kill()
            server.proc.wait(timeout=30)
            server.stop()
            start_server(server, shim, offset_file)
            late["after_restart"] = compare_late(client, t0, expected)
            lost2, wrong2, _ = verify_load(client, load, span)
            client.post("/api/v1/admin/flush").raise_for_status()
            late["after_flush"] = compare_late(client, t0, expected)
            figures["blocks_compacted"] = wait_compacted(client)
            late["after_compaction"] = compare_late(client, t0, expected)
    finally:
        load.stop.set()
        server.stop()
        set_offset(offset_file, 0)
        httpd.shutdown()
        httpd.server_close()
    lost, wrong = max(lost, lost2), max(wrong, wrong2)
    lat = np.array(load.latencies) * 1000
    hlat = np.array(load.health_latencies) * 1000
    health_p99 = round(float(np.percentile(hlat, 99)), 1) if hlat.size else None
    acked = sum(len(v) for v in load.acked.values()) + sum(
        len(v) for v in load.acked_stamped.values())
    figures.update({
        "acknowledged_samples": acked, "acknowledged_events": len(load.acked_events),
        "checked": checked, "lost": lost, "wrong_values": wrong,
        "spurious_notifications": spurious_n, "spurious_transitions": extra,
        "retries_kept_backoff": backoff_ok, "rejected_with_reason": dict(load.rejected),
        "ingest_errors": load.errors[:5], "ingest_error_count": len(load.errors),
        "ingest_p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
        "health_p99_ms": health_p99, "health_failures": load.health_fail,
        "late_acknowledged": late_acked, "late_written": written,
        "late_expected_points": sum(len(e) for e in expected),
        "late_refused_with_reason": refused_ok, "late_mismatches": late,
    })
    checks.append(f"clock jumps {jumps}: {acked} samples + {len(load.acked_events)} events "
                  f"acknowledged, lost {lost}, wrong {wrong} (before and after kill -9); "
                  f"spurious transitions {extra}, spurious/mistimed notifications "
                  f"{spurious_n}; retries kept backoff: {backoff_ok}; health p99 "
                  f"{health_p99} ms (< 250), {load.health_fail} failures; ingest p99 "
                  f"{figures['ingest_p99_ms']} ms (< 2000), errors {len(load.errors)}; block cuts "
                  f"per phase {figures.get('block_cuts')}")
    checks.append(f"late data ({late_series} series, on the shifted clock): {late_acked} of "
                  f"{written} acknowledged (late, duplicates of block and head samples, "
                  f"spanning a block's end); {refused_ok}/2 refused with out-of-order/future; "
                  f"mismatches at 1 s step before kill -9, after restart, after a flush, after "
                  f"compaction into one block: {late}")
    ok = [shim_ok, figures.pop("phases_ok", False), figures["alive_before_kill"], acked > 0,
          lost == 0, wrong == 0, extra == 0, spurious_n == 0, backoff_ok, not load.errors,
          load.health_fail == 0, health_p99 is not None and health_p99 < 250,
          figures["ingest_p99_ms"] is not None and figures["ingest_p99_ms"] < 2000,
          figures["jumps_applied"] == len(jumps), late_acked == written, refused_ok == 2,
          figures["blocks_compacted"], len(late) == 4 and not any(late.values())]
    return {"ok": all(ok), **figures, "checks": checks}
