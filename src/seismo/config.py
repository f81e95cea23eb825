"""Settings: one typed object built from seismo.yaml, SEISMO_* environment and CLI flags.

Precedence, highest first: CLI flags, environment, the YAML file, defaults. An unknown or
bad key anywhere stops start-up with a message naming it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from seismo.errors import ConfigError

ENV_PREFIX = "SEISMO_"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration_s(text: str | float | int) -> float:
    """Parse `30s`, `5m`, `1h`, `30d` (or a bare number of seconds) into seconds.

    >>> parse_duration_s("5m"), parse_duration_s("1.5h"), parse_duration_s(10)
    (300.0, 5400.0, 10.0)
    """
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("duration must not be negative")
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"bad duration {text!r}: use a number and a unit (ms, s, m, h, d, w, y)")
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


class Security(BaseModel):
    """Where outbound connections (channels, scrape targets) may go; docs/security.md."""

    model_config = ConfigDict(extra="forbid")

    outbound_deny: list[str] = Field(default_factory=list)
    outbound_allow: list[str] = Field(default_factory=list)

    @field_validator("outbound_deny", "outbound_allow")
    @classmethod
    def _check_networks(cls, value: list[str], info: ValidationInfo) -> list[str]:
        from seismo.outbound import parse_networks

        parse_networks(value, f"security.{info.field_name}")
        return value


class Limits(BaseModel):
    """Ingest limits; past them a request or a sample is refused with a reason."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0)
    max_labels_per_series: int = Field(30, gt=0)
    max_label_value_length: int = Field(1024, gt=0)
    max_series: int = Field(1_000_000, gt=0)
    max_future_s: float = Field(600.0, ge=0)
    max_points_per_query: int = Field(1_000_000, gt=0)
    max_points_per_series: int = Field(11_000, gt=0)
    token_ingest_samples_per_s: float = Field(0.0, ge=0)
    requests_per_s: float = Field(1000.0, ge=0)
    request_burst: int = Field(2000, gt=0)


class Stream(BaseModel):
    """The live stream (WebSocket and SSE): buffers, per-client bounds, timers."""

    model_config = ConfigDict(extra="forbid")

    buffer_messages: int = Field(10_000, gt=0)
    buffer_bytes: int = Field(64 * 1024 * 1024, gt=0)
    client_queue_bytes: int = Field(4 * 1024 * 1024, gt=0)
    max_clients: int = Field(10_000, gt=0)
    max_message_bytes: int = Field(64 * 1024, gt=0)
    heartbeat_s: float = Field(15.0, gt=0)
    client_timeout_s: float = Field(60.0, gt=0)
    stats_interval_s: float = Field(2.0, gt=0)


class DetectRule(BaseModel):
    """Detection settings for the series a selector matches (first matching rule wins)."""

    model_config = ConfigDict(extra="forbid")

    selector: str
    enabled: bool = True
    detectors: list[str] | None = None
    sensitivity: float | None = Field(None, gt=0)
    warmup: int | None = Field(None, ge=0)
    seasonality: Literal["auto", "on", "off"] | None = None
    min_score: float | None = Field(None, ge=0, le=1)

    @field_validator("selector")
    @classmethod
    def _check_selector(cls, value: str) -> str:
        from seismo.query.selector import parse_selector

        parse_selector(value)
        return value

    @field_validator("detectors")
    @classmethod
    def _check_detectors(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _known_detectors(value)


class Detect(BaseModel):
    """Anomaly detection on every series: defaults, and rules per selector."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    detectors: list[str] = Field(
        default_factory=lambda: ["mad", "seasonal", "cusum", "hst", "extreme", "drift"])
    sensitivity: float = Field(1.0, gt=0)
    warmup: int = Field(100, ge=0)
    seasonality: Literal["auto", "on", "off"] = "auto"
    min_score: float = Field(0.5, ge=0, le=1)
    quiet_samples: int = Field(10, gt=0)
    queue_samples: int = Field(1_000_000, gt=0)
    snapshot_interval_s: float = Field(60.0, gt=0)
    band_interval_s: float = Field(60.0, ge=0)
    max_points_per_batch: int = Field(1000, gt=0)
    max_cpu_share: float = Field(0.5, gt=0, le=1)
    rules: list[DetectRule] = Field(default_factory=list)

    @field_validator("detectors")
    @classmethod
    def _check_detectors(cls, value: list[str]) -> list[str]:
        return _known_detectors(value)


def _known_detectors(names: list[str]) -> list[str]:
    from seismo.detect.config import DETECTORS

    unknown = sorted(set(names) - set(DETECTORS))
    if unknown:
        raise ValueError(f"unknown detector(s) {', '.join(unknown)}; known: "
                         f"{', '.join(DETECTORS)}")
    if not names:
        raise ValueError("name at least one detector")
    return names


class Alerting(BaseModel):
    """Rule evaluation, the alert manager and the notification outbox."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    rule_files: list[Path] = Field(default_factory=list)
    reload_interval_s: float = Field(1.0, gt=0)
    tick_s: float = Field(0.1, gt=0, le=60)
    queue_samples: int = Field(1_000_000, gt=0)
    max_active_alerts: int = Field(100_000, gt=0)
    default_channels: list[str] = Field(default_factory=list)
    external_url: str = ""
    correlation_window: str = "5m"
    outbox_max_attempts: int = Field(12, gt=0)
    outbox_backoff_max_s: float = Field(300.0, gt=0)
    outbox_workers: int = Field(4, gt=0, le=64)
    forecast_interval_s: float = Field(60.0, gt=0)

    @field_validator("correlation_window")
    @classmethod
    def _check_window(cls, value: str) -> str:
        parse_duration_s(value)
        return value


class Slo(BaseModel):
    """The SLO evaluator: how often SLOs are judged and what it writes (docs/slo.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    interval_s: float = Field(10.0, gt=0, le=3600)
    write_series: bool = True
    counter_lookback: str = "5m"

    @field_validator("counter_lookback")
    @classmethod
    def _check_lookback(cls, value: str) -> str:
        parse_duration_s(value)
        return value


class Models(BaseModel):
    """ML model monitoring: record bounds, evaluation timer, drift and alert thresholds."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    retention: str = "30d"
    max_rows_per_model: int = Field(1_000_000, gt=0)
    max_models: int = Field(1000, gt=0)
    max_versions: int = Field(100, gt=0)
    max_features: int = Field(200, gt=0)
    max_categories: int = Field(1000, gt=1)
    max_items_per_request: int = Field(100_000, gt=0)
    queue_rows: int = Field(1_000_000, gt=0)
    outcome_wait: str = "1h"
    max_pending_outcomes: int = Field(100_000, ge=0)
    evaluation_interval_s: float = Field(15.0, gt=0)
    evaluation_window: str = "1h"
    write_series: bool = True
    reference_predictions: int = Field(1000, gt=0)
    min_samples: int = Field(100, gt=0)
    max_drift_samples: int = Field(50_000, gt=0)
    psi_warn: float = Field(0.1, gt=0)
    psi_alert: float = Field(0.25, gt=0)
    ks_p_value: float = Field(0.01, gt=0, lt=1)
    ks_min_statistic: float = Field(0.1, ge=0, le=1)
    js_warn: float = Field(0.1, gt=0, le=1)
    js_alert: float = Field(0.2, gt=0, le=1)
    wasserstein_warn: float = Field(0.1, gt=0)
    wasserstein_alert: float = Field(0.25, gt=0)
    chi2_p_value: float = Field(0.01, gt=0, lt=1)
    chi2_min_cramers_v: float = Field(0.1, ge=0, le=1)
    accuracy_drop: float = Field(0.15, gt=0, lt=1)
    latency_p95_ms: float = Field(500.0, gt=0)
    accuracy_severity: str = "high"
    drift_severity: str = "medium"
    latency_severity: str = "medium"

    @field_validator("retention", "outcome_wait", "evaluation_window")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration_s(value)
        return value

    @field_validator("accuracy_severity", "drift_severity", "latency_severity")
    @classmethod
    def _check_severity(cls, value: str) -> str:
        from seismo.notify.message import SEVERITIES

        if value not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        return value


def _check_selector_text(value: str) -> str:
    from seismo.query.selector import SelectorError, parse_selector

    try:
        parse_selector(value)
    except SelectorError as exc:
        raise ValueError(exc.message) from None
    return value


class Energy(BaseModel):
    """Energy statistics of power series (docs/energy.md): units, prices, integration."""

    model_config = ConfigDict(extra="forbid")

    selector: str = "machine_power_watts"
    unit: Literal["W", "kW"] = "W"
    tariff: float = Field(0.12, ge=0)
    currency: str = "USD"
    carbon: float = Field(0.5, ge=0)
    window: str = "24h"
    max_gap: str = "15m"
    active_within: str = "5m"
    machine_label: str = "machine"
    max_series: int = Field(10_000, gt=0)
    stream: bool = True
    refresh_s: float = Field(10.0, gt=0)

    @field_validator("selector")
    @classmethod
    def _check_selector(cls, value: str) -> str:
        return _check_selector_text(value)

    @field_validator("window", "max_gap", "active_within")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        if parse_duration_s(value) <= 0:
            raise ValueError("must be positive")
        return value


class CapacityRule(BaseModel):
    """A limit the series a selector matches must not cross (insights' capacity check)."""

    model_config = ConfigDict(extra="forbid")

    selector: str
    threshold: float
    direction: Literal["above", "below"] = "above"
    horizon: str = "7d"

    @field_validator("selector")
    @classmethod
    def _check_selector(cls, value: str) -> str:
        return _check_selector_text(value)

    @field_validator("horizon")
    @classmethod
    def _check_horizon(cls, value: str) -> str:
        if parse_duration_s(value) <= 0:
            raise ValueError("must be positive")
        return value


def _default_capacity() -> list[CapacityRule]:
    return [CapacityRule(selector='{__name__=~".+_percent"}', threshold=90.0)]


class Insights(BaseModel):
    """Predictive insights (docs/insights.md): what is checked and when it is a finding."""

    model_config = ConfigDict(extra="forbid")

    selector: str = '{__name__=~".+"}'
    window: str = "6h"
    max_series: int = Field(500, gt=0)
    trend_p_value: float = Field(0.001, gt=0, lt=1)
    trend_min_change: float = Field(0.2, gt=0)
    capacity: list[CapacityRule] = Field(default_factory=_default_capacity)
    slo_budget_low: float = Field(0.25, ge=0, le=1)
    noisy_window: str = "1h"
    noisy_fired: int = Field(6, gt=0)
    anomaly_rate: float = Field(0.05, gt=0, le=1)
    anomaly_min_points: int = Field(200, gt=0)

    @field_validator("selector")
    @classmethod
    def _check_selector(cls, value: str) -> str:
        return _check_selector_text(value)

    @field_validator("window", "noisy_window")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        if parse_duration_s(value) <= 0:
            raise ValueError("must be positive")
        return value



class Forecast(BaseModel):
    """Forecasts over the API: bounds on what one request may ask (docs/forecast.md)."""

    model_config = ConfigDict(extra="forbid")

    max_series: int = Field(1000, gt=0)
    max_history_points: int = Field(10_000, ge=32)
    max_horizon_points: int = Field(2000, gt=0)
    level: float = Field(0.8, ge=0.5, le=0.999)
class Sessions(BaseModel):
    """Sessions from events (docs/sessions.md): lifecycle, retention, estimates."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    idle_timeout: str = "30m"
    retention: str = "7d"
    max_sessions: int = Field(100_000, gt=0)
    max_events_per_session: int = Field(1000, gt=0)
    history_per_kind: int = Field(5000, ge=10)
    min_history: int = Field(10, ge=2)
    overdue_quantile: float = Field(0.95, gt=0, lt=1)
    early_window: str = "1m"
    refresh_interval_s: float = Field(5.0, gt=0)
    write_series: bool = True
    max_series_sessions: int = Field(1000, ge=0)

    @field_validator("idle_timeout", "retention", "early_window")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        if parse_duration_s(value) <= 0:
            raise ValueError("must be positive")
        return value


class StaticConfig(BaseModel):
    """Scrape targets (`host:port`) and labels added to everything scraped from them."""

    model_config = ConfigDict(extra="forbid")

    targets: list[str]
    labels: dict[str, str] = Field(default_factory=dict)


class Relabel(BaseModel):
    """Keep or drop targets whose `source_labels` (joined by `separator`) match `regex`."""

    model_config = ConfigDict(extra="forbid")

    source_labels: list[str]
    regex: str = "(.*)"
    action: Literal["keep", "drop"] = "keep"
    separator: str = ";"

    @field_validator("regex")
    @classmethod
    def _check_regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad regex: {exc}") from None
        return value


class ScrapeConfig(BaseModel):
    """One Prometheus-style scrape job (docs/protocols.md)."""

    model_config = ConfigDict(extra="forbid")

    job_name: str
    scrape_interval: str = "15s"
    scrape_timeout: str = "10s"
    metrics_path: str = "/metrics"
    scheme: Literal["http", "https"] = "http"
    static_configs: list[StaticConfig] = Field(default_factory=list)
    relabel_configs: list[Relabel] = Field(default_factory=list)

    @field_validator("scrape_interval", "scrape_timeout")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        if parse_duration_s(value) <= 0:
            raise ValueError("must be positive")
        return value


class MqttSubscription(BaseModel):
    """An MQTT topic filter and the series its messages become (docs/protocols.md)."""

    model_config = ConfigDict(extra="forbid")

    topic: str
    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    value: str = ""
    timestamp: str = ""
    qos: int = Field(0, ge=0, le=2)


class Mqtt(BaseModel):
    """The MQTT subscriber: a broker and the topics to turn into samples."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str = ""
    password: SecretStr = SecretStr("")  # shown as '**********' by repr and model_dump
    client_id: str = ""
    keepalive_s: int = Field(30, gt=0)
    reconnect_min_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(60.0, gt=0)
    flush_interval_s: float = Field(0.1, gt=0)
    queue_samples: int = Field(100_000, gt=0)
    subscriptions: list[MqttSubscription] = Field(default_factory=list)


class Settings(BaseSettings):
    """Every setting seismo has. See docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    data_dir: Path = Path("./seismo-data")
    log_level: str = "info"
    demo: bool = False
    collector: bool = True
    collector_interval_s: float = Field(1.0, gt=0)
    retention: str = "30d"
    block_duration: str = "10m"
    block_max_samples: int = Field(4_000_000, gt=0)
    out_of_order_tolerance: str = "1h"
    compaction_target_samples: int = Field(20_000_000, gt=0)
    ingest_queue_samples: int = Field(2_000_000, gt=0)
    wal_fsync: bool = True
    insecure: bool = False
    cors_origins: list[str] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    security: Security = Field(default_factory=Security)
    stream: Stream = Field(default_factory=Stream)
    detect: Detect = Field(default_factory=Detect)
    alerting: Alerting = Field(default_factory=Alerting)
    models: Models = Field(default_factory=Models)
    rules: list[dict[str, Any]] = Field(default_factory=list)
    channels: list[dict[str, Any]] = Field(default_factory=list)
    routes: list[dict[str, Any]] = Field(default_factory=list)
    inhibit_rules: list[dict[str, Any]] = Field(default_factory=list)
    slo: Slo = Field(default_factory=Slo)
    slos: list[dict[str, Any]] = Field(default_factory=list)
    forecast: Forecast = Field(default_factory=Forecast)
    energy: Energy = Field(default_factory=Energy)
    insights: Insights = Field(default_factory=Insights)
    sessions: Sessions = Field(default_factory=Sessions)
    scrape_configs: list[ScrapeConfig] = Field(default_factory=list)
    mqtt: Mqtt = Field(default_factory=Mqtt)

    @field_validator("rules", "channels", "routes", "inhibit_rules")
    @classmethod
    def _check_alerting(cls, value: list[dict[str, Any]],
                        info: ValidationInfo) -> list[dict[str, Any]]:
        """The parsers the server runs, so a bad rule, channel or route stops the start."""
        from seismo.alerting.routes import parse_inhibit_rules, parse_routes
        from seismo.alerting.rules import parse_rules
        from seismo.errors import InvalidInput
        from seismo.notify.config import parse_channels

        parse: dict[str, Callable[[], object]] = {
            "rules": lambda: parse_rules(value, field_name="rules"),
            "channels": lambda: parse_channels(value),
            "routes": lambda: parse_routes(value, field="routes"),
            "inhibit_rules": lambda: parse_inhibit_rules(value, field="inhibit_rules")}
        try:
            parse[str(info.field_name)]()
        except InvalidInput as exc:
            where = f"{exc.field}: " if exc.field else ""
            raise ValueError(where + exc.message) from None
        return value

    @field_validator("slos")
    @classmethod
    def _check_slos(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The parser the SLO evaluator runs, so a bad SLO stops the start."""
        from seismo.errors import InvalidInput
        from seismo.slo.definition import parse_slos

        try:
            parse_slos(value, field="slos", source="seismo.yaml")
        except InvalidInput as exc:
            raise ValueError((f"{exc.field}: " if exc.field else "") + exc.message) from None
        return value

    @field_validator("retention", "block_duration", "out_of_order_tolerance")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration_s(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be debug, info, warning or error")
        return value.lower()

    @property
    def retention_s(self) -> float:
        return parse_duration_s(self.retention)

    @property
    def block_duration_s(self) -> float:
        return parse_duration_s(self.block_duration)

    @property
    def out_of_order_tolerance_s(self) -> float:
        return parse_duration_s(self.out_of_order_tolerance)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _EnvSource(settings_cls), _YamlSource(settings_cls)


class _YamlSource(PydanticBaseSettingsSource):
    """Lowest-precedence source: the dict read from seismo.yaml (see `load_settings`)."""

    values: ClassVar[dict[str, Any]] = {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


class _EnvSource(EnvSettingsSource):
    """The environment given to `load_settings` (os.environ unless a test passes its own)."""

    environ: ClassVar[dict[str, str]] = {}

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self.environ.items()}


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a seismo.yaml file into a dict, or raise ConfigError saying what is wrong."""
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values")
    for key in loaded:
        if not isinstance(key, str):
            raise ConfigError(f"config file {path}: key {key!r} is not a setting name")
    return loaded


def load_settings(
    config: Path | None = None,
    flags: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build the settings from file, environment and flags; raise ConfigError naming a bad key."""
    environ = dict(os.environ) if environ is None else environ
    _check_env_keys(environ)
    _YamlSource.values = read_yaml(config) if config is not None else {}
    _EnvSource.environ = environ
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config)) from None
    finally:
        _YamlSource.values = {}
        _EnvSource.environ = {}


def _check_env_keys(environ: dict[str, str]) -> None:
    known = {name.upper() for name in Settings.model_fields}
    for key in environ:
        if key.startswith(ENV_PREFIX):
            top = key[len(ENV_PREFIX) :].split("__", 1)[0]
            if top not in known:
                raise ConfigError(f"unknown setting in environment: {key}")


def _describe(exc: ValidationError, config: Path | None) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        reason = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"setting {key!r}: {reason}")
    where = f" (config file {config})" if config else ""
    return "invalid configuration" + where + ": " + "; ".join(lines)
