"""Definitions made over the API (rules, channels, routes), kept durably in the state db.

Each is a named JSON document of a kind; what `seismo.yaml` defines is not stored here, it
is read from the file at every start.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seismo.errors import InvalidInput, NotFound
from seismo.store.events import open_state_db, rollback


def check_put(noun: str, route: str, field: str, new_name: str, path_name: str | None,
              sources: Mapping[str, str], *, article: str = "a") -> bool:
    """Check a create (`path_name` None) or a replace of a named definition made over the
    API, against every definition of that kind and where it comes from (`sources`: name →
    `api` or a file); return whether one of that name already exists.

    >>> check_put("rule", "rules", "rule", "HighCPU", None, {"Disk": "api"})
    False
    """
    if path_name is not None and new_name != path_name:
        raise InvalidInput(f"name {new_name!r} differs from the path's {path_name!r}",
                           field=f"{field}.name")
    source = sources.get(new_name)
    if source is not None and source != "api":
        raise InvalidInput(f"{noun} {new_name!r} is defined in {source}; change it there",
                           field=f"{field}.name")
    if path_name is None and source is not None:
        raise InvalidInput(f"{article} {noun} named {new_name!r} exists; PUT /api/v1/{route}/"
                           f"{new_name} replaces it", field=f"{field}.name")
    if path_name is not None and source is None:
        raise NotFound(f"no {noun} {path_name!r}", field="name")
    return source is not None


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
                rollback(self._con)
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
