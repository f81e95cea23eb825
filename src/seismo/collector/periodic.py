"""A worker that runs one step every interval on a thread of its own, until stopped."""

from __future__ import annotations

import logging
import threading

from seismo.errors import SeismoError

log = logging.getLogger(__name__)


class Periodic:
    """Subclasses set `name` and implement `step()`; a failed step is logged, not fatal."""

    name = "periodic"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> object:
        raise NotImplementedError

    @property
    def is_running(self) -> bool:
        return (self._thread is not None and self._thread.is_alive()
                and not self._stop.is_set())

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"seismo-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step()
            except SeismoError as exc:
                log.warning("%s: samples not stored: %s", self.name, exc.message)
            except Exception:
                log.exception("%s failed; will retry", self.name)
