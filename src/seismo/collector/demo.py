"""Sample workloads for `seismo serve --demo`: a web service, a queue, an energy site and a
factory of eight machines (`factory.py`, for the energy statistics).

Every second a thread ingests plausible values (with the odd anomaly) through the same
validation and ingest path as `POST /api/v1/ingest`, and now and then a deploy event.
"""

from __future__ import annotations

import logging
import math
import random
import time

from seismo.collector.factory import Factory
from seismo.collector.periodic import Periodic
from seismo.collector.sessions import SessionWorkload
from seismo.engine import Engine, now_ms
from seismo.ingest.schema import EventIn, SeriesIn

log = logging.getLogger(__name__)

SERVICES = {"checkout": 40.0, "search": 120.0, "auth": 25.0}  # requests per second
STATUSES = {"200": 0.95, "404": 0.03, "500": 0.02}
METERS = {"solar-1": "pv", "grid": "import", "hvac": "load"}
DEPLOY_EVERY_S = 180.0


class DemoWorkload(Periodic):
    """Feeds sample series and events into the engine once a second."""

    name = "demo workload"

    def __init__(self, engine: Engine, *, seed: int | None = None, interval_s: float = 1.0) -> None:
        super().__init__(interval_s)
        self.engine = engine
        self.rng = random.Random(seed)
        self._requests = dict.fromkeys(((s, c) for s in SERVICES for c in STATUSES), 0.0)
        self._queue_depth = 5.0
        self._next_deploy = time.monotonic() + 30.0
        self._version = 1
        self.factory = Factory(self.rng, now_ms())
        self.sessions = SessionWorkload(self.rng)  # session events (docs/sessions.md)

    def step(self) -> None:
        self.tick()

    def tick(self) -> None:
        """Ingest one second of every workload; add a deploy event when one is due."""
        at = now_ms()
        series = self.web(at) + self.queue() + self.energy(at) + self.factory.sample(at)
        session_events, session_series = self.sessions.tick(at)
        series += session_series
        prepared = self.engine.validator.columnar(series, at)
        self.engine.ingestor.submit_blocking(prepared.batch)
        if session_events:
            self.engine.add_events(session_events)
        if time.monotonic() >= self._next_deploy:
            self._next_deploy = time.monotonic() + DEPLOY_EVERY_S * self.rng.uniform(0.5, 1.5)
            self._version += 1
            service = self.rng.choice(list(SERVICES))
            self.engine.add_events([EventIn(
                type="deploy", source="demo-ci", severity="info",
                message=f"deployed {service} 1.{self._version}.0",
                attributes={"service": service, "version": f"1.{self._version}.0"},
            )])

    def web(self, at_ms: int) -> list[SeriesIn]:
        """Request counters per service and status, and a p95 latency gauge with spikes."""
        out = []
        minute = at_ms / 60_000
        for service, rps in SERVICES.items():
            load = rps * (1 + 0.3 * math.sin(minute / 10)) * self.rng.uniform(0.9, 1.1)
            error_burst = self.rng.random() < 0.005
            for status, share in STATUSES.items():
                if status == "500" and error_burst:
                    share = 0.4
                self._requests[(service, status)] += max(self.rng.gauss(load * share, 1), 0)
                out.append(SeriesIn(
                    metric="http_requests_total", values=[round(self._requests[(service, status)])],
                    labels={"service": service, "status": status},
                ))
            p95 = 0.08 + 0.04 * load / rps + self.rng.gauss(0, 0.005)
            if self.rng.random() < 0.01:
                p95 *= self.rng.uniform(4, 10)
            out.append(SeriesIn(metric="http_request_duration_seconds", values=[max(p95, 0.01)],
                                labels={"service": service, "quantile": "0.95"}))
        return out

    def queue(self) -> list[SeriesIn]:
        """A work queue that drains toward a few items, with an occasional backlog."""
        self._queue_depth += self.rng.gauss(0, 2) - 0.1 * (self._queue_depth - 5)
        if self.rng.random() < 0.005:
            self._queue_depth += self.rng.uniform(200, 500)
        self._queue_depth = max(self._queue_depth, 0.0)
        return [SeriesIn(metric="queue_depth", values=[round(self._queue_depth)],
                         labels={"queue": "emails"})]

    def energy(self, at_ms: int) -> list[SeriesIn]:
        """Power per meter with a daily shape: solar by day, HVAC in the afternoon."""
        hour = (at_ms / 3_600_000) % 24
        sun = max(math.sin(math.pi * (hour - 6) / 12), 0.0)
        hvac = 3000 + 2000 * max(math.sin(math.pi * (hour - 10) / 12), 0.0)
        solar = 8000 * sun * self.rng.uniform(0.85, 1.0)
        if self.rng.random() < 0.003:
            hvac *= 2.5
        watts = {"solar-1": solar, "hvac": hvac + self.rng.gauss(0, 100),
                 "grid": max(hvac + 1500 - solar, 0.0) + self.rng.gauss(0, 50)}
        return [SeriesIn(metric="power_watts", values=[round(watts[meter], 1)],
                         labels={"site": "plant-a", "meter": meter, "kind": kind})
                for meter, kind in METERS.items()]
