"""Background threads run below request handling (seismo/priority.py): ingest validation,
the detectors and block cuts at niceness 10; the WAL writer and the caller untouched."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

from seismo.config import load_settings
from seismo.engine import Engine
from seismo.priority import BACKGROUND_NICE


def niceness(name_prefix: str) -> int:
    thread = next(t for t in threading.enumerate() if t.name.startswith(name_prefix))
    assert thread.native_id is not None
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)


def test_background_threads_are_niced_and_the_rest_are_not(tmp_path: Path) -> None:
    engine = Engine(load_settings(None, {"data_dir": tmp_path, "collector": False},
                                  environ={}))
    engine.start()
    try:
        now = time.time_ns() // 1_000_000
        body = (b'{"series": [{"metric": "m", "timestamps": [%d], "values": [1.0]}]}' % now)
        reply = asyncio.run(engine.ingest(body))
        assert reply["accepted"] == 1
        normal = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        for name in ("seismo-ingest-validate", "seismo-detect", "seismo-upkeep"):
            assert niceness(name) == BACKGROUND_NICE, name
        assert niceness("seismo-wal-writer") == normal
    finally:
        engine.stop()
