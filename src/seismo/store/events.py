"""Events (deploys, errors, session starts…) kept durably in SQLite (WAL mode, full sync).

SQLite holds seismo's state that is not samples; events are its first table.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEVERITIES = ("critical", "high", "medium", "low", "info")


@dataclass
class Event:
    type: str
    source: str = ""
    severity: str = "info"
    message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    timestamp: int = 0
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": self.type, "source": self.source, "severity": self.severity,
            "message": self.message, "attributes": self.attributes, "timestamp": self.timestamp,
        }


def open_state_db(path: Path) -> sqlite3.Connection:
    """The SQLite file for seismo's state, in WAL mode with fsync on every commit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    return con


def rollback(con: sqlite3.Connection) -> None:
    """Roll back the open transaction, unless SQLite already did (it does on a full disk)."""
    if con.in_transaction:
        con.execute("ROLLBACK")


class EventLog:
    """Append and query events; every append is durable before it returns."""

    def __init__(self, path: Path) -> None:
        self._con = open_state_db(path)
        self._lock = threading.Lock()
        self._con.execute(
            """CREATE TABLE IF NOT EXISTS events (
                id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, type TEXT NOT NULL,
                source TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL,
                attributes TEXT NOT NULL)"""
        )
        self._con.execute("CREATE INDEX IF NOT EXISTS events_ts ON events (ts)")
        self._con.execute("CREATE INDEX IF NOT EXISTS events_type_ts ON events (type, ts)")

    def append(self, events: list[Event]) -> list[Event]:
        """Store events in one transaction; return them with their ids."""
        with self._lock:
            self._con.execute("BEGIN")
            try:
                for event in events:
                    cur = self._con.execute(
                        "INSERT INTO events (ts, type, source, severity, message, attributes) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (event.timestamp, event.type, event.source, event.severity,
                         event.message, json.dumps(event.attributes)),
                    )
                    event.id = cur.lastrowid
                self._con.execute("COMMIT")
            except BaseException:
                rollback(self._con)
                raise
        return events

    def query(
        self, *, type: str | None = None, source: str | None = None,
        start_ms: int | None = None, end_ms: int | None = None, limit: int = 100,
    ) -> list[Event]:
        """Newest first, filtered by type, source and time range."""
        where: list[str] = []
        args: list[str | int] = []
        for column, value in (("type", type), ("source", source)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if start_ms is not None:
            where.append("ts >= ?")
            args.append(start_ms)
        if end_ms is not None:
            where.append("ts <= ?")
            args.append(end_ms)
        sql = "SELECT id, ts, type, source, severity, message, attributes FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts DESC, id DESC LIMIT ?"
        with self._lock:
            rows = self._con.execute(sql, [*args, limit]).fetchall()
        return [
            Event(type=t, source=src, severity=sev, message=msg,
                  attributes=json.loads(attrs), timestamp=ts, id=i)
            for i, ts, t, src, sev, msg, attrs in rows
        ]

    def after_id(self, event_id: int, limit: int = 10_000) -> list[Event]:
        """Events stored after `event_id`, oldest first (a consumer catching up)."""
        with self._lock:
            rows = self._con.execute(
                "SELECT id, ts, type, source, severity, message, attributes FROM events "
                "WHERE id > ? ORDER BY id LIMIT ?", (event_id, limit)).fetchall()
        return [Event(type=t, source=src, severity=sev, message=msg,
                      attributes=json.loads(attrs), timestamp=ts, id=i)
                for i, ts, t, src, sev, msg, attrs in rows]

    def by_ids(self, ids: list[int]) -> list[Event]:
        """The events with these ids (those still stored), oldest first."""
        found: list[Event] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            with self._lock:
                rows = self._con.execute(
                    "SELECT id, ts, type, source, severity, message, attributes FROM events "
                    f"WHERE id IN ({', '.join('?' * len(chunk))})", chunk).fetchall()
            found += [Event(type=t, source=src, severity=sev, message=msg,
                            attributes=json.loads(attrs), timestamp=ts, id=i)
                      for i, ts, t, src, sev, msg, attrs in rows]
        found.sort(key=lambda e: (e.timestamp, e.id or 0))
        return found

    def count(self) -> int:
        with self._lock:
            row = self._con.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._con.close()
