"""The model registry: models, their versions, task and metadata, in the SQLite state db.

A model has one task (`classification` or `regression`) shared by all its versions, so
versions can be compared; each version has its own metadata (a JSON object: owner, training
data, `classes`, `positive_class`, ...). Registering a version again is not an error: it
returns the stored one (and replaces its metadata when new metadata is given).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seismo.errors import InvalidInput, NotFound
from seismo.store.events import open_state_db, rollback

TASKS = ("classification", "regression")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
MAX_METADATA_BYTES = 64 * 1024


@dataclass
class Version:
    model: str
    version: str
    metadata: dict[str, Any]
    created_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "metadata": self.metadata,
                "created_ms": self.created_ms}


@dataclass
class Model:
    name: str
    task: str
    created_ms: int
    versions: dict[str, Version] = field(default_factory=dict)  # in registration order

    def newest(self) -> Version | None:
        return None if not self.versions else list(self.versions.values())[-1]


def check_name(value: Any, what: str) -> str:
    """A model or version name: 1–128 of letters, digits and `_ . : -`."""
    if not isinstance(value, str) or not NAME.match(value):
        raise InvalidInput(f"{what} must be 1-128 characters of letters, digits, '_', '.', "
                           "':' or '-', starting with a letter or digit", field=what)
    return value


def check_registration(body: Any) -> tuple[str, str, str, dict[str, Any] | None]:
    """`{name, version, task, metadata?}` → its parts, or InvalidInput naming the field."""
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object", field="body")
    unknown = sorted(set(body) - {"name", "version", "task", "metadata"})
    if unknown:
        raise InvalidInput(f"unknown key {unknown[0]!r}; a model has name, version, task, "
                           "metadata", field=unknown[0])
    name = check_name(body.get("name"), "name")
    version = check_name(body.get("version"), "version")
    task = body.get("task")
    if task not in TASKS:
        raise InvalidInput(f"task must be one of {', '.join(TASKS)}", field="task")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InvalidInput("metadata must be an object", field="metadata")
        if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
            raise InvalidInput(f"metadata is over {MAX_METADATA_BYTES} bytes", field="metadata")
        classes = metadata.get("classes")
        if classes is not None and (not isinstance(classes, list) or len(classes) < 2):
            raise InvalidInput("classes must be a list of at least two labels",
                               field="metadata.classes")
    return name, version, str(task), metadata


class Registry:
    """Models and versions, durable before `register` returns; read from memory."""

    def __init__(self, path: Path, *, max_models: int = 1000, max_versions: int = 100) -> None:
        self._con = open_state_db(path)
        self._lock = threading.Lock()
        self.max_models = max_models
        self.max_versions = max_versions
        self._con.execute("""CREATE TABLE IF NOT EXISTS models (
            name TEXT PRIMARY KEY, task TEXT NOT NULL, created_ms INTEGER NOT NULL)""")
        self._con.execute("""CREATE TABLE IF NOT EXISTS model_versions (
            model TEXT NOT NULL, version TEXT NOT NULL, metadata TEXT NOT NULL,
            created_ms INTEGER NOT NULL, PRIMARY KEY (model, version))""")
        self.models: dict[str, Model] = {}
        for name, task, created in self._con.execute(
                "SELECT name, task, created_ms FROM models ORDER BY created_ms, name"):
            self.models[name] = Model(name, task, created)
        for model, version, metadata, created in self._con.execute(
                "SELECT model, version, metadata, created_ms FROM model_versions "
                "ORDER BY created_ms, rowid"):
            if model in self.models:
                self.models[model].versions[version] = Version(
                    model, version, json.loads(metadata), created)

    def register(self, name: str, version: str, task: str, metadata: dict[str, Any] | None,
                 at_ms: int) -> tuple[Version, bool]:
        """Add a model version (the model too, if new); return it and whether it is new."""
        with self._lock:
            model = self.models.get(name)
            if model is not None and model.task != task:
                raise InvalidInput(f"model {name!r} is a {model.task} model; its versions "
                                   "share its task", field="task")
            if model is None and len(self.models) >= self.max_models:
                raise InvalidInput(f"{self.max_models} models are registered "
                                   "(models.max_models)", field="name")
            existing = None if model is None else model.versions.get(version)
            if model is not None and existing is None and \
                    len(model.versions) >= self.max_versions:
                raise InvalidInput(f"model {name!r} has {self.max_versions} versions "
                                   "(models.max_versions)", field="version")
            if existing is not None and (metadata is None or metadata == existing.metadata):
                return existing, False
            row = Version(name, version, metadata or {},
                          existing.created_ms if existing else at_ms)
            self._con.execute("BEGIN")
            try:
                if model is None:
                    self._con.execute("INSERT INTO models VALUES (?, ?, ?)", (name, task, at_ms))
                self._con.execute(
                    "INSERT OR REPLACE INTO model_versions VALUES (?, ?, ?, ?)",
                    (name, version, json.dumps(row.metadata), row.created_ms))
                self._con.execute("COMMIT")
            except BaseException:
                rollback(self._con)
                raise
            if model is None:
                model = self.models[name] = Model(name, task, at_ms)
            model.versions[version] = row
            return row, existing is None

    def get(self, name: str) -> Model:
        model = self.models.get(name)
        if model is None:
            raise NotFound(f"no model {name!r}; register it with POST /api/v1/models",
                           field="name")
        return model

    def version(self, name: str, version: str | None, *, field: str = "version") -> Version:
        """A version of a model; None means the newest registered."""
        model = self.get(name)
        if version is None:
            newest = model.newest()
            if newest is None:
                raise NotFound(f"model {name!r} has no versions", field=field)
            return newest
        found = model.versions.get(version)
        if found is None:
            raise InvalidInput(f"model {name!r} has no version {version!r} (it has "
                               f"{', '.join(model.versions) or 'none'}); register it with "
                               "POST /api/v1/models", field=field)
        return found

    def close(self) -> None:
        with self._lock:
            self._con.close()
