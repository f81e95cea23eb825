"""Anomalies kept durably in the SQLite state db: one row per incident (a run of points).

An anomaly is opened by the first anomalous point of a series, extended while its points
keep coming, and closed after a quiet spell; the row is updated in place each time.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seismo.store.events import open_state_db, rollback

_COLUMNS = ("id", "sid", "metric", "labels", "start_ms", "end_ms", "kind", "score",
            "confidence", "expected", "lower", "upper", "actual", "detectors", "points",
            "state")


@dataclass
class Anomaly:
    sid: int
    metric: str
    labels: dict[str, str]
    start_ms: int
    end_ms: int
    kind: str
    score: float
    confidence: float
    expected: float | None
    lower: float | None
    upper: float | None
    actual: float
    detectors: list[str] = field(default_factory=list)
    points: int = 1
    state: str = "open"  # open, closed
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["sid"] = str(self.sid)  # 63-bit ids lose precision as JSON numbers in browsers
        return out


class AnomalyLog:
    """Insert, update and query anomalies; every write is durable before it returns."""

    def __init__(self, path: Path) -> None:
        self._con = open_state_db(path)
        self._lock = threading.Lock()
        self._con.execute(
            """CREATE TABLE IF NOT EXISTS anomalies (
                id INTEGER PRIMARY KEY AUTOINCREMENT, sid INTEGER NOT NULL,
                metric TEXT NOT NULL, labels TEXT NOT NULL, start_ms INTEGER NOT NULL,
                end_ms INTEGER NOT NULL, kind TEXT NOT NULL, score REAL NOT NULL,
                confidence REAL NOT NULL, expected REAL, lower REAL, upper REAL,
                actual REAL NOT NULL, detectors TEXT NOT NULL, points INTEGER NOT NULL,
                state TEXT NOT NULL)""")
        self._con.execute("CREATE INDEX IF NOT EXISTS anomalies_start ON anomalies (start_ms)")
        self._con.execute(
            "CREATE INDEX IF NOT EXISTS anomalies_metric ON anomalies (metric, start_ms)")

    def save(self, anomalies: list[Anomaly]) -> None:
        """Insert new anomalies (id None) and update known ones, in one transaction."""
        if not anomalies:
            return
        with self._lock:
            fresh = [a for a in anomalies if a.id is None]
            self._con.execute("BEGIN")
            try:
                for a in anomalies:
                    row = (a.sid, a.metric, json.dumps(a.labels, sort_keys=True), a.start_ms,
                           a.end_ms, a.kind, a.score, a.confidence, a.expected, a.lower,
                           a.upper, a.actual, json.dumps(a.detectors), a.points, a.state)
                    if a.id is None:
                        cur = self._con.execute(
                            f"INSERT INTO anomalies ({', '.join(_COLUMNS[1:])}) "
                            f"VALUES ({', '.join('?' * (len(_COLUMNS) - 1))})", row)
                        a.id = cur.lastrowid
                    else:
                        sets = ", ".join(f"{c} = ?" for c in _COLUMNS[1:])
                        self._con.execute(f"UPDATE anomalies SET {sets} WHERE id = ?",
                                          (*row, a.id))
                self._con.execute("COMMIT")
            except BaseException:
                rollback(self._con)
                for a in fresh:  # their rows are gone: insert them again next time
                    a.id = None
                raise

    def query(self, *, metric: str | None = None, kinds: list[str] | None = None,
              min_score: float = 0.0, start_ms: int | None = None, end_ms: int | None = None,
              state: str | None = None, limit: int = 100) -> list[Anomaly]:
        """Newest first: anomalies overlapping [start_ms, end_ms] that match the filters."""
        where = ["score >= ?"]
        args: list[Any] = [min_score]
        if metric is not None:
            where.append("metric = ?")
            args.append(metric)
        if kinds:
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            args.extend(kinds)
        if start_ms is not None:
            where.append("end_ms >= ?")
            args.append(start_ms)
        if end_ms is not None:
            where.append("start_ms <= ?")
            args.append(end_ms)
        if state is not None:
            where.append("state = ?")
            args.append(state)
        sql = (f"SELECT {', '.join(_COLUMNS)} FROM anomalies WHERE {' AND '.join(where)} "
               "ORDER BY start_ms DESC, id DESC LIMIT ?")
        with self._lock:
            rows = self._con.execute(sql, [*args, limit]).fetchall()
        return [_anomaly(row) for row in rows]

    def open_ones(self) -> list[Anomaly]:
        """Anomalies still open (to carry on with them after a restart)."""
        return self.query(state="open", limit=1_000_000)

    def close(self) -> None:
        with self._lock:
            self._con.close()


def _anomaly(row: tuple[Any, ...]) -> Anomaly:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["labels"] = json.loads(values["labels"])
    values["detectors"] = json.loads(values["detectors"])
    anomaly_id = values.pop("id")
    return Anomaly(**values, id=anomaly_id)
