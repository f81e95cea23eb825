"""Demo sessions for `seismo serve --demo`: chats, training runs, ETL jobs and evaluations.

Driven by `DemoWorkload.tick` once a second: sessions start at random, emit progress
events (warnings and errors make failure likelier), report a `session_progress` gauge
labelled with their session, and end with success, failure or cancelled; a few run far
too long and a few are abandoned (no end: they go stale). The first tick also backfills
an hour of finished sessions, so per-kind statistics and predictions show at once.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from seismo.ingest.schema import EventIn, SeriesIn

# kind: (median duration s, base success logit, progress event type, new per second)
KINDS = {"chat": (45.0, 2.5, "message", 0.08), "train": (240.0, 1.0, "epoch", 0.02),
         "etl": (90.0, 2.0, "batch", 0.04), "eval": (60.0, 1.5, "case", 0.03)}
USERS = {"ana": 0.4, "bo": 0.0, "cy": -0.6, "dee": 0.2}
MODELS = {"small": 0.3, "large": -0.3}
BACKFILL = 120
SLOW_SHARE = 0.06  # sessions that take 3-5 times their usual time
ABANDONED_SHARE = 0.02  # sessions that never send their end


@dataclass
class _Run:
    id: str
    kind: str
    started_ms: int
    duration_s: float
    logit: float
    abandoned: bool
    errors: int = 0
    progress: float = 0.0
    attrs: dict[str, str] = field(default_factory=dict)


class SessionWorkload:
    """Makes the events and series of a stream of sessions, a second at a time."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.prefix = f"{rng.randrange(16**6):06x}"
        self.count = 0
        self.running: dict[str, _Run] = {}
        self._backfilled = False

    def _new(self, kind: str, at_ms: int) -> _Run:
        median, base, _, _ = KINDS[kind]
        rng = self.rng
        user, model = rng.choice(list(USERS)), rng.choice(list(MODELS))
        duration = median * math.exp(rng.gauss(0, 0.4))
        if rng.random() < SLOW_SHARE:
            duration *= rng.uniform(3, 5)
        self.count += 1
        return _Run(f"{kind}-{self.prefix}-{self.count}", kind, at_ms, duration,
                    base + USERS[user] + MODELS[model], rng.random() < ABANDONED_SHARE,
                    attrs={"kind": kind, "user": user, "model": model})

    def _status(self, run: _Run) -> str:
        if self.rng.random() < 0.03:
            return "cancelled"
        p = 1 / (1 + math.exp(-(run.logit - 0.8 * run.errors)))
        return "success" if self.rng.random() < p else "failure"

    def _start(self, run: _Run, at_ms: int) -> EventIn:
        return EventIn(type="session.start", source="demo", timestamp=at_ms,
                       message=f"{run.kind} session started",
                       attributes={"session": run.id, **run.attrs})

    def _end(self, run: _Run, at_ms: int) -> EventIn:
        status = self._status(run)
        return EventIn(type="session.end", source="demo", timestamp=at_ms,
                       severity="info" if status == "success" else "medium",
                       message=f"{run.kind} session ended: {status}",
                       attributes={"session": run.id, "status": status})

    def backfill(self, at_ms: int) -> list[EventIn]:
        """An hour of finished sessions, so the statistics have a history to start from."""
        events = []
        for _ in range(BACKFILL):
            kind = self.rng.choices(list(KINDS), weights=[k[3] for k in KINDS.values()])[0]
            start = at_ms - int(self.rng.uniform(600, 3600) * 1000)
            run = self._new(kind, start)
            events.append(self._start(run, start))
            run.errors = sum(self.rng.random() < 0.15 for _ in range(3))
            for i in range(run.errors):
                events.append(self._error(run, start + 1000 * (i + 1)))
            events.append(self._end(run, start + int(run.duration_s * 1000)))
        return events

    def _error(self, run: _Run, at_ms: int) -> EventIn:
        return EventIn(type="tool_error", source="demo", severity="high", timestamp=at_ms,
                       message="a step failed and was retried",
                       attributes={"session": run.id})

    def tick(self, at_ms: int) -> tuple[list[EventIn], list[SeriesIn]]:
        """One second: new sessions, progress, ends; and the running ones' gauges."""
        events: list[EventIn] = []
        if not self._backfilled:
            self._backfilled = True
            events += self.backfill(at_ms)
            for kind in KINDS:  # a few running from the first second
                run = self._new(kind, at_ms)
                self.running[run.id] = run
                events.append(self._start(run, at_ms))
        for kind, (_, _, _, rate) in KINDS.items():
            if self.rng.random() < rate:
                run = self._new(kind, at_ms)
                self.running[run.id] = run
                events.append(self._start(run, at_ms))
        series: list[SeriesIn] = []
        for run in list(self.running.values()):
            elapsed = (at_ms - run.started_ms) / 1000
            if run.abandoned and elapsed > run.duration_s / 2:
                del self.running[run.id]  # goes quiet: stale after sessions.idle_timeout
                continue
            if elapsed >= run.duration_s:
                del self.running[run.id]
                events.append(self._end(run, at_ms))
                continue
            progress_event = KINDS[run.kind][2]
            if self.rng.random() < 0.1:
                events.append(EventIn(type=progress_event, source="demo", timestamp=at_ms,
                                      attributes={"session": run.id}))
            if elapsed < 60 and self.rng.random() < 0.01 * (1 + max(0.0, -run.logit)):
                run.errors += 1
                events.append(self._error(run, at_ms))
            run.progress = min(1.0, elapsed / run.duration_s)
            series.append(SeriesIn(metric="session_progress", values=[round(run.progress, 4)],
                                   labels={"session": run.id, "kind": run.kind}))
        return events, series
