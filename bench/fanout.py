"""Live-stream fan-out benchmark: one ingest batch to many WebSocket clients (issue 5).

Run with `make bench` (or `.venv/bin/python bench/fanout.py --help`). One run:

1. raises RLIMIT_NOFILE to the hard limit (the server and the client process inherit it)
   and starts seismo (fresh data dir, free loopback port, --no-collector, heartbeats off
   with SEISMO_STREAM__HEARTBEAT_S=3600 so that only topic messages reach the clients,
   and anomaly detection off unless --detect);
2. in a separate process, opens CLIENTS raw-socket WebSocket connections subscribed to
   `samples` with the selector `fanout_probe` (handshake by hand, frame headers parsed,
   payloads skipped but for the first bytes that carry the type and seq);
3. posts one small batch of `fanout_probe` every 1/RATE s for WARMUP + DURATION s over one
   keep-alive HTTP connection, on a monotonic schedule, noting when each ack arrives; the
   k-th samples frame of every connection is the k-th batch (checked: every connection
   sees the same seqs in the same order, and the first one's values are the batch
   number). Latency = client receipt - ack, per client and batch, over the batches after
   the warm-up; also server CPU (and the rest of the machine's) and RSS;
4. (--idle N) closes those clients, opens N WebSocket connections that only do the
   handshake and stay idle, and reports the server's RSS growth per connection.

Everything runs on 127.0.0.1; the server and the client process are stopped in a `finally`.
The server log is kept in the printed work directory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import json
import multiprocessing as mp
import os
import resource
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import httpx
import msgspec
import numpy as np
import psutil

from ingest import Server, fmt, free_port, log_errors, machine  # bench/ingest.py

METRIC = "fanout_probe"
SUBSCRIBE = msgspec.json.encode({"op": "subscribe", "topic": "samples", "selector": METRIC})
AIM_P99_MS = 25.0
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
PEEK = 64  # payload bytes read from each text frame: type and seq are in the first ~45
CONNECT_CONCURRENCY = 100
CONNECT_TIMEOUT_S = 30.0
FD_MARGIN = 500  # descriptors left for everything but the connections
OTHER_LOAD_PCT = 25.0  # CPU (% of one core) used by others past which a run is suspect


# -- the WebSocket client (runs in the client process) ----------------------------------


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A final client frame (RFC 6455 §5.2; clients must mask) of at most 64 KiB."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126
                                     else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    key = (mask * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + mask + body


class StreamClient(asyncio.Protocol):
    """One WebSocket connection: the upgrade by hand, then frame headers only.

    With `times` it subscribes to `samples` and notes in times[k] when its k-th samples
    frame arrived (time.time_ns(), one reading per read from the socket); without, it
    stays idle after the handshake. `full` parses whole payloads (values carry the batch
    number) to check the frame-to-batch mapping end to end.
    """

    def __init__(self, port: int, row: int, times: np.ndarray | None,
                 full: bool = False) -> None:
        self.port = port
        self.row = row
        self.times = times
        self.full = full
        self.key = base64.b64encode(os.urandom(16))
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.upgraded = False
        self.head = b""
        self.pending = b""
        self.skip = 0
        self.count = 0  # samples frames received
        self.subscribed_seq = -1  # the topic's seq in the `subscribed` reply
        self.last_seq = -1
        self.bad_seq = 0  # samples frames whose seq is not above the previous one
        self.seq_print = 0  # sum of (k + 1) * seq: equal on two connections that saw the
        # same messages in the same order (seqs skip the topic's other series)
        self.bad_value = 0
        self.other: list[bytes] = []  # prefixes of frames that are neither samples nor replies
        self.close_code: int | None = None
        self.lost = False
        self.pings = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.write(
            b"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (self.port, self.key))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(ConnectionError(f"connection lost ({exc or 'closed by the server'})"))

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        if not self.upgraded:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > 16384:
                    self._abort("no end of the upgrade response in 16 KiB")
                return
            self._check_upgrade(self.head[:end])
            data, self.head = self.head[end + 4:], b""
            if not self.upgraded or not data:
                return
        self._frames(data, now)

    # the upgrade

    def _check_upgrade(self, head: bytes) -> None:
        status, _, rest = head.partition(b"\r\n")
        if status.split(b" ")[1:2] != [b"101"]:
            self._abort(f"upgrade refused: {status.decode(errors='replace')}")
            return
        accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest())
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(b":") for line in rest.split(b"\r\n"))}
        if headers.get(b"sec-websocket-accept") != accept:
            self._abort("bad Sec-WebSocket-Accept")
            return
        self.upgraded = True
        assert self.transport is not None
        if self.times is not None:
            self.transport.write(masked_frame(0x1, SUBSCRIBE))  # ready once `subscribed`
        elif not self.ready.done():
            self.ready.set_result(None)

    def _abort(self, reason: str) -> None:
        self._fail(ConnectionError(reason))
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)

    # frames (RFC 6455 §5.2): only what is needed, the rest of each payload is skipped

    def _frames(self, data: bytes, now: int) -> None:
        pos, n = 0, len(data)
        if self.skip:
            pos = min(self.skip, n)
            self.skip -= pos
            if self.skip:
                return
        if self.pending:
            data, pos = self.pending + data[pos:], 0
            n, self.pending = len(data), b""
        while pos < n:
            if n - pos < 2:
                self.pending = data[pos:]
                return
            b0, b1 = data[pos], data[pos + 1]
            length, start = b1 & 0x7F, pos + 2
            if length == 126:
                if n - pos < 4:
                    self.pending = data[pos:]
                    return
                length, start = int.from_bytes(data[pos + 2:pos + 4], "big"), pos + 4
            elif length == 127:
                if n - pos < 10:
                    self.pending = data[pos:]
                    return
                length, start = int.from_bytes(data[pos + 2:pos + 10], "big"), pos + 10
            opcode = b0 & 0x0F
            need = length if opcode >= 0x8 or self.full else min(length, PEEK)
            if n - start < need:
                self.pending = data[pos:]
                return
            if opcode == 0x1 and b0 & 0x80:
                self._text(data, start, length, now)
            elif opcode == 0x9:
                assert self.transport is not None
                self.transport.write(masked_frame(0xA, data[start:start + length]))
                self.pings += 1
            elif opcode == 0x8:
                self.close_code = (int.from_bytes(data[start:start + 2], "big")
                                   if length >= 2 else 1005)
                self._abort(f"closed by the server with code {self.close_code}: "
                            f"{data[start + 2:start + length].decode(errors='replace')}")
                return
            elif opcode != 0xA:
                self._note_other(b"opcode %d, %d bytes" % (opcode, length))
            end = start + length
            if end > n:
                self.skip = end - n
                return
            pos = end

    def _text(self, data: bytes, start: int, length: int, now: int) -> None:
        if data.startswith(b'{"type":"samples"', start):
            k = self.count
            self.count = k + 1
            if self.times is not None and k < len(self.times):
                self.times[k] = now
            at = data.find(b'"seq":', start, start + PEEK)
            end = data.find(b",", at + 6, start + PEEK) if at >= 0 else -1
            seq = int(data[at + 6:end]) if end > 0 else -1
            if seq <= self.last_seq:
                self.bad_seq += 1
            self.last_seq = seq
            self.seq_print += (k + 1) * seq
            if self.full:
                message = msgspec.json.decode(data[start:start + length])
                values = message["series"][0]["values"] if message.get("series") else []
                if not values or any(v != float(k) for v in values):
                    self.bad_value += 1
        elif data.startswith(b'{"type":"subscribed"', start):
            body = msgspec.json.decode(data[start:start + length])
            self.subscribed_seq = self.last_seq = int(body["seq"])
            if not self.ready.done():
                self.ready.set_result(None)
        else:
            self._note_other(data[start:start + min(length, 200)])

    def _note_other(self, what: bytes) -> None:
        if len(self.other) < 5:
            self.other.append(what)
        else:
            self.other[-1] = what  # keep the first four and the latest


async def open_clients(port: int, count: int, rows: np.ndarray | None,
                       deadline: float) -> tuple[list[StreamClient], list[str]]:
    """`count` connections (subscribed when `rows` is given), at most 100 handshakes at once."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    errors: list[str] = []

    async def one(i: int) -> StreamClient | None:
        async with gate:
            if loop.time() > deadline:
                errors.append("not tried: out of time")
                return None
            client = StreamClient(port, i, None if rows is None else rows[i],
                                  full=i == 0 and rows is not None)
            try:
                await asyncio.wait_for(loop.create_connection(lambda: client, "127.0.0.1", port),
                                       CONNECT_TIMEOUT_S)
                await asyncio.wait_for(client.ready, CONNECT_TIMEOUT_S)
                return client
            except (OSError, TimeoutError, ConnectionError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                if client.transport is not None:
                    client.transport.abort()
                return None

    got = await asyncio.gather(*(one(i) for i in range(count)))
    return [c for c in got if c is not None], errors


def summarize_errors(errors: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in errors:
        out[e[:160]] = out.get(e[:160], 0) + 1
    return out


async def serve_commands(conn: Connection, port: int, clients: int, n_batches: int) -> None:
    """The client process: do what the bench process asks, one command at a time."""
    loop = asyncio.get_running_loop()
    times = np.zeros((clients, n_batches), dtype=np.int64)
    fanout, errors = await open_clients(port, clients, times, loop.time() + 120)
    conn.send(("ready", {"opened": len(fanout), "errors": summarize_errors(errors),
                         "subscribed_seqs": sorted({c.subscribed_seq for c in fanout})}))
    idle: list[StreamClient] = []
    while True:
        command, arg = await loop.run_in_executor(None, conn.recv)
        if command == "collect":  # wait (bounded) until every client has `arg` frames
            expected, timeout_s = arg
            until = loop.time() + timeout_s
            while loop.time() < until and any(c.count < expected for c in fanout):
                await asyncio.sleep(0.05)
            conn.send(("times", {
                "times": times[[c.row for c in fanout]],
                "counts": [c.count for c in fanout], "bad_seq": sum(c.bad_seq for c in fanout),
                "seq_differs": sum(c.seq_print != fanout[0].seq_print or c.count != fanout[0].count
                                   for c in fanout),
                "bad_value": fanout[0].bad_value if fanout else 0,
                "other": [o.decode(errors="replace") for c in fanout for o in c.other][:10],
                "lost": sum(c.lost for c in fanout), "pings": sum(c.pings for c in fanout),
                "close_codes": sorted({c.close_code for c in fanout if c.close_code}),
            }))
        elif command == "close":
            for c in fanout + idle:
                if c.transport is not None:
                    c.transport.close()
            fanout, idle = [], []
            await asyncio.sleep(0.5)
            conn.send(("closed", None))
        elif command == "idle":
            idle, errors = await open_clients(port, arg, None, loop.time() + 300)
            conn.send(("idle_open", {"opened": len(idle), "errors": summarize_errors(errors)}))
        elif command == "idle_state":
            conn.send(("idle_state", {
                "open": sum(not c.lost for c in idle), "frames": sum(c.count for c in idle),
                "other": [o.decode(errors="replace") for c in idle for o in c.other][:10],
                "close_codes": sorted({c.close_code for c in idle if c.close_code})}))
        else:  # "stop"
            for c in fanout + idle:
                if c.transport is not None:
                    c.transport.abort()
            return


def client_process(conn: Connection, port: int, clients: int, n_batches: int) -> None:
    """Entry point of the client process (spawned)."""
    run: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop  # as on the server: the client's own overhead stays small
        run = uvloop.run
    with contextlib.suppress(EOFError, BrokenPipeError):  # the bench process is gone
        run(serve_commands(conn, port, clients, n_batches))


class ClientProcess:
    """The client process and its command pipe; every wait is bounded."""

    def __init__(self, port: int, clients: int, n_batches: int) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=client_process, args=(child, port, clients, n_batches),
                                name="fanout-clients", daemon=True)
        self.proc.start()
        child.close()

    def ask(self, command: str, arg: Any = None, timeout_s: float = 120.0) -> Any:
        self.conn.send((command, arg))
        return self.reply(timeout_s)

    def reply(self, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.conn.poll(0.2):
                _, body = self.conn.recv()
                return body
            if not self.proc.is_alive():
                raise RuntimeError(f"client process exited with {self.proc.exitcode}")
        raise RuntimeError(f"client process did not answer in {timeout_s:g}s")

    def cpu_s(self) -> float:
        with contextlib.suppress(psutil.Error, ValueError):
            t = psutil.Process(self.proc.pid).cpu_times()
            return float(t.user + t.system)
        return float("nan")

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(("stop", None))
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=10)


# -- the ingest driver (bench process) --------------------------------------------------


class IngestConnection:
    """One keep-alive HTTP/1.1 connection that POSTs to /api/v1/ingest; nothing more."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request_head = (f"POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                             "Content-Type: application/json\r\nContent-Length: ").encode()
        self.buf = b""

    def post(self, body: bytes) -> tuple[int, bytes]:
        """(status, body) of one request; raises ConnectionError if the server hangs up."""
        self.sock.sendall(self.request_head + b"%d\r\n\r\n" % len(body) + body)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._read(65536)
        head, self.buf = self.buf[:end], self.buf[end + 4:]
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self.buf) < length:
            self._read(length)
        reply, self.buf = self.buf[:length], self.buf[length:]
        return status, reply

    def _read(self, limit: int) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the ingest connection")
        self.buf += chunk
        if len(self.buf) > limit + 65536:
            raise ConnectionError("oversized reply")

    def close(self) -> None:
        self.sock.close()


def batch_bodies(n: int, samples: int, base_ms: int) -> list[bytes]:
    """Batch k: `samples` points of fanout_probe, all of value k, at fresh timestamps."""
    return [msgspec.json.encode({"series": [{
        "metric": METRIC, "labels": {},
        "timestamps": [base_ms + k * samples + i for i in range(samples)],
        "values": [float(k)] * samples}]}) for k in range(n)]


def drive(port: int, bodies: list[bytes], samples: int, period_s: float, warm: int,
          server: Server, clients: ClientProcess) -> dict[str, Any]:
    """Post every body on a monotonic schedule; note each ack's arrival (time.time_ns())."""
    n = len(bodies)
    acks = np.zeros(n, dtype=np.int64)
    sent = np.zeros(n, dtype=np.int64)
    late = np.zeros(n, dtype=np.float64)
    errors: list[str] = []
    marks: dict[str, dict[str, Any]] = {}
    http = IngestConnection(port)
    try:
        t0 = time.monotonic()
        for k, body in enumerate(bodies):
            if k == warm:  # the measured window starts with batch `warm`
                marks["start"] = cpu_snapshot(server, clients)
            delay = t0 + k * period_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            late[k] = -delay if delay < 0 else 0.0
            sent[k] = time.time_ns()
            try:
                status, reply = http.post(body)
            except OSError as exc:
                errors.append(f"batch {k}: {type(exc).__name__}: {exc}")
                break
            acks[k] = time.time_ns()
            if status != 200 or msgspec.json.decode(reply).get("accepted") != samples:
                errors.append(f"batch {k}: HTTP {status}: {reply[:200]!r}")
                break
        done = int(np.count_nonzero(acks))
        if "start" in marks:
            marks["end"] = cpu_snapshot(server, clients)
    finally:
        http.close()
    return {"acks": acks, "sent": sent, "late_s": late, "posted": done, "errors": errors,
            "marks": marks}


# -- figures ----------------------------------------------------------------------------


def latency_figures(times: np.ndarray, acks: np.ndarray, warm: int, posted: int,
                    clients: int) -> dict[str, Any]:
    """Latency (ms) of every (client, batch) after the warm-up; missing ones are counted."""
    got = times[:, warm:posted]
    ack = acks[warm:posted]
    received = got != 0
    lat_ms = (got - ack[None, :]) / 1e6
    flat = lat_ms[received]
    out: dict[str, Any] = {
        "measured_batches": posted - warm,
        "expected": clients * (posted - warm),
        "received": int(received.sum()),
    }
    if flat.size:
        out.update({f"p{q:g}_ms": float(np.percentile(flat, q)) for q in (50, 90, 99, 99.9)})
        # A server that keeps up has the same latency at the end as at the start; one that
        # does not falls further behind with every batch (then p99 grows with --duration).
        tenth = max(1, lat_ms.shape[1] // 10)
        for name, part in (("head", slice(0, tenth)), ("tail", slice(-tenth, None))):
            got_part = lat_ms[:, part][received[:, part]]
            if got_part.size:
                out[f"{name}_p50_ms"] = float(np.median(got_part))
        out.update(max_ms=float(flat.max()), min_ms=float(flat.min()),
                   mean_ms=float(flat.mean()))
        full = received.all(axis=0)  # batches every client got: first/last receipt, spread
        if full.any():
            first = lat_ms[:, full].min(axis=0)
            last = lat_ms[:, full].max(axis=0)
            out.update(first_p50_ms=float(np.median(first)),
                       last_p50_ms=float(np.median(last)),
                       last_p99_ms=float(np.percentile(last, 99)),
                       spread_p50_ms=float(np.median(last - first)),
                       spread_p99_ms=float(np.percentile(last - first, 99)))
    return out


def server_counters(base: str) -> dict[str, float]:
    """seismo's own stream counters from /metrics (refreshed by its upkeep every second)."""
    wanted = ("seismo_stream_clients", "seismo_stream_messages_sent_total",
              "seismo_stream_messages_dropped_total")
    out: dict[str, float] = {}
    with contextlib.suppress(httpx.HTTPError, ValueError):
        for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
            name, _, value = line.partition(" ")
            if name in wanted:
                out[name] = float(value)
    return out


def cpu_snapshot(server: Server, clients: ClientProcess) -> dict[str, Any]:
    """CPU seconds so far: the server (user, system), the clients, this process, the
    whole machine, and every other process (to name what else ran during a measurement)."""
    t = server.ps.cpu_times()
    others: dict[int, tuple[float, str]] = {}
    skip = {os.getpid(), server.ps.pid, clients.proc.pid}
    for proc in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
        info = proc.info
        if info["pid"] in skip or info["cpu_times"] is None:
            continue
        cmd = " ".join(info["cmdline"] or [info["name"] or "?"])[:80]
        others[info["pid"]] = (info["cpu_times"].user + info["cpu_times"].system, cmd)
    return {"wall": time.monotonic(), "server_user": t.user, "server_sys": t.system,
            "clients": clients.cpu_s(), "driver": time.process_time(), "busy": busy_cpu_s(),
            "interrupts": interrupt_cpu_s(), "others": others}


def cpu_figures(start: dict[str, Any], end: dict[str, Any]) -> dict[str, Any]:
    """CPU use between two snapshots, as % of one core."""
    wall = end["wall"] - start["wall"]

    def pct(key: str) -> float:
        return float(100 * (end[key] - start[key]) / wall)

    out: dict[str, Any] = {"wall_s": wall, "server_user_pct": pct("server_user"),
                           "server_sys_pct": pct("server_sys"), "clients_pct": pct("clients"),
                           "driver_pct": pct("driver"), "machine_pct": pct("busy"),
                           "interrupts_pct": pct("interrupts")}
    out["server_pct"] = out["server_user_pct"] + out["server_sys_pct"]
    # Interrupt time is also charged to whichever process was running (seen here: the
    # server, clients and driver add up to the machine's busy time with it), so it is not
    # subtracted again: what is left was used by processes that are not ours.
    out["others_pct"] = out["machine_pct"] - sum(
        out[k] for k in ("server_pct", "clients_pct", "driver_pct"))
    used = sorted(((cpu - start["others"][pid][0], cmd) for pid, (cpu, cmd)
                   in end["others"].items() if pid in start["others"]), reverse=True)
    out["top_others"] = [f"{100 * s / wall:.0f}% {cmd}" for s, cmd in used[:3]
                         if 100 * s / wall >= 5]
    return out


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (all CPUs, all processes)."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0)
                 - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0))


def interrupt_cpu_s() -> float:
    """CPU seconds in (soft) interrupts: on loopback the receiving half of a TCP send."""
    t = psutil.cpu_times()
    return float(getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


def other_load_pct(seconds: float = 2.0) -> float:
    """% of one core the machine spends busy over `seconds` (before we start anything)."""
    before = busy_cpu_s()
    time.sleep(seconds)
    return 100 * (busy_cpu_s() - before) / seconds


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; children inherit it. Returns the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- the run ----------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path, fd_limit: int) -> dict[str, Any]:
    period_s = 1.0 / args.rate
    warm = round(args.warmup * args.rate)
    n = warm + round(args.duration * args.rate)
    data_dir = work / "seismo-data"
    port = free_port()
    # Heartbeats off (so every text frame after `subscribed` is a samples message) and room
    # for the idle phase past the default stream.max_clients.
    os.environ["SEISMO_STREAM__HEARTBEAT_S"] = "3600"
    os.environ["SEISMO_STREAM__MAX_CLIENTS"] = str(max(10_000, args.clients, args.idle) + 100)
    # Anomaly detection scores every ingested sample on its own thread, which competes with
    # the event loop for the GIL: off unless --detect, so that the figures are the stream's.
    os.environ["SEISMO_DETECT__ENABLED"] = "true" if args.detect else "false"
    argv = [sys.executable, "-m", "seismo", "serve", "--port", str(port), "--data-dir",
            str(data_dir), "--no-collector", "--log-level", "warning"]
    server = Server("seismo", argv, port, work / "seismo.log", "/api/v1/health")
    out: dict[str, Any] = {"log": str(server.log_path), "batches": n, "warm": warm}
    clients: ClientProcess | None = None
    try:
        server.start()
        time.sleep(1)
        out["rss_start_mib"] = server.rss() / 2**20
        t = time.monotonic()
        clients = ClientProcess(port, args.clients, n)
        ready = clients.reply(timeout_s=180)  # connected and subscribed
        out["connect"] = {**ready, "s": time.monotonic() - t}
        print(f"  {ready['opened']:,} of {args.clients:,} clients connected and subscribed "
              f"in {out['connect']['s']:.1f}s (seq at subscribe: {ready['subscribed_seqs']})",
              flush=True)
        for err, count in ready["errors"].items():
            print(f"    ! {count} x {err}", flush=True)
        if ready["opened"] == 0:
            out["failed"] = "no client could subscribe (does the stream now need a token?)"
            return out
        time.sleep(1)
        out["rss_clients_mib"] = server.rss() / 2**20
        bodies = batch_bodies(n, args.samples_per_batch,
                              time.time_ns() // 1_000_000 - 60_000)
        print(f"  posting {n:,} batches of {args.samples_per_batch} samples, one every "
              f"{period_s * 1000:g} ms ({args.warmup:g}s warm-up + {args.duration:g}s)",
              flush=True)
        drove = drive(port, bodies, args.samples_per_batch, period_s, warm, server, clients)
        out["drive"] = drove
        got = clients.ask("collect", (drove["posted"], 10.0), timeout_s=60)
        out["rss_streamed_mib"] = server.rss() / 2**20
        out["counters"] = server_counters(server.base)
        out["clients"] = {k: v for k, v in got.items() if k not in ("times", "counts")}
        counts = np.asarray(got["counts"], dtype=np.int64)
        out["clients"].update(
            connections=len(counts), frames=int(counts.sum()),
            short=int((counts < drove["posted"]).sum()),
            extra=int((counts > drove["posted"]).sum()))
        out["latency"] = latency_figures(got["times"], drove["acks"], warm,
                                         drove["posted"], len(counts))
        m = drove["marks"]
        if "end" in m:
            out["cpu"] = cpu_figures(m["start"], m["end"])
        request_ms = (drove["acks"] - drove["sent"])[warm:drove["posted"]] / 1e6
        if request_ms.size:
            out["request_ms"] = {"p50": float(np.percentile(request_ms, 50)),
                                 "p99": float(np.percentile(request_ms, 99)),
                                 "max": float(request_ms.max())}
        late = drove["late_s"][warm:drove["posted"]]
        out["late"] = {"over_5ms": int((late > 0.005).sum()),
                       "max_ms": float(late.max() * 1000) if late.size else 0.0}
        if args.idle > 0:
            out["idle"] = run_idle(args, server, clients, fd_limit)
        out["rss_end_mib"] = server.rss() / 2**20
        if not server.alive():
            out["crash"] = f"seismo exited with {server.proc.returncode if server.proc else '?'}"
    finally:
        if clients is not None:
            clients.stop()
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return out


def run_idle(args: argparse.Namespace, server: Server, clients: ClientProcess,
             fd_limit: int) -> dict[str, Any]:
    """Close the fan-out clients, open `idle` handshake-only connections, RSS per connection."""
    clients.ask("close", timeout_s=30)
    time.sleep(2)
    out: dict[str, Any] = {"asked": args.idle, "rss_before_mib": server.rss() / 2**20}
    print(f"  opening {args.idle:,} idle connections", flush=True)
    t = time.monotonic()
    opened = clients.ask("idle", args.idle, timeout_s=330)
    out.update(opened=opened["opened"], errors=opened["errors"], s=time.monotonic() - t)
    time.sleep(3)
    out["rss_after_mib"] = server.rss() / 2**20
    out["state"] = clients.ask("idle_state", timeout_s=30)
    out["counters"] = server_counters(server.base)
    if out["opened"]:
        out["kib_per_connection"] = ((out["rss_after_mib"] - out["rss_before_mib"]) * 1024
                                     / out["opened"])
    clients.ask("close", timeout_s=60)
    time.sleep(2)
    out["rss_closed_mib"] = server.rss() / 2**20
    return out


# -- report -----------------------------------------------------------------------------


def problems_of(args: argparse.Namespace, res: dict[str, Any]) -> list[str]:
    """Everything that makes the figures incomplete or wrong (the run fails), loudly."""
    found = []
    if "failed" in res:
        found.append(res["failed"])
    conn = res.get("connect", {})
    if conn and conn.get("opened") != args.clients:
        found.append(f"only {conn.get('opened')} of {args.clients} clients subscribed")
    d = res.get("drive", {})
    found += d.get("errors", [])
    if d and d["posted"] != res["batches"]:
        found.append(f"only {d['posted']} of {res['batches']} batches were acked")
    c = res.get("clients", {})
    lat = res.get("latency", {})
    if lat and lat["received"] != lat["expected"]:
        found.append(f"MISSING MESSAGES: {lat['expected'] - lat['received']:,} of "
                     f"{lat['expected']:,} (client, batch) deliveries never arrived")
    for key, what in (("short", "connections got fewer frames than batches"),
                      ("extra", "connections got more frames than batches"),
                      ("bad_seq", "frames whose seq is not above the one before (reordered)"),
                      ("seq_differs", "connections that did not get the same seqs as the "
                       "first one"),
                      ("bad_value", "frames of connection 0 whose values are not the batch"),
                      ("lost", "connections lost during the run")):
        if c.get(key):
            found.append(f"{c[key]} {what}")
    if c.get("other"):
        found.append(f"unexpected frames: {c['other']}")
    if c.get("close_codes"):
        found.append(f"close codes from the server: {c['close_codes']}")
    dropped = res.get("counters", {}).get("seismo_stream_messages_dropped_total")
    if dropped:
        found.append(f"the server dropped {dropped:g} messages for slow clients")
    idle = res.get("idle", {})
    if idle and idle.get("opened") != idle.get("asked"):
        found.append(f"only {idle.get('opened')} of {idle.get('asked')} idle connections "
                     f"opened: {idle.get('errors')}")
    if idle and idle.get("state", {}).get("open") != idle.get("opened"):
        found.append(f"idle connections closed by the server: {idle.get('state')}")
    if "crash" in res:
        found.append(res["crash"])
    return found


def warnings_of(res: dict[str, Any]) -> list[str]:
    """What makes the figures doubtful without making them wrong."""
    found = []
    others = res.get("cpu", {}).get("others_pct", 0.0)
    if others > OTHER_LOAD_PCT:
        found.append(f"the machine was busy with something else during the measurement "
                     f"({others:.0f}% of a core besides the server, the clients and the "
                     f"driver; top: {res['cpu']['top_others']}): the figures are not about "
                     f"seismo alone")
    return found


def report(args: argparse.Namespace, res: dict[str, Any]) -> str:
    lat, cpu = res.get("latency", {}), res.get("cpu", {})
    req, idle = res.get("request_ms", {}), res.get("idle", {})
    p99 = lat.get("p99_ms")
    ok = "n/a" if p99 is None else ("meets" if p99 <= AIM_P99_MS else "misses")
    if lat and lat["received"] != lat["expected"]:
        ok = "FAILED (missing messages)"
    rate = lat.get("received", 0) / cpu["wall_s"] if cpu.get("wall_s") else None
    batch_rate = (lat.get("measured_batches", 0) / cpu["wall_s"] if cpu.get("wall_s")
                  else None)
    rows = [
        ("clients subscribed", fmt(res.get("connect", {}).get("opened"), 0), "", ""),
        ("messages received / expected (after warm-up)",
         f"{lat.get('received', 0):,} / {lat.get('expected', 0):,}", "all", ""),
        ("messages delivered/s", fmt(rate, 0), "", ""),
        ("delivery latency p50 (ms)", fmt(lat.get("p50_ms"), 2), "", ""),
        ("delivery latency p99 (ms)", fmt(p99, 2), f"≤ {AIM_P99_MS:g}", ok),
        ("delivery latency p50, first / last tenth of the batches (ms)",
         f"{fmt(lat.get('head_p50_ms'), 2)} / {fmt(lat.get('tail_p50_ms'), 2)}", "", ""),
        ("delivery latency p99.9 / max (ms)",
         f"{fmt(lat.get('p99.9_ms'), 2)} / {fmt(lat.get('max_ms'), 2)}", "", ""),
        ("first / last client of a batch, p50 (ms)",
         f"{fmt(lat.get('first_p50_ms'), 2)} / {fmt(lat.get('last_p50_ms'), 2)}", "", ""),
        ("fan-out spread of a batch (last - first) p50 / p99 (ms)",
         f"{fmt(lat.get('spread_p50_ms'), 2)} / {fmt(lat.get('spread_p99_ms'), 2)}", "", ""),
        ("ingest batches/s achieved (late by > 5 ms on the schedule)",
         f"{fmt(batch_rate, 1)} ({res.get('late', {}).get('over_5ms', 'n/a')})",
         f"{args.rate:g}", ""),
        ("ingest request (POST → ack) p50 / p99 (ms)",
         f"{fmt(req.get('p50'), 2)} / {fmt(req.get('p99'), 2)}", "", ""),
        ("server CPU, steady phase (% of one core): all (user + system)",
         f"{fmt(cpu.get('server_pct'), 0)} ({fmt(cpu.get('server_user_pct'), 0)} + "
         f"{fmt(cpu.get('server_sys_pct'), 0)})", "", ""),
        ("client process / ingest driver CPU (% of one core)",
         f"{fmt(cpu.get('clients_pct'), 0)} / {fmt(cpu.get('driver_pct'), 0)}", "", ""),
        ("whole machine busy / of it in softirq / other processes (% of one core)",
         f"{fmt(cpu.get('machine_pct'), 0)} / {fmt(cpu.get('interrupts_pct'), 0)} / "
         f"{fmt(cpu.get('others_pct'), 0)}", "", ""),
        ("server RSS: start / with clients / after streaming (MiB)",
         f"{fmt(res.get('rss_start_mib'), 0)} / {fmt(res.get('rss_clients_mib'), 0)} / "
         f"{fmt(res.get('rss_streamed_mib'), 0)}", "", ""),
    ]
    if idle:
        rows += [
            ("idle connections open", f"{idle.get('opened', 0):,} of {idle['asked']:,}", "",
             ""),
            ("server RSS: before idle / with idle / after closing (MiB)",
             f"{fmt(idle.get('rss_before_mib'), 0)} / {fmt(idle.get('rss_after_mib'), 0)} / "
             f"{fmt(idle.get('rss_closed_mib'), 0)}", "", ""),
            ("server RSS per idle connection (KiB)", fmt(idle.get("kib_per_connection"), 1),
             "", ""),
        ]
    rows.append(("server RSS at the end (MiB)", fmt(res.get("rss_end_mib"), 0), "", ""))
    lines = [
        f"{args.clients:,} clients subscribed to `samples`, one batch of "
        f"{args.samples_per_batch} samples every {1000 / args.rate:g} ms "
        f"({args.rate:g} messages/s per client) for {args.duration:g}s after a "
        f"{args.warmup:g}s warm-up; anomaly detection {'on' if args.detect else 'off'}",
        "",
        "| figure | seismo | aim | vs aim |",
        "|---|---:|---|---|",
    ]
    lines += [f"| {name} | {value} | {aim} | {verdict} |" for name, value, aim, verdict in rows]
    return "\n".join(lines)


def summary(args: argparse.Namespace, res: dict[str, Any], problems: list[str],
            warnings: list[str]) -> dict[str, Any]:
    lat, cpu, idle = res.get("latency", {}), res.get("cpu", {}), res.get("idle", {})
    return {
        "clients": res.get("connect", {}).get("opened"), "rate": args.rate,
        "detect": args.detect,
        "duration_s": args.duration, "received": lat.get("received"),
        "expected": lat.get("expected"),
        **{k: lat.get(k) for k in ("p50_ms", "p99_ms", "p99.9_ms", "max_ms")},
        "server_cpu_pct": cpu.get("server_pct"), "client_cpu_pct": cpu.get("clients_pct"),
        "others_cpu_pct": cpu.get("others_pct"),
        **{k: res.get(k) for k in ("rss_start_mib", "rss_clients_mib", "rss_streamed_mib",
                                   "rss_end_mib")},
        "idle_connections": idle.get("opened"),
        "idle_kib_per_connection": idle.get("kib_per_connection"),
        "problems": problems, "warnings": warnings,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--clients", type=int, default=1000, help="subscribed WebSocket clients")
    p.add_argument("--rate", type=float, default=100.0, help="ingest batches (= messages "
                   "per client) per second")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    p.add_argument("--samples-per-batch", type=int, default=4)
    p.add_argument("--idle", type=int, default=10_000, help="idle connections for the memory "
                   "phase (fewer if RLIMIT_NOFILE does not allow it)")
    p.add_argument("--skip-idle", action="store_true", help="no idle-connection phase")
    p.add_argument("--detect", action="store_true", help="leave the server's anomaly "
                   "detection on (it scores every probe sample)")
    p.add_argument("--work-dir", type=Path, default=None, help="where the server log goes")
    p.add_argument("--json", action="store_true", help="print a JSON summary line at the end")
    args = p.parse_args(argv)
    if not (1 <= args.clients <= 50_000 and 0 < args.rate <= 1000 and 0 < args.duration <= 600
            and 0 <= args.warmup <= 60 and 1 <= args.samples_per_batch <= 1000):
        p.error("need 1 <= --clients <= 50000, 0 < --rate <= 1000, 0 < --duration <= 600, "
                "0 <= --warmup <= 60, 1 <= --samples-per-batch <= 1000")
    fd_limit = raise_fd_limit()  # before anything is spawned: children inherit it
    if fd_limit < args.clients + FD_MARGIN:
        p.error(f"RLIMIT_NOFILE is {fd_limit}: too low for {args.clients} clients")
    idle_note = ""
    if args.skip_idle:
        args.idle = 0
    elif args.idle > fd_limit - FD_MARGIN:
        idle_note = (f"RLIMIT_NOFILE is {fd_limit} (hard limit): the server and the client "
                     f"process each need one descriptor per connection plus ~{FD_MARGIN}, so "
                     f"the idle phase opens {max(0, fd_limit - FD_MARGIN):,} instead of "
                     f"{args.idle:,}")
        args.idle = max(0, fd_limit - FD_MARGIN)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="seismo-fanout-"))
    work.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    m = machine()
    print(f"seismo fan-out benchmark, {started:%Y-%m-%d %H:%M} UTC; work dir {work}")
    print(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, "
          f"Python {m['python']}; RLIMIT_NOFILE {fd_limit:,}", flush=True)
    if idle_note:
        print(f"  ! {idle_note}", flush=True)
    load = other_load_pct()
    print(f"  machine busy before the run: {load:.0f}% of one core", flush=True)
    if load > OTHER_LOAD_PCT:
        print("  ! something else is running: the figures will not be about seismo alone "
              "(see `top`)", flush=True)
    res = run(args, work, fd_limit)
    res["busy_before_pct"] = load
    problems, warnings = problems_of(args, res), warnings_of(res)
    if idle_note:
        warnings.append(idle_note)
    errors = log_errors(Path(res["log"]))
    if errors:
        problems += [f"server log: {count} x {line}" for line, count in errors.items()]
    print()
    print(report(args, res))
    for title, lines in (("PROBLEMS (the run failed)", problems), ("WARNINGS", warnings)):
        if lines:
            print(f"\n{title}:")
            for line in lines:
                print(f"  ! {line}")
    print(f"\nserver log in {res['log']}")
    if args.json:
        print(json.dumps(summary(args, res, problems, warnings)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
