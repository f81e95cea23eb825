"""The PromQL subset: parsing, refusals that name the construct, and evaluation on a store.

Agreement with a real Prometheus on scraped data is in tests/prometheus/; here are the
cases worked out by hand (lookback, extrapolation, resets, buckets, matching errors).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seismo.config import Limits
from seismo.query.engine import QueryEngine
from seismo.query.promql import PromQLError, parse_duration_ms, parse_promql
from seismo.query.promql_eval import RawMatrix, Vectors, run_promql
from seismo.store import Batch, Store

T0 = 1_700_000_000_000
S = 1000


def write(store: Store, metric: str, labels: dict[str, str], ts: npt.ArrayLike,
          values: npt.ArrayLike) -> None:
    ts = np.asarray(ts, np.int64)
    slots = np.full(len(ts), store.index.slot_for(metric, labels), np.int32)
    store.write([Batch(slots, store.index.ids(slots), ts, np.asarray(values, np.float64))])


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[QueryEngine]:
    store = Store(tmp_path / "data", fsync=False)
    ts = T0 + S * np.arange(60)
    write(store, "req_total", {"code": "200"}, ts, 2.0 * np.arange(60))
    write(store, "req_total", {"code": "500"}, ts, np.where(np.arange(60) < 30,
                                                            np.arange(60), np.arange(60) - 30))
    for le, per_s in [("0.1", 1), ("0.5", 3), ("+Inf", 4)]:
        write(store, "lat_bucket", {"le": le}, ts, per_s * np.arange(60.0))
    write(store, "temp", {"room": "a"}, [T0], [20.0])
    write(store, "temp", {"room": "b"}, [T0], [15.0])
    write(store, "heat", {"room": "a"}, [T0], [1.0])
    yield QueryEngine(store, Limits())
    store.close()


def at(engine: QueryEngine, query: str, t_ms: int,
       limits: Limits | None = None) -> dict[str, float]:
    """{rendered labels: value} of an instant evaluation."""
    _, value = run_promql(engine, limits or Limits(), query, t_ms, t_ms, 1)
    if isinstance(value, np.ndarray):
        return {"scalar": float(value[0])}
    assert isinstance(value, Vectors)
    return {",".join(f"{k}={v}" for k, v in sorted(labels.items())): float(row[0])
            for labels, row in zip(value.labels, value.values, strict=True)
            if not np.isnan(row[0])}


@pytest.mark.parametrize("query,construct", [
    ("holt_winters(x[5m], 0.5, 0.5)", "function holt_winters is not supported"),
    ("predict_linear(x[5m], 60)", "function predict_linear is not supported"),
    ("label_replace(x, 'a', 'b', 'c', 'd')", "function label_replace is not supported"),
    ("rate(x[5m:1m])", "subqueries (expr[range:step]) are not supported"),
    ("x @ 1700000000", "the @ modifier is not supported"),
    ("atan2(a, b)", "function atan2 is not supported"),
    ("a atan2 b", "operator atan2 is not supported"),
    ("a and 1", "set operator and not allowed in binary scalar expression"),
    ("a * on(x) group_left b", "group_left (many-to-one matching) is not supported"),
    ('count_values("v", x)', "aggregation count_values is not supported"),
    ("1 > 2", "comparisons between scalars must use BOOL modifier"),
    ("rate(x)", "expected type range vector in call to function rate, got instant vector"),
    ("x[5m] + 1", "binary expression must contain only scalar and instant vector types"),
    ("sum(x[5m])", "expected type instant vector in aggregation expression"),
    ("clamp_min(x)", "wrong number of arguments for function clamp_min"),
    ('{a=""}', "at least one matcher that is not empty"),
    ("sum(", "parse error"),
    ("", "empty query"),
])
def test_unsupported_and_wrong_queries_are_refused_by_name(query: str, construct: str) -> None:
    with pytest.raises(PromQLError) as caught:
        parse_promql(query)
    assert construct in caught.value.message
    assert caught.value.status == 400 and caught.value.error_type == "bad_data"


def test_precedence_and_associativity() -> None:
    for query, value in [("1 + 2 * 3", 7), ("2 ^ 3 ^ 2", 512), ("-2 ^ 2", -4),
                         ("(1 + 2) * 3", 9), ("10 % 4 - 1", 1), ("2 * -1", -2),
                         ("1 < bool 2", 1), ("0x10 + 1e1", 26)]:
        _, result = run_promql(None, Limits(), query, T0, T0, 1)  # type: ignore[arg-type]
        assert isinstance(result, np.ndarray) and result[0] == value, query


@given(st.lists(st.tuples(st.integers(0, 999), st.sampled_from(["ms", "s", "m", "h", "d"])),
                min_size=1, max_size=4))
def test_durations(parts: list[tuple[int, str]]) -> None:
    unit_ms = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    text = "".join(f"{n}{u}" for n, u in parts)
    assert parse_duration_ms(text) == sum(n * unit_ms[u] for n, u in parts)


def test_an_instant_selector_looks_back_five_minutes(engine: QueryEngine) -> None:
    assert at(engine, "temp", T0 + 299 * S) == {"__name__=temp,room=a": 20.0,
                                                 "__name__=temp,room=b": 15.0}
    assert at(engine, "temp", T0 + 300 * S) == {}  # stale: the window is (t - 5m, t]
    assert at(engine, "temp offset 1m", T0 + 330 * S) == {"__name__=temp,room=a": 20.0,
                                                          "__name__=temp,room=b": 15.0}


def test_rate_extrapolates_like_prometheus(engine: QueryEngine) -> None:
    # 31 samples 0..60 at 1 s in (t - 60 s, t], t half a second after the last: the start
    # is extrapolated to the counter's zero (0 s), the end by 0.5 s: 60 * 30.5 / 30 / 60.
    got = at(engine, "rate(req_total[1m])", T0 + 30_500)
    assert got["code=200"] == pytest.approx(61 / 60)
    assert at(engine, "increase(req_total[10s])", T0 + 30_500)["code=200"] == pytest.approx(20)
    assert at(engine, "irate(req_total[10s])", T0 + 30_500) == {"code=200": 2.0,
                                                                 "code=500": 0.0}


def test_a_counter_reset_counts_the_value_before_it(engine: QueryEngine) -> None:
    # code=500 climbs 0..29, resets to 0 at 30 s and climbs again. In (25.5 s, 35.5 s]:
    # 26..29, 0..5, so 5 - 26 + 29 = 8 over 9 s, extrapolated by 0.5 s at either end.
    assert at(engine, "increase(req_total{code='500'}[10s])", T0 + 35_500) == {
        "code=500": pytest.approx(8 * 10 / 9)}
    assert at(engine, "irate(req_total{code='500'}[10s])", T0 + 30_500) == {"code=500": 0.0}


def test_aggregations_and_matching(engine: QueryEngine) -> None:
    t = T0 + 30_500
    assert at(engine, "sum(temp)", t) == {"": 35.0}
    assert at(engine, "avg by (room) (temp)", t) == {"room=a": 20.0, "room=b": 15.0}
    assert at(engine, "count without (room) (temp)", t) == {"": 2.0}
    assert at(engine, "topk(1, temp)", t) == {"__name__=temp,room=a": 20.0}
    assert at(engine, "bottomk(1, temp)", t) == {"__name__=temp,room=b": 15.0}
    assert at(engine, "temp > 16", t) == {"__name__=temp,room=a": 20.0}
    assert at(engine, "temp > bool 16", t) == {"room=a": 1.0, "room=b": 0.0}
    assert at(engine, "temp - on(room) temp", t) == {"room=a": 0.0, "room=b": 0.0}
    assert at(engine, "scalar(temp)", t) == {"scalar": pytest.approx(np.nan, nan_ok=True)}
    assert at(engine, "scalar(max(temp)) * 2", t) == {"scalar": 40.0}
    assert at(engine, "temp and temp > 16", t) == {"__name__=temp,room=a": 20.0}
    assert at(engine, "temp unless temp > 16", t) == {"__name__=temp,room=b": 15.0}
    assert at(engine, "sum(temp > 30) or vector(0)", t) == {"": 0.0}
    assert at(engine, "temp > 16 or on(room) heat", t) == {"__name__=temp,room=a": 20.0}
    assert at(engine, "temp > 16 or heat * 2", t) == {"__name__=temp,room=a": 20.0}
    assert at(engine, "heat or temp", t) == {"__name__=heat,room=a": 1.0,
                                              "__name__=temp,room=b": 15.0}


def test_histogram_quantile_interpolates_in_the_bucket(engine: QueryEngine) -> None:
    # Per second: 1 at or below 0.1, 2 more up to 0.5, 1 above. The 0.5 quantile's rank 2
    # is half-way into the (0.1, 0.5] bucket: 0.1 + 0.4 * (2 - 1) / 2 = 0.3.
    got = at(engine, "histogram_quantile(0.5, rate(lat_bucket[10s]))", T0 + 30_500)
    assert got == {"": pytest.approx(0.3)}
    got = at(engine, "histogram_quantile(0.99, sum by (le) (rate(lat_bucket[10s])))",
             T0 + 30_500)
    assert got == {"": pytest.approx(0.5)}  # the +Inf bucket answers the highest bound


def test_many_to_many_and_duplicate_label_sets_are_execution_errors(
        engine: QueryEngine) -> None:
    for query, reason in [
        ("temp + on() temp", "many-to-many matching not allowed"),
        ("temp / ignoring(room) group(temp)", "many-to-one matching must be explicit"),
        ("abs({__name__=~'temp|heat'})", "vector cannot contain metrics with the same labelset"),
    ]:
        with pytest.raises(PromQLError, match=reason) as caught:
            run_promql(engine, Limits(), query, T0 + 30_500, T0 + 30_500, 1)
        assert caught.value.error_type == "execution" and caught.value.status == 422


def test_results_are_bounded(engine: QueryEngine) -> None:
    with pytest.raises(PromQLError, match="exceeded maximum resolution of 11,000 points"):
        run_promql(engine, Limits(), "temp", T0, T0 + 11_000 * S, S)
    with pytest.raises(PromQLError, match="points per query"):
        run_promql(engine, Limits(max_points_per_query=100), "req_total", T0, T0 + 60 * S, S)


def test_a_range_selector_at_one_instant_gives_the_raw_samples(engine: QueryEngine) -> None:
    _, value = run_promql(engine, Limits(), "temp[1m]", T0 + 30 * S, T0 + 30 * S, 1,
                          instant=True)
    assert isinstance(value, RawMatrix)
    assert [s.ts.tolist() for s in value.samples] == [[T0], [T0]]
    _, value = run_promql(engine, Limits(), "temp[30s]", T0 + 30 * S, T0 + 30 * S, 1,
                          instant=True)  # (t - 30 s, t] leaves out the sample at t - 30 s
    assert isinstance(value, RawMatrix) and [len(s.ts) for s in value.samples] == [0, 0]
    with pytest.raises(PromQLError, match='invalid expression type "range vector"'):
        run_promql(engine, Limits(), "temp[1m]", T0, T0, 1)
