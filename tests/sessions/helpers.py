"""A SessionService over a real event log with a clock the test moves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seismo.config import Sessions
from seismo.sessions import SessionService
from seismo.store.events import Event, EventLog


class Clock:
    def __init__(self, ms: int = 1_700_000_000_000) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


class Harness:
    """Events go through the event log, then to the service, as `Engine.add_events` does."""

    def __init__(self, path: Path, clock: Clock, **settings: Any) -> None:
        self.path = path
        self.clock = clock
        self.settings = Sessions(**settings)
        self.log = EventLog(path)
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.service = self._service()

    def _service(self) -> SessionService:
        service = SessionService(self.settings, self.path, self.log, clock=self.clock,
                                 publish=lambda topic, doc: self.published.append((topic, doc)))
        service.load()
        return service

    def add(self, type: str, session: str | None, at_ms: int, severity: str = "info",
            **attributes: Any) -> None:
        attrs = dict(attributes)
        if session is not None:
            attrs["session"] = session
        events = [Event(type, "test", severity, "", attrs, at_ms)]
        self.service.check(events)
        self.service.observe(self.log.append(events))

    def add_many(self, events: list[Event]) -> None:
        self.service.check(events)
        self.service.observe(self.log.append(events))

    def restart(self) -> None:
        self.service.close()
        self.service = self._service()

    def close(self) -> None:
        self.service.close()
        self.log.close()
