"""Scrape targets and the exposition parser (the scraping itself: tests/protocols)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from seismo.config import ScrapeConfig
from seismo.ingest.schema import SeriesIn
from seismo.ingest.scrape import Scraper, Target, parse_exposition, targets_of
from seismo.outbound import OutboundPolicy


def test_targets_and_relabel_keep_drop() -> None:
    config = ScrapeConfig.model_validate({
        "job_name": "node", "scrape_interval": "5s", "scrape_timeout": "10s",
        "static_configs": [{"targets": ["a:9100", "b:9100"], "labels": {"env": "prod"}},
                           {"targets": ["c:9100"], "labels": {"env": "dev"}}],
        "relabel_configs": [{"source_labels": ["env"], "regex": "prod"},
                            {"source_labels": ["instance"], "regex": "b:.*",
                             "action": "drop"}]})
    (target,) = targets_of([config])
    assert target.url == "http://a:9100/metrics"
    assert target.labels == {"job": "node", "instance": "a:9100", "env": "prod"}
    assert (target.interval_s, target.timeout_s) == (5.0, 5.0)  # timeout ≤ interval


def test_exposition_labels_timestamps_and_nan() -> None:
    text = ("# TYPE http_requests counter\n"
            'http_requests_total{code="200",job="inner"} 7 1700000000000\n'
            "temp NaN\n"
            "temp2 21.5\n")
    series, skipped = parse_exposition(text, {"job": "node", "instance": "a"}, at_ms=5)
    got = {(s.metric, tuple(sorted(s.labels.items()))): (s.timestamps, s.values)
           for s in series}
    assert got == {
        ("http_requests_total", (("code", "200"), ("exported_job", "inner"),
                                 ("instance", "a"), ("job", "node"))):
            ([1_700_000_000_000], [7.0]),
        ("temp2", (("instance", "a"), ("job", "node"))): ([5], [21.5]),
    }
    assert skipped == 1


class Recorder:
    """The part of the engine a scrape writes to."""

    def __init__(self) -> None:
        self.series: list[SeriesIn] = []

    def ingest_blocking(self, series: list[SeriesIn], at_ms: int) -> None:
        self.series += series

    def up(self) -> list[float]:
        return [v for s in self.series if s.metric == "up" for v in s.values]


def scrape_once(address: str, policy: OutboundPolicy | None = None) -> tuple[Recorder, Target]:
    config = ScrapeConfig.model_validate({
        "job_name": "j", "scrape_timeout": "2s", "static_configs": [{"targets": [address]}]})
    engine = Recorder()
    scraper = Scraper(engine, [config], policy)
    (target,) = scraper.targets
    scraper.scrape(target)
    scraper.stop()
    return engine, target


def test_a_link_local_target_is_up_0_with_the_reason_logged(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[object] = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: attempts.append(a))
    with caplog.at_level(logging.WARNING, "seismo.ingest.scrape"):
        engine, target = scrape_once("169.254.10.20:9100")
    assert engine.up() == [0.0]
    assert target.last_error.startswith("refused to connect to 169.254.10.20: 169.254.10.20 "
                                        "is a link-local or cloud metadata address")
    assert target.last_error in caplog.text
    assert attempts == []


@pytest.fixture
def exporter() -> Iterator[str]:
    """A loopback `/metrics` page."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"temp 21.5\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_allow_listed_target_is_scraped(exporter: str) -> None:
    denied, _ = scrape_once(exporter, OutboundPolicy.of(deny=["127.0.0.0/8"]))
    assert denied.up() == [0.0]
    allowed, _ = scrape_once(exporter, OutboundPolicy.of(deny=["127.0.0.0/8"],
                                                         allow=["127.0.0.1"]))
    assert allowed.up() == [1.0]
    assert "temp" in {s.metric for s in allowed.series}
