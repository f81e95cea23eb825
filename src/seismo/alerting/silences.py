"""Silences: label matchers that mute matching alerts for a while, kept in the state db.

`SilenceStore` validates a silence as Alertmanager does, stores it in the `silences` table of
the shared SQLite file and answers "which active silences match these labels" from memory
(reloaded when another process writes the table). The alert manager asks it at each flush.
"""

from __future__ import annotations

import builtins
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from seismo.config import parse_duration_s
from seismo.errors import InvalidInput, NotFound
from seismo.store.events import open_state_db

LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
MAX_COMMENT_CHARS = 4096
MAX_BY_CHARS = 256
MAX_MATCHERS = 64
RETENTION_MS = 5 * 86_400_000
"""Expired silences are deleted this long after they end (Alertmanager keeps 120 h)."""
KEYS = ("matchers", "starts_at", "ends_at", "duration", "comment")
_COLUMNS = "id, matchers, starts_at_ms, ends_at_ms, created_by, comment"


class SilenceState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Matcher:
    """`name` = / != / =~ / !~ `value` (regexes match the whole value; missing label = "")."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False,
                                             compare=False)

    def __post_init__(self) -> None:
        if self.is_regex:
            object.__setattr__(self, "_pattern", re.compile(self.value))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.matches_value(labels.get(self.name, ""))

    def matches_value(self, value: str) -> bool:
        if self._pattern is not None:
            hit = self._pattern.fullmatch(value) is not None
        else:
            hit = value == self.value
        return hit == self.is_equal

    def to_dict(self) -> dict[str, Any]:
        """Alertmanager's API form."""
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex,
                "isEqual": self.is_equal}

    def __str__(self) -> str:
        op = ("=~" if self.is_regex else "=") if self.is_equal else ("!~" if self.is_regex
                                                                      else "!=")
        return f"{self.name}{op}{json.dumps(self.value, ensure_ascii=False)}"


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at_ms: int
    ends_at_ms: int
    created_by: str
    comment: str = ""

    def state(self, now_ms: int) -> SilenceState:
        if now_ms < self.starts_at_ms:
            return SilenceState.PENDING
        if now_ms < self.ends_at_ms:
            return SilenceState.ACTIVE
        return SilenceState.EXPIRED

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher matches (whatever the silence's state)."""
        return all(m.matches(labels) for m in self.matchers)

    def to_dict(self, now_ms: int | None = None) -> dict[str, Any]:
        """The API form; `state` as of `now_ms` (default: the wall clock)."""
        if now_ms is None:
            now_ms = time.time_ns() // 1_000_000
        return {"id": self.id, "matchers": [m.to_dict() for m in self.matchers],
                "starts_at_ms": self.starts_at_ms, "ends_at_ms": self.ends_at_ms,
                "created_by": self.created_by, "comment": self.comment,
                "state": str(self.state(now_ms))}


def parse_matchers(doc: Any, field: str = "matchers") -> tuple[Matcher, ...]:
    """Matchers from `{alertname: "HighCPU"}` or `[{name, value, isRegex, isEqual}]`."""
    if isinstance(doc, Mapping):
        items: list[Any] = [{"name": k, "value": v} for k, v in doc.items()]
        where = [f"{field}.{k}" for k in doc]
    elif isinstance(doc, list):
        items = doc
        where = [f"{field}[{i}]" for i in range(len(doc))]
    else:
        raise InvalidInput('matchers is required: {alertname: "HighCPU"} or a list of '
                           "{name, value, isRegex, isEqual}", field=field)
    if not items:
        raise InvalidInput("a silence needs at least one matcher", field=field)
    if len(items) > MAX_MATCHERS:
        raise InvalidInput(f"at most {MAX_MATCHERS} matchers", field=field)
    matchers = tuple(_parse_matcher(item, at) for item, at in zip(items, where, strict=True))
    if all(m.matches_value("") for m in matchers):
        raise InvalidInput("at least one matcher must not match the empty string, or the "
                           "silence would mute every alert", field=field)
    return matchers


def _parse_matcher(doc: Any, where: str) -> Matcher:
    if not isinstance(doc, Mapping):
        raise InvalidInput("a matcher is {name, value, isRegex, isEqual}", field=where)
    aliases = {"is_regex": "isRegex", "is_equal": "isEqual"}
    doc = {aliases.get(k, k): v for k, v in doc.items()}
    for key in doc:
        if key not in ("name", "value", "isRegex", "isEqual"):
            raise InvalidInput(f"unknown key {key!r}; a matcher has name, value, isRegex, "
                               "isEqual", field=f"{where}.{key}")
    name, value = doc.get("name"), doc.get("value")
    if not isinstance(name, str) or not LABEL_NAME.match(name):
        raise InvalidInput(f"{name!r} is not a label name (letters, digits and _, not "
                           "starting with a digit)", field=f"{where}.name")
    if not isinstance(value, str):
        raise InvalidInput("value must be a string", field=f"{where}.value")
    is_regex, is_equal = doc.get("isRegex", False), doc.get("isEqual", True)
    if not isinstance(is_regex, bool):
        raise InvalidInput("isRegex must be true or false", field=f"{where}.isRegex")
    if not isinstance(is_equal, bool):
        raise InvalidInput("isEqual must be true or false", field=f"{where}.isEqual")
    if is_regex:
        try:
            re.compile(value)
        except re.error as exc:
            raise InvalidInput(f"bad regular expression: {exc}", field=f"{where}.value") from None
    return Matcher(name, value, is_regex, is_equal)


def parse_time_ms(value: Any, field: str, now_ms: int) -> int:
    """A time: ms since the epoch, RFC 3339 (`2026-01-02T03:04:05Z`) or `now+2h` / `now-5m`."""
    if isinstance(value, bool):
        raise InvalidInput("a time is ms since the epoch or RFC 3339", field=field)
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip().startswith("now"):
        rest = value.strip()[3:].strip()
        if not rest:
            return now_ms
        try:
            offset_ms = round(parse_duration_s(rest[1:]) * 1000)
        except ValueError:
            offset_ms = None
        if rest[0] in "+-" and offset_ms is not None:
            return now_ms + offset_ms if rest[0] == "+" else now_ms - offset_ms
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return round(moment.timestamp() * 1000)
    raise InvalidInput("a time is ms since the epoch, RFC 3339 with a zone (such as "
                       "2026-01-02T03:04:05Z) or now+<duration> (now+2h)", field=field)


class SilenceStore:
    """Add, expire and list silences in SQLite; match labels against them from memory."""

    def __init__(self, db_path: Path, clock: Callable[[], int], *,
                 retention_ms: int = RETENTION_MS) -> None:
        self.clock = clock
        self.retention_ms = retention_ms
        self._lock = threading.Lock()
        self._con = open_state_db(db_path)
        self._con.execute(
            """CREATE TABLE IF NOT EXISTS silences (
                id TEXT PRIMARY KEY, matchers TEXT NOT NULL, starts_at_ms INTEGER NOT NULL,
                ends_at_ms INTEGER NOT NULL, created_by TEXT NOT NULL, comment TEXT NOT NULL)""")
        self._con.execute("CREATE INDEX IF NOT EXISTS silences_ends ON silences (ends_at_ms)")
        self._silences: dict[str, Silence] = {}
        self._version: int | None = None
        with self._lock:
            self._reload()

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def add(self, silence_doc: Mapping[str, Any], created_by: str) -> Silence:
        """Validate and store a new silence; InvalidInput names the bad field."""
        if not isinstance(silence_doc, Mapping):
            raise InvalidInput("a silence is an object {matchers, ends_at, comment}",
                               field="silence")
        for key in silence_doc:
            if key not in KEYS:
                raise InvalidInput(f"unknown key {key!r}; a silence has {', '.join(KEYS)}",
                                   field=key)
        if not isinstance(created_by, str) or not created_by.strip():
            raise InvalidInput("say who creates the silence: created_by must not be empty",
                               field="created_by")
        if len(created_by) > MAX_BY_CHARS:
            raise InvalidInput(f"created_by is longer than {MAX_BY_CHARS} characters",
                               field="created_by")
        matchers = parse_matchers(silence_doc.get("matchers"))
        comment = silence_doc.get("comment", "")
        if not isinstance(comment, str):
            raise InvalidInput("comment must be a string", field="comment")
        if len(comment) > MAX_COMMENT_CHARS:
            raise InvalidInput(f"comment is longer than {MAX_COMMENT_CHARS} characters",
                               field="comment")
        now = int(self.clock())
        starts = now
        if silence_doc.get("starts_at") is not None:
            starts = max(now, parse_time_ms(silence_doc["starts_at"], "starts_at", now))
        ends = self._ends_at(silence_doc, starts, now)
        silence = Silence(uuid.uuid4().hex, matchers, starts, ends, created_by, comment)
        with self._lock:
            self._refresh()
            self._write(silence)
            self._gc(now)
        return silence

    def expire(self, silence_id: str) -> Silence:
        """End a silence now (a pending one never starts); expiring twice changes nothing."""
        now = int(self.clock())
        with self._lock:
            self._refresh()
            silence = self._silences.get(silence_id)
            if silence is None:
                raise NotFound(f"no silence with id {silence_id!r}", field="id")
            state = silence.state(now)
            if state is SilenceState.EXPIRED:
                return silence
            starts = now if state is SilenceState.PENDING else silence.starts_at_ms
            silence = Silence(silence.id, silence.matchers, starts, now, silence.created_by,
                              silence.comment)
            self._write(silence)
        return silence

    def get(self, silence_id: str) -> Silence:
        with self._lock:
            self._refresh()
            silence = self._silences.get(silence_id)
        if silence is None:
            raise NotFound(f"no silence with id {silence_id!r}", field="id")
        return silence

    def list(self, state: str | SilenceState | None = None) -> builtins.list[Silence]:
        """Silences, newest start first; `state` keeps pending, active or expired ones."""
        if state is not None and state not in tuple(SilenceState):
            raise InvalidInput("state must be pending, active or expired", field="state")
        now = int(self.clock())
        with self._lock:
            self._refresh()
            silences = builtins.list(self._silences.values())
        if state is not None:
            silences = [s for s in silences if s.state(now) == state]
        return sorted(silences, key=lambda s: (-s.starts_at_ms, s.id))

    def silencing(self, labels: Mapping[str, str]) -> builtins.list[str]:
        """Ids of the active silences that match these labels."""
        now = int(self.clock())
        with self._lock:
            self._refresh()
            silences = builtins.list(self._silences.values())
        return sorted(s.id for s in silences
                      if s.starts_at_ms <= now < s.ends_at_ms and s.matches(labels))

    # -- private ----------------------------------------------------------------------------

    def _ends_at(self, doc: Mapping[str, Any], starts: int, now: int) -> int:
        if doc.get("ends_at") is not None and doc.get("duration") is not None:
            raise InvalidInput("give ends_at or duration, not both", field="duration")
        if doc.get("duration") is not None:
            try:
                seconds = parse_duration_s(doc["duration"])
            except (ValueError, TypeError) as exc:
                raise InvalidInput(f"not a duration like 30m or 2h: {exc}",
                                   field="duration") from None
            ends = starts + round(seconds * 1000)
            where = "duration"
        elif doc.get("ends_at") is not None:
            ends = parse_time_ms(doc["ends_at"], "ends_at", now)
            where = "ends_at"
        else:
            raise InvalidInput("ends_at (or duration) is required: a silence must end",
                               field="ends_at")
        if ends <= starts:
            raise InvalidInput("a silence must end after it starts", field=where)
        if ends <= now:
            raise InvalidInput("ends_at is in the past", field=where)
        return ends

    def _write(self, silence: Silence) -> None:
        matchers = json.dumps([m.to_dict() for m in silence.matchers])
        self._con.execute(
            f"INSERT OR REPLACE INTO silences ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (silence.id, matchers, silence.starts_at_ms, silence.ends_at_ms,
             silence.created_by, silence.comment))
        self._silences[silence.id] = silence
        self._version = self._data_version()

    def _gc(self, now: int) -> None:
        cutoff = now - self.retention_ms
        self._con.execute("DELETE FROM silences WHERE ends_at_ms < ?", (cutoff,))
        for silence in builtins.list(self._silences.values()):
            if silence.ends_at_ms < cutoff:
                del self._silences[silence.id]
        self._version = self._data_version()

    def _data_version(self) -> int:
        return int(self._con.execute("PRAGMA data_version").fetchone()[0])

    def _refresh(self) -> None:
        """Reload when another connection (the CLI, another server) changed the file."""
        if self._data_version() != self._version:
            self._reload()

    def _reload(self) -> None:
        rows = self._con.execute(f"SELECT {_COLUMNS} FROM silences").fetchall()
        silences = {}
        for sid, matchers, starts, ends, by, comment in rows:
            parsed = tuple(Matcher(m["name"], m["value"], m["isRegex"], m["isEqual"])
                           for m in json.loads(matchers))
            silences[sid] = Silence(sid, parsed, starts, ends, by, comment)
        self._silences = silences
        self._version = self._data_version()
