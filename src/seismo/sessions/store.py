"""Sessions kept in the SQLite state db: one row per session, its events' ids, and the id
of the last event applied.

The event log is the source of truth and this table is derived from it: every write here
is one transaction that also records the last applied event id, so after a crash the
service replays the events after it (`EventLog.after_id`). That is why this connection
may commit with `synchronous=NORMAL` (no fsync per commit) without losing a session.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seismo.errors import InvalidInput
from seismo.sessions.model import Session
from seismo.store.events import open_state_db, rollback

_COLUMNS = ("id", "kind", "user", "state", "status", "started_ms", "ended_ms", "last_ms",
            "start_seen", "end_seen", "events", "attributes", "early")
_DURATION = ("(CASE state WHEN 'active' THEN max(:now, last_ms) WHEN 'stale' THEN last_ms "
             "ELSE coalesce(ended_ms, last_ms) END - started_ms)")
SORTS = {"start": "started_ms", "duration": _DURATION}


def _row(s: Session) -> tuple[Any, ...]:
    return (s.id, s.kind, s.user, s.state, s.status, s.started_ms, s.ended_ms, s.last_ms,
            int(s.start_seen), int(s.end_seen), s.events, json.dumps(s.attributes),
            json.dumps(s.early))


def _session(row: tuple[Any, ...]) -> Session:
    (sid, kind, user, state, status, started, ended, last, start_seen, end_seen, events,
     attributes, early) = row
    return Session(sid, started, last, kind=kind, user=user, state=state, status=status,
                   ended_ms=ended, start_seen=bool(start_seen), end_seen=bool(end_seen),
                   events=events, attributes=json.loads(attributes), early=json.loads(early))


def encode_cursor(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> list[Any]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise InvalidInput("cursor is not one this server gave out", field="cursor") from None
    if (not isinstance(parts, list) or len(parts) != 3 or not isinstance(parts[0], int)
            or not isinstance(parts[1], int) or not isinstance(parts[2], str)):
        raise InvalidInput("cursor is not one this server gave out", field="cursor")
    return parts


class SessionStore:
    """Read and write sessions; one lock, one connection."""

    def __init__(self, path: Path) -> None:
        self._con = open_state_db(path)
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()
        self._con.execute(
            """CREATE TABLE IF NOT EXISTS sessions (
                id TEXT PRIMARY KEY, kind TEXT NOT NULL, user TEXT NOT NULL,
                state TEXT NOT NULL, status TEXT, started_ms INTEGER NOT NULL,
                ended_ms INTEGER, last_ms INTEGER NOT NULL, start_seen INTEGER NOT NULL,
                end_seen INTEGER NOT NULL, events INTEGER NOT NULL, attributes TEXT NOT NULL,
                early TEXT NOT NULL)""")
        for name, cols in (("state", "state, started_ms"), ("kind", "kind, started_ms"),
                           ("started", "started_ms"), ("last", "last_ms")):
            self._con.execute(f"CREATE INDEX IF NOT EXISTS sessions_{name} ON sessions ({cols})")
        self._con.execute(
            """CREATE TABLE IF NOT EXISTS session_events (
                session TEXT NOT NULL, event_id INTEGER NOT NULL, ts INTEGER NOT NULL)""")
        self._con.execute("CREATE INDEX IF NOT EXISTS session_events_session "
                          "ON session_events (session, ts)")
        self._con.execute("CREATE TABLE IF NOT EXISTS session_meta "
                          "(key TEXT PRIMARY KEY, value INTEGER NOT NULL)")

    def save(self, sessions: Iterable[Session], links: list[tuple[str, int, int]],
             applied_event_id: int | None) -> None:
        """Upsert sessions and link events to them, in one transaction."""
        with self._lock:
            self._con.execute("BEGIN")
            try:
                self._con.executemany(
                    f"INSERT OR REPLACE INTO sessions ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_COLUMNS))})", [_row(s) for s in sessions])
                self._con.executemany("INSERT INTO session_events VALUES (?, ?, ?)", links)
                if applied_event_id is not None:
                    self._con.execute("INSERT OR REPLACE INTO session_meta VALUES "
                                      "('applied_event_id', max(?, coalesce((SELECT value FROM "
                                      "session_meta WHERE key = 'applied_event_id'), 0)))",
                                      (applied_event_id,))
                self._con.execute("COMMIT")
            except BaseException:
                rollback(self._con)
                raise

    def applied_event_id(self) -> int:
        with self._lock:
            row = self._con.execute(
                "SELECT value FROM session_meta WHERE key = 'applied_event_id'").fetchone()
        return 0 if row is None else int(row[0])

    def get(self, sid: str) -> Session | None:
        with self._lock:
            row = self._con.execute(f"SELECT {', '.join(_COLUMNS)} FROM sessions WHERE id = ?",
                                    (sid,)).fetchone()
        return None if row is None else _session(row)

    def unfinished(self) -> list[Session]:
        """Active and stale sessions (to hold in memory after a restart)."""
        with self._lock:
            rows = self._con.execute(f"SELECT {', '.join(_COLUMNS)} FROM sessions "
                                     "WHERE state != 'finished'").fetchall()
        return [_session(r) for r in rows]

    def finished(self, per_kind: int) -> list[Session]:
        """The newest `per_kind` finished sessions of each kind, oldest first."""
        with self._lock:
            rows = self._con.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM (SELECT *, row_number() OVER "
                "(PARTITION BY kind ORDER BY coalesce(ended_ms, last_ms) DESC) AS n "
                "FROM sessions WHERE state = 'finished') WHERE n <= ? "
                "ORDER BY coalesce(ended_ms, last_ms)", (per_kind,)).fetchall()
        return [_session(r) for r in rows]

    def event_ids(self, sid: str, limit: int) -> list[int]:
        with self._lock:
            rows = self._con.execute("SELECT event_id FROM session_events WHERE session = ? "
                                     "ORDER BY ts, event_id LIMIT ?", (sid, limit)).fetchall()
        return [int(r[0]) for r in rows]

    def counts(self) -> dict[tuple[str, str, str | None], int]:
        """Sessions per (kind, state, status)."""
        with self._lock:
            rows = self._con.execute("SELECT kind, state, status, count(*) FROM sessions "
                                     "GROUP BY kind, state, status").fetchall()
        return {(k, st, status): int(n) for k, st, status, n in rows}

    def query(self, *, now_ms: int, states: list[str] | None = None, kind: str | None = None,
              user: str | None = None, start_ms: int | None = None, end_ms: int | None = None,
              sort: str = "start", descending: bool = True, limit: int = 100,
              cursor: str | None = None) -> tuple[list[Session], str | None]:
        """One page of sessions and the cursor of the next (None: no more). A cursor keeps
        the `now` of the first page, so durations of active sessions sort consistently."""
        args: dict[str, Any] = {"now": now_ms, "limit": limit + 1}
        where = ["1=1"]
        after: list[Any] | None = None
        if cursor:
            after = decode_cursor(cursor)
            args["now"] = after[0]
        if states:
            names = [f":state{i}" for i in range(len(states))]
            where.append(f"state IN ({', '.join(names)})")
            args.update({n[1:]: s for n, s in zip(names, states, strict=True)})
        for column, value in (("kind", kind), ("user", user)):
            if value is not None:
                where.append(f"{column} = :{column}")
                args[column] = value
        if start_ms is not None:  # overlapping [start, end]
            where.append("(CASE state WHEN 'active' THEN :now WHEN 'stale' THEN last_ms "
                         "ELSE coalesce(ended_ms, last_ms) END) >= :start")
            args["start"] = start_ms
        if end_ms is not None:
            where.append("started_ms <= :end")
            args["end"] = end_ms
        key = SORTS[sort]
        if after is not None:
            where.append(f"({key}, id) {'<' if descending else '>'} (:after_key, :after_id)")
            args.update(after_key=after[1], after_id=after[2])
        order = "DESC" if descending else "ASC"
        sql = (f"SELECT {', '.join(_COLUMNS)}, {key} FROM sessions WHERE {' AND '.join(where)} "
               f"ORDER BY {key} {order}, id {order} LIMIT :limit")
        with self._lock:
            rows = self._con.execute(sql, args).fetchall()
        page = [_session(r[:-1]) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor([args["now"], int(last[-1]), last[0]])
        return page, next_cursor

    def prune(self, *, older_than_ms: int, max_sessions: int) -> list[str]:
        """Delete finished and stale sessions last heard of before `older_than_ms`, then the
        oldest beyond `max_sessions` (finished and stale first); return their ids."""
        with self._lock:
            doomed = [r[0] for r in self._con.execute(
                "SELECT id FROM sessions WHERE state != 'active' AND last_ms < ?",
                (older_than_ms,)).fetchall()]
            total = int(self._con.execute("SELECT count(*) FROM sessions").fetchone()[0])
            excess = total - len(doomed) - max_sessions
            if excess > 0:
                doomed += [r[0] for r in self._con.execute(
                    "SELECT id FROM sessions WHERE NOT (state != 'active' AND last_ms < ?) "
                    "ORDER BY state = 'active', last_ms LIMIT ?",
                    (older_than_ms, excess)).fetchall()]
            if doomed:
                self._con.execute("BEGIN")
                try:
                    for start in range(0, len(doomed), 500):
                        chunk = doomed[start:start + 500]
                        marks = ", ".join("?" * len(chunk))
                        self._con.execute(f"DELETE FROM sessions WHERE id IN ({marks})", chunk)
                        self._con.execute(
                            f"DELETE FROM session_events WHERE session IN ({marks})", chunk)
                    self._con.execute("COMMIT")
                except BaseException:
                    rollback(self._con)
                    raise
        return doomed

    def close(self) -> None:
        with self._lock:
            self._con.close()
