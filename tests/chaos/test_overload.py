"""Smoke version of the overload scenario (bench/chaos/overload.py): a small ingest queue
offered several times capacity for a few seconds; 429s with Retry-After, health fast,
nothing acknowledged lost, recovery."""

from pathlib import Path

from chaos import overload


def test_overload_smoke(tmp_path: Path) -> None:
    figures = overload.run(tmp_path, **overload.SMOKE)
    assert figures["ok"], "\n".join(figures["checks"])
    assert figures["refused_429"] > 0
    assert figures["refused_without_retry_after"] == 0
    assert set(figures["statuses"]) <= {200, 429}
    assert figures["connection_errors"] == {}
    assert figures["acknowledged"] > 0
    assert figures["lost"] == 0 and figures["wrong_sums"] == 0 and figures["uncertain"] == 0
    assert figures["health_p99_ms"] < overload.HEALTH_MS
    assert figures["rss_peak_mib"] <= figures["rss_bound_mib"]
    assert figures["recovery_first_200_s"] <= overload.RECOVERY_S
    assert figures["recovery_drained_s"] <= overload.RECOVERY_S
