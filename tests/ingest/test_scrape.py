"""Scrape targets and the exposition parser (the scraping itself: tests/protocols)."""

from __future__ import annotations

from seismo.config import ScrapeConfig
from seismo.ingest.scrape import parse_exposition, targets_of


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
