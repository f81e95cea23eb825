"""Definitions made over the API (rules, channels, routes), kept durably in the state db.

Each is a named JSON document of a kind; what `seismo.yaml` defines is not stored here, it
is read from the file at every start.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from seismo.store.events import open_state_db


class Definitions:
    """Put, list and delete JSON documents by (kind, name); every write is durable."""

    def __init__(self, path: Path) -> None:
        self._con = open_state_db(path)
        self._lock = threading.Lock()
        self._con.execute(
            """CREATE TABLE IF NOT EXISTS definitions (
                kind TEXT NOT NULL, name TEXT NOT NULL, position INTEGER NOT NULL,
                doc TEXT NOT NULL, PRIMARY KEY (kind, name))""")

    def put(self, kind: str, name: str, doc: Any) -> None:
        with self._lock:
            row = self._con.execute("SELECT position FROM definitions WHERE kind=? AND name=?",
                                    (kind, name)).fetchone()
            position = row[0] if row else self._con.execute(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM definitions WHERE kind=?",
                (kind,)).fetchone()[0]
            self._con.execute("INSERT OR REPLACE INTO definitions VALUES (?, ?, ?, ?)",
                              (kind, name, position, json.dumps(doc)))

    def replace_all(self, kind: str, docs: list[tuple[str, Any]]) -> None:
        """Make `docs` (name, doc), in this order, the only documents of `kind`."""
        with self._lock:
            self._con.execute("BEGIN")
            try:
                self._con.execute("DELETE FROM definitions WHERE kind=?", (kind,))
                self._con.executemany(
                    "INSERT INTO definitions VALUES (?, ?, ?, ?)",
                    [(kind, name, i, json.dumps(doc)) for i, (name, doc) in enumerate(docs)])
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise

    def delete(self, kind: str, name: str) -> bool:
        with self._lock:
            cur = self._con.execute("DELETE FROM definitions WHERE kind=? AND name=?",
                                    (kind, name))
            return cur.rowcount > 0

    def all(self, kind: str) -> list[Any]:
        with self._lock:
            rows = self._con.execute(
                "SELECT doc FROM definitions WHERE kind=? ORDER BY position", (kind,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._con.close()
