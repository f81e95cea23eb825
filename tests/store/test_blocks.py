"""Parquet blocks: the decimal-scale encoding, its size on disk, rollups and loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.store import SeriesInfo, series_id
from seismo.store.blocks import (
    BlockMeta,
    encode_samples,
    load_blocks,
    series_of,
    series_scales,
    write_block,
)
from seismo.store.head import sort_dedupe


def decode(table: pa.Table) -> np.ndarray:
    """Values back from encoded columns, as Block.read_samples does."""
    scale = table.column("scale").to_numpy().astype(np.float64)
    vi = table.column("vi").to_numpy(zero_copy_only=False)
    vf = table.column("vf").to_numpy(zero_copy_only=False)
    values: np.ndarray = np.where(~np.isnan(vi), vi / np.power(10.0, scale), vf)
    return values


def walk(rng: np.random.Generator, series: int, samples: int) -> np.ndarray:
    """Two-decimal random walks, one row per series, as a gauge sampled every 10 s."""
    steps = rng.integers(-50, 51, size=(series, samples)) / 100
    start = rng.integers(0, 100_000, size=(series, 1)) / 100
    return np.round(start + np.cumsum(steps, axis=1), 2)


def meta(block_id: int, ts: np.ndarray, sid: np.ndarray) -> BlockMeta:
    return BlockMeta(
        id=block_id, gen=block_id, min_ts=int(ts.min()), max_ts=int(ts.max()),
        count=len(ts), series=len(np.unique(sid)), wal_upto=0, may_overlap=False,
    )


def series_infos(n: int) -> list[SeriesInfo]:
    infos = [SeriesInfo(series_id("g", {"i": str(i)}), "g", {"i": str(i)}) for i in range(n)]
    return sorted(infos, key=lambda s: s.id)


def columns(
    infos: list[SeriesInfo], values: np.ndarray, step_ms: int = 10_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sid, ts, value) sorted by (series, ts) for a (series × samples) value matrix."""
    n, m = values.shape
    sid = np.repeat(np.array([s.id for s in infos], np.int64), m)
    ts = np.tile(np.arange(m, dtype=np.int64) * step_ms, n) + 1_700_000_000_000
    return sid, ts, values.reshape(-1)


# -- series_scales and encode_samples ------------------------------------------------------


def test_scale_is_the_fewest_decimals_that_are_exact() -> None:
    values = np.array([1.0, 2.0, 1.5, 2.25, 0.125, 12.34, 1 / 3, 1e300, 1e-300, 5.0])
    starts = np.array([0, 2, 3, 4, 5, 6, 7, 8, 9])
    assert series_scales(values, starts).tolist() == [0, 1, 2, 3, 2, -1, -1, -1, 0]


def test_one_inexact_value_makes_the_whole_series_float() -> None:
    values = np.array([1.25, 2.5, 0.1 + 0.2, 7.0, 8.0])
    assert series_scales(values, np.array([0, 3])).tolist() == [-1, 0]


def test_integers_beyond_2_53_fall_back_to_floats() -> None:
    assert series_scales(np.array([2.0**53, 1.0]), np.array([0, 1])).tolist() == [-1, 0]
    assert series_scales(np.array([2.0**53 - 1]), np.array([0])).tolist() == [0]
    # 9e12 needs scale 3 to keep 0.001 but 9e15 would pass 2**53: float.
    assert series_scales(np.array([9e12 + 0.001]), np.array([0])).tolist() == [3]
    assert series_scales(np.array([9e15 + 2]), np.array([0])).tolist() == [0]
    assert series_scales(np.array([9e15, 0.5]), np.array([0])).tolist() == [-1]


def test_two_decimal_random_walks_encode_as_scaled_integers_exactly() -> None:
    rng = np.random.default_rng(7)
    infos = series_infos(50)
    sid, ts, values = columns(infos, walk(rng, 50, 400))
    table = encode_samples(sid, ts, values)
    assert table.column("vf").null_count == len(values)
    assert set(table.column("scale").to_numpy().tolist()) <= {0, 1, 2}
    np.testing.assert_array_equal(decode(table), values)
    assert table.column("sid").to_numpy().tolist() == sid.tolist()
    assert table.column("ts").to_numpy().tolist() == ts.tolist()


def test_thirds_and_huge_values_fall_back_to_exact_floats() -> None:
    sid = np.array([1, 1, 1, 2, 2, 3, 3], np.int64)
    ts = np.arange(7, dtype=np.int64)
    values = np.array([1 / 3, 2 / 3, 1.0, 1e300, -1e300, 0.25, -7.5])
    table = encode_samples(sid, ts, values)
    assert table.column("vi").is_null().to_pylist() == [True] * 5 + [False] * 2
    assert table.column("vi").to_pylist()[5:] == [25, -750]
    assert table.column("scale").to_pylist()[5:] == [2, 2]
    np.testing.assert_array_equal(decode(table), values)


finite = st.floats(allow_nan=False, allow_infinity=False)
two_decimals = st.integers(-10**12, 10**12).map(lambda i: i / 100)
small_ints = st.integers(-(2**60), 2**60).map(float)


@settings(max_examples=200, deadline=None)
@given(st.lists(
    st.lists(st.one_of(finite, two_decimals, small_ints), min_size=1, max_size=20),
    min_size=1, max_size=6,
))
def test_encoding_round_trips_every_finite_float(per_series: list[list[float]]) -> None:
    sid = np.concatenate([np.full(len(v), i, np.int64) for i, v in enumerate(per_series)])
    values = np.concatenate([np.array(v, np.float64) for v in per_series])
    ts = np.arange(len(values), dtype=np.int64)
    table = encode_samples(sid, ts, values)
    decoded = decode(table)
    # -0.0 may come back as 0.0; every other value comes back bit for bit.
    np.testing.assert_array_equal(decoded, values)
    assert np.all((np.signbit(decoded) == np.signbit(values)) | (values == 0))


# -- write_block ---------------------------------------------------------------------------


def test_two_decimal_random_walk_block_is_at_most_2_bytes_a_sample(tmp_path: Path) -> None:
    rng = np.random.default_rng(42)
    infos = series_infos(1000)
    sid, ts, values = columns(infos, walk(rng, 1000, 2000))
    last = (np.full(1000, ts.max()), values.reshape(1000, 2000)[:, -1].copy())
    block = write_block(tmp_path, meta(1, ts, sid), sid, ts, values, infos, last)

    assert block.meta.count == 2_000_000
    assert block.meta.bytes / block.meta.count <= 2.0, block.meta.bytes / block.meta.count
    assert block.meta.bytes == sum(p.stat().st_size for p in block.path.iterdir()
                                   if p.name != "meta.json")
    got_sid, got_ts, got_values = block.read_samples()
    np.testing.assert_array_equal(got_sid, sid)
    np.testing.assert_array_equal(got_ts, ts)
    np.testing.assert_array_equal(got_values, values)


def test_block_rollups_only_where_they_pay(tmp_path: Path) -> None:
    infos = series_infos(2)
    # 10 s data over 3 h: 1 m rollup is 1/6 of the rows (skipped), 1 h is 1/360 (kept).
    values = np.round(np.random.default_rng(1).normal(50, 5, size=(2, 1080)), 2)
    sid, ts, flat = columns(infos, values)
    ts = ts - ts.min()  # start on an hour
    last = (np.full(2, ts.max()), values[:, -1].copy())
    block = write_block(tmp_path, meta(1, ts, sid), sid, ts, flat, infos, last)
    assert block.meta.rollups == ["1h"]
    assert not block.rollup_path("1m").exists()

    rollup = pq.read_table(block.rollup_path("1h")).to_pydict()
    assert rollup["ts"] == [0, 3_600_000, 7_200_000] * 2
    assert rollup["cnt"] == [360] * 6
    hourly = flat.reshape(6, 360)
    np.testing.assert_allclose(rollup["sum"], hourly.sum(axis=1))
    assert rollup["min"] == hourly.min(axis=1).tolist()
    assert rollup["max"] == hourly.max(axis=1).tolist()


def test_block_series_table_and_meta_round_trip(tmp_path: Path) -> None:
    infos = [SeriesInfo(series_id("cpu", {"host": "a", "dc": "x"}), "cpu",
                        {"host": "a", "dc": "x"}),
             SeriesInfo(series_id("up", {}), "up", {})]
    infos.sort(key=lambda s: s.id)
    sid = np.array([infos[0].id, infos[0].id, infos[1].id], np.int64)
    ts = np.array([10, 20, 15], np.int64)
    values = np.array([0.5, 0.75, 1.0])
    last = (np.array([20, 15], np.int64), np.array([0.75, 1.0]))
    block = write_block(tmp_path, meta(3, ts, sid), sid, ts, values, infos, last)

    assert block.path == tmp_path / "00000003"
    assert [(s, t, v) for s, t, v in series_of(block)] == [
        (infos[0], 20, 0.75), (infos[1], 15, 1.0),
    ]
    on_disk = json.loads((block.path / "meta.json").read_text())
    assert on_disk["count"] == 3 and on_disk["series"] == 2 and on_disk["id"] == 3
    assert not list(tmp_path.glob(".tmp-*"))


def test_load_blocks_sorts_by_generation_and_removes_half_written_ones(tmp_path: Path) -> None:
    infos = series_infos(1)
    sid = np.array([infos[0].id], np.int64)
    for block_id, gen in [(1, 5), (2, 3)]:
        m = meta(block_id, np.array([block_id]), sid)
        m.gen = gen
        write_block(tmp_path, m, sid, np.array([block_id], np.int64), np.array([1.0]), infos,
                    (np.array([1]), np.array([1.0])))
    (tmp_path / ".tmp-00000009").mkdir()
    (tmp_path / "00000010").mkdir()  # renamed without meta.json: not a block

    blocks = load_blocks(tmp_path)
    assert [b.meta.id for b in blocks] == [2, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000001", "00000002"]


def test_sort_dedupe_keeps_the_last_arrival() -> None:
    sid = np.array([2, 1, 2, 1, 2], np.int64)
    ts = np.array([5, 7, 5, 7, 3], np.int64)
    keep = sort_dedupe(sid, ts)
    assert keep.tolist() == [3, 4, 2]


@pytest.mark.parametrize("n", [0, 1])
def test_sort_dedupe_of_tiny_inputs(n: int) -> None:
    assert sort_dedupe(np.arange(n), np.arange(n)).tolist() == list(range(n))
