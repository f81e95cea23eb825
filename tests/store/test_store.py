"""The store: round trip through WAL, head and blocks; restart, retention, compaction, limits."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seismo.config import Limits
from seismo.query.engine import QueryEngine, RangeQuery
from seismo.query.selector import parse_selector
from seismo.store import Batch, SeriesIndex, SeriesLimitReached, Store
from seismo.store.head import NO_TS

Labels = dict[str, str]
Key = tuple[str, tuple[tuple[str, str], ...], int]
WIDE = Limits(max_points_per_series=1_000_000, max_points_per_query=100_000_000)


def write(store: Store, rows: list[tuple[str, Labels, int, float]]) -> None:
    """One batch of (metric, labels, ts_ms, value) rows, as ingest builds it."""
    slots = np.array([store.index.slot_for(m, labels) for m, labels, _, _ in rows], np.int32)
    store.write([Batch(
        slots, store.index.ids(slots),
        np.array([r[2] for r in rows], np.int64), np.array([r[3] for r in rows], np.float64),
    )])


def visible(store: Store, start_ms: int = 0, end_ms: int = 10_000) -> dict[Key, float]:
    """Every (series, ts) → value a query sees, read with 1 ms buckets; each holds one sample."""
    engine = QueryEngine(store, WIDE)
    out: dict[Key, float] = {}
    for metric in store.index.metrics():
        selector = parse_selector(metric)
        by_max = engine.range(RangeQuery(selector, start_ms, end_ms, 1, "max"))
        by_count = engine.range(RangeQuery(selector, start_ms, end_ms, 1, "count"))
        assert [(s["labels"], s["timestamps"]) for s in by_max] == [
            (s["labels"], s["timestamps"]) for s in by_count
        ]
        for s, c in zip(by_max, by_count, strict=True):
            assert set(c["values"]) == {1.0}, f"duplicate samples in {metric} {s['labels']}"
            labels = tuple(sorted(s["labels"].items()))
            for ts, value in zip(s["timestamps"], s["values"], strict=True):
                out[metric, labels, ts] = value
    return out


def raw(store: Store) -> dict[Key, float]:
    """The same from the files and the head directly: the newest generation of a sample wins."""
    names = {}
    for slot in range(len(store.index)):
        info = store.index.info(slot)
        names[info.id] = (info.metric, tuple(sorted(info.labels.items())))
    out: dict[Key, float] = {}
    sources = [b.read_samples() for b in store.blocks]  # oldest generation first
    head = store.head.table()
    sources.append((head.column("sid").to_numpy(), head.column("ts").to_numpy(),
                    head.column("value").to_numpy()))
    for sid, ts, values in sources:
        seen: set[tuple[int, int]] = set()
        for s, t, v in zip(sid.tolist(), ts.tolist(), values.tolist(), strict=True):
            assert (s, t) not in seen, "a block or the head holds a sample twice"
            seen.add((s, t))
            out[(*names[s], t)] = v
    return out


_open_stores: list[Store] = []


def reopen(store: Store) -> Store:
    """Close the store and open it again from its directory, as a restart does."""
    store.close()
    _open_stores.remove(store)
    again = Store(store.data_dir, max_series=store.index.max_series, fsync=False)
    _open_stores.append(again)
    return again


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    while _open_stores:
        _open_stores.pop().close()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "data", fsync=False)
    _open_stores.append(s)
    return s


# -- the round trip, as a property --------------------------------------------------------

metric_names = st.from_regex(r"[a-z_:][a-z0-9_:]{0,6}", fullmatch=True)
label_values = st.text(st.characters(exclude_categories=["Cs"]), max_size=6)
label_sets = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,4}", fullmatch=True), label_values, max_size=3
)
values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**9), 10**9).map(lambda i: i / 100),
    st.integers(-(2**62), 2**62).map(float),
    st.sampled_from([0.0, -0.0, 1e-300, -1e300, 5e-324, 1.7976931348623157e308]),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[str, Labels]], list[Any]]:
    series = draw(st.lists(st.tuples(metric_names, label_sets), min_size=1, max_size=4,
                           unique_by=lambda s: (s[0], tuple(sorted(s[1].items())))))
    rows = st.tuples(st.integers(0, len(series) - 1), st.integers(0, 60), values)
    steps = draw(st.lists(
        st.one_of(
            st.lists(rows, min_size=1, max_size=15).map(lambda r: ("write", r)),
            st.just(("cut",)),
            st.just(("reopen",)),
            st.just(("compact",)),
        ),
        min_size=1, max_size=8,
    ))
    return series, steps


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.booleans(), st.booleans())
def test_round_trip_keeps_the_last_written_value_of_every_sample(
    history: tuple[list[tuple[str, Labels]], list[Any]], cut_at_end: bool, reopen_at_end: bool,
) -> None:
    series, steps = history
    expected: dict[Key, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp), fsync=False)
        _open_stores.append(store)
        try:
            for step in [*steps, *([("cut",)] if cut_at_end else []),
                         *([("reopen",)] if reopen_at_end else [])]:
                if step[0] == "write":
                    rows = [(*series[i], ts, v) for i, ts, v in step[1]]
                    write(store, rows)
                    for metric, labels, ts, v in rows:
                        expected[metric, tuple(sorted(labels.items())), ts] = v
                elif step[0] == "cut":
                    store.cut()
                elif step[0] == "compact":
                    store.compact(1000)
                else:
                    store = reopen(store)
            assert raw(store) == expected
            assert visible(store, 0, 60) == expected
            # The latest value of a series is the last one written at its newest timestamp.
            for metric, labels in series:
                key = (metric, tuple(sorted(labels.items())))
                times = [k[2] for k in expected if k[:2] == key]
                if not times:
                    continue
                slot = store.index.slot_for(metric, labels, create=False)
                ts, value = store.latest(np.array([slot]))
                assert (int(ts[0]), value[0]) == (max(times), expected[(*key, max(times))])
        finally:
            while _open_stores:
                _open_stores.pop().close()


# -- restart and the WAL --------------------------------------------------------------------


def test_restart_replays_the_wal(store: Store) -> None:
    write(store, [("cpu", {"host": "a"}, 1000, 0.5), ("cpu", {"host": "b"}, 1000, 1.5)])
    write(store, [("cpu", {"host": "a"}, 2000, 0.75)])
    store = reopen(store)
    assert store.replayed_samples == 3
    assert visible(store) == {
        ("cpu", (("host", "a"),), 1000): 0.5,
        ("cpu", (("host", "a"),), 2000): 0.75,
        ("cpu", (("host", "b"),), 1000): 1.5,
    }
    slot = store.index.slot_for("cpu", {"host": "a"}, create=False)
    ts, value = store.latest(np.array([slot]))
    assert (ts.tolist(), value.tolist()) == ([2000], [0.75])


def test_cut_then_restart_does_not_double_samples(store: Store) -> None:
    write(store, [("cpu", {}, 1000, 1.0), ("cpu", {}, 2000, 2.0)])
    block = store.cut()
    assert block is not None and block.meta.count == 2
    write(store, [("cpu", {}, 3000, 3.0)])
    store = reopen(store)
    assert store.replayed_samples == 1
    assert [b.meta.count for b in store.blocks] == [2]
    assert visible(store) == {("cpu", (), 1000): 1.0, ("cpu", (), 2000): 2.0,
                              ("cpu", (), 3000): 3.0}
    # Restart twice: the segment that was open at the first restart is replayed once.
    store = reopen(store)
    assert store.replayed_samples == 1
    store.cut()
    store = reopen(store)
    assert store.replayed_samples == 0
    assert sum(b.meta.count for b in store.blocks) == 3
    assert len(visible(store)) == 3


def test_a_block_whose_wal_was_not_yet_deleted_is_not_replayed_again(store: Store) -> None:
    write(store, [("cpu", {}, 1000, 1.0)])
    closed = store.wal.segment
    # A crash between the block's rename and the WAL deletion leaves both on disk.
    store.wal.remove_through = lambda segment: None  # type: ignore[method-assign]
    store.cut()
    assert (store.data_dir / "wal" / f"{closed:08d}.seg").exists()
    store = reopen(store)
    assert store.replayed_samples == 0
    assert not (store.data_dir / "wal" / f"{closed:08d}.seg").exists()
    assert visible(store) == {("cpu", (), 1000): 1.0}


def test_cut_of_an_empty_head_is_a_no_op(store: Store) -> None:
    assert store.cut() is None
    assert store.blocks == []


def test_latest_survives_a_cut_and_a_restart(store: Store) -> None:
    write(store, [("up", {}, 5000, 1.0), ("up", {}, 4000, 0.0)])
    store.cut()
    store = reopen(store)
    slot = store.index.slot_for("up", {}, create=False)
    ts, value = store.latest(np.array([slot, 5000]))
    assert ts.tolist() == [5000, NO_TS]
    assert value[0] == 1.0 and np.isnan(value[1])


# -- late and duplicate samples ---------------------------------------------------------------


def test_duplicates_across_a_cut_and_the_head_newest_write_wins(store: Store) -> None:
    write(store, [("cpu", {}, 1000, 1.0), ("cpu", {}, 2000, 2.0), ("cpu", {}, 3000, 3.0)])
    store.cut()
    write(store, [("cpu", {}, 2000, 20.0), ("cpu", {}, 500, 0.5)])  # replace, and late
    want = {("cpu", (), 500): 0.5, ("cpu", (), 1000): 1.0, ("cpu", (), 2000): 20.0,
            ("cpu", (), 3000): 3.0}
    assert visible(store) == want
    store.cut()
    write(store, [("cpu", {}, 2000, 200.0), ("cpu", {}, 2000, 2000.0)])
    want["cpu", (), 2000] = 2000.0
    assert visible(store) == want
    store = reopen(store)
    assert visible(store) == want
    store.cut()
    assert store.compact(1000) is not None
    assert len(store.blocks) == 1
    assert visible(store) == want
    engine = QueryEngine(store, WIDE)
    whole = engine.range(RangeQuery(parse_selector("cpu"), 0, 9999, 10_000, "sum"))
    assert whole[0]["values"] == [0.5 + 1.0 + 2000.0 + 3.0]


def query_while_writing_blocks(store: Store) -> list[dict[Key, float]]:
    """Run a query each time the store has written a block file but not yet returned it."""
    seen: list[dict[Key, float]] = []
    write_block = store._write

    def write_then_query(*args: Any, **kwargs: Any) -> Any:
        block = write_block(*args, **kwargs)
        seen.append(visible(store))
        return block

    store._write = write_then_query  # type: ignore[method-assign]
    return seen


def test_a_query_during_a_cut_sees_each_sample_once(store: Store) -> None:
    write(store, [("cpu", {}, 1000, 1.0), ("cpu", {}, 2000, 2.0)])
    seen = query_while_writing_blocks(store)
    store.cut()
    want = {("cpu", (), 1000): 1.0, ("cpu", (), 2000): 2.0}
    assert seen == [want]
    assert visible(store) == want


def test_a_query_during_the_cut_of_a_replacing_sample_sees_only_the_new_value(
    store: Store,
) -> None:
    write(store, [("cpu", {}, 1000, 1.0), ("cpu", {}, 2000, 2.0)])
    store.cut()
    write(store, [("cpu", {}, 2000, 20.0)])  # replaces a sample of the block
    seen = query_while_writing_blocks(store)
    store.cut()
    want = {("cpu", (), 1000): 1.0, ("cpu", (), 2000): 20.0}
    assert seen == [want]
    assert visible(store) == want


def test_a_write_landing_while_a_query_takes_its_snapshot_is_not_double_counted(
    store: Store,
) -> None:
    write(store, [("cpu", {}, 1000, 1.0), ("cpu", {}, 2000, 2.0)])
    store.cut()
    view = store.head.view
    landed: list[bool] = []

    def write_then_view() -> Any:
        # The write lands after the snapshot started and before it read the head.
        if not landed:
            landed.append(True)
            write(store, [("cpu", {}, 2000, 20.0)])
        return view()

    store.head.view = write_then_view  # type: ignore[method-assign]
    engine = QueryEngine(store, WIDE)
    [got] = engine.range(RangeQuery(parse_selector("cpu"), 0, 9999, 10_000, "count"))
    assert landed and got["values"] == [2.0]


def test_a_query_during_a_compaction_sees_each_sample_once(store: Store) -> None:
    for t in (1000, 2000):
        write(store, [("cpu", {}, t, t / 1000)])
        store.cut()
    seen = query_while_writing_blocks(store)
    assert store.compact(100) is not None
    want = {("cpu", (), 1000): 1.0, ("cpu", (), 2000): 2.0}
    assert seen == [want]
    assert visible(store) == want


def test_samples_of_a_failed_cut_are_kept_for_the_next_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(store, [("cpu", {}, 1000, 1.0)])

    def disk_full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr("seismo.store.store.write_block", disk_full)
        with pytest.raises(OSError, match="No space left"):
            store.cut()
    assert visible(store) == {("cpu", (), 1000): 1.0}

    write(store, [("cpu", {}, 2000, 2.0)])
    store.cut()
    want = {("cpu", (), 1000): 1.0, ("cpu", (), 2000): 2.0}
    assert visible(store) == want
    store = reopen(store)
    assert visible(store) == want


def test_a_torn_wal_record_loses_only_that_record_on_restart(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    write(store, [("cpu", {}, 1000, 1.0)])
    write(store, [("cpu", {}, 2000, 2.0), ("mem", {}, 2000, 5.0)])
    segment = store.data_dir / "wal" / f"{store.wal.segment:08d}.seg"
    store.close()
    segment.write_bytes(segment.read_bytes()[:-3])  # power cut during the second write
    _open_stores.remove(store)
    store = Store(store.data_dir, fsync=False)
    _open_stores.append(store)
    assert store.replayed_samples == 1
    assert visible(store) == {("cpu", (), 1000): 1.0}
    assert any("torn or corrupt" in r.getMessage() for r in caplog.records)
    # The store goes on: a later write, cut and restart keep everything acknowledged.
    write(store, [("cpu", {}, 3000, 3.0)])
    store.cut()
    store = reopen(store)
    assert visible(store) == {("cpu", (), 1000): 1.0, ("cpu", (), 3000): 3.0}


# -- retention and compaction ---------------------------------------------------------------


def three_blocks(store: Store) -> None:
    for start in (0, 1000, 2000):
        write(store, [("m", {"k": str(k)}, start + t, float(start + t + k))
                      for k in range(2) for t in range(0, 1000, 100)])
        store.cut()


def test_retention_drops_only_blocks_entirely_older_than_the_cutoff(store: Store) -> None:
    three_blocks(store)
    paths = [b.path for b in store.blocks]
    before = visible(store, 0, 3000)

    dropped = store.apply_retention(now_ms=3500, retention_s=2.0)  # cutoff 1500
    assert [b.path for b in dropped] == paths[:1]
    assert [b.path for b in store.blocks] == paths[1:]
    assert not paths[0].exists()
    assert all(p.exists() for p in paths[1:])
    # The block spanning the cutoff stays whole, samples before the cutoff included.
    assert visible(store, 0, 3000) == {k: v for k, v in before.items() if k[2] >= 1000}

    assert store.apply_retention(now_ms=3500, retention_s=2.0) == []
    store = reopen(store)
    assert [b.path for b in store.blocks] == paths[1:]
    assert visible(store, 0, 3000) == {k: v for k, v in before.items() if k[2] >= 1000}


def test_retention_never_drops_the_head(store: Store) -> None:
    write(store, [("m", {}, 10, 1.0)])
    assert store.apply_retention(now_ms=10**12, retention_s=1.0) == []
    assert visible(store) == {("m", (), 10): 1.0}


def test_compaction_merges_small_consecutive_blocks_and_keeps_the_data(store: Store) -> None:
    three_blocks(store)
    before = visible(store, 0, 3000)
    old = [b.path for b in store.blocks]

    merged = store.compact(target_samples=100)
    assert merged is not None
    assert merged.meta.count == 60 and merged.meta.series == 2
    assert (merged.meta.min_ts, merged.meta.max_ts) == (0, 2900)
    assert store.blocks == [merged]
    assert not any(p.exists() for p in old)
    assert visible(store, 0, 3000) == before
    assert store.compact(target_samples=100) is None

    store = reopen(store)
    assert [b.meta.count for b in store.blocks] == [60]
    assert store.replayed_samples == 0
    assert visible(store, 0, 3000) == before


def test_compaction_stops_at_a_large_block(store: Store) -> None:
    sizes = [10, 10, 60, 10, 10]
    for n, start in zip(sizes, range(0, 5000, 1000), strict=True):
        write(store, [("m", {}, start + t, float(t)) for t in range(n)])
        store.cut()
    before = visible(store, 0, 5000)

    first = store.compact(target_samples=100)  # small = 50: the 60-sample block breaks the run
    assert first is not None and first.meta.count == 20
    assert [b.meta.count for b in store.blocks] == [20, 60, 10, 10]
    second = store.compact(target_samples=100)
    assert second is not None and second.meta.count == 20
    assert [b.meta.count for b in store.blocks] == [20, 60, 20]
    assert store.compact(target_samples=100) is None
    assert visible(store, 0, 5000) == before


def test_compaction_respects_the_target_size(store: Store) -> None:
    for start in range(0, 4000, 1000):
        write(store, [("m", {}, start + t, 1.0) for t in range(30)])
        store.cut()
    merged = store.compact(target_samples=70)  # small = 35: two of 30 fit, a third does not
    assert merged is not None and merged.meta.count == 60
    assert [b.meta.count for b in store.blocks] == [60, 30, 30]


# -- cardinality ----------------------------------------------------------------------------


def test_series_limit_refuses_a_new_series_and_keeps_known_ones() -> None:
    index = SeriesIndex(max_series=2)
    a = index.slot_for("cpu", {"host": "a"})
    b = index.slot_for("cpu", {"host": "b"})
    with pytest.raises(SeriesLimitReached, match="limit of 2"):
        index.slot_for("cpu", {"host": "c"})
    assert len(index) == 2
    assert index.slot_for("cpu", {"host": "a"}) == a
    assert index.slot_for("cpu", {"host": "b"}) == b
    with pytest.raises(KeyError):
        index.slot_for("cpu", {"host": "c"}, create=False)
    assert index.select(parse_selector("cpu")) == [a, b]


def test_store_series_limit_survives_restart(tmp_path: Path) -> None:
    store = Store(tmp_path, max_series=2, fsync=False)
    _open_stores.append(store)
    write(store, [("cpu", {"host": "a"}, 1, 1.0), ("cpu", {"host": "b"}, 1, 2.0)])
    with pytest.raises(SeriesLimitReached):
        write(store, [("cpu", {"host": "c"}, 1, 3.0)])
    store = reopen(store)
    assert len(store.index) == 2
    write(store, [("cpu", {"host": "a"}, 2, 1.5)])
    with pytest.raises(SeriesLimitReached):
        store.index.slot_for("cpu", {"host": "c"})


def test_index_grows_past_its_initial_arrays(store: Store) -> None:
    rows = [("many", {"i": str(i)}, 1, float(i)) for i in range(3000)]
    write(store, rows)
    assert len(store.index) == 3000
    assert len(visible(store, 0, 2)) == 3000
    slots = np.array([store.index.slot_for("many", {"i": "2999"}, create=False)])
    assert store.latest(slots)[1].tolist() == [2999.0]
