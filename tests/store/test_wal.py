"""The write-ahead log: replay, torn last records, rotation and removal of segments."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from seismo.store import Batch, SeriesInfo, series_id
from seismo.store.wal import WAL

CPU = SeriesInfo(series_id("cpu", {"host": "a"}), "cpu", {"host": "a"})
MEM = SeriesInfo(series_id("mem", {"host": "b"}), "mem", {"host": "b"})
KNOWN = {CPU.id: CPU, MEM.id: MEM}


def batch(sids: list[int], ts: list[int], values: list[float]) -> Batch:
    return Batch(
        np.zeros(len(sids), np.int32), np.array(sids, np.int64),
        np.array(ts, np.int64), np.array(values, np.float64),
    )


def replayed(wal: WAL, after: int = 0) -> list[tuple[list[int], list[int], list[float]]]:
    return [
        (b.sids.tolist(), b.ts.tolist(), b.values.tolist()) for _, b in wal.replay(after)
    ]


def write_three(directory: Path) -> list[int]:
    """Three records in segment 1, then close (as a crash would leave them).

    Returns the size of the segment after each record.
    """
    wal = WAL(directory, fsync=False)
    sizes = []
    wal.append([batch([CPU.id], [1000], [1.5])], KNOWN.__getitem__)
    sizes.append(wal.bytes_written)
    wal.append([batch([CPU.id, MEM.id], [2000, 2000], [2.5, 7.0])], KNOWN.__getitem__)
    sizes.append(wal.bytes_written)
    wal.append([batch([MEM.id], [3000], [8.25])], KNOWN.__getitem__)
    sizes.append(wal.bytes_written)
    wal.close()
    assert (directory / "00000001.seg").stat().st_size == sizes[-1]
    return sizes


def test_replay_gives_back_every_record_in_order(tmp_path: Path) -> None:
    write_three(tmp_path)
    wal = WAL(tmp_path, fsync=False)
    assert replayed(wal) == [
        ([CPU.id], [1000], [1.5]),
        ([CPU.id, MEM.id], [2000, 2000], [2.5, 7.0]),
        ([MEM.id], [3000], [8.25]),
    ]
    wal.close()


def test_each_series_is_defined_once_per_segment(tmp_path: Path) -> None:
    write_three(tmp_path)
    wal = WAL(tmp_path, fsync=False)
    definitions = [series for series, _ in wal.replay()]
    assert definitions == [[CPU], [MEM], []]
    wal.close()


def test_group_commit_writes_several_batches_as_separate_records(tmp_path: Path) -> None:
    wal = WAL(tmp_path, fsync=True)
    wal.append(
        [batch([CPU.id], [1], [1.0]), batch([CPU.id], [2], [2.0])], KNOWN.__getitem__
    )
    wal.close()
    wal = WAL(tmp_path, fsync=False)
    assert replayed(wal) == [([CPU.id], [1], [1.0]), ([CPU.id], [2], [2.0])]
    wal.close()


def test_reopen_starts_a_new_segment_and_does_not_replay_it(tmp_path: Path) -> None:
    write_three(tmp_path)
    wal = WAL(tmp_path, fsync=False)
    assert wal.segment == 2
    wal.append([batch([CPU.id], [9000], [9.0])], KNOWN.__getitem__)
    # The open segment is the one being written: replay covers the closed ones only.
    assert [ts for _, ts, _ in replayed(wal)] == [[1000], [2000, 2000], [3000]]
    wal.close()
    # A new segment defines its series again, so it replays alone.
    wal = WAL(tmp_path, fsync=False)
    records = list(wal.replay(after=1))
    assert [(series, b.ts.tolist()) for series, b in records] == [([CPU], [9000])]
    wal.close()


@pytest.mark.parametrize("cut_bytes", [1, 5, 8, 11])
def test_torn_last_record_is_skipped_and_truncated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, cut_bytes: int
) -> None:
    intact = write_three(tmp_path)[1]
    segment = tmp_path / "00000001.seg"
    segment.write_bytes(segment.read_bytes()[:-cut_bytes])

    with caplog.at_level(logging.WARNING, logger="seismo.store.wal"):
        wal = WAL(tmp_path, fsync=False)
        records = replayed(wal)
    wal.close()

    assert records == [
        ([CPU.id], [1000], [1.5]),
        ([CPU.id, MEM.id], [2000, 2000], [2.5, 7.0]),
    ]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "00000001.seg" in warnings[0].getMessage()
    assert "torn or corrupt" in warnings[0].getMessage()
    assert segment.stat().st_size == intact


def test_garbage_after_the_last_record_is_skipped_and_truncated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_three(tmp_path)
    segment = tmp_path / "00000001.seg"
    size = segment.stat().st_size
    with open(segment, "ab") as fh:
        fh.write(b"\x10\x00\x00\x00garbage-garbage-garbage")

    with caplog.at_level(logging.WARNING, logger="seismo.store.wal"):
        wal = WAL(tmp_path, fsync=False)
        records = replayed(wal)
    wal.close()

    assert len(records) == 3
    assert any("torn or corrupt" in r.getMessage() for r in caplog.records)
    assert segment.stat().st_size == size
    # A second replay finds the segment clean.
    caplog.clear()
    wal = WAL(tmp_path, fsync=False)
    assert len(replayed(wal)) == 3
    wal.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_corrupt_payload_with_right_length_fails_the_crc(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_three(tmp_path)
    segment = tmp_path / "00000001.seg"
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="seismo.store.wal"):
        wal = WAL(tmp_path, fsync=False)
        assert len(replayed(wal)) == 2
    wal.close()
    assert any("torn or corrupt" in r.getMessage() for r in caplog.records)


def test_rotate_and_remove_through(tmp_path: Path) -> None:
    wal = WAL(tmp_path, fsync=False)
    wal.append([batch([CPU.id], [1], [1.0])], KNOWN.__getitem__)
    assert wal.rotate() == 1
    wal.append([batch([CPU.id], [2], [2.0])], KNOWN.__getitem__)
    assert wal.rotate() == 2
    wal.append([batch([MEM.id], [3], [3.0])], KNOWN.__getitem__)
    assert wal.segments() == [1, 2, 3]
    # Segment 3 is open: replay sees the closed ones, each with its own definitions.
    assert [(s, b.ts.tolist()) for s, b in wal.replay()] == [([CPU], [1]), ([CPU], [2])]
    assert [b.ts.tolist() for _, b in wal.replay(after=1)] == [[2]]

    wal.remove_through(2)
    assert wal.segments() == [3]
    assert not (tmp_path / "00000001.seg").exists()
    assert not (tmp_path / "00000002.seg").exists()
    wal.close()

    wal = WAL(tmp_path, fsync=False)
    assert wal.segment == 4
    assert [(s, b.ts.tolist()) for s, b in wal.replay()] == [([MEM], [3])]
    wal.close()


def test_files_that_are_not_segments_are_ignored(tmp_path: Path) -> None:
    write_three(tmp_path)
    (tmp_path / "notes.seg").write_bytes(b"x")
    (tmp_path / "00000007.tmp").write_bytes(b"x")
    wal = WAL(tmp_path, fsync=False)
    assert wal.segments() == [1, 2]
    assert len(replayed(wal)) == 3
    wal.close()


def test_closing_twice_is_harmless(tmp_path: Path) -> None:
    wal = WAL(tmp_path, fsync=False)
    wal.close()
    # A second close must not close whatever file now has the same descriptor number.
    other = os.open(tmp_path / "other", os.O_WRONLY | os.O_CREAT)
    try:
        wal.close()
        os.fstat(other)
    finally:
        with contextlib.suppress(OSError):
            os.close(other)
