"""The durable outbox: every notification is stored before it is sent, and sent at least once.

The alert manager `put`s notifications; worker threads deliver them with the channel's
current configuration, retry failures with exponential backoff and jitter, and keep what
could not be delivered as dead letters until someone retries or deletes them. Rows live in
the `outbox` table of the state db, so a restart resumes where the last process stopped.
"""

from __future__ import annotations

import builtins
import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seismo.errors import InvalidInput, NotFound, Overloaded, StorageUnavailable
from seismo.notify.config import ChannelSpec
from seismo.notify.delivery import Result, deliver
from seismo.notify.message import Alert, Notification, Reason
from seismo.store.events import open_state_db

LOGGER = logging.getLogger("seismo.notify")

STATES = ("pending", "sent", "dead")
KEEP_SENT = 10_000
"""Sent rows kept (the newest); older ones are deleted."""
KEEP_DEAD = 10_000
"""Dead letters kept (the newest); older ones are deleted."""
PRUNE_EVERY = 100
"""Rows turned sent or dead between two prunings."""
IDLE_WAIT_S = 1.0
"""Longest a worker sleeps before looking again (an injected clock may have moved)."""

_COLUMNS = ("id, channel, state, attempts, created_ms, next_attempt_ms, sent_ms, last_error, "
            "status, group_key, reason, alerts")


def wall_ms() -> int:
    """Milliseconds since the epoch, by the wall clock."""
    return time.time_ns() // 1_000_000


def to_dict(notification: Notification) -> dict[str, Any]:
    """A notification as JSON-ready data (what the outbox stores)."""
    return {
        "receiver": notification.receiver,
        "group_key": notification.group_key,
        "group_labels": dict(notification.group_labels),
        "alerts": [
            {
                "fingerprint": a.fingerprint,
                "status": a.status,
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "starts_at_ms": a.starts_at_ms,
                "ends_at_ms": a.ends_at_ms,
                "generator_url": a.generator_url,
                "value": a.value,
            }
            for a in notification.alerts
        ],
        "reason": notification.reason.value,
        "ts_ms": notification.ts_ms,
        "external_url": notification.external_url,
    }


def from_dict(document: Mapping[str, Any]) -> Notification:
    """The notification `to_dict` stored."""
    return Notification(
        receiver=document["receiver"],
        group_key=document["group_key"],
        group_labels=dict(document["group_labels"]),
        alerts=tuple(
            Alert(
                fingerprint=a["fingerprint"],
                status=a["status"],
                labels=dict(a["labels"]),
                annotations=dict(a.get("annotations", {})),
                starts_at_ms=a.get("starts_at_ms", 0),
                ends_at_ms=a.get("ends_at_ms"),
                generator_url=a.get("generator_url", ""),
                value=a.get("value"),
            )
            for a in document["alerts"]
        ),
        reason=Reason(document["reason"]),
        ts_ms=document.get("ts_ms", 0),
        external_url=document.get("external_url", ""),
    )


@dataclass(frozen=True)
class _Job:
    id: int
    channel: str
    document: str
    attempts: int


class Outbox:
    """Stores notifications durably and delivers them with retries from worker threads.

    At most one delivery per channel is in flight, oldest first; after a failure the
    channel waits out its backoff before anything else is sent to it, so a receiver that
    is down costs one request per backoff step, not one per notification.
    """

    def __init__(
        self,
        db_path: Path,
        channels: Callable[[], Mapping[str, ChannelSpec]],
        *,
        clock: Callable[[], int] = wall_ms,
        max_attempts: int = 12,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 300.0,
        workers: int = 4,
        max_pending: int = 100_000,
        send: Callable[[ChannelSpec, Notification], Result] = deliver,
    ) -> None:
        self._channels = channels
        self._clock = clock
        self.max_attempts = max(1, max_attempts)
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = max(backoff_min_s, backoff_max_s)
        self.workers = max(1, workers)
        self.max_pending = max_pending
        self._send = send
        self._random = random.Random()
        self._cond = threading.Condition()
        self._threads: builtins.list[threading.Thread] = []
        self._generation = 0
        """Bumped by `stop`: a worker that outlived its stop exits instead of working on."""
        self._busy: set[str] = set()
        """Channels with a delivery in flight."""
        self._paused: dict[str, int] = {}
        """Channel → when it may be tried again (ms), after a failure."""
        self._settled = 0
        self._con = open_state_db(db_path)
        self._con.executescript(
            """CREATE TABLE IF NOT EXISTS outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                channel TEXT NOT NULL,
                state TEXT NOT NULL,
                notification TEXT NOT NULL,
                group_key TEXT NOT NULL,
                reason TEXT NOT NULL,
                alerts INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                created_ms INTEGER NOT NULL,
                next_attempt_ms INTEGER,
                sent_ms INTEGER,
                last_error TEXT NOT NULL DEFAULT '',
                status INTEGER);
            CREATE INDEX IF NOT EXISTS outbox_state_id ON outbox (state, id);
            CREATE INDEX IF NOT EXISTS outbox_state_due ON outbox (state, next_attempt_ms);"""
        )
        self._pending = self._count("pending")
        self._prune()

    # -- storing ---------------------------------------------------------------------------

    def put(self, channel: str, notification: Notification) -> int:
        """Store a notification for `channel`; durable when this returns its id."""
        document = json.dumps(to_dict(notification), ensure_ascii=False, separators=(",", ":"))
        with self._cond:
            if self._pending >= self.max_pending:
                raise Overloaded(
                    f"the outbox already holds {self._pending} pending notifications",
                    retry_after_s=max(self.backoff_min_s, 1.0),
                )
            now = self._clock()
            try:
                cursor = self._con.execute(
                    "INSERT INTO outbox (channel, state, notification, group_key, reason, alerts,"
                    " created_ms, next_attempt_ms) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?)",
                    (channel, document, notification.group_key, notification.reason.value,
                     len(notification.alerts), now, now),
                )
            except sqlite3.Error as exc:
                raise StorageUnavailable(f"outbox: cannot store the notification: {exc}") from exc
            self._pending += 1
            self._cond.notify_all()
            return int(cursor.lastrowid or 0)

    # -- workers ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads (again after `stop`); rows left pending are sent first."""
        with self._cond:
            if self._threads:
                return
            self._threads = [
                threading.Thread(target=self._run, args=(self._generation,),
                                 name=f"seismo-outbox-{i}", daemon=True)
                for i in range(self.workers)
            ]
            for thread in self._threads:
                thread.start()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the workers, waiting up to `timeout_s` for deliveries in flight to end."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            LOGGER.warning("outbox workers still delivering after %.1f s: %s", timeout_s,
                           ", ".join(alive))
        return not alive

    def close(self) -> None:
        """Stop the workers and close the database connection."""
        self.stop()
        with self._cond:
            self._con.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wake(self) -> None:
        """Have idle workers look for due rows now (after moving an injected clock)."""
        with self._cond:
            self._cond.notify_all()

    def drain(self, timeout_s: float) -> bool:
        """Wait until no row is pending (all sent or dead); False if `timeout_s` passed first."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, IDLE_WAIT_S))
            return True

    def _run(self, generation: int) -> None:
        while True:
            job = self._next_job(generation)
            if job is None:
                return
            try:
                result = self._attempt(job)
            except Exception as exc:  # a worker must outlive any one notification
                LOGGER.exception("outbox: attempt on notification %d failed", job.id)
                result = Result(False, True, None, f"internal error: {type(exc).__name__}")
            try:
                self._record(job, result)
            except sqlite3.Error:
                LOGGER.exception("outbox: cannot record the attempt on notification %d", job.id)
                with self._cond:
                    self._busy.discard(job.channel)
                    if generation != self._generation:
                        return
                    self._cond.wait(IDLE_WAIT_S)

    def _next_job(self, generation: int) -> _Job | None:
        """The oldest due row of a channel that is neither busy nor paused; None to stop."""
        with self._cond:
            while generation == self._generation:
                now = self._clock()
                for name, until in list(self._paused.items()):
                    if until <= now:
                        del self._paused[name]
                skip = sorted(self._busy | set(self._paused))
                sql = ("SELECT id, channel, notification, attempts FROM outbox"
                       " WHERE state = 'pending' AND next_attempt_ms <= ?")
                if skip:
                    sql += f" AND channel NOT IN ({', '.join('?' * len(skip))})"
                try:
                    row = self._con.execute(sql + " ORDER BY id LIMIT 1", (now, *skip)).fetchone()
                except sqlite3.Error:
                    LOGGER.exception("outbox: cannot read pending notifications")
                    row = None
                if row is not None:
                    self._busy.add(row[1])
                    return _Job(*row)
                self._cond.wait(self._idle_wait_s(now))
            return None

    def _idle_wait_s(self, now: int) -> float:
        """Until the next row or paused channel falls due, at most `IDLE_WAIT_S`."""
        try:
            (due,) = self._con.execute(
                "SELECT MIN(next_attempt_ms) FROM outbox"
                " WHERE state = 'pending' AND next_attempt_ms > ?", (now,)
            ).fetchone()
        except sqlite3.Error:
            due = None
        times = [t for t in (due, *self._paused.values()) if t is not None and t > now]
        wait_s = (min(times) - now) / 1000 if times else IDLE_WAIT_S
        return min(max(wait_s, 0.001), IDLE_WAIT_S)

    def _attempt(self, job: _Job) -> Result:
        spec = self._channels().get(job.channel)
        if spec is None:
            return Result(False, False, None, f"channel {job.channel!r} no longer exists")
        try:
            notification = from_dict(json.loads(job.document))
        except (ValueError, KeyError, TypeError) as exc:
            return Result(False, False, None, f"stored notification unreadable: {exc!r}")
        return self._send(spec, notification)

    def _record(self, job: _Job, result: Result) -> None:
        """Mark the row sent, due again after a backoff, or dead."""
        attempts = job.attempts + 1
        with self._cond:
            self._busy.discard(job.channel)
            now = self._clock()
            if result.ok:
                changed = self._update(
                    job.id, "state = 'sent', sent_ms = ?, next_attempt_ms = NULL",
                    (now,), attempts, result,
                )
                self._pending -= changed
                self._settle(changed)
            elif result.retry and attempts < self.max_attempts:
                delay_s = self.backoff_s(attempts)
                due = now + int(delay_s * 1000)
                self._update(job.id, "next_attempt_ms = ?", (due,), attempts, result)
                self._paused[job.channel] = due
                LOGGER.info("notification %d to %s: attempt %d failed, next in %.1f s: %s",
                            job.id, job.channel, attempts, delay_s, result.error)
            else:
                error = result.error
                if result.retry:
                    error = f"gave up after {attempts} attempts: {error}"
                changed = self._update(
                    job.id, "state = 'dead', next_attempt_ms = NULL", (), attempts,
                    Result(False, False, result.status, error),
                )
                self._pending -= changed
                self._settle(changed)
                LOGGER.warning("notification %d to %s is dead after %d attempts: %s",
                               job.id, job.channel, attempts, error)
            self._cond.notify_all()

    def _update(self, row_id: int, assignments: str, values: tuple[Any, ...], attempts: int,
                result: Result) -> int:
        """Apply an attempt's outcome to a row still pending (it may have been deleted)."""
        cursor = self._con.execute(
            f"UPDATE outbox SET {assignments}, attempts = ?, last_error = ?, status = ?"
            " WHERE id = ? AND state = 'pending'",
            (*values, attempts, result.error, result.status, row_id),
        )
        return cursor.rowcount

    def _settle(self, changed: int) -> None:
        self._settled += changed
        if self._settled >= PRUNE_EVERY:
            self._settled = 0
            self._prune()

    def _prune(self) -> None:
        for state, keep in (("sent", KEEP_SENT), ("dead", KEEP_DEAD)):
            self._con.execute(
                "DELETE FROM outbox WHERE state = ? AND id <= (SELECT id FROM outbox"
                " WHERE state = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (state, state, keep),
            )

    def backoff_s(self, attempts: int) -> float:
        """The wait after `attempts` failures: doubling from the minimum, capped, jittered.

        "Equal jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015): half
        the capped exponential delay, plus a random part of up to the other half.
        """
        base = min(self.backoff_max_s, self.backoff_min_s * 2.0 ** min(attempts - 1, 60))
        return base / 2 + self._random.uniform(0, base / 2)

    # -- reading and managing rows ---------------------------------------------------------

    def get(self, row_id: int) -> dict[str, Any]:
        """One row, with the stored notification under `notification`."""
        with self._cond:
            row = self._con.execute(
                f"SELECT {_COLUMNS}, notification FROM outbox WHERE id = ?", (row_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"no notification {row_id} in the outbox", field="id")
        item = _row(row[:-1])
        item["notification"] = json.loads(row[-1])
        return item

    def retry(self, row_id: int) -> dict[str, Any]:
        """Send a dead (or still pending) notification again now, with fresh attempts."""
        with self._cond:
            row = self._con.execute("SELECT state, channel FROM outbox WHERE id = ?",
                                    (row_id,)).fetchone()
            if row is None:
                raise NotFound(f"no notification {row_id} in the outbox", field="id")
            if row[0] == "sent":
                raise InvalidInput(f"notification {row_id} was already sent", field="id")
            if row[0] == "dead" and self._pending >= self.max_pending:
                raise Overloaded(f"the outbox already holds {self._pending} pending "
                                 "notifications")
            self._con.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_ms = ?"
                " WHERE id = ?", (self._clock(), row_id),
            )
            if row[0] == "dead":
                self._pending += 1
            self._paused.pop(row[1], None)  # someone asked for it now
            self._cond.notify_all()
        return self._one(row_id)

    def delete(self, row_id: int) -> None:
        """Remove a row whatever its state (a pending one is then never sent)."""
        with self._cond:
            row = self._con.execute("SELECT state FROM outbox WHERE id = ?",
                                    (row_id,)).fetchone()
            if row is None:
                raise NotFound(f"no notification {row_id} in the outbox", field="id")
            self._con.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            if row[0] == "pending":
                self._pending -= 1
            self._cond.notify_all()

    def told(self, since_ms: int) -> tuple[set[tuple[str, str, int]], int]:
        """What the notifications stored since `since_ms` carry, whatever their state:
        `(fingerprint, status, starts_at_ms)` of each alert in them; and the time from which
        that is complete (rows older than the oldest kept `sent` or `dead` row may be gone).
        A restarted alert manager reads here what its channels were told."""
        complete_from = 0
        with self._cond:
            for state, keep in (("sent", KEEP_SENT), ("dead", KEEP_DEAD)):
                count, oldest = self._con.execute(
                    "SELECT COUNT(*), MIN(created_ms) FROM outbox WHERE state = ?",
                    (state,)).fetchone()
                if count >= keep and oldest is not None:
                    complete_from = max(complete_from, int(oldest))
            rows = self._con.execute("SELECT notification FROM outbox WHERE created_ms >= ?",
                                     (since_ms,)).fetchall()
        told = {(a["fingerprint"], a["status"], int(a["starts_at_ms"]))
                for (document,) in rows for a in json.loads(document)["alerts"]}
        return told, complete_from

    def stats(self) -> dict[str, int]:
        """Rows per state: `{"pending": n, "sent": n, "dead": n}`."""
        with self._cond:
            counts = dict(self._con.execute(
                "SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
        return {state: int(counts.get(state, 0)) for state in STATES}

    def list(self, state: str | None = None, channel: str | None = None,
             limit: int = 100) -> builtins.list[dict[str, Any]]:
        """Rows, newest first, optionally of one state and one channel."""
        if state is not None and state not in STATES:
            raise InvalidInput(f"state: must be one of {', '.join(STATES)}, not {state!r}",
                               field="state")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidInput("limit: must be an integer from 1 to 10000", field="limit")
        where, values = [], []
        if state is not None:
            where.append("state = ?")
            values.append(state)
        if channel is not None:
            where.append("channel = ?")
            values.append(channel)
        sql = f"SELECT {_COLUMNS} FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._cond:
            rows = self._con.execute(sql + " ORDER BY id DESC LIMIT ?",
                                     (*values, limit)).fetchall()
        return [_row(r) for r in rows]

    def _one(self, row_id: int) -> dict[str, Any]:
        item = self.get(row_id)
        del item["notification"]
        return item

    def _count(self, state: str) -> int:
        (n,) = self._con.execute("SELECT COUNT(*) FROM outbox WHERE state = ?",
                                 (state,)).fetchone()
        return int(n)


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(_COLUMNS.split(", "), row, strict=True))
