"""The ingest pipeline: a bounded queue in front of the store with WAL group commit.

Requests hand validated batches to `submit()`; one writer thread takes everything queued,
makes it durable with a single fsync and only then resolves each request's future.
A full queue refuses new work at once (Overloaded → 429 with Retry-After): nothing is
written half-way. Listeners see each committed batch (detectors, rules, the stream).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from seismo.errors import Overloaded, StorageUnavailable, TooLarge
from seismo.store import Batch, Store
from seismo.telemetry import Telemetry

log = logging.getLogger(__name__)
Listener = Callable[[Batch], None]


class Ingestor:
    """Owns the writer thread; every sample that enters seismo passes here."""

    def __init__(self, store: Store, telemetry: Telemetry, *, max_queued_samples: int,
                 max_head_samples: int | None = None) -> None:
        self.store = store
        self.telemetry = telemetry
        self.max_queued = max_queued_samples
        self.max_head = max_head_samples  # None: the head may grow without bound
        self._queue: deque[tuple[Batch, Future[None]]] = deque()
        self._queued = 0
        self._saturated = False  # a batch was refused and the writer has freed no room since
        self._cond = threading.Condition()
        self._listeners: list[Listener] = []
        self._running = False
        self._thread: threading.Thread | None = None
        self.write_error: str | None = None  # why the last WAL write failed; None once one works

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def queued_samples(self) -> int:
        return self._queued

    def check_room(self) -> None:
        """Raise Overloaded while the queue is saturated: it refused a batch and the writer
        has freed no room since. Cheap, so a request can be refused before its body is read
        and decoded, which would cost about as much as accepting it."""
        if self._saturated:
            self.telemetry.ingest_overloaded.inc()
            raise Overloaded(
                f"ingest queue is full ({self._queued} samples waiting); retry later",
                retry_after_s=1.0,
            )
        self._check_head()

    def _check_head(self) -> None:
        """Overloaded while the store's in-memory head holds max_head samples or more: block
        cuts are behind ingest (issue 12: at full speed it reached 55 M samples, 5 GB)."""
        if self.max_head is not None and self.store.head.count >= self.max_head:
            self.telemetry.ingest_overloaded.inc()
            raise Overloaded(
                f"the store is behind writing blocks ({self.store.head.count} samples in "
                "memory); retry later", retry_after_s=1.0,
            )

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="seismo-wal-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def enqueue(self, batch: Batch) -> Future[None]:
        """Queue a batch; the future completes when it is durable. Raise Overloaded if full."""
        future: Future[None] = Future()
        if len(batch) == 0:
            future.set_result(None)
            return future
        if len(batch) > self.max_queued:
            raise TooLarge(
                f"{len(batch)} samples in one request; the ingest queue holds "
                f"{self.max_queued}: split the request", field="body",
            )
        self._check_head()
        with self._cond:
            if not self._running:
                raise StorageUnavailable("the store is shutting down")
            if self._queued + len(batch) > self.max_queued:
                self._saturated = True
                self.telemetry.ingest_overloaded.inc()
                raise Overloaded(
                    f"ingest queue is full ({self._queued} samples waiting); retry later",
                    retry_after_s=1.0,
                )
            self._queue.append((batch, future))
            self._queued += len(batch)
            self.telemetry.queue_samples.set(self._queued)
            self._cond.notify()
        return future

    async def submit(self, batch: Batch) -> None:
        """Queue a batch and wait until it is durable."""
        await asyncio.wrap_future(self.enqueue(batch))

    def submit_blocking(self, batch: Batch, timeout_s: float = 30.0) -> None:
        self.enqueue(batch).result(timeout=timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running and not self._queue:
                    self._cond.wait()
                if not self._queue:
                    return
                pending = list(self._queue)
                self._queue.clear()
            self._commit(pending)

    def _commit(self, pending: list[tuple[Batch, Future[None]]]) -> None:
        batches = [b for b, _ in pending]
        started = time.perf_counter()
        try:
            self.store.write(batches)
        except OSError as exc:
            log.error("WAL write failed: %s", exc.strerror or exc)
            error = StorageUnavailable(f"cannot make samples durable: {exc.strerror or exc}")
            self.write_error = error.message
            self._finish(pending, error)
            return
        self.write_error = None
        self.telemetry.wal_fsync_seconds.observe(time.perf_counter() - started)
        self.telemetry.wal_group_batches.observe(len(batches))
        self._finish(pending, None)
        for listener in self._listeners:
            for batch in batches:
                try:
                    listener(batch)
                except Exception:
                    log.exception("ingest listener %r failed", listener)

    def _finish(
        self, pending: list[tuple[Batch, Future[None]]], error: Exception | None
    ) -> None:
        count = sum(len(b) for b, _ in pending)
        with self._cond:
            self._queued -= count
            self._saturated = False
            self.telemetry.queue_samples.set(self._queued)
        if error is None:
            self.telemetry.samples_ingested.inc(count)
        for _, future in pending:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
