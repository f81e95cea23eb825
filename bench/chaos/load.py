"""Paced ingest and event clients that remember exactly what seismo acknowledged.

Shared by the chaos scenarios: N client threads POST pre-encoded columnar bodies to
`/api/v1/ingest` at a target rate (or as fast as they go), every body carrying new data;
a `Ledger` keeps each (series, timestamp, value) whose request got a 2xx with `accepted`
covering it, and counts 429s, 5xx, other statuses and connection errors. `stored()` reads
samples back through `query_range` (one sample per step bucket) to check them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import numpy as np

MAX_STEPS = 10_000  # per query_range call; the server caps at limits.max_points_per_series


def series_key(metric: str, labels: dict[str, str]) -> str:
    """`metric{a="1",b="2"}`, labels sorted: one name per series on both sides."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


@dataclass(frozen=True)
class Part:
    """One series of a request body."""

    key: str
    timestamps: np.ndarray  # int64 ms
    values: np.ndarray  # float64


@dataclass(frozen=True)
class Body:
    """One pre-encoded `/api/v1/ingest` body and the samples it carries, in body order."""

    data: bytes
    parts: tuple[Part, ...]

    @property
    def samples(self) -> int:
        return sum(len(p.timestamps) for p in self.parts)


def encode(metric: str, series: list[tuple[dict[str, str], np.ndarray, np.ndarray]]) -> Body:
    """A columnar body from (labels, timestamps, values) per series."""
    doc = {"series": [{"metric": metric, "labels": labels, "timestamps": ts.tolist(),
                       "values": vals.tolist()} for labels, ts, vals in series]}
    parts = tuple(Part(series_key(metric, labels), ts, vals) for labels, ts, vals in series)
    return Body(msgspec.json.encode(doc), parts)


class ColumnarSource:
    """New data for one client: `series` series x `points` points per body, timestamps
    `step_ms` apart from `t0_ms` (aligned to the step), 2-decimal random values. Never
    repeats a (series, timestamp), so a retried request carries new samples."""

    def __init__(self, metric: str, labels: list[dict[str, str]], points: int, t0_ms: int,
                 step_ms: int, seed: int) -> None:
        self.metric, self.labels, self.points = metric, labels, points
        self.t0_ms, self.step_ms = t0_ms - t0_ms % step_ms, step_ms
        self.rng = np.random.default_rng(seed)
        self.made = 0
        self.ready: deque[Body] = deque()
        self.lock = threading.Lock()

    def _make(self) -> Body:
        k, self.made = self.made, self.made + 1
        ts = self.t0_ms + (k * self.points + np.arange(self.points, dtype=np.int64)) * self.step_ms
        values = np.round(self.rng.uniform(0, 1000, (len(self.labels), self.points)), 2)
        return encode(self.metric, [(lab, ts, values[i]) for i, lab in enumerate(self.labels)])

    def prepare(self, bodies: int) -> None:
        """Encode `bodies` bodies ahead, so sending costs no encoding."""
        with self.lock:
            for _ in range(bodies):
                self.ready.append(self._make())

    def next(self) -> Body:
        with self.lock:
            return self.ready.popleft() if self.ready else self._make()

    def newest_ms(self) -> int:
        return self.t0_ms + (self.made * self.points) * self.step_ms


@dataclass
class Ledger:
    """What seismo acknowledged, and how every request ended. Thread-safe."""

    acked: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    acked_samples: int = 0
    sent_samples: int = 0
    requests: int = 0
    ok: int = 0
    rejected: int = 0
    ambiguous: int = 0  # 2xx whose errors did not say which samples were refused
    http_429: int = 0
    http_5xx: int = 0
    http_other: int = 0
    connection_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reply(self, body: Body, resp: httpx.Response) -> None:
        with self.lock:
            self.requests += 1
            self.sent_samples += body.samples
            if resp.status_code == 429:
                self.http_429 += 1
            elif resp.status_code >= 500:
                self.http_5xx += 1
            elif not resp.is_success:
                self.http_other += 1
        if resp.is_success:
            self.acknowledge(body, resp.json())

    def acknowledge(self, body: Body, doc: dict[str, Any]) -> None:
        """Keep the samples `doc` (an ingest reply) says were accepted."""
        refused: dict[int, set[int]] = {}
        for err in doc.get("errors", []):
            refused.setdefault(int(err["series"]), set()).add(int(err["index"]))
        listed = sum(len(v) for v in refused.values())
        with self.lock:
            self.ok += 1
            self.rejected += int(doc.get("rejected", 0))
            if listed != int(doc.get("rejected", 0)):
                self.ambiguous += 1
                return
            for i, part in enumerate(body.parts):
                ts, vals = part.timestamps, part.values
                if i in refused:
                    keep = np.ones(len(ts), dtype=bool)
                    keep[sorted(refused[i])] = False
                    ts, vals = ts[keep], vals[keep]
                self.acked.setdefault(part.key, []).append((ts, vals))
                self.acked_samples += len(ts)

    def failed(self, body: Body) -> None:
        with self.lock:
            self.requests += 1
            self.sent_samples += body.samples
            self.connection_errors += 1

    def samples(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """The acknowledged samples of one series: timestamps (sorted) and their values."""
        with self.lock:
            chunks = list(self.acked.get(key, ()))
        if not chunks:
            return np.empty(0, np.int64), np.empty(0)
        ts = np.concatenate([c[0] for c in chunks])
        order = np.argsort(ts, kind="stable")
        return ts[order], np.concatenate([c[1] for c in chunks])[order]

    def figures(self) -> dict[str, int]:
        with self.lock:
            return {"acked_samples": self.acked_samples, "sent_samples": self.sent_samples,
                    "requests": self.requests, "ok": self.ok, "rejected": self.rejected,
                    "ambiguous": self.ambiguous, "http_429": self.http_429,
                    "http_5xx": self.http_5xx, "http_other": self.http_other,
                    "connection_errors": self.connection_errors}


def ingest_client(url: str, source: Callable[[], Body], ledger: Ledger, stop: threading.Event,
                  rate_per_s: float | None = None, timeout_s: float = 10.0) -> None:
    """POST `source()` bodies until `stop`: at `rate_per_s` samples/s, or as fast as the
    server answers when None. Connection errors and refusals are not retried with the same
    data: the next body is new. Backs off after 429 (Retry-After, at most 1 s) and errors."""
    next_due = time.monotonic()
    with httpx.Client(timeout=timeout_s, headers={"content-type": "application/json"}) as http:
        while not stop.is_set():
            body = source()
            if rate_per_s:
                now = time.monotonic()
                next_due = max(next_due, now - 1.0)  # no burst to catch up after a stall
                if next_due > now and stop.wait(next_due - now):
                    return
                next_due += body.samples / rate_per_s
            try:
                resp = http.post(url, content=body.data)
            except httpx.HTTPError:
                ledger.failed(body)
                stop.wait(0.05)
                continue
            ledger.reply(body, resp)
            if resp.status_code == 429:
                stop.wait(min(1.0, float(resp.headers.get("retry-after", "0.2") or 0.2)))
            elif resp.status_code >= 500:
                stop.wait(0.05)


def start_clients(url: str, sources: Iterable[Callable[[], Body]], ledger: Ledger,
                  stop: threading.Event, rate_per_s: float | None = None,
                  timeout_s: float = 10.0) -> list[threading.Thread]:
    """One `ingest_client` thread per source, sharing `rate_per_s` equally; started."""
    sources = list(sources)
    each = rate_per_s / len(sources) if rate_per_s else None
    threads = [threading.Thread(target=ingest_client, args=(url, s, ledger, stop, each, timeout_s),
                                name=f"chaos-ingest-{i}", daemon=True)
               for i, s in enumerate(sources)]
    for t in threads:
        t.start()
    return threads


@dataclass
class EventLedger:
    """Events seismo acknowledged (by the `uid` attribute each carries). Thread-safe."""

    acked: set[str] = field(default_factory=set)
    sent: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def event_client(url: str, event_type: str, ledger: EventLedger, stop: threading.Event,
                 requests_per_s: float, per_request: int = 5, timeout_s: float = 10.0) -> None:
    """POST `per_request` events of `event_type`, each with a new `attributes.uid`,
    `requests_per_s` times a second until `stop`; keep the uids of 2xx replies."""
    with httpx.Client(timeout=timeout_s) as http:
        while not stop.wait(1.0 / requests_per_s):
            uids = [uuid.uuid4().hex for _ in range(per_request)]
            events = [{"type": event_type, "source": "chaos", "attributes": {"uid": u}}
                      for u in uids]
            try:
                resp = http.post(url, json={"events": events})
            except httpx.HTTPError:
                resp = None
            with ledger.lock:
                ledger.sent += len(uids)
                if (resp is not None and resp.is_success
                        and resp.json().get("accepted") == len(uids)):
                    ledger.acked.update(uids)
                else:
                    ledger.failed += len(uids)


def stored(http: httpx.Client, selector: str, start_ms: int, end_ms: int,
           step_ms: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Samples stored for `selector` in [start_ms, end_ms], series key -> (timestamps,
    values), read with `query_range` at `step_ms` (agg=max): exact when the samples are
    `step_ms` apart and aligned to it, as `ColumnarSource` writes them. Windowed under the
    server's step cap; a selector must pick at most 100 series (the points cap)."""
    parts: dict[str, list[tuple[list[int], list[float]]]] = {}
    lo = start_ms - start_ms % step_ms
    while lo <= end_ms:
        hi = min(end_ms, lo + step_ms * MAX_STEPS - 1)
        reply = http.get("/api/v1/query_range", params={
            "selector": selector, "start": str(lo), "end": str(hi), "step": f"{step_ms}ms",
            "agg": "max"})
        reply.raise_for_status()
        for s in msgspec.json.decode(reply.content)["series"]:
            parts.setdefault(series_key(s["metric"], s["labels"]), []).append(
                (s["timestamps"], s["values"]))
        lo = hi + 1
    out = {}
    for key, chunks in parts.items():
        ts = np.array([t for c in chunks for t in c[0]], dtype=np.int64)
        vals = np.array([np.nan if v is None else v for c in chunks for v in c[1]], dtype=float)
        out[key] = (ts, vals)
    return out


def missing(want: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray]) -> int:
    """How many of the samples `want` are not in `got` with the same value (both sorted)."""
    (wts, wvals), (gts, gvals) = want, got
    if not len(gts):
        return len(wts)
    idx = np.minimum(np.searchsorted(gts, wts), len(gts) - 1)
    return int(np.count_nonzero((gts[idx] != wts) | (gvals[idx] != wvals)))


def stored_events(http: httpx.Client, event_type: str, start_ms: int) -> dict[int, dict[str, Any]]:
    """Every stored event of `event_type` since `start_ms`, by id (pages of 10,000, newest
    first, each ending at the oldest timestamp of the one before)."""
    out: dict[int, dict[str, Any]] = {}
    params = {"type": event_type, "start": str(start_ms), "limit": "10000"}
    for _ in range(1000):
        page = http.get("/api/v1/events", params=params)
        page.raise_for_status()
        events = page.json()["events"]
        new = [e for e in events if e["id"] not in out]
        out.update((e["id"], e) for e in events)
        if len(events) < 10_000 or not new:
            break
        params["end"] = str(min(e["timestamp"] for e in events))
    return out
