"""The query engine: instant window stats, step-aligned range buckets, groups, rollups, limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from seismo.config import Limits
from seismo.errors import InvalidInput
from seismo.query.engine import AGGS, QueryEngine, RangeQuery
from seismo.query.selector import parse_selector
from seismo.store import Batch, Store

HOUR = 3_600_000
T0 = 1_700_000_000_000 // HOUR * HOUR  # an hour boundary
Labels = dict[str, str]
Series = tuple[np.ndarray, np.ndarray]  # (ts_ms, values)


def write(
    store: Store, metric: str, labels: Labels, ts: npt.ArrayLike, values: npt.ArrayLike
) -> None:
    ts = np.asarray(ts, np.int64)
    slots = np.full(len(ts), store.index.slot_for(metric, labels), np.int32)
    store.write([Batch(slots, store.index.ids(slots), ts, np.asarray(values, np.float64))])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "data", fsync=False)
    yield s
    s.close()


@pytest.fixture
def engine(store: Store) -> QueryEngine:
    return QueryEngine(store, Limits())


def q(text: str, start: int, end: int, step: int, agg: str = "avg",
      group_by: tuple[str, ...] | None = None) -> RangeQuery:
    return RangeQuery(parse_selector(text), start, end, step, agg, group_by)


NUMPY_AGGS: dict[str, Callable[[np.ndarray], float]] = {
    "avg": np.mean, "min": np.min, "max": np.max, "sum": np.sum, "count": len,
    "p50": lambda v: np.percentile(v, 50), "p95": lambda v: np.percentile(v, 95),
    "p99": lambda v: np.percentile(v, 99),
}


def expected_buckets(
    series: list[Series], start: int, end: int, step: int, agg: str,
) -> tuple[list[int], list[float | None]]:
    """What a range query of the pooled series should give, computed in numpy."""
    lo = start // step * step
    per_bucket: dict[int, list[float]] = {}
    rates: dict[int, list[float]] = {}
    for ts, values in series:
        inside = (ts >= lo) & (ts <= end)
        ts, values = ts[inside], values[inside]
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
        for t, v in zip(ts.tolist(), values.tolist(), strict=True):
            per_bucket.setdefault(t // step * step, []).append(v)
        if agg == "rate" and len(ts):
            d = np.diff(values)
            increase = np.where(d < 0, values[1:], d)
            series_rate: dict[int, float] = {}
            for t, inc in zip(ts[1:].tolist(), increase.tolist(), strict=True):
                b = t // step * step
                series_rate[b] = series_rate.get(b, 0.0) + inc
            for b, inc in series_rate.items():
                rates.setdefault(b, []).append(inc / (step / 1000))
    times = sorted(per_bucket)
    if agg == "rate":
        return times, [sum(rates[b]) if b in rates else None for b in times]
    return times, [float(NUMPY_AGGS[agg](np.array(per_bucket[b]))) for b in times]


def assert_series(got: dict[str, object], times: list[int], values: list[float | None]) -> None:
    assert got["timestamps"] == times
    got_values = got["values"]
    assert isinstance(got_values, list)
    assert [v is None for v in got_values] == [v is None for v in values]
    assert [v for v in got_values if v is not None] == pytest.approx(
        [v for v in values if v is not None], rel=1e-12, abs=1e-9
    )


# -- instant -------------------------------------------------------------------------------


def test_instant_gives_the_latest_value_and_window_stats(store: Store, engine: QueryEngine) -> None:
    now = T0 + 600_000
    ts = now - np.arange(60, 0, -1) * 10_000  # 60 samples over the last 10 minutes
    values = np.round(np.random.default_rng(3).normal(40, 8, 60), 2)
    write(store, "cpu", {"host": "a"}, ts, values)
    write(store, "cpu", {"host": "a"}, [now - 3_600_000], [999.0])  # outside the window

    [result] = engine.instant(parse_selector('cpu{host="a"}'), window_s=600, now_ms=now)
    assert result["metric"] == "cpu" and result["labels"] == {"host": "a"}
    assert (result["timestamp"], result["value"]) == (int(ts[-1]), values[-1])
    assert result["window_s"] == 600
    w = result["window"]
    assert w["count"] == 60
    assert w["mean"] == pytest.approx(values.mean())
    assert (w["min"], w["max"]) == (values.min(), values.max())
    assert w["stddev"] == pytest.approx(values.std(ddof=1))
    for name, pct in [("p50", 50), ("p95", 95), ("p99", 99)]:
        assert w[name] == pytest.approx(np.percentile(values, pct))


def test_instant_rate_counts_a_counter_reset_as_an_increase(
    store: Store, engine: QueryEngine
) -> None:
    ts = T0 + np.arange(7) * 10_000
    write(store, "requests", {}, ts, [100, 110, 130, 5, 15, 15, 40])  # reset after 130
    [result] = engine.instant(parse_selector("requests"), window_s=3600, now_ms=T0 + 60_000)
    increase = 10 + 20 + 5 + 10 + 0 + 25
    assert result["window"]["rate"] == pytest.approx(increase / 60)
    assert result["window"]["count"] == 7


def test_instant_of_a_series_with_nothing_in_the_window(
    store: Store, engine: QueryEngine
) -> None:
    write(store, "up", {"job": "x"}, [T0], [1.0])
    write(store, "up", {"job": "y"}, [T0 + 500_000, T0 + 600_000], [1.0, 0.0])
    results = engine.instant(parse_selector("up"), window_s=60, now_ms=T0 + 600_000)
    assert [(r["labels"], r["value"], r["window"]["count"]) for r in results] == [
        ({"job": "x"}, 1.0, 0), ({"job": "y"}, 0.0, 1),
    ]
    assert results[0]["window"] == {"count": 0}
    # One sample: no span, so no rate.
    assert results[1]["window"]["rate"] is None
    assert engine.instant(parse_selector("nothing"), window_s=60, now_ms=T0) == []


def test_instant_reads_blocks_and_the_head_together(store: Store, engine: QueryEngine) -> None:
    write(store, "g", {}, T0 + np.arange(5) * 1000, [1.0, 2.0, 3.0, 4.0, 5.0])
    store.cut()
    write(store, "g", {}, T0 + np.arange(5, 10) * 1000, [6.0, 7.0, 8.0, 9.0, 10.0])
    write(store, "g", {}, [T0 + 2000], [30.0])  # replaces 3.0 in the block
    [result] = engine.instant(parse_selector("g"), window_s=60, now_ms=T0 + 10_000)
    assert result["window"]["count"] == 10
    assert result["window"]["max"] == 30.0
    assert result["window"]["mean"] == pytest.approx((55 - 3 + 30) / 10)
    assert (result["timestamp"], result["value"]) == (T0 + 9000, 10.0)


# -- range ---------------------------------------------------------------------------------


def gauge(seed: int, n: int, every_ms: int = 10_000, start: int = T0) -> Series:
    ts = start + np.arange(n, dtype=np.int64) * every_ms
    return ts, np.round(np.random.default_rng(seed).normal(50, 10, n), 2)


@pytest.mark.parametrize("cut", [False, True], ids=["head", "block"])
@pytest.mark.parametrize("agg", [a for a in AGGS if a != "rate"])
def test_range_buckets_are_aligned_to_the_step(
    store: Store, engine: QueryEngine, agg: str, cut: bool
) -> None:
    ts, values = gauge(1, 100)  # 10 s samples over 1000 s
    write(store, "cpu", {"host": "a"}, ts, values)
    if cut:
        store.cut()
    # Start and end fall inside buckets: the first bucket starts at the step boundary.
    start, end, step = T0 + 95_000, T0 + 845_000, 60_000
    [got] = engine.range(q("cpu", start, end, step, agg))
    times, want = expected_buckets([(ts, values)], start, end, step, agg)
    assert times[0] == T0 + 60_000 and times[-1] == T0 + 840_000
    assert all(t % step == 0 for t in got["timestamps"])
    assert got["metric"] == "cpu" and got["labels"] == {"host": "a"}
    assert_series(got, times, want)


@pytest.mark.parametrize("cut", [False, True], ids=["head", "block"])
def test_range_rate_handles_a_counter_reset(store: Store, engine: QueryEngine, cut: bool) -> None:
    ts = T0 + np.arange(12, dtype=np.int64) * 10_000
    counter = np.array([0, 10, 20, 30, 40, 50, 60, 5, 15, 25, 35, 45], np.float64)
    write(store, "requests_total", {}, ts, counter)
    if cut:
        store.cut()
    [got] = engine.range(q("requests_total", T0, T0 + 119_999, 60_000, "rate"))
    # First minute: 5 increases of 10; second: 10, the reset (5 counts as 5), then 4 × 10.
    assert got["timestamps"] == [T0, T0 + 60_000]
    assert got["values"] == pytest.approx([50 / 60, (10 + 5 + 40) / 60])
    times, want = expected_buckets([(ts, counter)], T0, T0 + 119_999, 60_000, "rate")
    assert_series(got, times, want)


def test_range_leaves_empty_buckets_out(store: Store, engine: QueryEngine) -> None:
    write(store, "sparse", {}, [T0 + 1000, T0 + 181_000], [1.0, 2.0])
    [got] = engine.range(q("sparse", T0, T0 + 240_000, 60_000, "max"))
    assert got["timestamps"] == [T0, T0 + 180_000]
    assert got["values"] == [1.0, 2.0]


def three_hosts(store: Store) -> dict[str, Series]:
    data = {}
    for seed, (host, dc) in enumerate([("a", "x"), ("b", "x"), ("c", "y")]):
        data[host] = gauge(seed, 60)
        write(store, "cpu", {"host": host, "dc": dc}, *data[host])
    write(store, "mem", {"host": "a", "dc": "x"}, *gauge(9, 60))  # another metric
    return data


@pytest.mark.parametrize("agg", AGGS)
def test_group_by_merges_series(store: Store, engine: QueryEngine, agg: str) -> None:
    data = three_hosts(store)
    start, end, step = T0, T0 + 600_000, 120_000
    got = engine.range(q("cpu", start, end, step, agg, group_by=("dc",)))
    assert [(g["metric"], g["labels"]) for g in got] == [("cpu", {"dc": "x"}), ("cpu", {"dc": "y"})]
    assert_series(got[0], *expected_buckets([data["a"], data["b"]], start, end, step, agg))
    assert_series(got[1], *expected_buckets([data["c"]], start, end, step, agg))


def test_group_by_nothing_merges_everything_and_missing_labels_group_together(
    store: Store, engine: QueryEngine
) -> None:
    data = three_hosts(store)
    write(store, "cpu", {"host": "d"}, *gauge(5, 60))
    start, end, step = T0, T0 + 600_000, 300_000
    [everything] = engine.range(q("cpu", start, end, step, "count", group_by=()))
    assert everything["labels"] == {}
    assert everything["values"] == [30.0 * 4, 30.0 * 4]

    groups = engine.range(q("cpu", start, end, step, "sum", group_by=("dc",)))
    assert [g["labels"] for g in groups] == [{"dc": "x"}, {"dc": "y"}, {}]
    assert_series(groups[0], *expected_buckets([data["a"], data["b"]], start, end, step, "sum"))

    mixed = engine.range(q('{__name__=~"cpu|mem", host="a"}', start, end, step, "count",
                           group_by=("host",)))
    assert [(g["metric"], g["labels"], g["values"]) for g in mixed] == [
        ("", {"host": "a"}, [60.0, 60.0]),
    ]


def test_range_without_group_by_gives_one_answer_per_series(
    store: Store, engine: QueryEngine
) -> None:
    three_hosts(store)
    got = engine.range(q('cpu{dc="x"}', T0, T0 + 600_000, 600_000, "count"))
    assert [(g["labels"], g["values"]) for g in got] == [
        ({"host": "a", "dc": "x"}, [60.0]), ({"host": "b", "dc": "x"}, [60.0]),
    ]
    assert engine.range(q("nothing", T0, T0 + 1, 1)) == []


def test_range_dedupes_late_samples_newest_write_wins(store: Store, engine: QueryEngine) -> None:
    ts, values = gauge(2, 30)
    write(store, "g", {}, ts, values)
    store.cut()
    write(store, "g", {}, ts[:10], values[:10] + 100)
    store.cut()
    write(store, "g", {}, ts[:5], values[:5] + 1000)
    final = values.copy()
    final[:10] += 100
    final[:5] += 900
    for agg in ("sum", "count", "p50", "max"):
        [got] = engine.range(q("g", T0, T0 + HOUR - 1, 60_000, agg))
        assert_series(got, *expected_buckets([(ts, final)], T0, T0 + HOUR - 1, 60_000, agg))


# -- rollups -------------------------------------------------------------------------------


def hourly_block(store: Store) -> dict[str, Series]:
    """Three series of 10 s data over 6 h, cut into one block that has a 1 h rollup."""
    data = {}
    for seed, host in enumerate("abc"):
        data[host] = gauge(seed, 6 * 360)
        write(store, "cpu", {"host": host, "dc": "x" if host != "c" else "y"}, *data[host])
    block = store.cut()
    assert block is not None and block.meta.rollups == ["1h"]
    return data


@contextmanager
def without_raw_samples(store: Store) -> Iterator[None]:
    """Hide every block's raw samples, so only a rollup can answer."""
    moved = []
    for block in store.blocks:
        hidden = block.samples_path.with_suffix(".hidden")
        block.samples_path.rename(hidden)
        moved.append((hidden, block.samples_path))
    try:
        yield
    finally:
        for hidden, path in moved:
            hidden.rename(path)


@pytest.mark.parametrize("agg", ["avg", "min", "max", "sum", "count"])
@pytest.mark.parametrize("step", [HOUR, 2 * HOUR])
def test_a_1h_rollup_answers_like_the_raw_samples(
    store: Store, engine: QueryEngine, agg: str, step: int
) -> None:
    data = hourly_block(store)
    start, end = T0, T0 + 6 * HOUR - 1
    with without_raw_samples(store):
        from_rollup = engine.range(q("cpu", start, end, step, agg, group_by=("dc",)))
    # Start one millisecond later: not hour-aligned, so raw samples answer.
    from_raw = engine.range(q("cpu", start + 1, end, step, agg, group_by=("dc",)))
    assert [g["timestamps"] for g in from_rollup] == [g["timestamps"] for g in from_raw]
    for a, b in zip(from_rollup, from_raw, strict=True):
        assert a["values"] == pytest.approx(b["values"], rel=1e-12)
    assert_series(from_rollup[0], *expected_buckets([data["a"], data["b"]], start, end, step, agg))
    assert_series(from_rollup[1], *expected_buckets([data["c"]], start, end, step, agg))


@pytest.mark.parametrize("agg", ["count", "max", "sum"])
def test_a_range_ending_mid_hour_does_not_count_samples_after_its_end(
    store: Store, engine: QueryEngine, agg: str
) -> None:
    data = hourly_block(store)
    start, end = T0, T0 + 2 * HOUR + 30 * 60_000  # ends half way through the third hour
    [got] = engine.range(q('cpu{host="a"}', start, end, HOUR, agg))
    assert_series(got, *expected_buckets([data["a"]], start, end, HOUR, agg))


@pytest.mark.parametrize(("start_h", "end_ms", "step"), [
    (1, 5 * HOUR + 17 * 60_000, HOUR),
    (1, 4 * HOUR, 2 * HOUR),
    (0, 7 * HOUR + 59 * 60_000, 3 * HOUR),
    (3, 3 * HOUR + 1, HOUR),
])
@pytest.mark.parametrize("agg", ["avg", "count", "min", "sum"])
def test_rollup_ranges_with_odd_bounds_and_newer_samples_in_the_head(
    store: Store, engine: QueryEngine, start_h: int, end_ms: int, step: int, agg: str
) -> None:
    data = hourly_block(store)
    later = gauge(7, 720, start=T0 + 6 * HOUR)  # two more hours, still in the head
    write(store, "cpu", {"host": "a", "dc": "x"}, *later)
    start, end = T0 + start_h * HOUR, T0 + end_ms
    [got] = engine.range(q('cpu{host="a"}', start, end, step, agg))
    pooled = (np.concatenate([data["a"][0], later[0]]), np.concatenate([data["a"][1], later[1]]))
    assert_series(got, *expected_buckets([pooled], start, end, step, agg))


def test_rollups_are_not_used_when_samples_need_dedupe(store: Store, engine: QueryEngine) -> None:
    data = hourly_block(store)
    ts, values = data["a"]
    write(store, "cpu", {"host": "a", "dc": "x"}, ts[:3], [1e6, 1e6, 1e6])
    final = values.copy()
    final[:3] = 1e6
    [got] = engine.range(q('cpu{host="a"}', T0, T0 + 6 * HOUR - 1, HOUR, "max"))
    assert_series(got, *expected_buckets([(ts, final)], T0, T0 + 6 * HOUR - 1, HOUR, "max"))


def test_range_with_no_samples_in_it_is_empty(store: Store, engine: QueryEngine) -> None:
    write(store, "g", {}, [T0], [1.0])
    store.cut()
    write(store, "g", {}, [T0 + HOUR], [2.0])
    for agg in AGGS:
        assert engine.range(q("g", T0 + 1000, T0 + 2000, 1000, agg)) == []


# -- limits and bad input ------------------------------------------------------------------


def test_points_per_series_cap(store: Store) -> None:
    write(store, "g", {}, [T0], [1.0])
    engine = QueryEngine(store, Limits(max_points_per_series=100))
    assert engine.range(q("g", T0, T0 + 99_999, 1000))  # exactly 100 buckets
    with pytest.raises(InvalidInput, match="101 steps exceeds the limit of 100") as caught:
        engine.range(q("g", T0, T0 + 100_000, 1000))
    assert caught.value.field == "step"


def test_points_per_query_cap(store: Store) -> None:
    for host in "abcd":
        write(store, "g", {"host": host}, [T0], [1.0])
    engine = QueryEngine(store, Limits(max_points_per_query=30))
    assert len(engine.range(q("g", T0, T0 + 9_999, 1000, "sum", group_by=()))) == 1
    with pytest.raises(InvalidInput, match="up to 40 points, over the limit of 30") as caught:
        engine.range(q("g", T0, T0 + 9_999, 1000))
    assert caught.value.field == "selector"


def test_unknown_agg_and_reversed_range_are_refused(engine: QueryEngine) -> None:
    with pytest.raises(InvalidInput, match="unknown agg 'median'") as caught:
        engine.range(q("g", T0, T0 + 1, 1, "median"))
    assert caught.value.field == "agg"
    with pytest.raises(InvalidInput, match="end is before start") as caught:
        engine.range(q("g", T0, T0 - 1, 1))
    assert caught.value.field == "end"


def test_series_lists_what_the_selector_matches(store: Store, engine: QueryEngine) -> None:
    three_hosts(store)
    got = engine.series(parse_selector('{__name__=~"cpu|mem", dc="x"}'))
    assert [(s["metric"], s["labels"]["host"]) for s in got] == [
        ("cpu", "a"), ("cpu", "b"), ("mem", "a"),
    ]
    assert all(s["id"].isdigit() for s in got)
    assert len(engine.series(parse_selector("cpu"), limit=2)) == 2
