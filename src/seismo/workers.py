"""Background workers that feed the engine: the host collector, the demo workloads,
scraping (`scrape_configs:`) and the MQTT subscriber (`mqtt:`)."""

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
    if engine.settings.scrape_configs:
        from seismo.ingest.scrape import Scraper
        from seismo.outbound import OutboundPolicy

        security = engine.settings.security
        policy = OutboundPolicy.of(security.outbound_deny, security.outbound_allow)
        engine.background.append(Scraper(engine, engine.settings.scrape_configs, policy))
    if engine.settings.mqtt.subscriptions:
        from seismo.ingest.mqtt import MqttSubscriber

        engine.background.append(MqttSubscriber(engine, engine.settings.mqtt))
