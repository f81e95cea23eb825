"""Immutable Parquet blocks: samples sorted by (series, ts), their rollups and series table.

Values with few decimals are stored as integers scaled per series (12.34 → 1234, scale 2;
the VictoriaMetrics trick) so DELTA_BINARY_PACKED + zstd brings them near 1 byte a sample;
series with no exact scale fall back to BYTE_STREAM_SPLIT floats. A block directory is
written under a temporary name, fsync'd, then renamed into place: it exists whole or not.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from seismo.store.series import SeriesInfo

MAX_SCALE = 6
_EXACT_LIMIT = 2.0**53
ROLLUPS = {"1m": 60_000, "1h": 3_600_000}
# A rollup is written only when it has at most this fraction of the raw rows: for 10 s data
# the 1 m rollup (1/6) would cost more disk than it saves query time; the 1 h one (1/360) pays.
ROLLUP_MAX_RATIO = 0.1
# The SQL expression that gives back the original float of a stored row.
VALUE_SQL = "CASE WHEN vi IS NULL THEN vf ELSE vi / pow(10, scale) END"


@dataclass
class BlockMeta:
    id: int
    gen: int
    min_ts: int
    max_ts: int
    count: int
    series: int
    wal_upto: int
    may_overlap: bool
    bytes: int = 0
    rollups: list[str] = field(default_factory=list)


@dataclass
class Block:
    path: Path
    meta: BlockMeta

    @property
    def samples_path(self) -> Path:
        return self.path / "samples.parquet"

    def rollup_path(self, name: str) -> Path:
        return self.path / f"rollup_{name}.parquet"

    def read_series(self) -> pa.Table:
        return pq.read_table(self.path / "series.parquet")

    def read_samples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sid, ts, value) arrays of every sample in the block, decoded."""
        table = pq.read_table(self.samples_path)
        sid = table.column("sid").to_numpy()
        ts = table.column("ts").to_numpy()
        scale = table.column("scale").to_numpy().astype(np.float64)
        vi = table.column("vi").to_numpy(zero_copy_only=False)
        vf = table.column("vf").to_numpy(zero_copy_only=False)
        is_int = ~np.isnan(vi)
        values = np.where(is_int, vi / np.power(10.0, scale), vf)
        return sid, ts, values


def series_scales(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Smallest decimal scale that represents every value of each series exactly, or -1.

    >>> series_scales(np.array([1.5, 2.25, 3.0, 0.1]), np.array([0, 2])).tolist()
    [2, 1]
    """
    scales = np.full(len(starts), -1, dtype=np.int8)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(MAX_SCALE + 1):
            factor = 10.0**k
            scaled = np.round(values * factor)
            exact = (scaled / factor == values) & (np.abs(scaled) < _EXACT_LIMIT)
            series_exact = np.logical_and.reduceat(exact, starts)
            scales[(scales < 0) & series_exact] = k
            if np.all(scales >= 0):
                break
    return scales


def encode_samples(sid: np.ndarray, ts: np.ndarray, values: np.ndarray) -> pa.Table:
    """Encode sorted samples into the block's columns (sid, ts, scale, vi, vf)."""
    starts = np.concatenate([np.zeros(1, np.intp), np.flatnonzero(sid[1:] != sid[:-1]) + 1])
    lengths = np.diff(np.concatenate([starts, np.array([len(sid)], np.intp)]))
    scale = np.repeat(series_scales(values, starts), lengths)
    is_float = scale < 0
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.round(values * np.power(10.0, np.maximum(scale, 0)))
    vi = np.where(is_float, 0.0, scaled).astype(np.int64)
    return pa.table({
        "sid": pa.array(sid, pa.int64()),
        "ts": pa.array(ts, pa.int64()),
        "scale": pa.array(np.maximum(scale, 0), pa.int8()),
        "vi": pa.array(vi, pa.int64(), mask=is_float),
        "vf": pa.array(values, pa.float64(), mask=~is_float),
    })


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_block(
    root: Path,
    meta: BlockMeta,
    sid: np.ndarray,
    ts: np.ndarray,
    values: np.ndarray,
    series: list[SeriesInfo],
    last: tuple[np.ndarray, np.ndarray],
) -> Block:
    """Write sorted, deduplicated samples as a block directory under `root`, atomically.

    On failure (a full disk) the half-written directory is removed, so it does not hold
    space until the next start, and the error is an OSError.
    """
    tmp = root / f".tmp-{meta.id:08d}"
    try:
        return _write_block(root, tmp, meta, sid, ts, values, series, last)
    except duckdb.IOException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        code = errno.ENOSPC if "no space" in str(exc).lower() else errno.EIO
        raise OSError(code, f"cannot write block {meta.id}: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_block(
    root: Path, tmp: Path, meta: BlockMeta, sid: np.ndarray, ts: np.ndarray,
    values: np.ndarray, series: list[SeriesInfo], last: tuple[np.ndarray, np.ndarray],
) -> Block:
    final = root / f"{meta.id:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    samples = encode_samples(sid, ts, values)
    pq.write_table(
        samples, tmp / "samples.parquet",
        compression="zstd", compression_level=3,
        use_dictionary=["sid", "scale"],
        column_encoding={"ts": "DELTA_BINARY_PACKED", "vi": "DELTA_BINARY_PACKED",
                         "vf": "BYTE_STREAM_SPLIT"},
        row_group_size=256 * 1024,
    )
    raw = pa.table({"sid": sid, "ts": ts, "value": values})
    con = duckdb.connect()
    try:
        con.register("raw", raw)
        for name, width in ROLLUPS.items():
            rows = con.execute(
                f"SELECT count(*) FROM (SELECT DISTINCT sid, ts // {width} FROM raw)"
            ).fetchone()
            if rows is None or rows[0] > ROLLUP_MAX_RATIO * len(ts):
                continue
            meta.rollups.append(name)
            out = (tmp / f"rollup_{name}.parquet").as_posix()
            con.execute(
                f"COPY (SELECT sid, ts // {width} * {width} AS ts, count(*) AS cnt, "
                "sum(value) AS sum, min(value) AS min, max(value) AS max FROM raw "
                f"GROUP BY ALL ORDER BY sid, ts) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
            )
    finally:
        con.close()
    last_ts, last_value = last
    pq.write_table(
        pa.table({
            "sid": pa.array([s.id for s in series], pa.int64()),
            "metric": [s.metric for s in series],
            "labels": [json.dumps(s.labels, sort_keys=True) for s in series],
            "last_ts": pa.array(last_ts, pa.int64()),
            "last_value": pa.array(last_value, pa.float64()),
        }),
        tmp / "series.parquet", compression="zstd",
    )
    meta.bytes = sum(p.stat().st_size for p in tmp.iterdir())
    (tmp / "meta.json").write_text(json.dumps(asdict(meta)))
    for p in tmp.iterdir():
        _fsync(p)
    _fsync(tmp)
    os.rename(tmp, final)
    _fsync(root)
    return Block(final, meta)


def load_blocks(root: Path) -> list[Block]:
    """Blocks found under `root`, oldest generation first; half-written ones are removed."""
    root.mkdir(parents=True, exist_ok=True)
    blocks = []
    for path in root.iterdir():
        if path.name.startswith("."):
            shutil.rmtree(path, ignore_errors=True)
            continue
        meta_file = path / "meta.json"
        if not meta_file.exists():
            shutil.rmtree(path, ignore_errors=True)
            continue
        blocks.append(Block(path, BlockMeta(**json.loads(meta_file.read_text()))))
    return sorted(blocks, key=lambda b: b.meta.gen)


def series_of(block: Block) -> list[tuple[SeriesInfo, int, float]]:
    """(series, last ts, last value) for every series in a block."""
    table = block.read_series().to_pydict()
    return [
        (SeriesInfo(sid, metric, json.loads(labels)), last_ts, last_value)
        for sid, metric, labels, last_ts, last_value in zip(
            table["sid"], table["metric"], table["labels"], table["last_ts"],
            table["last_value"], strict=True,
        )
    ]
