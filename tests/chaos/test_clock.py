"""Smoke version of the clock-jump and late-data chaos scenario (bench/chaos/clock.py)."""

from pathlib import Path

from chaos import clock


def test_clock_jumps_and_late_data(tmp_path: Path) -> None:
    figures = clock.run(tmp_path, **clock.SMOKE)
    assert figures["jumps_applied"] == len(clock.SMOKE["jumps"]), figures["checks"]
    assert figures["acknowledged_samples"] > 0, figures["checks"]
    assert figures["lost"] == 0 and figures["wrong_values"] == 0, figures["checks"]
    assert figures["spurious_transitions"] == 0, figures["checks"]
    assert figures["spurious_notifications"] == 0, figures["checks"]
    assert all(figures["clock_moved"]) and all(figures["uptime_steady"]), figures["checks"]
    assert figures["late_refused_with_reason"] == 2, figures["checks"]
    assert figures["rejected_with_reason"].get("future (probe)") == 2, figures["checks"]
    assert min(figures["block_cuts"]) >= 1, figures["checks"]
    assert not any(figures["late_mismatches"].values()), figures["checks"]
    assert figures["ok"], figures["checks"]
