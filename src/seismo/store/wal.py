"""Write-ahead log: every acknowledged batch is here, fsync'd, before the ingest reply.

Segments `wal/NNNNNNNN.seg` hold frames `[u32 length][u32 crc32][msgpack record]`. A
segment is rotated when the head is cut into a block and deleted once that block is
durable. Each segment repeats the definitions of the series it uses, so it replays alone.
A torn last frame (power cut mid-write) is logged, truncated away and skipped.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import numpy as np

from seismo.store.batch import Batch
from seismo.store.series import SeriesInfo

log = logging.getLogger(__name__)
_HEADER = struct.Struct("<II")


class _Record(msgspec.Struct, array_like=True):
    series: list[tuple[int, str, dict[str, str]]]
    sids: bytes
    ts: bytes
    values: bytes


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Record)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WAL:
    """Append-only log of batches in numbered segments."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        existing = self.segments()
        self.segment = existing[-1] + 1 if existing else 1
        self._defined: set[int] = set()
        self._fd = self._open(self.segment)
        self.bytes_written = 0

    def _path(self, segment: int) -> Path:
        return self.dir / f"{segment:08d}.seg"

    def _open(self, segment: int) -> int:
        fd = os.open(self._path(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if self.fsync:
            _fsync_dir(self.dir)
        return fd

    def segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.dir.glob("*.seg") if p.stem.isdigit())

    def append(self, batches: list[Batch], describe: Callable[[int], SeriesInfo]) -> None:
        """Write batches and make them durable with one fsync (group commit).

        `describe` gives the definition of a series id not yet written to this segment.
        """
        frames = []
        defined = set()
        for batch in batches:
            fresh = [
                sid for sid in np.unique(batch.sids).tolist()
                if sid not in self._defined and sid not in defined
            ]
            defined.update(fresh)
            series = [(i.id, i.metric, i.labels) for i in map(describe, fresh)]
            payload = _encoder.encode(
                _Record(series, batch.sids.tobytes(), batch.ts.tobytes(), batch.values.tobytes())
            )
            frames.append(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        data = b"".join(frames)
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            if self.fsync:
                os.fsync(self._fd)
        except OSError:
            os.ftruncate(self._fd, start)
            raise
        self._defined |= defined
        self.bytes_written += len(data)

    def rotate(self) -> int:
        """Start a new segment; return the number of the one just closed."""
        closed = self.segment
        fd = self._open(closed + 1)  # first: if it fails (disk full), this segment stays open
        os.close(self._fd)
        self._fd, self.segment = fd, closed + 1
        self._defined = set()
        return closed

    def remove_through(self, segment: int) -> None:
        """Delete every segment numbered `segment` or lower (their data is in blocks)."""
        for number in self.segments():
            if number <= segment:
                self._path(number).unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def replay(self, after: int = 0) -> Iterator[tuple[list[SeriesInfo], Batch]]:
        """Yield (series definitions, batch) for every intact frame of segments > `after`."""
        for number in self.segments():
            if number <= after or number == self.segment:
                continue
            yield from self._replay_segment(self._path(number))

    def _replay_segment(self, path: Path) -> Iterator[tuple[list[SeriesInfo], Batch]]:
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            record = self._frame_at(data, pos)
            if record is None:
                log.warning(
                    "WAL %s: torn or corrupt record at byte %d of %d; skipped the rest",
                    path.name, pos, len(data),
                )
                with open(path, "r+b") as fh:
                    fh.truncate(pos)
                    os.fsync(fh.fileno())
                return
            size, rec = record
            pos += _HEADER.size + size
            series = [SeriesInfo(sid, metric, labels) for sid, metric, labels in rec.series]
            sids = np.frombuffer(rec.sids, dtype=np.int64)
            batch = Batch(
                np.zeros(len(sids), np.int32), sids,
                np.frombuffer(rec.ts, dtype=np.int64), np.frombuffer(rec.values, dtype=np.float64),
            )
            yield series, batch

    @staticmethod
    def _frame_at(data: bytes, pos: int) -> tuple[int, _Record] | None:
        if pos + _HEADER.size > len(data):
            return None
        size, crc = _HEADER.unpack_from(data, pos)
        payload = data[pos + _HEADER.size : pos + _HEADER.size + size]
        if len(payload) != size or zlib.crc32(payload) != crc:
            return None
        try:
            return size, _decoder.decode(payload)
        except msgspec.DecodeError:
            return None
