"""A full disk (issue 12, bench/chaos/diskfull.py): clean 507s, nothing half-written, and
everything works again once there is space. SQLite's own limit (`max_page_count`) gives a
real SQLITE_FULL; a failing Parquet write stands in for ENOSPC while a block is cut."""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from seismo.api.app import create_app
from seismo.config import load_settings
from seismo.detect import DetectConfig
from seismo.detect.watcher import Watcher
from seismo.engine import Engine
from seismo.store import Batch, Store
from seismo.store import blocks as blocks_module
from seismo.store.anomalies import Anomaly, AnomalyLog
from seismo.store.events import Event
from seismo.store.series import SeriesIndex, SeriesInfo, series_id
from seismo.store.wal import WAL


def fill_up(con: sqlite3.Connection) -> None:
    """Let the database grow no more: the next write that needs a page fails as on a full disk."""
    (pages,) = con.execute("PRAGMA page_count").fetchone()
    con.execute(f"PRAGMA max_page_count = {pages}")


def free_up(con: sqlite3.Connection) -> None:
    con.execute("PRAGMA max_page_count = 1073741823")


def engine_for(tmp_path: Path, **extra: Any) -> Engine:
    flags = {"data_dir": tmp_path / "data", "collector": False, **extra}
    return Engine(load_settings(None, flags, environ={"SEISMO_DETECT__ENABLED": "false"}))


def no_space(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_state_writes_on_a_full_disk_answer_507_and_alerts_are_kept(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, channels=[{"name": "hook", "type": "webhook",
                                              "url": "http://127.0.0.1:9/hook"}],
                        routes=[{"match": {}, "channels": ["hook"], "group_wait": "0s"}])
    with TestClient(create_app(engine), base_url="http://127.0.0.1") as client:
        big = {"type": "full", "message": "x" * 4000}
        fill_up(engine.events._con)
        reply = client.post("/api/v1/events", json={"events": [big] * 20})
        assert reply.status_code == 507, reply.text  # was a 500 ("cannot rollback")
        assert "disk full" in reply.json()["error"]
        free_up(engine.events._con)
        assert client.post("/api/v1/events", json=big).status_code == 200

        fill_up(engine.alerting.log._con)
        raised = client.post("/api/v1/alerts", json={"name": "WhileFull", "labels": {
            "blob": "y" * 4000}, "severity": "high"})
        assert raised.status_code == 507, raised.text
        free_up(engine.alerting.log._con)
        # The transition was kept, not dropped: stored and notified on the next tick.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alerts = client.get("/api/v1/alerts", params={"state": "firing"}).json()["alerts"]
            if alerts:
                break
            time.sleep(0.05)
        assert [a["labels"]["alertname"] for a in alerts] == ["WhileFull"]
        outbox = client.get("/api/v1/outbox").json()
        assert outbox["notifications"], outbox


def test_the_server_starts_when_the_state_db_is_full(tmp_path: Path) -> None:
    engine = engine_for(tmp_path)
    # Events the sessions have not seen yet: the start catches up and records how far.
    engine.events.append([Event("deploy", "ci", timestamp=1) for _ in range(5)])
    fill_up(engine.sessions.store._con)
    try:
        engine.start()  # was: "cannot rollback - no transaction is active", start aborted
    finally:
        engine.stop()


def samples(n: int, t0: int = 1_700_000_000_000) -> Batch:
    sids = np.full(n, 7, np.int64)
    return Batch(np.zeros(n, np.int32), sids, t0 + np.arange(n, dtype=np.int64),
                 np.arange(n, dtype=np.float64))


def test_a_failed_block_cut_leaves_no_files_and_flush_retries_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path)
    store.index.add(7, "m", {}, enforce_limit=False)
    batch = samples(1000)
    batch.slots = np.zeros(1000, np.int32)
    store.write([batch])
    monkeypatch.setattr(blocks_module.pq, "write_table", no_space)
    with pytest.raises(OSError) as failed:
        store.cut()
    assert failed.value.errno == errno.ENOSPC
    assert list((tmp_path / "blocks").iterdir()) == []  # was: a .tmp-NNNNNNNN left behind
    assert store.head.table().num_rows == 1000  # still readable from the head
    monkeypatch.undo()
    block = store.cut()  # nothing new arrived: the frozen samples alone are cut (was: None)
    assert block is not None and block.meta.count == 1000
    assert store.head.table().num_rows == 0
    store.close()
    again = Store(tmp_path)
    assert sum(b.meta.count for b in again.blocks) == 1000 and again.replayed_samples == 0
    again.close()


def test_flush_on_a_full_disk_is_507(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_for(tmp_path)
    with TestClient(create_app(engine), base_url="http://127.0.0.1") as client:
        t0 = int(time.time() * 1000) - 60_000
        body = {"series": [{"metric": "m", "timestamps": [t0 + i for i in range(100)],
                            "values": [1.0] * 100}]}
        assert client.post("/api/v1/ingest", json=body).status_code == 200
        monkeypatch.setattr(blocks_module.pq, "write_table", no_space)
        reply = client.post("/api/v1/admin/flush")
        assert reply.status_code == 507 and "disk full" in reply.json()["error"], reply.text
        monkeypatch.undo()
        assert client.post("/api/v1/admin/flush").json()["samples"] == 100


def anomaly(i: int) -> Anomaly:
    return Anomaly(sid=i, metric="m", labels={"blob": "z" * 3000}, start_ms=i, end_ms=i,
                   kind="spike", score=0.9, confidence=0.9, expected=1.0, lower=0.0,
                   upper=2.0, actual=9.0)


def test_anomaly_records_of_a_failed_save_are_inserted_by_the_next(tmp_path: Path) -> None:
    log = AnomalyLog(tmp_path / "state.db")
    records = [anomaly(i) for i in range(20)]
    fill_up(log._con)
    with pytest.raises(sqlite3.OperationalError):
        log.save(records)  # the first rows got ids, then the transaction was rolled back
    assert all(a.id is None for a in records)
    free_up(log._con)
    log.save(records)  # was: UPDATE of rows that never existed, so nothing was stored
    assert len(log.query(limit=100)) == 20
    log.close()


def test_anomalies_found_while_the_state_db_refuses_writes_are_stored_later(
    tmp_path: Path
) -> None:
    log = AnomalyLog(tmp_path / "state.db")
    index = SeriesIndex(10)
    slot = index.slot_for("latency", {"host": "a"})
    published: list[Anomaly] = []
    watcher = Watcher(index, log, default=DetectConfig(warmup=60), publish=published.append,
                      quiet_samples=5, max_rounds=100)
    values = 50 + np.random.default_rng(1).normal(0, 1, 400)
    values[300:304] = [90, 95, 92, 94]
    for start in range(0, 400, 25):
        read_only = 300 <= start < 350  # the incident opens and closes meanwhile
        log._con.execute(f"PRAGMA query_only = {'ON' if read_only else 'OFF'}")
        n = 25
        watcher.process(Batch(np.full(n, slot, np.int32), index.ids(np.full(n, slot, np.int32)),
                              1_000_000 + 1000 * np.arange(start, start + n, dtype=np.int64),
                              values[start:start + n]))
    found = log.query()
    assert [(a.state, a.start_ms) for a in found] == [("closed", 1_300_000)]  # was: []
    assert [a.state for a in published] == ["open", "closed"]
    log.close()


def test_a_segment_that_cannot_be_created_leaves_the_wal_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpu = SeriesInfo(series_id("cpu", {}), "cpu", {})
    wal = WAL(tmp_path / "wal", fsync=False)
    one = Batch(np.zeros(1, np.int32), np.array([cpu.id]), np.array([1]), np.array([1.0]))
    wal.append([one], lambda sid: cpu)
    real_open = os.open

    def full_dir(path: Any, *args: Any) -> int:
        if str(path).endswith(".seg"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, *args)

    monkeypatch.setattr(os, "open", full_dir)
    with pytest.raises(OSError):
        wal.rotate()  # a new directory entry needs a block the disk no longer has
    monkeypatch.undo()
    wal.append([one], lambda sid: cpu)  # was: EBADF (or frames in another file) from now on
    assert wal.rotate() == 1
    wal.close()
    replayed = [b.values.tolist() for _, b in WAL(tmp_path / "wal", fsync=False).replay()]
    assert replayed == [[1.0], [1.0]]
