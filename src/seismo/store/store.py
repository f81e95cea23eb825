"""The embedded store: WAL + head + Parquet blocks, with retention, compaction and rollups.

`write()` is the only way samples get in: WAL append and fsync first, then the head.
`snapshot()` hands queries a consistent view (block list + head table) under a read lock,
so retention and compaction never delete a file a running query reads.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from seismo.store.batch import Batch
from seismo.store.blocks import Block, BlockMeta, load_blocks, series_of, write_block
from seismo.store.head import NO_TS, Head, sort_dedupe
from seismo.store.series import SeriesIndex, SeriesInfo
from seismo.store.wal import WAL

log = logging.getLogger(__name__)


class _ReadWriteLock:
    """Many readers or one writer; readers are queries, the writer drops block files."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writing:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._readers:
                self._cond.wait()
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


@dataclass(frozen=True)
class Snapshot:
    """What a query reads: the blocks overlapping its range and the head."""

    blocks: list[Block]
    head: pa.Table
    head_may_overlap: bool

    @property
    def needs_dedupe(self) -> bool:
        return self.head_may_overlap or any(b.meta.may_overlap for b in self.blocks)


class Store:
    """Durable sample storage. Plain object: no HTTP, no JSON, no asyncio."""

    def __init__(
        self, data_dir: Path, *, max_series: int = 1_000_000, fsync: bool = True,
    ) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.index = SeriesIndex(max_series)
        self.head = Head()
        self._blocks_dir = data_dir / "blocks"
        self._blocks = load_blocks(self._blocks_dir)
        self._write_lock = threading.Lock()
        self._cut_lock = threading.Lock()
        self._files = _ReadWriteLock()
        self.replayed_samples = 0
        self._next_id = max((b.meta.id for b in self._blocks), default=0) + 1
        self._next_gen = max((b.meta.gen for b in self._blocks), default=0) + 1
        for block in self._blocks:
            self._load_series(block)
        self.wal = WAL(data_dir / "wal", fsync=fsync)
        self._replay()

    # -- start-up -------------------------------------------------------------------------

    def _load_series(self, block: Block) -> None:
        rows = series_of(block)
        slots = np.array(
            [self.index.add(s.id, s.metric, s.labels, enforce_limit=False) for s, _, _ in rows],
            dtype=np.int32,
        )
        if len(slots):
            self.head.observe(
                slots, np.array([r[1] for r in rows], np.int64),
                np.array([r[2] for r in rows], np.float64),
            )

    def _replay(self) -> None:
        done = max((b.meta.wal_upto for b in self._blocks), default=0)
        self.wal.remove_through(done)
        started = time.monotonic()
        for series, batch in self.wal.replay(after=done):
            for s in series:
                self.index.add(s.id, s.metric, s.labels, enforce_limit=False)
            try:
                batch.slots = self._slots_of(batch.sids)
            except KeyError as exc:
                log.error("WAL record refers to undefined series %s; record skipped", exc)
                continue
            self.head.append(batch)
            self.replayed_samples += len(batch)
        if self.replayed_samples:
            log.info(
                "replayed %d samples from the WAL in %.2fs",
                self.replayed_samples, time.monotonic() - started,
            )

    def _slots_of(self, sids: np.ndarray) -> np.ndarray:
        """Slots of series ids; KeyError for an id the index does not know."""
        unique, inverse = np.unique(sids, return_inverse=True)
        slots = [self.index.slot_of_id(int(s)) for s in unique]
        if None in slots:
            raise KeyError(int(unique[slots.index(None)]))
        mapped: np.ndarray = np.array(slots, dtype=np.int32)[inverse]
        return mapped

    # -- writes ---------------------------------------------------------------------------

    def write(self, batches: list[Batch]) -> None:
        """Make batches durable (one fsync for all), then visible in the head."""
        with self._write_lock:
            self.wal.append(batches, self._describe)
            for batch in batches:
                self.head.append(batch)

    def _describe(self, sid: int) -> SeriesInfo:
        slot = self.index.slot_of_id(sid)
        assert slot is not None, "a batch refers to a series the index does not know"
        return self.index.info(slot)

    def should_cut(self, block_duration_s: float, block_max_samples: int) -> bool:
        return self.head.count >= block_max_samples or (
            self.head.count > 0 and self.head.age_s >= block_duration_s
        )

    def cut(self) -> Block | None:
        """Turn the head into a block; the WAL it came from is deleted once the block is durable."""
        with self._cut_lock:
            with self._write_lock:
                if self.head.count == 0 and not self.head.has_frozen:
                    return None
                closed = self.wal.rotate()
                table, overlaps = self.head.freeze()
            sid = table.column("sid").to_numpy()
            ts = table.column("ts").to_numpy()
            values = table.column("value").to_numpy()
            block = self._write(sid, ts, values, wal_upto=closed, may_overlap=overlaps)
            with self._files.write():  # no query sees both the block and the frozen head
                self._add(block)
                self.head.release()
            self.wal.remove_through(closed)
            return block

    def _write(
        self, sid: np.ndarray, ts: np.ndarray, values: np.ndarray, *,
        wal_upto: int, may_overlap: bool, gen: int | None = None,
    ) -> Block:
        keep = sort_dedupe(sid, ts)
        sid, ts, values = sid[keep], ts[keep], values[keep]
        unique = np.unique(sid)
        slots = self._slots_of(unique)
        series = [self.index.info(int(s)) for s in slots]
        meta = BlockMeta(
            id=self._next_id, gen=gen if gen is not None else self._next_gen,
            min_ts=int(ts.min()), max_ts=int(ts.max()), count=len(ts), series=len(unique),
            wal_upto=wal_upto, may_overlap=may_overlap,
        )
        self._next_id += 1
        self._next_gen = max(self._next_gen, meta.gen + 1)
        last = self.latest(slots)
        block = write_block(self._blocks_dir, meta, sid, ts, values, series, last)
        log.info("cut block %s: %d samples, %d series, %d bytes",
                 block.path.name, meta.count, meta.series, meta.bytes)
        return block

    def _add(self, block: Block) -> None:
        self._blocks.append(block)
        self._blocks.sort(key=lambda b: b.meta.gen)

    # -- retention and compaction -----------------------------------------------------------

    def apply_retention(self, now_ms: int, retention_s: float) -> list[Block]:
        """Drop every block whose newest sample is older than the retention period."""
        cutoff = now_ms - int(retention_s * 1000)
        with self._files.write():
            old = [b for b in self._blocks if b.meta.max_ts < cutoff]
            self._blocks = [b for b in self._blocks if b.meta.max_ts >= cutoff]
            for block in old:
                shutil.rmtree(block.path, ignore_errors=True)
        for block in old:
            log.info("retention dropped block %s (newest sample %d)",
                     block.path.name, block.meta.max_ts)
        return old

    def compact(self, target_samples: int) -> Block | None:
        """Merge the oldest run of consecutive small blocks into one; return it, if any."""
        with self._cut_lock:
            run = self._compaction_run(target_samples)
            if len(run) < 2:
                return None
            parts = [b.read_samples() for b in run]
            sid = np.concatenate([p[0] for p in parts])
            ts = np.concatenate([p[1] for p in parts])
            values = np.concatenate([p[2] for p in parts])
            merged = self._write(
                sid, ts, values,
                wal_upto=max(b.meta.wal_upto for b in run),
                may_overlap=any(b.meta.may_overlap for b in run),
                gen=max(b.meta.gen for b in run),
            )
            with self._files.write():
                gone = {id(b) for b in run}
                self._blocks = [b for b in self._blocks if id(b) not in gone]
                self._add(merged)
                for block in run:
                    shutil.rmtree(block.path, ignore_errors=True)
            log.info("compacted %d blocks into %s", len(run), merged.path.name)
            return merged

    def _compaction_run(self, target_samples: int) -> list[Block]:
        small = target_samples // 2
        run: list[Block] = []
        total = 0
        for block in self._blocks:
            fits = block.meta.count < small and total + block.meta.count <= target_samples
            if fits:
                run.append(block)
                total += block.meta.count
            elif len(run) >= 2:
                break
            else:
                run, total = ([block], block.meta.count) if block.meta.count < small else ([], 0)
        return run

    # -- reads ----------------------------------------------------------------------------

    @contextmanager
    def snapshot(
        self, start_ms: int | None = None, end_ms: int | None = None
    ) -> Iterator[Snapshot]:
        """A consistent view for one query; block files stay on disk until it ends."""
        with self._files.read():
            blocks = [
                b for b in self._blocks
                if (start_ms is None or b.meta.max_ts >= start_ms)
                and (end_ms is None or b.meta.min_ts <= end_ms)
            ]
            head, overlap = self.head.view()
            yield Snapshot(blocks, head, overlap)

    @property
    def blocks(self) -> list[Block]:
        return list(self._blocks)

    def latest(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ts, value) of the newest sample of each slot; ts is NO_TS where there is none."""
        last_ts, last_value = self.head.latest
        inside = slots < len(last_ts)
        ts = np.full(len(slots), NO_TS, np.int64)
        values = np.full(len(slots), np.nan)
        ts[inside] = last_ts[slots[inside]]
        values[inside] = last_value[slots[inside]]
        return ts, values

    def close(self) -> None:
        with self._write_lock:
            self.wal.close()
