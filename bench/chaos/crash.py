"""Crash under load: kill -9 seismo at random moments while it ingests at ~80 % of its
measured capacity, restart it on the same data dir and port, and count afterwards what it
had acknowledged: samples, events, alert transitions and queued notifications.

The load: 4 paced columnar ingest clients (bench/chaos/load.py), events at a modest rate,
and a square wave (`chaos_flip`) that makes a rule fire and resolve every few seconds. The
rule's notifications go to a webhook receiver in this process that answers slowly or 500
now and then, so that the outbox holds pending notifications when the kill comes. After the
last restart the receiver recovers and every check reads the data back over the API.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import random
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from chaos.load import (
    ColumnarSource,
    EventLedger,
    Ledger,
    encode,
    event_client,
    missing,
    start_clients,
    stored,
    stored_events,
)
from ingest import Server, free_port, seismo_argv
from seismo.notify import rfc3339

CLIENTS = 4
METRIC = "chaos_load"
FLIP = "chaos_flip"
FLIP_SERIES = 4
EVENT_TYPE = "chaos_crash"
SAMPLE_STEP_MS = 1000  # load samples of a series are 1 s apart (read back at step 1s)
FLIP_STEP_MS = 200
GROUP_INTERVAL_S = 1

FULL: dict[str, Any] = {"kills": 20, "capacity_s": 5.0, "delay_s": (1.0, 6.0),
                        "flip_period_s": 6.0, "drain_s": 120.0, "seed": 12}
# The smoke run sends small bodies (10 series x 5 points): a lower capacity, so the WAL to
# replay at each restart stays small and the run short.
SMOKE: dict[str, Any] = {"kills": 2, "capacity_s": 0.8, "delay_s": (0.8, 1.2),
                         "flip_period_s": 5.0, "drain_s": 20.0, "seed": 12,
                         "series_per_client": 10, "points": 5, "warmup_s": 0.2}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- the webhook receiver -----------------------------------------------------------------


@dataclass
class Receipt:
    at_ms: int
    body: bytes
    doc: dict[str, Any]


@dataclass
class Receiver:
    """A webhook receiver that, while `flaky`, answers 500 to every `cycle`-th request
    (the first one too) and takes `slow_s` to answer the one after; it keeps every body it
    answered 200."""

    cycle: int = 4
    slow_s: tuple[float, float] = (0.3, 1.5)
    flaky: bool = True
    receipts: list[Receipt] = field(default_factory=list)
    requests: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def start(self) -> tuple[http.server.ThreadingHTTPServer, str]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    turn = receiver.requests % receiver.cycle if receiver.flaky else -1
                    receiver.requests += 1
                    pause = receiver.rng.uniform(*receiver.slow_s)
                status = 200
                if turn == 0:
                    status = 500
                elif turn == 1:
                    time.sleep(pause)
                with receiver.lock:
                    if status == 200:
                        receiver.receipts.append(Receipt(now_ms(), body, json.loads(body)))
                    else:
                        receiver.refused += 1
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="chaos-receiver", daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}/hook"


def write_config(path: Path, hook_url: str) -> None:
    """seismo.yaml: a rule on the square wave, a webhook channel and a route to it."""
    path.write_text(f"""\
rules:
  - name: ChaosFlip
    expr: '{FLIP} > 50'
    severity: critical
    annotations: {{summary: "flip {{{{ $labels.k }}}} at {{{{ $value }}}}"}}
channels:
  - {{name: chaoshook, type: webhook, url: "{hook_url}", timeout_s: 3}}
routes:
  - match: {{alertname: ChaosFlip}}
    channels: [chaoshook]
    group_by: [alertname, k]
    group_wait: 0s
    group_interval: {GROUP_INTERVAL_S}s
alerting:
  outbox_backoff_max_s: 2
""")


# -- the server ---------------------------------------------------------------------------


class Seismo(Server):
    """bench/ingest.py's Server, ready-polled every 20 ms so restart times are precise."""

    def start(self, timeout_s: float = 60.0) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"seismo exited with {self.proc.returncode} at start; "
                                   f"log: {self.log_path}\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return
            time.sleep(0.02)
        raise RuntimeError(f"seismo not ready after {timeout_s}s; log: {self.log_path}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL
        self.proc.wait(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None


# -- what the server reported -------------------------------------------------------------


class Watcher:
    """Polls the `alerts` topic (`/api/v1/stream/recent`) and `/api/v1/outbox`: every
    alert transition and every queued notification the server has reported."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=5)
        self.transitions: dict[tuple[str, int, str | None, str, int], dict[str, Any]] = {}
        self.outbox: dict[int, dict[str, Any]] = {}  # id -> the row as first seen
        self.pending_seen: set[int] = set()
        self.cursor = 0
        self.polls = 0
        self.lock = threading.Lock()

    def poll(self) -> bool:
        with self.lock:
            try:
                for _ in range(50):
                    doc = self.http.get("/api/v1/stream/recent", params={
                        "topic": "alerts", "since": str(self.cursor), "limit": "1000"}).json()
                    for m in doc["messages"]:
                        a, t = m["alert"], m["alert"]["transition"]
                        key = (a["fingerprint"], t["episode"], t["from"], t["to"], t["at_ms"])
                        self.transitions.setdefault(key, t)
                    self.cursor = doc["cursor"]
                    if not doc["more"]:
                        break
                rows = self.http.get("/api/v1/outbox", params={"limit": "10000"}).json()
                for row in rows["notifications"]:
                    self.outbox.setdefault(row["id"], row)
                    if row["state"] == "pending":
                        self.pending_seen.add(row["id"])
                self.polls += 1
                return True
            except (httpx.HTTPError, ValueError, KeyError):
                self.cursor = 0  # a restarted server numbers its messages from 1 again
                return False

    def pending_now(self) -> int:
        with self.lock:
            try:
                return int(self.http.get("/api/v1/outbox", params={"limit": "1"}).json()
                           ["counts"]["pending"])
            except (httpx.HTTPError, ValueError, KeyError):
                return -1

    def run(self, stop: threading.Event, every_s: float = 0.1) -> None:
        while not stop.wait(every_s):
            self.poll()


def flip_writer(url: str, ledger: Ledger, stop: threading.Event, period_ms: int) -> None:
    """`chaos_flip{k}` every FLIP_STEP_MS: a square wave of `period_ms`, series k a quarter
    period behind series k-1, so the rule fires and resolves on each of them."""
    last = 0
    with httpx.Client(timeout=10, headers={"content-type": "application/json"}) as http:
        while not stop.wait(FLIP_STEP_MS / 1000 / 2):
            ts = now_ms() // FLIP_STEP_MS * FLIP_STEP_MS
            if ts <= last:
                continue
            last = ts
            series = [({"k": str(k)}, np.array([ts]),
                       np.array([100.0 if (ts + k * period_ms // 4) // (period_ms // 2) % 2
                                 else 0.0]))
                      for k in range(FLIP_SERIES)]
            body = encode(FLIP, series)
            try:
                ledger.reply(body, http.post(url, content=body.data))
            except httpx.HTTPError:
                ledger.failed(body)


# -- the scenario -------------------------------------------------------------------------


def run(work: Path, kills: int = 20, capacity_s: float = 5.0, warmup_s: float = 0.5,
        delay_s: tuple[float, float] = (1.0, 6.0), flip_period_s: float = 6.0,
        drain_s: float = 120.0, seed: int = 12, series_per_client: int = 50,
        points: int = 40, load_share: float = 0.8, event_requests_per_s: float = 5.0
        ) -> dict[str, Any]:
    """Start seismo, measure its capacity (`capacity_s` of unpaced ingest from 4 clients),
    load it at `load_share` of that and kill -9 it `kills` times, each after a uniform
    random `delay_s`; then check that nothing acknowledged was lost. Bodies carry
    `series_per_client` series x `points` points."""
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    receiver = Receiver()
    hook_server, hook_url = receiver.start()
    write_config(work / "seismo.yaml", hook_url)
    port = free_port()
    srv = Seismo("seismo", seismo_argv(port, work / "data", work / "seismo.yaml"), port,
                 work / "seismo.log", "/api/v1/health")
    url = srv.base + "/api/v1/ingest"
    t_start = now_ms()
    # 1 s apart, a full run writes ~3.5 days per series: start far enough back that no
    # sample reaches the server's future limit (retention is 30 days)
    t0 = t_start - 10 * 86_400_000
    sources = [ColumnarSource(METRIC, [{"c": str(c), "s": str(s)}
                                       for s in range(series_per_client)],
                              points, t0, SAMPLE_STEP_MS, seed * 100 + c)
               for c in range(CLIENTS)]
    for s in sources:
        s.prepare(200)
    ledger, events = Ledger(), EventLedger()
    watcher = Watcher(srv.base)
    stops = [threading.Event() for _ in range(3)]  # capacity load, paced load, side threads
    threads: list[threading.Thread] = []
    restarts_s: list[float] = []
    pending_at_kill: list[int] = []
    out: dict[str, Any] = {"work": str(work), "log": str(srv.log_path)}
    phases = {"begin": time.monotonic()}
    try:
        srv.start()
        phases["start"] = time.monotonic()
        # 1. capacity: 4 clients as fast as they go
        threads += start_clients(url, [s.next for s in sources], ledger, stops[0])
        time.sleep(warmup_s)  # not measured
        acked0, t_cap = ledger.figures()["acked_samples"], time.monotonic()
        time.sleep(capacity_s)
        capacity = (ledger.figures()["acked_samples"] - acked0) / (time.monotonic() - t_cap)
        stops[0].set()
        for t in threads:
            t.join(timeout=15)
        offered = load_share * capacity
        phases["capacity"] = time.monotonic()
        per_body = series_per_client * points
        expected_s = kills * (sum(delay_s) / 2 + 2.5) + 5
        for s in sources:
            s.prepare(min(5000, int(offered / CLIENTS * expected_s / per_body) + 10))
        phases["prepare"] = time.monotonic()
        # 2. paced load, events, the square wave and the watcher
        threads += start_clients(url, [s.next for s in sources], ledger, stops[1],
                                 rate_per_s=offered)
        side = [threading.Thread(target=event_client, args=(
                    srv.base + "/api/v1/events", EVENT_TYPE, events, stops[2],
                    event_requests_per_s), daemon=True),
                threading.Thread(target=flip_writer, args=(
                    url, ledger, stops[2], int(flip_period_s * 1000)), daemon=True),
                threading.Thread(target=watcher.run, args=(stops[2],), daemon=True)]
        for t in side:
            t.start()
        threads += side
        # 3. kill -9 at random moments, restart on the same data dir and port
        for _ in range(kills):
            time.sleep(rng.uniform(*delay_s))
            watcher.poll()
            pending_at_kill.append(watcher.pending_now())
            srv.kill()
            killed = time.monotonic()
            srv.start()
            restarts_s.append(time.monotonic() - killed)
            watcher.cursor = 0
        time.sleep(min(delay_s))  # the last server takes load too
        stops[1].set()
        stops[2].set()
        for t in threads:
            t.join(timeout=15)
        # every flip series goes to 0, so every alert resolves and must be notified so
        flip_zero = encode(FLIP, [({"k": str(k)}, np.array([now_ms() // FLIP_STEP_MS
                                                             * FLIP_STEP_MS + FLIP_STEP_MS]),
                                   np.array([0.0])) for k in range(FLIP_SERIES)])
        time.sleep(FLIP_STEP_MS / 1000)
        with httpx.Client(timeout=10) as http:
            ledger.reply(flip_zero, http.post(url, content=flip_zero.data))
        watcher.poll()
        phases["kills"] = time.monotonic()
        # 4. the receiver recovers; wait (bounded) for the outbox to empty
        with receiver.lock:
            receiver.flaky = False
        deadline = time.monotonic() + drain_s
        time.sleep(GROUP_INTERVAL_S + 0.5)  # the resolved alerts' groups flush
        while watcher.pending_now() != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        phases["drain"] = time.monotonic()
        load_end = max(s.newest_ms() for s in sources)
        out.update(verify(srv.base, ledger, events, watcher, receiver, t0, load_end, t_start))
        phases["verify"] = time.monotonic()
        marks = list(phases.items())
        out["phase_s"] = {name: round(t - marks[i - 1][1], 1)
                          for i, (name, t) in enumerate(marks) if i}
        out.update(capacity_samples_per_s=round(capacity), offered_samples_per_s=round(offered),
                   kills=len(restarts_s), clients=CLIENTS,
                   restart_s_p50=round(statistics.median(restarts_s), 2) if restarts_s else None,
                   restart_s_max=round(max(restarts_s), 2) if restarts_s else None,
                   pending_notifications_at_kill=pending_at_kill,
                   receiver_refused=receiver.refused, load=ledger.figures(),
                   events_sent=events.sent, events_failed=events.failed, polls=watcher.polls)
        checks = [
            (f"kills: {len(restarts_s)} of {kills}", len(restarts_s) == kills),
            (f"lost_samples: {out['lost_samples']} of {out['acked_samples']}",
             out["lost_samples"] == 0 and out["acked_samples"] > 0),
            (f"lost_events: {out['lost_events']} of {out['acked_events']}",
             out["lost_events"] == 0 and out["acked_events"] > 0),
            (f"lost_alert_transitions: {out['lost_alert_transitions']} of "
             f"{out['seen_alert_transitions']}",
             out["lost_alert_transitions"] == 0 and out["seen_alert_transitions"] > 0),
            (f"lost_notifications: {out['lost_notifications']} of "
             f"{out['seen_notifications']} ({out['seen_pending_notifications']} seen pending)",
             out["lost_notifications"] == 0 and out["seen_pending_notifications"] > 0),
            (f"unnotified_alert_changes: {out['unnotified_alert_changes']} of "
             f"{out['alert_changes_to_notify']} (firing and resolved per episode)",
             out["unnotified_alert_changes"] == 0 and out["alert_changes_to_notify"] > 0),
            (f"offered {round(offered)} samples/s = {load_share:.0%} of capacity "
             f"{round(capacity)}", capacity > 0),
        ]
        out["checks"] = [f"{text}: {'ok' if good else 'FAILED'}" for text, good in checks]
        out["ok"] = all(good for _, good in checks)
    except Exception as exc:  # the figures so far, and why it stopped
        out.update(ok=False, error=f"{type(exc).__name__}: {exc}", tail=srv.tail(20))
        out.setdefault("checks", []).append(f"ran to the end: FAILED ({exc})")
    finally:
        for stop in stops:
            stop.set()
        for t in threads:
            t.join(timeout=15)
        srv.stop()
        watcher.http.close()
        hook_server.shutdown()
        hook_server.server_close()
    return out


def verify(base: str, ledger: Ledger, events: EventLedger, watcher: Watcher,
           receiver: Receiver, t0: int, load_end: int, t_start: int) -> dict[str, Any]:
    """Read everything back from the last server and compare with what was acknowledged."""
    end = now_ms() + 1000
    with httpx.Client(base_url=base, timeout=120) as http:
        # samples: the exact (timestamp, value) pairs of every acknowledged series
        have = stored(http, FLIP, t_start - FLIP_STEP_MS, end, FLIP_STEP_MS)
        for c in range(CLIENTS):  # one client's series at a time: under the points cap
            have.update(stored(http, f'{METRIC}{{c="{c}"}}', t0, load_end, SAMPLE_STEP_MS))
        with ledger.lock:
            keys = list(ledger.acked)
        acked_samples = lost_samples = 0
        nothing = (np.empty(0, np.int64), np.empty(0))
        for key in keys:
            want = ledger.samples(key)
            acked_samples += len(want[0])
            lost_samples += missing(want, have.get(key, nothing))
        extra = sum(len(v[0]) for v in have.values()) - acked_samples + lost_samples
        # events, by their uid
        uids = [e["attributes"].get("uid") for e in stored_events(http, EVENT_TYPE,
                                                                  t_start).values()]
        lost_events = len(events.acked - set(uids))
        # alert transitions: every one seen on the stream is in the alert's history
        fps = {key[0] for key in watcher.transitions}
        recorded: set[tuple[str, int, str | None, str, int]] = set()
        for fp in fps:
            for t in http.get(f"/api/v1/alerts/{fp}").json().get("transitions", []):
                recorded.add((fp, t["episode"], t["from"], t["to"], t["at_ms"]))
        lost_transitions = len(set(watcher.transitions) - recorded)
        # notifications: every one seen in the outbox is sent, and the receiver has it
        rows = {r["id"]: r for r in http.get("/api/v1/outbox", params={"limit": "10000"})
                .json()["notifications"]}
        history = {fp: http.get(f"/api/v1/alerts/{fp}").json().get("transitions", [])
                   for fp in fps}
    with receiver.lock:
        receipts = list(receiver.receipts)
    lost_notifications = 0
    for nid, seen in watcher.outbox.items():
        row = rows.get(nid)
        if row is None or row["state"] != "sent" or not any(
                r.doc["groupKey"] == seen["group_key"] and len(r.doc["alerts"]) == seen["alerts"]
                and seen["created_ms"] - 5 <= r.at_ms <= row["sent_ms"] + 1000
                for r in receipts):
            lost_notifications += 1
    bodies = [r.body for r in receipts]
    to_notify, unnotified = alert_changes(history, receipts)
    return {"acked_samples": acked_samples, "lost_samples": lost_samples,
            "stored_unacknowledged_samples": extra,
            "acked_events": len(events.acked), "lost_events": lost_events,
            "seen_alert_transitions": len(watcher.transitions),
            "lost_alert_transitions": lost_transitions,
            "seen_notifications": len(watcher.outbox),
            "seen_pending_notifications": len(watcher.pending_seen),
            "lost_notifications": lost_notifications,
            "notifications_delivered": len(receipts),
            "duplicates_delivered": len(bodies) - len(set(bodies)),
            "alert_changes_to_notify": to_notify, "unnotified_alert_changes": len(unnotified),
            "unnotified_examples": unnotified[:5],
            "outbox_final": {s: sum(r["state"] == s for r in rows.values())
                             for s in ("pending", "sent", "dead")}}


def alert_changes(history: dict[str, list[dict[str, Any]]],
                  receipts: list[Receipt]) -> tuple[int, list[str]]:
    """Each episode that fired must reach the receiver firing, and, once resolved, resolved
    (as in Alertmanager, a resolve followed within a group interval by the next firing is
    one unchanged "firing" for the receiver: neither is due). Returns (due, missing)."""
    told = {(a["fingerprint"], a["status"], a["startsAt"])
            for r in receipts for a in r.doc["alerts"]}
    merge_ms = GROUP_INTERVAL_S * 1000 + 1000
    due, missing_changes = 0, []
    for fp, transitions in history.items():
        runs: list[list[int | None]] = []  # [fired_ms, resolved_ms] per episode, in order
        for t in transitions:
            if t["to"] == "firing" and t["from"] in (None, "resolved", "pending"):
                runs.append([t["at_ms"], None])
            elif t["to"] == "resolved" and runs and runs[-1][1] is None:
                runs[-1][1] = t["at_ms"]
        for i, (fired_ms, resolved_ms) in enumerate(runs):
            assert fired_ms is not None
            starts = rfc3339(fired_ms)
            after = runs[i - 1][1] if i else None
            if after is None or fired_ms - after > merge_ms:
                due += 1
                if not ({(fp, "firing", starts), (fp, "resolved", starts)} & told):
                    missing_changes.append(f"{fp} firing at {starts}")
            again = runs[i + 1][0] if i + 1 < len(runs) else None
            if resolved_ms is not None and (again is None or again - resolved_ms > merge_ms):
                due += 1
                if (fp, "resolved", starts) not in told:
                    missing_changes.append(f"{fp} resolved at {rfc3339(resolved_ms)} "
                                           f"(fired at {starts})")
    return due, missing_changes
