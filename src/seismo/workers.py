"""Background workers that feed the engine: the host collector and the demo workloads."""

from __future__ import annotations

from seismo.engine import Engine


def attach_workers(engine: Engine) -> None:
    """Add the workers the settings ask for to the engine (started with it)."""
    if engine.settings.collector:
        from seismo.collector.host import HostCollector

        engine.background.append(HostCollector(engine))
    if engine.settings.demo:
        from seismo.collector.demo import DemoWorkload

        engine.background.append(DemoWorkload(engine))
