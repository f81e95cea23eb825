"""Slow and dead consumers (issue 12): WebSocket clients that never read, a webhook that
hangs, one that answers 500 and an SMTP server that drops the connection.

One seismo (fresh data dir, no collector) gets a paced ingest load whose `chaos_level`
series flip alert rules on and off, with every alert routed to three channels. A baseline
phase measures ingest, `/api/v1/health` latency and one good WebSocket client; then N
clients subscribe to the busy `samples` topic and never read again (tiny receive buffers),
and all three receivers turn bad. The same figures must hold, server RSS must stay under
the stated bound, and the slow clients must be dropped (a `gap`) or cut off. A few
"chatty" clients also send requests without reading the replies: what the server keeps for
them must stay bounded too. Finally the receivers turn good and every notification of the
outbox must arrive at its receiver. Run: `.venv/bin/python bench/chaos/run.py consumers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import http.server
import json
import random
import re
import socket
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import msgspec
import websockets
from aiosmtpd.controller import Controller

from ingest import Server, free_port, machine, seismo_argv

MIB = 1 << 20
WMEM_MAX = 4 * MIB  # Linux's default net.ipv4.tcp_wmem maximum
with contextlib.suppress(OSError, ValueError, IndexError):
    WMEM_MAX = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
CHANNELS = ("hang", "fail", "mail")
SEQ = re.compile(r'"topic":\s*"samples",\s*"seq":\s*(\d+)')

FULL: dict[str, Any] = {
    "slow_clients": 200, "baseline_s": 20.0, "bad_s": 180.0, "keys": 10, "flip_s": 2.0,
    "batches_per_s": 20, "series": 50, "points": 20, "label_bytes": 1000,
    "chatty_clients": 5, "chatty_per_s": 125.0, "recover_timeout_s": 120.0,
    "receiver_timeout_s": 5.0, "client_queue_bytes": 4 * MIB, "client_timeout_s": 60.0,
}
SMOKE: dict[str, Any] = {
    "slow_clients": 20, "baseline_s": 1.5, "bad_s": 5.0, "keys": 4, "flip_s": 1.0,
    "batches_per_s": 20, "series": 50, "points": 20, "label_bytes": 1000,
    "chatty_clients": 2, "chatty_per_s": 125.0, "recover_timeout_s": 10.0,
    "receiver_timeout_s": 1.5, "client_queue_bytes": 128 * 1024, "client_timeout_s": 30.0,
}


# -- receivers --------------------------------------------------------------------------


class _HookHandler(http.server.BaseHTTPRequestHandler):
    server: Hook

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        hook = self.server
        mode = hook.mode
        if mode == "hang":  # read the request, never answer; drop it once recovered
            hook.count("hung")
            hook.release.wait(hook.hang_cap_s)
            self.close_connection = True
            return
        if mode == "fail":
            hook.count("failed")
            self.send_response(500)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"down")
            return
        with hook.lock:
            hook.received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Hook(http.server.ThreadingHTTPServer):
    """A webhook receiver: `good` (200, records the body), `hang` or `fail` (500)."""

    daemon_threads = True

    def __init__(self, mode: str, hang_cap_s: float) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.mode, self.hang_cap_s = mode, hang_cap_s
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.bad: Counter[str] = Counter()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def count(self, what: str) -> None:
        with self.lock:
            self.bad[what] += 1

    def turn(self, mode: str) -> None:
        """Become `good`, `hang` or `fail`; hung requests are let go when it turns good."""
        if mode == "good":
            self.release.set()
        else:
            self.release.clear()
        self.mode = mode

    def close(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class Dropper:
    """An SMTP port that drops every connection: at once, or after EHLO and MAIL FROM."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.sock.settimeout(0.1)
        self.dropped: Counter[str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        n = 0
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            n += 1
            with conn, contextlib.suppress(OSError):
                if n % 2:
                    self.dropped["at_connect"] += 1
                    continue
                conn.settimeout(2.0)
                reader = conn.makefile("rb")
                conn.sendall(b"220 chaos ESMTP\r\n")
                reader.readline()  # EHLO
                conn.sendall(b"250 chaos\r\n")
                reader.readline()  # MAIL FROM: dropped mid-transaction
                self.dropped["mid_transaction"] += 1

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(5)


class Mailbox:
    """aiosmtpd's handler: keeps the headers that identify each notification."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        status = "resolved" if str(msg["Subject"]).startswith("[RESOLVED]") else "firing"
        self.received.append((str(msg["X-Seismo-Group-Key"]), status, str(msg["Date"])))
        return "250 OK"


# -- load -------------------------------------------------------------------------------


class Load(threading.Thread):
    """Paced ingest: `chaos_load` (series 0 carries the batch number) and the alert levels."""

    def __init__(self, base: str, batches_per_s: int, series: int, points: int, keys: int,
                 flip_s: float, label_bytes: int) -> None:
        super().__init__(daemon=True)
        self.pads = [f"{i:04d}" + "p" * max(0, label_bytes - 4) for i in range(series)]
        self.url = f"{base}/api/v1/ingest"
        self.period_s, self.series, self.points = 1.0 / batches_per_s, series, points
        self.keys, self.flip_s = keys, flip_s
        self.phase = "baseline"
        self.flipping = True
        self.stop_flag = threading.Event()
        self.sent_at: dict[int, float] = {}  # batch number -> monotonic time sent
        self.acked: list[tuple[int, str, float, int]] = []  # (batch, phase, latency s, samples)
        self.errors: Counter[str] = Counter()
        self._last_ts = 0

    def body(self, batch: int) -> bytes:
        ts0 = max(time.time_ns() // 1_000_000, self._last_ts + self.points)
        self._last_ts = ts0
        stamps = [ts0 + j for j in range(self.points)]
        rng = random.Random(batch)
        series = [{"metric": "chaos_load", "labels": {"i": str(i), "pod": self.pads[i]},
                   "timestamps": stamps,
                   "values": [float(batch) if i == 0 else round(rng.uniform(0, 100), 2)
                              for _ in stamps]} for i in range(self.series)]
        on = self.flipping and int(time.monotonic() / self.flip_s) % 2 == 0
        series += [{"metric": "chaos_level", "labels": {"key": f"k{k}"}, "timestamps": [ts0],
                    "values": [100.0 if on else 0.0]} for k in range(self.keys)]
        return msgspec.json.encode({"series": series})

    def run(self) -> None:
        next_at = time.monotonic()
        batch = 0
        with httpx.Client(timeout=10.0, trust_env=False) as client:
            while not self.stop_flag.is_set():
                delay = next_at - time.monotonic()
                if delay > 0:
                    self.stop_flag.wait(delay)
                next_at = max(next_at + self.period_s, time.monotonic() - 1.0)
                batch += 1
                body, phase = self.body(batch), self.phase
                started = time.monotonic()
                self.sent_at[batch] = started
                try:
                    resp = client.post(self.url, content=body,
                                       headers={"Content-Type": "application/json"})
                except httpx.HTTPError as exc:
                    self.errors[type(exc).__name__] += 1
                    continue
                if resp.status_code != 200:
                    self.errors[f"HTTP {resp.status_code}"] += 1
                    continue
                self.acked.append((batch, phase, time.monotonic() - started,
                                   int(resp.json()["accepted"])))

    def resolve_all(self) -> None:
        """Stop flipping: the next batches hold every level low, so every alert resolves."""
        self.flipping = False


class Probe(threading.Thread):
    """Polls `/api/v1/health` and the server's RSS, per phase."""

    def __init__(self, server: Server, load: Load) -> None:
        super().__init__(daemon=True)
        self.server, self.load = server, load
        self.stop_flag = threading.Event()
        self.health: dict[str, list[float]] = {}
        self.rss: dict[str, list[int]] = {}
        self.timeline: list[tuple[float, float]] = []  # (monotonic start, latency s)
        self.failures = 0

    def run(self) -> None:
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            while not self.stop_flag.wait(0.1):
                phase = self.load.phase
                started = time.monotonic()
                try:
                    ok = client.get(f"{self.server.base}/api/v1/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                if not ok:
                    self.failures += 1
                    continue
                self.health.setdefault(phase, []).append(time.monotonic() - started)
                self.timeline.append((started, time.monotonic() - started))
                with contextlib.suppress(Exception):
                    self.rss.setdefault(phase, []).append(self.server.rss())


# -- WebSocket clients ------------------------------------------------------------------


class Good:
    """A client that reads everything: seq continuity and delivery latency per phase."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.batches: list[int] = []
        self.received_at: dict[int, float] = {}
        self.gaps: list[dict[str, Any]] = []
        self.closed: str | None = None
        self.ws: Any = None

    async def run(self, uri: str, ready: asyncio.Event) -> None:
        try:
            async with websockets.connect(uri, compression=None, proxy=None,
                                          max_size=None) as ws:
                self.ws = ws
                await ws.send(json.dumps({"op": "subscribe", "topic": "samples",
                                          "selector": "chaos_load"}))
                async for raw in ws:
                    message = json.loads(raw)
                    kind = message["type"]
                    if kind == "subscribed":
                        ready.set()
                    elif kind == "gap":
                        self.gaps.append(message)
                    elif kind == "samples":
                        self.seqs.append(message["seq"])
                        for s in message["series"]:
                            if s["labels"].get("i") == "0":
                                self.batches.append(int(s["values"][0]))
                                self.received_at[int(s["values"][0])] = time.monotonic()
        except websockets.ConnectionClosed as exc:
            self.closed = f"closed {exc.rcvd.code if exc.rcvd else 'without a close frame'}"


async def open_slow(port: int, count: int) -> list[Any]:
    """`count` clients subscribed to the busy topic that will never read again."""
    clients = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/api/v1/stream", sock=sock,
                                      compression=None, proxy=None, ping_interval=None,
                                      max_queue=1, max_size=None)
        await ws.send(json.dumps({"op": "subscribe", "topic": "samples",
                                  "selector": "chaos_load"}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if reply["type"] != "subscribed":
            raise RuntimeError(f"slow client: unexpected reply {reply}")
        clients.append(ws)
    return clients


async def closed_code(ws: Any) -> Any:
    """A silent connection: still up, or reset while its reading was paused? A ping
    tells: the close code (1006 for a reset), or None while it is up."""
    try:
        await asyncio.wait_for(await ws.ping(), 2.0)
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else 1006
    except TimeoutError:
        return None  # no pong yet: up, with a backlog
    return None


async def read_slow(ws: Any, timeout_s: float) -> dict[str, Any]:
    """Now read what a slow client was sent: did it get a `gap`, or was it cut off?"""
    out: dict[str, Any] = {"messages": 0, "gap": None, "closed": None, "last_seq": None,
                           "holes": 0}
    deadline = time.monotonic() + timeout_s
    try:
        while (left := deadline - time.monotonic()) > 0:
            raw = await asyncio.wait_for(ws.recv(), left)
            out["messages"] += 1
            if '"gap"' in raw[:40] and (message := json.loads(raw))["type"] == "gap":
                out["gap"] = message
                return out
            if (found := SEQ.search(raw[:100])) is not None:
                seq = int(found.group(1))
                if out["last_seq"] is not None and seq != out["last_seq"] + 1:
                    out["holes"] += 1
                out["last_seq"] = seq
    except TimeoutError:
        pass
    except websockets.ConnectionClosed as exc:
        out["closed"] = exc.rcvd.code if exc.rcvd else 1006
        return out
    out["closed"] = await closed_code(ws)
    return out


class Chatty:
    """A client that keeps sending requests (a bad `op`, whose `error` reply quotes it)
    and never reads the replies: the server must not buffer them without bound."""

    OP = "x" * 16_000

    def __init__(self) -> None:
        self.sent = 0
        self.stopped = asyncio.Event()
        self.closed: Any = None
        self.reply_bytes = 0
        self.ws: Any = None

    async def run(self, port: int, rate_per_s: float) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        self.ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/api/v1/stream", sock=sock, compression=None, proxy=None,
            ping_interval=None, max_queue=1, max_size=None)
        request = json.dumps({"op": self.OP})
        try:
            while not self.stopped.is_set():
                await self.ws.send(request)
                self.sent += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopped.wait(), 1 / rate_per_s)
        except websockets.ConnectionClosed as exc:
            self.closed = exc.rcvd.code if exc.rcvd else 1006

    async def read(self, timeout_s: float) -> None:
        """What the server kept for it: read it all now, until 0.5 s pass without a
        message (or find the connection reset)."""
        deadline = time.monotonic() + timeout_s
        try:
            while (left := deadline - time.monotonic()) > 0:
                raw = await asyncio.wait_for(self.ws.recv(), min(left, 0.5))
                self.reply_bytes += len(raw)
        except TimeoutError:
            pass
        except websockets.ConnectionClosed as exc:
            self.closed = exc.rcvd.code if exc.rcvd else 1006
            return
        self.closed = self.closed or await closed_code(self.ws)


async def read_all(clients: list[Any], chatty: list[Chatty],
                   timeout_s: float) -> list[dict[str, Any]]:
    for c in chatty:
        c.stopped.set()
    reads = await asyncio.gather(*(read_slow(ws, timeout_s) for ws in clients),
                                 *(c.read(timeout_s) for c in chatty))
    return list(reads[:len(clients)])


class Loop:
    """An asyncio loop in a thread of its own, for the WebSocket clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout_s: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_all(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


# -- the scenario -----------------------------------------------------------------------


def config(work: Path, hang: Hook, fail: Hook, smtp_port: int, p: dict[str, Any]) -> Path:
    timeout = p["receiver_timeout_s"]
    doc = {
        "detect": {"enabled": False},
        "stream": {"client_queue_bytes": p["client_queue_bytes"],
                   "client_timeout_s": p["client_timeout_s"]},
        # Backoff capped at 1 s and attempts enough to outlast the bad phase: the point is
        # that retries resume, not how long the default backoff waits.
        "alerting": {"outbox_backoff_max_s": 1.0, "outbox_max_attempts": 100_000},
        "rules": [{"name": "ChaosLevel", "expr": "chaos_level > 50", "severity": "critical"}],
        "channels": [
            {"name": "hang", "type": "webhook", "url": hang.url, "timeout_s": timeout},
            {"name": "fail", "type": "webhook", "url": fail.url, "timeout_s": timeout},
            {"name": "mail", "type": "email", "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
             "starttls": False, "from": "seismo <seismo@example.com>",
             "to": ["ops@example.com"], "timeout_s": timeout},
        ],
        "routes": [{"channels": list(CHANNELS), "group_by": ["..."], "group_wait": "0s",
                    "group_interval": "500ms"}],
    }
    path = work / "seismo.yaml"
    path.write_text(json.dumps(doc, indent=1))  # JSON is YAML
    return path


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=5.0, trust_env=False).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


def outbox(base: str, channel: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": 10_000}
    if channel:
        params["channel"] = channel
    resp = httpx.get(f"{base}/api/v1/outbox", params=params, timeout=10.0, trust_env=False)
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


def phase_figures(load: Load, probe: Probe, good: Good, phase: str,
                  seconds: float) -> dict[str, Any]:
    acked = [a for a in load.acked if a[1] == phase]
    health = probe.health.get(phase, [])
    delays = [good.received_at[b] - load.sent_at[b] for b, ph, _, _ in acked
              if b in good.received_at]
    return {
        "seconds": round(seconds, 1),
        "ingest_samples_per_s": round(sum(a[3] for a in acked) / seconds),
        "ingest_p99_ms": round(pct([a[2] for a in acked], 0.99) * 1000, 1),
        "health_requests": len(health),
        "health_p50_ms": round(pct(health, 0.5) * 1000, 1),
        "health_p99_ms": round(pct(health, 0.99) * 1000, 1),
        "health_max_ms": round(max(health, default=float("nan")) * 1000, 1),
        "good_ws_messages": sum(1 for b, ph, _, _ in acked if b in good.received_at),
        "good_ws_delivery_p99_ms": round(pct(delays, 0.99) * 1000, 1),
    }


def squash(text: str) -> str:
    """A group key without white space (a mail header may fold it)."""
    return "".join(text.split())


def notification_figures(base: str, hang: Hook, fail: Hook, mailbox: Mailbox) -> dict[str, Any]:
    """Per channel: what the outbox made vs what the receiver got (distinct, duplicates)."""
    out = {}
    for name in CHANNELS:
        rows = outbox(base, name)["notifications"]
        expected = Counter((squash(r["group_key"]), "resolved" if r["reason"] == "resolved"
                            else "firing") for r in rows)
        keys: list[tuple[Any, ...]]
        if name == "mail":
            keys = list(mailbox.received)
        else:
            got = (hang if name == "hang" else fail).received
            keys = [(b["groupKey"], b["status"],
                     tuple(a["startsAt"] for a in b["alerts"])) for b in got]
        distinct = Counter((squash(k[0]), k[1]) for k in set(keys))
        lost = sum(max(0, n - distinct[k]) for k, n in expected.items())
        extra = sum(max(0, n - expected[k]) for k, n in distinct.items())
        states = Counter(r["state"] for r in rows)
        out[name] = {"expected": len(rows), "received": len(keys),
                     "distinct": sum(distinct.values()), "duplicates": len(keys) - len(set(keys)),
                     "lost": lost, "unexpected": extra, "sent": states["sent"],
                     "pending": states["pending"], "dead": states["dead"],
                     "max_attempts": max((r["attempts"] for r in rows), default=0)}
    return out


def run(work: Path, slow_clients: int, baseline_s: float, bad_s: float, keys: int,
        flip_s: float, batches_per_s: int, series: int, points: int, label_bytes: int,
        chatty_clients: int, chatty_per_s: float, recover_timeout_s: float,
        receiver_timeout_s: float, client_queue_bytes: int, client_timeout_s: float
        ) -> dict[str, Any]:
    params = dict(locals())
    del params["work"]
    work.mkdir(parents=True, exist_ok=True)
    checks: list[str] = []
    oks: list[bool] = []

    def check(ok: bool, text: str) -> None:
        oks.append(bool(ok))
        checks.append(f"{'ok' if ok else 'FAILED'}: {text}")

    hang = Hook("good", hang_cap_s=bad_s + 60)
    fail = Hook("good", hang_cap_s=0)
    smtp_port = free_port()
    dropper: Dropper | None = None
    mailbox = Mailbox()
    controller: Controller | None = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    loop = Loop()
    good = Good()
    port = free_port()
    server = Server("seismo", seismo_argv(port, work / "data", config(
        work, hang, fail, smtp_port, params)), port, work / "seismo.log", "/api/v1/health")
    load = Load(server.base, batches_per_s, series, points, keys, flip_s, label_bytes)
    probe = Probe(server, load)
    slow: list[Any] = []
    chatty: list[Chatty] = []
    marks: dict[str, float] = {}
    t0 = time.monotonic()
    figures: dict[str, Any] = {"machine": machine(), "params": params}
    try:
        controller.start()
        server.start()
        marks["started"] = time.monotonic() - t0
        ready = asyncio.Event()
        good_task = asyncio.run_coroutine_threadsafe(
            good.run(f"ws://127.0.0.1:{port}/api/v1/stream", ready), loop.loop)
        loop.run(asyncio.wait_for(ready.wait(), 10), 15)
        load.start()
        probe.start()

        # Baseline.
        started = time.monotonic()
        time.sleep(baseline_s)
        baseline = phase_figures(load, probe, good, "baseline", time.monotonic() - started)

        delivered_before = {"hang": len(hang.received), "fail": len(fail.received),
                            "mail": len(mailbox.received)}

        # Bad: receivers turn bad, slow and chatty clients connect.
        load.phase = "bad"
        started = time.monotonic()
        hang.turn("hang")
        fail.turn("fail")
        if controller is not None:
            controller.stop()
            controller = None
        dropper = Dropper(smtp_port)
        chatty += [Chatty() for _ in range(chatty_clients)]
        chatters = [asyncio.run_coroutine_threadsafe(c.run(port, chatty_per_s), loop.loop)
                    for c in chatty]
        marks["bad"] = time.monotonic() - t0
        slow = loop.run(open_slow(port, slow_clients), 60 + slow_clients)
        connect_s = time.monotonic() - started
        time.sleep(max(0.0, bad_s - connect_s))
        bad_seconds = time.monotonic() - started
        dropped = metric(server.base, "seismo_stream_messages_dropped_total")
        clients_during = metric(server.base, "seismo_stream_clients")
        load.resolve_all()
        load.phase = "recovery"
        bad = phase_figures(load, probe, good, "bad", bad_seconds)
        bad["slow_connect_s"] = round(connect_s, 1)

        # Recovery: receivers good; the load keeps going with every level low.
        recovered_at = time.monotonic()
        marks["recovery"] = recovered_at - t0
        hang.turn("good")
        fail.turn("good")
        dropper.close()
        smtp_drops = dict(dropper.dropped)
        dropper = None
        controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
        controller.start()
        reads = loop.run(read_all(slow, chatty, 3.0), 30)
        for c in chatters:
            c.result(5)
        for ws in slow + [c.ws for c in chatty if c.ws is not None]:
            # gone without a close handshake, which would wait behind the data
            loop.loop.call_soon_threadsafe(ws.transport.abort)
        marks["clients_read"] = time.monotonic() - t0
        time.sleep(0.6)  # the resolves of the last flip reach the outbox (group_interval)
        drained_s = None
        counts: dict[str, int] = {}
        while time.monotonic() - recovered_at < recover_timeout_s:
            counts = outbox(server.base)["counts"]
            if counts["pending"] == 0:
                drained_s = round(time.monotonic() - recovered_at, 1)
                break
            time.sleep(0.25)
        marks["drained"] = time.monotonic() - t0
        load.stop_flag.set()
        load.join(15)
        time.sleep(0.5)
        clients_after = metric(server.base, "seismo_stream_clients")
        notes = notification_figures(server.base, hang, fail, mailbox)
        alive = server.alive()
        probe.stop_flag.set()
        probe.join(10)

        # Figures.
        acked = sorted(b for b, *_ in load.acked)
        gap_clients = sum(1 for r in reads if r["gap"] and r["gap"].get("reason") == "slow_client")
        cut_clients = sum(1 for r in reads if not r["gap"] and r["closed"] is not None)
        rss_base = max(probe.rss.get("baseline", [0]))
        rss_bad = max(probe.rss.get("bad", [0]) + probe.rss.get("recovery", [0]))
        bound = rss_base + slow_clients * (client_queue_bytes + 2 * MIB) + 256 * MIB
        figures.update({
            "baseline": baseline, "bad": bad,
            "slow_clients": {"clients": slow_clients, "got_gap": gap_clients,
                             "cut_off": cut_clients,
                             "neither": slow_clients - gap_clients - cut_clients,
                             "messages_read_avg": round(statistics.mean(
                                 [r["messages"] for r in reads] or [0]), 1),
                             "server_dropped_messages": dropped,
                             "server_cut_off_logged": server.log_path.read_text(
                                 errors="replace").count("stream client cut off"),
                             "stream_clients_during": clients_during,
                             "stream_clients_after": clients_after},
            "chatty_clients": {"clients": chatty_clients,
                               "requests_sent": [c.sent for c in chatty],
                               "reply_mib_kept": [round(c.reply_bytes / MIB, 1) for c in chatty],
                               "cut_off": sum(1 for c in chatty if c.closed is not None)},
            "rss_mib": {"baseline": round(rss_base / MIB), "peak": round(rss_bad / MIB),
                        "bound": round(bound / MIB)},
            "receivers_bad": {"hang_hung": hang.bad["hung"], "fail_500": fail.bad["failed"],
                              "smtp_dropped": smtp_drops},
            "notifications": notes, "delivered_in_baseline": delivered_before,
            "outbox_drained_s": drained_s, "outbox_counts": counts,
            "good_ws": {"messages": len(good.seqs), "gaps": len(good.gaps),
                        "closed": good.closed},
            "ingest_errors": dict(load.errors),
            "timeline_s": {k: round(v, 1) for k, v in marks.items()},
            "health_slowest": [(round(at - t0, 1), round(ms * 1000, 1)) for at, ms in
                               sorted(probe.timeline, key=lambda x: -x[1])[:8]],
        })

        # Checks.
        check(alive, "seismo alive to the end")
        check(not load.errors, f"every ingest request answered 200 ({dict(load.errors)})")
        ratio = bad["ingest_samples_per_s"] / max(1, baseline["ingest_samples_per_s"])
        check(ratio >= 0.8, f"ingest under bad consumers {ratio:.0%} of baseline (>= 80 %)")
        check(bad["health_p99_ms"] < 100 and probe.failures == 0,
              f"health p99 {bad['health_p99_ms']} ms under bad consumers (< 100 ms), "
              f"{probe.failures} failed")
        in_order = good.seqs == sorted(set(good.seqs)) and good.batches == sorted(
            set(good.batches))
        missing = sorted(set(acked) - set(good.batches))
        check(not good.gaps and good.closed is None and in_order and not missing,
              f"good client: {len(good.batches)} of {len(acked)} acknowledged batches, in "
              f"order: {in_order}, gaps: {len(good.gaps)}, missing: {missing[:5]}")
        check(dropped > 0, f"server dropped {dropped:.0f} messages for slow clients")
        gaps = [r for r in reads if r["gap"]]
        consistent = all(r["holes"] == 0 for r in reads) and all(
            r["last_seq"] is not None and r["gap"]["from_seq"] == r["last_seq"] + 1
            and r["gap"]["to_seq"] >= r["gap"]["from_seq"] for r in gaps)
        check(consistent, "slow clients' streams consistent: read seqs contiguous, each gap "
              "starts right after the last message read")
        check(gap_clients + cut_clients == slow_clients,
              f"slow clients: {gap_clients} got a gap, {cut_clients} were cut off, of "
              f"{slow_clients}")
        # What a client that never reads can make the server hold: its queue limit, plus
        # what the kernel buffers (server send buffer up to tcp_wmem's max, the client's
        # small receive buffer and its library's one read).
        kept_bound = client_queue_bytes + WMEM_MAX + 1 * MIB
        check(all(c.closed is not None or c.reply_bytes <= kept_bound for c in chatty)
              and all(c.sent > 0 for c in chatty),
              f"clients that send requests but never read: replies kept "
              f"{[round(c.reply_bytes / MIB, 1) for c in chatty]} MiB (bound "
              f"{kept_bound / MIB:.1f} MiB) or cut off "
              f"({sum(1 for c in chatty if c.closed is not None)} of {chatty_clients})")
        check(clients_during >= slow_clients + 1 - cut_clients and clients_after == 1,
              f"stream clients {clients_during:.0f} during, {clients_after:.0f} after "
              "(slow ones released)")
        check(rss_bad <= bound, f"RSS peak {rss_bad / MIB:.0f} MiB <= bound {bound / MIB:.0f} "
              f"MiB (baseline + {slow_clients} x (client_queue_bytes + 2 MiB) + 256 MiB)")
        # While `hang` hangs, the other channels keep being retried at the backoff pace.
        least = int(bad_s * 0.3)
        check(fail.bad["failed"] >= least and sum(smtp_drops.values()) >= least,
              f"retries go on beside the hung webhook: {fail.bad['failed']} HTTP 500s, "
              f"{sum(smtp_drops.values())} SMTP drops, {hang.bad['hung']} hung (>= {least})")
        check(drained_s is not None, f"outbox drained {drained_s} s after the receivers "
              f"recovered (bound {recover_timeout_s} s), counts {counts}")
        for name, n in notes.items():
            check(n["expected"] > 0 and n["lost"] == 0 and n["unexpected"] == 0
                  and n["dead"] == 0 and n["pending"] == 0,
                  f"{name}: {n['distinct']} of {n['expected']} notifications arrived, lost "
                  f"{n['lost']}, duplicates {n['duplicates']}, dead {n['dead']}")
        good_task.cancel()
    finally:
        load.stop_flag.set()
        probe.stop_flag.set()
        for ws in [good.ws, *slow, *(c.ws for c in chatty)]:
            if ws is not None:
                loop.loop.call_soon_threadsafe(ws.transport.abort)
        loop.close()
        server.stop()
        hang.close()
        fail.close()
        if dropper is not None:
            dropper.close()
        if controller is not None:
            with contextlib.suppress(Exception):
                controller.stop()
        for thread in (load, probe):
            if thread.is_alive():
                thread.join(15)
    figures["ok"] = bool(oks) and all(oks)
    figures["checks"] = checks
    return figures
