"""The durable record log of predictions and outcomes: SQLite (WAL, fsync per commit).

One row per request batch (its columns as msgpack bytes). A writer thread takes every
queued record, commits them in one transaction (one fsync), then applies them to the
in-memory tables in log order and answers each request. The queue is bounded in rows; a
full queue refuses at once (Overloaded → 429). On start the log is replayed in order.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seismo.errors import Overloaded, StorageUnavailable, TooLarge
from seismo.models.records import OutcomeBatch, PredictionBatch
from seismo.store.events import open_state_db, rollback

log = logging.getLogger(__name__)
PREDICTIONS, OUTCOMES = "predictions", "outcomes"


@dataclass
class Record:
    """One request's batch on its way to the log; `seq` is set when it is committed."""

    model: str
    kind: str  # predictions | outcomes
    received_ms: int
    body: bytes
    batch: PredictionBatch | OutcomeBatch
    seq: int = 0


Apply = Callable[[Record], dict[str, Any]]


class RecordLog:
    """See the module docstring. `apply(record)` returns the reply of its request."""

    def __init__(self, path: Path, apply: Apply, *, max_queued_rows: int) -> None:
        self._con = open_state_db(path)
        self._con.execute("""CREATE TABLE IF NOT EXISTS model_records (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, kind TEXT NOT NULL,
            received_ms INTEGER NOT NULL, rows INTEGER NOT NULL, body BLOB NOT NULL)""")
        self._con.execute("CREATE INDEX IF NOT EXISTS model_records_model "
                          "ON model_records (model, kind, seq)")
        self._db_lock = threading.Lock()
        self.apply = apply
        self.max_queued = max_queued_rows
        self._queue: deque[tuple[Record, Future[dict[str, Any]]]] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self.commits = 0

    @property
    def queued_rows(self) -> int:
        return self._queued

    def replay(self) -> Iterator[tuple[int, str, str, int, bytes]]:
        """Every stored record, oldest first: (seq, model, kind, received_ms, body)."""
        with self._db_lock:
            rows = self._con.execute("SELECT seq, model, kind, received_ms, body "
                                     "FROM model_records ORDER BY seq").fetchall()
        yield from rows

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="seismo-models", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._db_lock:
            self._con.close()

    def submit(self, record: Record) -> Future[dict[str, Any]]:
        """Queue a record; the future gives its reply once it is durable and applied."""
        rows = len(record.batch)
        if rows > self.max_queued:
            raise TooLarge(f"{rows} items in one request; the queue holds {self.max_queued}: "
                           "split the request", field="items")
        future: Future[dict[str, Any]] = Future()
        with self._cond:
            if not self._running:
                raise StorageUnavailable("the model monitor is not running")
            if self._queued + rows > self.max_queued:
                raise Overloaded(f"model record queue is full ({self._queued} items waiting);"
                                 " retry later", retry_after_s=1.0)
            self._queue.append((record, future))
            self._queued += rows
            self._cond.notify()
        return future

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

    def _commit(self, pending: list[tuple[Record, Future[dict[str, Any]]]]) -> None:
        try:
            with self._db_lock:
                self._con.execute("BEGIN")
                try:
                    for record, _ in pending:
                        cur = self._con.execute(
                            "INSERT INTO model_records (model, kind, received_ms, rows, body) "
                            "VALUES (?, ?, ?, ?, ?)",
                            (record.model, record.kind, record.received_ms,
                             len(record.batch), record.body))
                        record.seq = int(cur.lastrowid or 0)
                    self._con.execute("COMMIT")
                except BaseException:
                    rollback(self._con)
                    raise
            self.commits += 1
        except Exception as exc:  # sqlite3.Error, OSError: the disk refused
            log.error("model records not stored: %s", exc)
            error = StorageUnavailable(f"cannot make model records durable: {exc}")
            self._finish(pending)
            for _, future in pending:
                future.set_exception(error)
            return
        self._finish(pending)
        for record, future in pending:
            try:
                future.set_result(self.apply(record))
            except Exception as exc:
                log.exception("applying a model record failed")
                future.set_exception(exc)

    def _finish(self, pending: list[tuple[Record, Future[dict[str, Any]]]]) -> None:
        with self._cond:
            self._queued -= sum(len(r.batch) for r, _ in pending)

    def delete(self, model: str, kind: str, *, before_seq: int,
               received_before_ms: int | None = None) -> int:
        """Drop a model's records older than `before_seq` (and received before a time)."""
        sql = "DELETE FROM model_records WHERE model = ? AND kind = ? AND seq < ?"
        args: list[Any] = [model, kind, before_seq]
        if received_before_ms is not None:
            sql += " AND received_ms < ?"
            args.append(received_before_ms)
        with self._db_lock:
            return self._con.execute(sql, args).rowcount
