"""Smoke version of the slow and dead consumers scenario (bench/chaos/consumers.py)."""

from pathlib import Path

from chaos import consumers


def test_slow_and_dead_consumers(tmp_path: Path) -> None:
    figures = consumers.run(tmp_path, **consumers.SMOKE)
    assert figures["ok"], figures["checks"]
    slow = figures["slow_clients"]
    assert slow["got_gap"] + slow["cut_off"] == slow["clients"] > 0
    assert slow["server_dropped_messages"] > 0 and slow["stream_clients_after"] == 1
    chatty = figures["chatty_clients"]
    assert chatty["clients"] > 0 and min(chatty["requests_sent"]) > 0
    assert figures["bad"]["health_p99_ms"] < 100
    assert figures["bad"]["ingest_samples_per_s"] >= 0.8 * figures["baseline"][
        "ingest_samples_per_s"] > 0
    assert figures["good_ws"]["gaps"] == 0 and figures["good_ws"]["messages"] > 0
    for channel in consumers.CHANNELS:
        notes = figures["notifications"][channel]
        assert notes["expected"] > 0 and notes["lost"] == 0 and notes["dead"] == 0
        assert notes["pending"] == 0
