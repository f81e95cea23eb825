"""Alerts kept durably in the SQLite state db: each alert's latest state and every transition.

One row per fingerprint (updated in place at each transition) and one row per transition,
both written in one transaction before the transition is notified anywhere, so the history
at `GET /api/v1/alerts` is never behind what a receiver was told. Active rows are read back
at start so that firing alerts survive a restart.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from seismo.store.events import open_state_db, rollback

MAX_TRANSITIONS = 1_000_000
"""Transitions kept (oldest pruned first)."""

_ALERT_COLUMNS = ("fingerprint", "rule", "source", "sid", "labels", "annotations", "severity",
                  "state", "episode", "value", "started_ms", "fired_ms", "ack_by", "ack_ms",
                  "ack_comment", "resolved_ms", "resolved_by", "ends_at_ms", "updated_ms")
_JSON = ("labels", "annotations")


class AlertLog:
    """Write alert transitions; read alerts and their history back."""

    def __init__(self, path: Path) -> None:
        self._con = open_state_db(path)
        self._lock = threading.Lock()
        self._con.execute(
            """CREATE TABLE IF NOT EXISTS alerts (
                fingerprint TEXT PRIMARY KEY, rule TEXT NOT NULL, source TEXT NOT NULL,
                sid INTEGER, labels TEXT NOT NULL, annotations TEXT NOT NULL,
                severity TEXT NOT NULL, state TEXT NOT NULL, episode INTEGER NOT NULL,
                value REAL, started_ms INTEGER NOT NULL, fired_ms INTEGER, ack_by TEXT,
                ack_ms INTEGER, ack_comment TEXT, resolved_ms INTEGER, resolved_by TEXT,
                ends_at_ms INTEGER, updated_ms INTEGER NOT NULL)""")
        self._con.execute("CREATE INDEX IF NOT EXISTS alerts_updated ON alerts (updated_ms)")
        self._con.execute(
            """CREATE TABLE IF NOT EXISTS alert_transitions (
                id INTEGER PRIMARY KEY AUTOINCREMENT, fingerprint TEXT NOT NULL,
                episode INTEGER NOT NULL, from_state TEXT, to_state TEXT NOT NULL,
                at_ms INTEGER NOT NULL, reason TEXT NOT NULL, by TEXT, comment TEXT NOT NULL,
                value REAL)""")
        self._con.execute("CREATE INDEX IF NOT EXISTS alert_transitions_fp "
                          "ON alert_transitions (fingerprint, id)")

    def record_many(self, changes: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """Store alerts' new states and the transitions that led there, in order, in one
        transaction (one fsync for all the transitions of an ingest batch)."""
        rows = [tuple(json.dumps(alert[c], sort_keys=True) if c in _JSON else alert[c]
                      for c in _ALERT_COLUMNS) for alert, _ in changes]
        steps = [(a["fingerprint"], t["episode"], t["from"], t["to"], t["at_ms"], t["reason"],
                  t["by"], t["comment"], a["value"]) for a, t in changes]
        with self._lock:
            self._con.execute("BEGIN")
            try:
                self._con.executemany(
                    f"INSERT OR REPLACE INTO alerts ({', '.join(_ALERT_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_ALERT_COLUMNS))})", rows)
                self._con.executemany(
                    "INSERT INTO alert_transitions (fingerprint, episode, from_state, "
                    "to_state, at_ms, reason, by, comment, value) VALUES (?,?,?,?,?,?,?,?,?)",
                    steps)
                self._con.execute("COMMIT")
            except BaseException:
                rollback(self._con)
                raise

    def query(self, *, states: list[str] | None = None, severities: list[str] | None = None,
              rule: str | None = None, since_ms: int | None = None,
              limit: int = 100) -> list[dict[str, Any]]:
        """Alerts, most recently changed first."""
        where: list[str] = ["1=1"]
        args: list[Any] = []
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args += states
        if severities:
            where.append(f"severity IN ({', '.join('?' * len(severities))})")
            args += severities
        if rule is not None:
            where.append("rule = ?")
            args.append(rule)
        if since_ms is not None:
            where.append("updated_ms >= ?")
            args.append(since_ms)
        with self._lock:
            rows = self._con.execute(
                f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts WHERE {' AND '.join(where)} "
                "ORDER BY updated_ms DESC, fingerprint LIMIT ?", (*args, limit)).fetchall()
        return [self._alert(r) for r in rows]

    def get(self, fingerprint: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._con.execute(f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts "
                                    "WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return None if row is None else self._alert(row)

    def transitions(self, fingerprint: str, limit: int = 1000) -> list[dict[str, Any]]:
        """An alert's transitions, oldest first (the newest `limit`)."""
        with self._lock:
            rows = self._con.execute(
                "SELECT episode, from_state, to_state, at_ms, reason, by, comment, value "
                "FROM alert_transitions WHERE fingerprint = ? ORDER BY id DESC LIMIT ?",
                (fingerprint, limit)).fetchall()
        keys = ("episode", "from", "to", "at_ms", "reason", "by", "comment", "value")
        return [dict(zip(keys, r, strict=True)) for r in reversed(rows)]

    def transition_counts(self, since_ms: int) -> list[dict[str, Any]]:
        """Per rule and source, since `since_ms`: transitions to firing (not back from
        acknowledged), to resolved, and the alerts they belong to (noisy-rule insights)."""
        with self._lock:
            rows = self._con.execute(
                "SELECT a.rule, a.source, "
                "sum(t.to_state = 'firing' AND coalesce(t.from_state, '') != 'acknowledged'), "
                "sum(t.to_state = 'resolved'), count(DISTINCT t.fingerprint) "
                "FROM alert_transitions t JOIN alerts a ON a.fingerprint = t.fingerprint "
                "WHERE t.at_ms >= ? GROUP BY a.rule, a.source", (since_ms,)).fetchall()
        return [{"rule": r, "source": s, "fired": int(f or 0), "resolved": int(x or 0),
                 "alerts": int(n)} for r, s, f, x, n in rows]

    def active(self) -> list[dict[str, Any]]:
        return self.query(states=["pending", "firing", "acknowledged"], limit=10_000_000)

    def prune(self, keep: int = MAX_TRANSITIONS) -> None:
        """Drop the oldest transitions beyond `keep`."""
        with self._lock:
            self._con.execute(
                "DELETE FROM alert_transitions WHERE id <= "
                "(SELECT MAX(id) FROM alert_transitions) - ?", (keep,))

    def close(self) -> None:
        with self._lock:
            self._con.close()

    @staticmethod
    def _alert(row: tuple[Any, ...]) -> dict[str, Any]:
        alert = dict(zip(_ALERT_COLUMNS, row, strict=True))
        for c in _JSON:
            alert[c] = json.loads(alert[c])
        return alert
