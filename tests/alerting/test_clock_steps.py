"""A step of the wall clock (NTP, a VM resumed) must neither fire nor stall alerting timers.

Found by the clock-jump chaos scenario (bench/chaos/clock.py): on the wall clock, a +1 h
step fired every pending `for` at once, resolved `keep_firing_for` early, fired `absent()`
and sent repeats; a -1 h step froze all of them (and retry backoffs) for an hour. The
alerting service now runs on `steady_clock()`, and the health uptime on the monotonic clock.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from seismo.alerting.service import steady_clock
from seismo.alerting.state import Alert, AlertState
from seismo.config import load_settings
from seismo.engine import Engine

HOUR_NS = 3600 * 10**9


def step_wall_clock(monkeypatch: pytest.MonkeyPatch, by_ns: int) -> None:
    real_ns, real_s = time.time_ns, time.time
    monkeypatch.setattr(time, "time_ns", lambda: real_ns() + by_ns)
    monkeypatch.setattr(time, "time", lambda: real_s() + by_ns / 1e9)


def test_steady_clock_follows_real_time_across_wall_clock_steps(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = steady_clock()
    start = clock()
    assert abs(start - time.time_ns() // 1_000_000) < 1000  # epoch ms, read at creation
    for step in (HOUR_NS, -2 * HOUR_NS):
        with monkeypatch.context() as m:
            step_wall_clock(m, step)
            before = clock()
            time.sleep(0.02)
            assert 15 <= clock() - before < 1000


def test_engine_alert_timers_and_uptime_ignore_wall_clock_steps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(load_settings(None, {"data_dir": tmp_path, "collector": False},
                                  environ={}))
    try:
        alert = Alert("Pend", {"host": "a"}, engine.alerting.clock, for_ms=200)
        alert.observe(True)
        assert alert.state is AlertState.PENDING
        step_wall_clock(monkeypatch, HOUR_NS)  # forward: must not fire early
        alert.tick()
        assert alert.state is AlertState.PENDING
        assert engine.health()["uptime_s"] < 60
        monkeypatch.undo()
        step_wall_clock(monkeypatch, -HOUR_NS)  # backward: must not stall `for`
        time.sleep(0.25)
        alert.tick()
        assert alert.state is AlertState.FIRING
        assert 0 <= engine.health()["uptime_s"] < 60
    finally:
        monkeypatch.undo()
        engine.stop()
