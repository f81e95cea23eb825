"""A session's lifecycle from its events: plain objects, no I/O, no clock of their own.

An event with `attributes.session` belongs to that session; `session.start` and
`session.end` (with an optional `status`) open and close it, in whatever order they
arrive. `SessionTable` applies events and says which sessions changed; storing them and
telling anyone is the service's job (`service.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seismo.errors import InvalidInput
from seismo.store.events import Event

START_TYPE = "session.start"
END_TYPE = "session.end"
STATES = ("active", "finished", "stale")
STATUSES = ("success", "failure", "cancelled")
ERROR_SEVERITIES = frozenset({"critical", "high"})
MAX_ID = 256
RESERVED = ("session", "status")


def session_id_of(event: Event) -> str | None:
    """The session an event belongs to, or None."""
    value = event.attributes.get("session")
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def check_event(i: int, event: Event) -> None:
    """InvalidInput naming the field when an event's session or status is malformed."""
    value = event.attributes.get("session")
    is_session_type = event.type in (START_TYPE, END_TYPE)
    if value is not None or is_session_type:
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise InvalidInput("session must be a non-empty string (the session id)",
                               field=f"events[{i}].attributes.session")
        if len(str(value)) > MAX_ID:
            raise InvalidInput(f"session is longer than {MAX_ID} characters",
                               field=f"events[{i}].attributes.session")
    status = event.attributes.get("status")
    if event.type == END_TYPE and status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}",
                           field=f"events[{i}].attributes.status")


@dataclass(slots=True)
class Session:
    """What is known about one session; times in ms since the epoch."""

    id: str
    started_ms: int  # the start event's time; until it arrives, the first event's
    last_ms: int  # the newest event's time: idleness is measured from it
    kind: str = ""
    user: str = ""
    state: str = "active"
    status: str | None = None
    ended_ms: int | None = None
    start_seen: bool = False
    end_seen: bool = False
    events: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    early: dict[str, int] = field(default_factory=dict)  # event counts in the early window

    def duration_ms(self, now_ms: int) -> int:
        """Finished: end − start; stale: last event − start; active: elapsed so far."""
        if self.state == "finished" and self.ended_ms is not None:
            end = self.ended_ms
        elif self.state == "stale":
            end = self.last_ms
        else:
            end = max(now_ms, self.last_ms)
        return max(0, end - self.started_ms)

    def to_dict(self, now_ms: int) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "status": self.status, "kind": self.kind,
                "user": self.user, "started_ms": self.started_ms, "ended_ms": self.ended_ms,
                "last_event_ms": self.last_ms,
                "duration_s": round(self.duration_ms(now_ms) / 1000, 3),
                "start_seen": self.start_seen, "end_seen": self.end_seen,
                "events": self.events, "attributes": self.attributes, "early": self.early}


def _describe(session: Session, event: Event) -> None:
    attrs = {k: v for k, v in event.attributes.items() if k not in RESERVED}
    session.attributes = {**attrs, **{k: v for k, v in session.attributes.items()
                                      if k not in attrs}}
    for name in ("kind", "user"):
        value = attrs.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
            setattr(session, name, str(value))


def apply(session: Session | None, sid: str, event: Event, early_ms: int) -> Session:
    """The session after one of its events (a new one when `session` is None)."""
    ts = event.timestamp
    if session is None:
        session = Session(sid, started_ms=ts, last_ms=ts)
    elif (event.type == START_TYPE and session.state == "finished" and session.start_seen
          and session.ended_ms is not None and ts > session.ended_ms):
        session = Session(sid, started_ms=ts, last_ms=ts)  # the same id runs again
    session.events += 1
    session.last_ms = max(session.last_ms, ts)
    if event.type == START_TYPE:
        session.started_ms = ts if not session.start_seen else min(session.started_ms, ts)
        session.start_seen = True
        _describe(session, event)
        if session.ended_ms is not None:
            session.ended_ms = max(session.ended_ms, session.started_ms)
    elif event.type == END_TYPE:
        session.end_seen = True
        session.ended_ms = max(ts, session.started_ms) if session.start_seen else ts
        if not session.start_seen:  # an end before its start: the start may still come
            session.started_ms = min(session.started_ms, ts)
        status = event.attributes.get("status")
        session.status = status if status in STATUSES else None
        session.state = "finished"
        if not session.kind:
            _describe(session, event)
    else:
        if not session.start_seen:
            session.started_ms = min(session.started_ms, ts)
        if ts - session.started_ms <= early_ms:
            session.early[event.type] = session.early.get(event.type, 0) + 1
            if event.severity in ERROR_SEVERITIES:
                session.early["__errors__"] = session.early.get("__errors__", 0) + 1
    if event.type != END_TYPE and session.state == "stale":  # it spoke again
        session.state = "active"
    return session


class SessionTable:
    """Sessions that are not finished (active or stale), by id; finished ones leave it."""

    def __init__(self, early_ms: int) -> None:
        self.early_ms = early_ms
        self.open: dict[str, Session] = {}

    def stale_ones(self, now_ms: int, idle_ms: int) -> list[Session]:
        """Active sessions with no event for `idle_ms`: marked stale and returned."""
        found = []
        for session in self.open.values():
            if session.state == "active" and now_ms - session.last_ms > idle_ms:
                session.state = "stale"
                found.append(session)
        return found
