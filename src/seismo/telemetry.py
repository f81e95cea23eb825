"""seismo's own health metrics, exposed in Prometheus format at `GET /metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Telemetry:
    """Every metric seismo reports about itself, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.samples_ingested = Counter(
            "seismo_samples_ingested", "Samples made durable", registry=r)
        self.samples_rejected = Counter(
            "seismo_samples_rejected", "Samples refused, by reason", ["reason"], registry=r)
        self.events_ingested = Counter(
            "seismo_events_ingested", "Events made durable", registry=r)
        self.ingest_overloaded = Counter(
            "seismo_ingest_overloaded", "Ingest requests answered 429", registry=r)
        self.queue_samples = Gauge(
            "seismo_ingest_queue_samples", "Samples waiting for the WAL", registry=r)
        self.wal_fsync_seconds = Histogram(
            "seismo_wal_fsync_seconds", "WAL write + fsync latency per group commit",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.wal_group_batches = Histogram(
            "seismo_wal_group_commit_batches", "Batches made durable per fsync",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.head_series = Gauge("seismo_head_series", "Series known to the store", registry=r)
        self.head_samples = Gauge("seismo_head_samples", "Samples in the head", registry=r)
        self.blocks = Gauge("seismo_blocks", "Parquet blocks on disk", registry=r)
        self.block_bytes = Gauge("seismo_block_bytes", "Bytes of blocks on disk", registry=r)
        self.http_seconds = Histogram(
            "seismo_http_request_seconds", "HTTP request latency by route",
            ["method", "route", "status"], buckets=_LATENCY_BUCKETS, registry=r)
        self.stream_clients = Gauge(
            "seismo_stream_clients", "Connected live-stream clients (WebSocket and SSE)",
            registry=r)
        self.stream_messages = Counter(
            "seismo_stream_messages_sent", "Topic messages written to stream clients",
            registry=r)
        self.stream_dropped = Counter(
            "seismo_stream_messages_dropped", "Topic messages dropped for slow clients",
            registry=r)
        self.anomalies_open = Gauge(
            "seismo_anomalies_open", "Anomalies still going on", registry=r)
        self.anomalies_opened = Counter(
            "seismo_anomalies_opened", "Anomalies found (one per incident)", registry=r)
        self.detect_scored = Counter(
            "seismo_detect_points_scored", "Samples scored by the detectors", registry=r)
        self.detect_flagged = Counter(
            "seismo_detect_points_anomalous", "Samples scored at or above min_score "
            "(with points scored: the overall anomaly rate)", registry=r)
        self.detect_skipped = Counter(
            "seismo_detect_samples_skipped", "Samples not scored: the detection queue was "
            "full", registry=r)
        self.alert_rules = Gauge("seismo_alert_rules", "Alert rules being evaluated",
                                 registry=r)
        self.alerts_active = Gauge(
            "seismo_alerts_active", "Pending, firing and acknowledged alerts", registry=r)
        self.rule_samples = Counter(
            "seismo_rule_evaluated_samples", "Samples checked against the alert rules",
            registry=r)
        self.notifications = Gauge(
            "seismo_notifications", "Notifications in the outbox, by state (pending, sent "
            "and dead are kept; sent and dead pruned to the newest 10,000)", ["state"],
            registry=r)
