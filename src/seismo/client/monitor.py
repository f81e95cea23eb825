"""`ModelMonitor`: record a model's predictions and outcomes from the serving process.

`predict(fn, features, id=)` calls the model, times it, returns its result and queues the
record; a background thread sends queued records in batches. The caller is never slowed
or broken by seismo: the queue is bounded (a record that does not fit is dropped and
counted), failed sends are retried with backoff, and every error stays in the thread.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx
import msgspec

from seismo.client import calls
from seismo.client.backoff import Backoff

log = logging.getLogger(__name__)
R = TypeVar("R")
RETRY_STATUSES = {408, 429, 500, 502, 503, 504, 507}


def _scalar(value: Any) -> Any:
    """A prediction as JSON: numpy scalars and one-element arrays unwrapped."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    while isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    return value


class ModelMonitor:
    """Records one model version's predictions and outcomes in the background.

    `max_queue` records wait at most (beyond it new ones are dropped: `dropped` counts
    them); up to `batch_size` go in one request, sent at least every `flush_interval_s`.
    A send that fails (no answer, 429, 5xx) is retried after a backoff, the batch kept;
    a batch the server refuses (400) is dropped and counted in `rejected`.
    """

    def __init__(self, url: str, token: str | None, model: str, version: str, *,
                 task: str | None = None, metadata: Mapping[str, Any] | None = None,
                 batch_size: int = 1000, flush_interval_s: float = 0.5,
                 max_queue: int = 100_000, timeout_s: float = 10.0,
                 backoff: Backoff | None = None) -> None:
        self.model, self.version = model, version
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_queue = max_queue
        self._registration = None if task is None else {
            "name": model, "version": version, "task": task,
            **({"metadata": dict(metadata)} if metadata is not None else {})}
        self._http = httpx.Client(base_url=url.rstrip("/") + "/api/v1", timeout=timeout_s,
                                  headers={**calls.auth_headers(token),
                                           "Content-Type": "application/json"})
        self._backoff = backoff or Backoff(initial_s=0.2, max_s=10.0)
        self._predictions: deque[dict[str, Any]] = deque()
        self._outcomes: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._sending = 0  # records taken from the queues and not yet sent or given up
        self._closed = False
        self._closing = threading.Event()  # set by close(): retries stop waiting
        self.sent = self.dropped = self.rejected = self.retries = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"seismo-monitor-{model}",
                                        daemon=True)
        self._thread.start()

    # -- the caller's side: never blocks on the network ----------------------------------

    def predict(self, fn: Callable[[Any], R], features: Mapping[str, Any],
                id: str | None = None) -> R:
        """`fn(features)`, timed; its result is returned and recorded as the prediction.
        Pass `id` to report the outcome later with `outcome(id, actual)`."""
        started = time.perf_counter()
        result = fn(features)
        latency_ms = (time.perf_counter() - started) * 1000
        self.record(id or uuid.uuid4().hex, features, _scalar(result), latency_ms=latency_ms)
        return result

    def record(self, id: str, features: Mapping[str, Any], prediction: Any, *,
               probability: float | Mapping[str, float] | None = None,
               latency_ms: float | None = None, timestamp: int | None = None) -> bool:
        """Queue one prediction made elsewhere; False if it was dropped (queue full)."""
        item: dict[str, Any] = {"id": id, "features": dict(features),
                                "prediction": prediction,
                                "timestamp": timestamp or time.time_ns() // 1_000_000}
        if probability is not None:
            item["probability"] = probability
        if latency_ms is not None:
            item["latency_ms"] = latency_ms
        return self._put(self._predictions, item)

    def outcome(self, id: str, actual: Any) -> bool:
        """Queue the true outcome of prediction `id`; False if it was dropped."""
        return self._put(self._outcomes, {"id": id, "actual": _scalar(actual)})

    def _put(self, queue: deque[dict[str, Any]], item: dict[str, Any]) -> bool:
        with self._cond:
            if self._closed or len(self._predictions) + len(self._outcomes) >= self.max_queue:
                self.dropped += 1
                return False
            queue.append(item)
            if len(queue) >= self.batch_size:
                self._cond.notify()
        return True

    @property
    def queued(self) -> int:
        return len(self._predictions) + len(self._outcomes) + self._sending

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Send everything queued now; True once it is sent (or given up), False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._cond.notify_all()
            while self.queued and time.monotonic() < deadline:
                self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))
                self._cond.notify_all()
            return not self.queued

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush (bounded by `timeout_s`), stop the thread; what is left is dropped."""
        self.flush(timeout_s)
        self._closing.set()
        with self._cond:
            self._closed = True
            self.dropped += len(self._predictions) + len(self._outcomes)
            self._predictions.clear()
            self._outcomes.clear()
            self._cond.notify_all()
        self._thread.join(timeout=timeout_s)
        self._http.close()

    def __enter__(self) -> ModelMonitor:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- the sender thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._closed and len(self._predictions) < self.batch_size and \
                        len(self._outcomes) < self.batch_size:
                    self._cond.wait(self.flush_interval_s)
                if self._closed:
                    return
                predictions = [self._predictions.popleft()
                               for _ in range(min(self.batch_size, len(self._predictions)))]
                outcomes = [self._outcomes.popleft()
                            for _ in range(min(self.batch_size, len(self._outcomes)))]
                self._sending = len(predictions) + len(outcomes)
            try:
                # Predictions first: an outcome sent with its prediction finds it.
                if predictions:
                    self._send(f"/models/{self.model}/predictions",
                               {"version": self.version, "items": predictions})
                if outcomes:
                    self._send(f"/models/{self.model}/outcomes", {"items": outcomes})
            finally:
                with self._cond:
                    self._sending = 0
                    self._cond.notify_all()

    def _send(self, path: str, body: dict[str, Any]) -> None:
        """POST until it is accepted, refused for good, or the monitor closes."""
        data = msgspec.json.encode(body)
        count = len(body["items"])
        while True:
            status, text = self._register() if self._registration is not None else (200, "")
            if status == 200:
                status, text = self._post(path, data)
            if status == 200:
                self.sent += count
                self._backoff.reset()
                return
            self.last_error = f"HTTP {status}: {text}" if status else text
            if status and status not in RETRY_STATUSES:
                log.warning("seismo refused %d records of %s: %s", count, self.model, text)
                self.rejected += count
                return
            self.retries += 1
            if self._closing.wait(self._backoff.next_delay_s()):
                self.dropped += count
                return

    def _register(self) -> tuple[int, str]:
        """Register the version once (when `task` was given); 200 when done."""
        status, text = self._post("/models", msgspec.json.encode(self._registration))
        if status in (200, 201):
            self._registration = None
            return 200, ""
        if status and status not in RETRY_STATUSES:
            log.warning("seismo refused to register %s %s: %s", self.model, self.version, text)
            self._registration = None  # the version may exist already: send anyway
            return 200, ""
        return status, text

    def _post(self, path: str, data: bytes) -> tuple[int, str]:
        try:
            reply = self._http.post(path, content=data)
        except httpx.HTTPError as exc:
            return 0, f"cannot reach seismo: {exc}"
        return reply.status_code, reply.text[:300]
