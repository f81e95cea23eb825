"""Crash under load, smoke size: kill -9 seismo twice while it ingests at ~80 % of its
measured capacity; nothing it acknowledged is lost (bench/chaos/crash.py at full size)."""

from __future__ import annotations

from pathlib import Path

from chaos import crash


def test_kill_9_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    figures = crash.run(tmp_path, **crash.SMOKE)
    assert figures["ok"], figures
    assert figures["kills"] == 2
    assert figures["lost_samples"] == 0 and figures["acked_samples"] > 10_000
    assert figures["lost_events"] == 0 and figures["acked_events"] > 0
    assert figures["lost_alert_transitions"] == 0 and figures["seen_alert_transitions"] > 0
    assert figures["lost_notifications"] == 0 and figures["seen_pending_notifications"] > 0
    assert figures["outbox_final"]["pending"] == 0 and figures["outbox_final"]["dead"] == 0
    assert figures["unnotified_alert_changes"] == 0 and figures["alert_changes_to_notify"] > 0
    assert figures["load"]["connection_errors"] > 0  # the kills did hit requests in flight
