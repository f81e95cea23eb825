"""`GET /api/v1/forecast` and a forecast rule against a real server over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from tests.server import ServerProcess

MINUTE = 60_000
CONFIG = {
    "rules": [{"name": "DiskFull", "expr": 'forecast(disk_free{host="a"}[1d], 3h) < 0',
               "annotations": {"summary": "full in {{ $crosses_in }}"}}],
    "alerting": {"tick_s": 0.05, "forecast_interval_s": 1},
    "forecast": {"max_series": 3},
}
FIRST_MS: list[int] = []  # time of the first sample ingested


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("forecast")
    cfg = tmp / "seismo.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    srv = ServerProcess(tmp / "data", "--no-collector", "--config", str(cfg),
                        env={"SEISMO_DETECT__ENABLED": "false"}).start()
    now = time.time_ns() // 1_000_000 // MINUTE * MINUTE
    ts = [now - MINUTE * k for k in range(1439, -1, -1)]  # one day at one minute
    FIRST_MS.append(ts[0])
    i = np.arange(1440)
    rng = np.random.default_rng(0)
    series = [
        # 100 left at the end, losing 0.7 a minute: 0 in ~143 minutes, 80 in ~29
        ("disk_free", {"host": "a"}, 100 + 0.7 * (1439 - i) + rng.normal(0, 0.3, 1440)),
        ("load", {"host": "b"}, 5 + 2 * np.sin(2 * np.pi * i / 60) + rng.normal(0, 0.1, 1440)),
        ("load", {"host": "c"}, 7 + rng.normal(0, 0.1, 1440)),
        ("load", {"host": "d"}, 7 + rng.normal(0, 0.1, 1440)),
    ]
    body = {"series": [{"metric": m, "labels": labels, "timestamps": ts,
                        "values": values.tolist()} for m, labels, values in series]}
    reply = httpx.post(srv.url + "/api/v1/ingest", json=body, timeout=30)
    assert reply.status_code == 200 and reply.json()["accepted"] == 4 * 1440, reply.text
    yield srv
    srv.stop()


def get(server: ServerProcess, **params: Any) -> httpx.Response:
    return httpx.get(server.url + "/api/v1/forecast", params=params, timeout=30)


def test_forecast_shape_bounds_and_time_to_threshold(server: ServerProcess) -> None:
    reply = get(server, selector="disk_free", horizon="1h", threshold="80")
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc["step_ms"] == MINUTE and doc["history_ms"] == 1440 * MINUTE
    assert doc["level"] == 0.8 and doc["horizon_ms"] == 60 * MINUTE
    (s,) = doc["series"]
    assert s["metric"] == "disk_free" and s["labels"] == {"host": "a"}
    assert len(s["timestamps"]) == len(s["values"]) == len(s["lower"]) == len(s["upper"]) == 60
    assert np.all(np.diff(s["timestamps"]) == MINUTE)
    assert s["timestamps"][0] > time.time() * 1000 - 2 * MINUTE
    assert all(lo <= v <= hi for lo, v, hi in zip(s["lower"], s["values"], s["upper"],
                                                  strict=True))
    assert s["values"][-1] == pytest.approx(100 - 0.7 * 60, abs=5)
    assert s["model"].startswith("ETS(A,A") and s["period_s"] is None
    assert s["mase"] < 1.5 and s["smape"] < 2
    crosses = s["crosses"]
    assert crosses["threshold"] == 80 and crosses["direction"] == "down"
    assert 20 * 60 <= crosses["in_s"] <= 35 * 60, crosses
    assert crosses["earliest_ms"] <= crosses["at_ms"] <= crosses["latest_ms"]


def test_hourly_season_and_options(server: ServerProcess) -> None:
    reply = get(server, selector='load{host="b"}', horizon="2h", step="1m", history="1d",
                level="0.95")
    assert reply.status_code == 200, reply.text
    (s,) = reply.json()["series"]
    assert s["period_s"] == 3600 and s["model"].endswith(",A)") and s["crosses"] is None
    assert len(s["values"]) == 120 and s["smape"] < 5
    minutes = (np.asarray(s["timestamps"]) - FIRST_MS[0]) // MINUTE
    truth = 5 + 2 * np.sin(2 * np.pi * minutes / 60)
    assert np.max(np.abs(np.asarray(s["values"]) - truth)) < 0.5  # the season, in phase
    assert get(server, selector="nothing_here", horizon="1h").json()["series"] == []


def test_bad_input_is_400_naming_the_field(server: ServerProcess) -> None:
    cases = [
        ({"horizon": "1h"}, "selector"),
        ({"selector": "load{", "horizon": "1h"}, "selector"),
        ({"selector": "load", "horizon": "soon"}, "horizon"),
        ({"selector": "load", "horizon": "0s"}, "horizon"),
        ({"selector": "load", "horizon": "30d", "step": "1s"}, "horizon"),
        ({"selector": "load", "horizon": "1h", "step": "10s", "history": "30d"}, "history"),
        ({"selector": "load", "horizon": "1h", "step": "-1m"}, "step"),
        ({"selector": "load", "horizon": "1h", "level": "2"}, "level"),
        ({"selector": "load", "horizon": "1h", "threshold": "high"}, "threshold"),
        ({"selector": '{__name__=~".+"}', "horizon": "1h"}, "selector"),  # 4 > max_series 3
    ]
    for params, field in cases:
        reply = get(server, **params)
        assert reply.status_code == 400, (params, reply.text)
        assert reply.json()["field"] == field, (params, reply.json())


def test_a_forecast_rule_fires_before_the_disk_is_full(server: ServerProcess) -> None:
    deadline = time.monotonic() + 15
    alerts: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not alerts:
        reply = httpx.get(server.url + "/api/v1/alerts", params={"rule": "DiskFull"}, timeout=10)
        alerts = [a for a in reply.json()["alerts"] if a["state"] == "firing"]
        time.sleep(0.05)
    assert alerts, "DiskFull did not fire"
    (alert,) = alerts
    assert alert["labels"]["host"] == "a"
    assert alert["value"] < 0  # the forecast 3 h ahead; the disk still has ~100
    assert alert["annotations"]["summary"].startswith("full in 2h")


def test_the_python_client_forecasts(server: ServerProcess) -> None:
    from seismo.client import Client
    from seismo.errors import InvalidInput

    with Client(server.url) as seismo:
        doc = seismo.forecast('load{host="b"}', "30m", threshold=100.0)
        (s,) = doc["series"]
        assert doc["step_ms"] == 30_000 and len(s["values"]) == 60  # 30m / 60
        assert s["crosses"]["at_ms"] is None and s["crosses"]["direction"] == "up"
        # samples every minute, steps of 30 s: the forecast is smooth, not every other step
        assert np.max(np.abs(np.diff(s["values"]))) < 0.5, s["values"][:6]
        with pytest.raises(InvalidInput) as err:
            seismo.forecast("load", "1h", level=5)
        assert err.value.field == "level"
