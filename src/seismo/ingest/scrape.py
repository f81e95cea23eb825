"""Scraping: seismo pulls `/metrics` (Prometheus text format) from the targets of
`scrape_configs:` like Prometheus does, and stores what it gets through the same
validation and WAL as pushed samples, plus `up` and `scrape_duration_seconds` per target.

One scheduler thread keeps each target's next due time; scrapes run on a small thread
pool, at most one in flight per target. Reference:
https://prometheus.io/docs/prometheus/latest/configuration/configuration/#scrape_config
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from seismo.config import ScrapeConfig, parse_duration_s
from seismo.errors import SeismoError
from seismo.ingest.schema import SeriesIn
from seismo.outbound import OutboundPolicy, OutboundRefused, http_transport

log = logging.getLogger(__name__)
ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
MAX_WORKERS = 8


@dataclass
class Target:
    """One endpoint of one job, with the labels every sample from it gets."""

    job: str
    url: str
    labels: dict[str, str]
    interval_s: float
    timeout_s: float
    next_due: float = 0.0
    in_flight: Future[None] | None = field(default=None, repr=False)
    last_error: str = ""


def targets_of(configs: list[ScrapeConfig]) -> list[Target]:
    """Every target of every job after `relabel_configs` keep/drop."""
    targets = []
    for config in configs:
        interval = parse_duration_s(config.scrape_interval)
        timeout = min(parse_duration_s(config.scrape_timeout), interval)
        for static in config.static_configs:
            for address in static.targets:
                labels = {"job": config.job_name, "instance": address, **static.labels}
                if all(_kept(rule.action, rule.regex, rule.separator.join(
                        labels.get(name, "") for name in rule.source_labels))
                       for rule in config.relabel_configs):
                    url = f"{config.scheme}://{address}{config.metrics_path}"
                    targets.append(Target(config.job_name, url, labels, interval, timeout))
    return targets


def _kept(action: str, regex: str, value: str) -> bool:
    matched = re.fullmatch(regex, value) is not None
    return matched if action == "keep" else not matched


def parse_exposition(text: str, target_labels: dict[str, str], at_ms: int
                     ) -> tuple[list[SeriesIn], int]:
    """Samples of a `/metrics` page with the target's labels (a scraped label that
    clashes becomes `exported_<name>`, as Prometheus does); returns (series, NaN skipped)."""
    series: list[SeriesIn] = []
    skipped = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if math.isnan(sample.value):
                skipped += 1
                continue
            labels = {(f"exported_{k}" if k in target_labels else k): v
                      for k, v in sample.labels.items()}
            labels.update(target_labels)
            ts = at_ms if sample.timestamp is None else int(float(sample.timestamp) * 1000)
            series.append(SeriesIn(metric=sample.name, values=[float(sample.value)],
                                   labels=labels, timestamps=[ts]))
    return series, skipped


class Scraper:
    """The background worker that scrapes every configured target (see module doc)."""

    name = "scrape"

    def __init__(self, engine: Any, configs: list[ScrapeConfig],
                 policy: OutboundPolicy | None = None) -> None:
        self.engine = engine
        self.targets = targets_of(configs)
        self.policy = policy or OutboundPolicy()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._client = self._new_client()

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() \
            and not self._stop.is_set()

    def start(self) -> None:
        self._stop.clear()
        self._client = self._new_client()
        self._pool = ThreadPoolExecutor(min(MAX_WORKERS, max(1, len(self.targets))),
                                        thread_name_prefix="seismo-scrape")
        now = time.monotonic()
        for i, target in enumerate(self.targets):  # spread the first scrapes out
            target.next_due = now + target.interval_s * i / max(1, len(self.targets))
        self._thread = threading.Thread(target=self._run, name="seismo-scrape", daemon=True)
        self._thread.start()

    def _new_client(self) -> httpx.Client:
        """Redirects are followed, and each hop's connection passes the policy too."""
        return httpx.Client(headers={"Accept": ACCEPT}, follow_redirects=True,
                            transport=http_transport(self.policy))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for target in self.targets:
                if target.next_due <= now and (target.in_flight is None
                                               or target.in_flight.done()):
                    target.next_due = max(target.next_due + target.interval_s, now)
                    assert self._pool is not None
                    target.in_flight = self._pool.submit(self.scrape, target)
            wait = min((t.next_due for t in self.targets), default=now + 1.0) - now
            self._stop.wait(max(0.01, min(wait, 1.0)))

    def scrape(self, target: Target) -> None:
        """Scrape one target now and store its samples, `up` and the scrape's duration."""
        at_ms = time.time_ns() // 1_000_000
        started = time.perf_counter()
        series: list[SeriesIn] = []
        try:
            reply = self._client.get(target.url, timeout=target.timeout_s)
            reply.raise_for_status()
            series, _ = parse_exposition(reply.text, target.labels, at_ms)
            up, target.last_error = 1.0, ""
        except (httpx.HTTPError, ValueError) as exc:
            up, target.last_error = 0.0, f"{type(exc).__name__}: {exc}"
            log.debug("scrape of %s failed: %s", target.url, target.last_error)
        except OutboundRefused as exc:  # a setup problem: said loudly, once until it changes
            if exc.message != target.last_error:
                log.warning("scrape of %s refused: %s", target.url, exc.message)
            up, target.last_error = 0.0, exc.message
        duration = time.perf_counter() - started
        for name, value in (("up", up), ("scrape_duration_seconds", duration),
                            ("scrape_samples_scraped", float(len(series)))):
            series.append(SeriesIn(metric=name, values=[value], labels=dict(target.labels),
                                   timestamps=[at_ms]))
        try:
            self.engine.ingest_blocking(series, at_ms)
        except SeismoError as exc:
            log.warning("scrape of %s: samples not stored: %s", target.url, exc.message)
