"""`--demo` feeds a stream of realistic sessions: several kinds, some failing, some slow."""

from __future__ import annotations

from pathlib import Path

from seismo.collector.demo import DemoWorkload
from seismo.config import load_settings
from seismo.engine import Engine


def test_the_demo_makes_sessions_of_several_kinds_with_failures(tmp_path: Path) -> None:
    engine = Engine(load_settings(None, {"data_dir": tmp_path, "collector": False},
                                  environ={}))
    demo = DemoWorkload(engine, seed=3)
    engine.start()
    try:
        for _ in range(3):
            demo.tick()
        engine.sessions.refresh()  # what the timer does every refresh_interval_s
        stats = engine.sessions.stats()
        active = engine.sessions.list(state=["active"], limit=1000)["sessions"]
    finally:
        engine.stop()
    kinds = stats["kinds"]
    assert set(kinds) >= {"chat", "train", "etl", "eval"}
    assert sum(k["finished"] for k in kinds.values()) >= 100
    assert sum(k["failed"] for k in kinds.values()) > 0
    assert stats["model"]["kind"] == "logistic"
    assert len(active) >= 4
    assert all(s["prediction"]["success_probability"] is not None for s in active)
