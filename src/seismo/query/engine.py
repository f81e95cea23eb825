"""Queries over the store: series listing, latest value + window stats, and range buckets.

The sample scans, aggregations and percentiles are DuckDB SQL over the snapshot's Parquet
blocks and the head (an Arrow table); Python only picks series and shapes the answer.
Range buckets are aligned to multiples of the step (like InfluxDB's GROUP BY time), so
1 h rollups stored in blocks can answer a range whose step is a whole number of hours.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from seismo.config import Limits
from seismo.errors import InvalidInput
from seismo.query.selector import Selector
from seismo.store import Snapshot, Store
from seismo.store.blocks import ROLLUPS, VALUE_SQL
from seismo.store.head import NO_TS, SCHEMA

_EMPTY_HEAD = SCHEMA.empty_table()

AGGS = ("avg", "min", "max", "sum", "count", "p50", "p95", "p99", "rate")
_PARTIAL_AGGS = {"avg", "min", "max", "sum", "count"}
_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
_INLINE_SIDS = 2000


@dataclass(frozen=True)
class RangeQuery:
    selector: Selector
    start_ms: int
    end_ms: int
    step_ms: int
    agg: str = "avg"
    group_by: tuple[str, ...] | None = None
    slots: tuple[int, ...] | None = None  # these series instead of the selector's


@dataclass(frozen=True)
class WindowTotals:
    """`QueryEngine.window_totals`: one entry per window (NaN: no samples to tell)."""

    count: np.ndarray  # int64
    matching: np.ndarray  # int64
    increase: np.ndarray  # float64
    quantile: np.ndarray  # float64


class QueryEngine:
    """Read side of the store; plain object shared by REST, MCP, CLI and the dashboard."""

    def __init__(self, store: Store, limits: Limits) -> None:
        self.store = store
        self.limits = limits
        self._db = duckdb.connect()
        self._db_lock = threading.Lock()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._db_lock:
            return self._db.cursor()

    # -- series -----------------------------------------------------------------------

    def series(self, selector: Selector, limit: int = 10_000) -> list[dict[str, Any]]:
        """Metric and labels of every series the selector matches (up to `limit`)."""
        index = self.store.index
        out = []
        for slot in index.select(selector)[:limit]:
            info = index.info(slot)
            out.append({"metric": info.metric, "labels": info.labels, "id": str(info.id)})
        return out

    # -- latest value and window stats ------------------------------------------------

    def instant(self, selector: Selector, window_s: float, now_ms: int) -> list[dict[str, Any]]:
        """Latest value and count/mean/min/max/stddev/p50/p95/p99/rate over the window."""
        slots = np.array(self.store.index.select(selector), dtype=np.int64)
        if len(slots) == 0:
            return []
        sids = self.store.index.ids(slots)
        last_ts, last_value = self.store.latest(slots)
        start = now_ms - int(window_s * 1000)
        stats: dict[int, tuple[Any, ...]] = {}
        with self.store.snapshot(start, None) as snap:
            cur = self._cursor()
            try:
                source = self._source(cur, snap, sids, start, None)
                rows = cur.execute(
                    f"""
                    WITH s AS (SELECT sid, ts, value,
                               value - lag(value) OVER (PARTITION BY sid ORDER BY ts) AS d
                               FROM ({source}))
                    SELECT sid, count(*), avg(value), min(value), max(value), stddev_samp(value),
                           quantile_cont(value, 0.5), quantile_cont(value, 0.95),
                           quantile_cont(value, 0.99),
                           sum(CASE WHEN d < 0 THEN value ELSE d END), min(ts), max(ts)
                    FROM s GROUP BY sid
                    """
                ).fetchall()
            finally:
                cur.close()
        for row in rows:
            stats[row[0]] = row[1:]
        out = []
        for slot, sid, ts, value in zip(slots.tolist(), sids.tolist(), last_ts, last_value,
                                         strict=True):
            info = self.store.index.info(slot)
            s = stats.get(sid)
            window: dict[str, Any] = {"count": 0}
            if s is not None:
                count, mean, lo, hi, std, p50, p95, p99, increase, t0, t1 = s
                span_s = (t1 - t0) / 1000
                window = {
                    "count": count, "mean": mean, "min": lo, "max": hi, "stddev": std,
                    "p50": p50, "p95": p95, "p99": p99,
                    "rate": (increase / span_s) if increase is not None and span_s > 0 else None,
                }
            out.append({
                "metric": info.metric, "labels": info.labels,
                "timestamp": None if ts == NO_TS else int(ts),
                "value": None if ts == NO_TS else float(value),
                "window_s": window_s, "window": window,
            })
        return out

    # -- ranges -------------------------------------------------------------------------

    def range(self, q: RangeQuery) -> list[dict[str, Any]]:
        """Step buckets of the selected series, optionally merged into groups by labels."""
        if q.agg not in AGGS:
            raise InvalidInput(f"unknown agg {q.agg!r}; use one of {', '.join(AGGS)}", field="agg")
        if q.end_ms < q.start_ms:
            raise InvalidInput("end is before start", field="end")
        buckets = (q.end_ms // q.step_ms) - (q.start_ms // q.step_ms) + 1
        if buckets > self.limits.max_points_per_series:
            raise InvalidInput(
                f"range of {buckets} steps exceeds the limit of "
                f"{self.limits.max_points_per_series} points per series; increase step",
                field="step",
            )
        chosen = self.store.index.select(q.selector) if q.slots is None else q.slots
        slots = np.array(chosen, dtype=np.int64)
        if len(slots) == 0:
            return []
        groups, group_labels = self._groups(slots, q.group_by)
        if len(group_labels) * buckets > self.limits.max_points_per_query:
            raise InvalidInput(
                f"query would return up to {len(group_labels) * buckets} points, over the limit "
                f"of {self.limits.max_points_per_query}; narrow the selector or increase step",
                field="selector",
            )
        sids = self.store.index.ids(slots)
        with self.store.snapshot(q.start_ms, q.end_ms) as snap:
            cur = self._cursor()
            try:
                cur.register("grp", pa.table({"gsid": sids, "g": groups}))
                table = cur.sql(self._range_sql(cur, snap, sids, q)).to_arrow_table()
            finally:
                cur.close()
        g = table.column("g").to_numpy()
        ts = table.column("ts").to_numpy()
        values = table.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
        out = []
        bounds = np.flatnonzero(np.diff(g)) + 1
        for part in np.split(np.arange(len(g)), bounds) if len(g) else []:
            metric, labels = group_labels[int(g[part[0]])]
            out.append({
                "metric": metric, "labels": labels,
                "timestamps": ts[part].tolist(),
                "values": [None if np.isnan(v) else float(v) for v in values[part]],
            })
        return out

    # -- totals over trailing windows ---------------------------------------------------

    def window_totals(
        self, selector: Selector, end_ms: int, windows_ms: Sequence[int], *,
        counter: bool = False, at_most: float | None = None, equal: float | None = None,
        quantile: float | None = None, lookback_ms: int = 0,
    ) -> WindowTotals:
        """Totals of all the selected series together over each window (end_ms - w, end_ms],
        in one scan: the SLO evaluator's SLIs (docs/slo.md).

        `count`: finite samples. `matching`: those with value <= `at_most` or == `equal`.
        With `counter`, `increase`: each sample adds its rise since the previous sample of
        its series (a fall is a counter reset, so the sample's own value is the rise); a
        window thus counts from the series' last sample before it (looked for up to
        `lookback_ms` before the longest window) to its last sample in it, and a series'
        first sample adds nothing. `quantile`: of the values in the window.
        """
        n = len(windows_ms)
        totals = WindowTotals(np.zeros(n, np.int64), np.zeros(n, np.int64),
                              np.full(n, np.nan), np.full(n, np.nan))
        slots = np.array(self.store.index.select(selector), dtype=np.int64)
        if n == 0 or len(slots) == 0:
            return totals
        sids = self.store.index.ids(slots)
        starts = [end_ms - int(w) for w in windows_ms]  # a window holds ts > start
        first_ms = min(starts) + 1 - max(0, lookback_ms)
        condition = "false"
        if at_most is not None:
            condition = f"value <= {float(at_most)!r}"
        elif equal is not None:
            condition = f"value = {float(equal)!r}"
        columns = []
        for start in starts:
            inside = f"ts > {start}"
            columns += [f"count(*) FILTER (WHERE {inside})",
                        f"count(*) FILTER (WHERE {inside} AND {condition})",
                        f"sum(CASE WHEN d < 0 THEN value ELSE d END) FILTER (WHERE {inside})"
                        if counter else "NULL",
                        f"quantile_cont(value, {float(quantile)!r}) FILTER (WHERE {inside})"
                        if quantile is not None else "NULL"]
        delta = ("value - lag(value) OVER (PARTITION BY sid ORDER BY ts)" if counter
                 else "NULL::DOUBLE")
        with self.store.snapshot(first_ms, end_ms) as snap:
            cur = self._cursor()
            try:
                source = self._source(cur, snap, sids, first_ms, end_ms)
                row = cur.execute(
                    f"WITH s AS (SELECT ts, value, {delta} AS d FROM ({source}) "
                    f"WHERE isfinite(value)) SELECT {', '.join(columns)} FROM s").fetchone()
            finally:
                cur.close()
        if row is None:
            return totals
        cells = np.array([np.nan if v is None else float(v) for v in row]).reshape(n, 4)
        totals.count[:] = cells[:, 0]
        totals.matching[:] = cells[:, 1]
        totals.increase[:] = cells[:, 2]
        totals.quantile[:] = cells[:, 3]
        return totals

    # -- raw samples --------------------------------------------------------------------

    def samples(self, slots: Sequence[int], start_ms: int, end_ms: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every sample of the given series with start_ms <= ts <= end_ms, as three
        columns (slot, ts, value) sorted by slot, then ts: for computations that need each
        point (energy integration). The caller bounds the work by passing few slots."""
        wanted = np.asarray(slots, dtype=np.int64)
        if len(wanted) == 0 or end_ms < start_ms:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        sids = self.store.index.ids(wanted)
        with self.store.snapshot(start_ms, end_ms) as snap:
            cur = self._cursor()
            try:
                source = self._source(cur, snap, sids, start_ms, end_ms)
                table = cur.sql(f"SELECT sid, ts, value FROM ({source}) ORDER BY sid, ts"
                                ).to_arrow_table()
            finally:
                cur.close()
        sid_col = table.column("sid").to_numpy()
        order = np.argsort(sids, kind="stable")
        slot_col = wanted[order][np.searchsorted(sids[order], sid_col)]
        ts = table.column("ts").to_numpy().astype(np.int64)
        values = table.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
        by_slot = np.lexsort((ts, slot_col))  # sid order is not slot order
        return slot_col[by_slot], ts[by_slot], values[by_slot]

    def _groups(
        self, slots: np.ndarray, group_by: tuple[str, ...] | None
    ) -> tuple[np.ndarray, list[tuple[str, dict[str, str]]]]:
        index = self.store.index
        if group_by is None:
            infos = [index.info(int(s)) for s in slots]
            return np.arange(len(slots)), [(i.metric, i.labels) for i in infos]
        keys: dict[tuple[str, ...], int] = {}
        groups = np.empty(len(slots), np.int64)
        labels: list[tuple[str, dict[str, str]]] = []
        metrics = {index.info(int(s)).metric for s in slots}
        metric = metrics.pop() if len(metrics) == 1 else ""
        for i, slot in enumerate(slots.tolist()):
            info = index.info(slot)
            key = tuple(info.labels.get(name, "") for name in group_by)
            if key not in keys:
                keys[key] = len(labels)
                labels.append((metric, {n: v for n, v in zip(group_by, key, strict=True) if v}))
            groups[i] = keys[key]
        return groups, labels

    def _range_sql(
        self, cur: duckdb.DuckDBPyConnection, snap: Snapshot, sids: np.ndarray, q: RangeQuery
    ) -> str:
        step = q.step_ms
        where = f"ts >= {q.start_ms // step * step} AND ts <= {q.end_ms}"
        if q.agg in _PARTIAL_AGGS:
            partials = self._partials(cur, snap, sids, q, where)
            final = {
                "avg": "sum(sum) / sum(cnt)", "min": "min(min)", "max": "max(max)",
                "sum": "sum(sum)", "count": "sum(cnt)",
            }[q.agg]
            return (
                f"SELECT g, b * {step} AS ts, {final} AS value FROM ({partials}) p "
                "JOIN grp ON p.sid = grp.gsid GROUP BY g, b ORDER BY g, b"
            )
        source = self._source(cur, snap, sids, q.start_ms // step * step, q.end_ms)
        if q.agg == "rate":
            return f"""
                WITH s AS (SELECT sid, ts, value,
                           value - lag(value) OVER (PARTITION BY sid ORDER BY ts) AS d
                           FROM ({source}))
                , per_series AS (SELECT sid, ts // {step} AS b,
                           sum(CASE WHEN d < 0 THEN value ELSE d END) / {step / 1000} AS r
                           FROM s WHERE {where} GROUP BY sid, b)
                SELECT g, b * {step} AS ts, sum(r) AS value FROM per_series
                JOIN grp ON per_series.sid = grp.gsid GROUP BY g, b ORDER BY g, b"""
        quantile = _QUANTILES[q.agg]
        return (
            f"SELECT g, ts // {step} * {step} AS ts, quantile_cont(value, {quantile}) AS value "
            f"FROM ({source}) s JOIN grp ON s.sid = grp.gsid WHERE {where} "
            "GROUP BY ALL ORDER BY g, ts"
        )

    def _partials(
        self, cur: duckdb.DuckDBPyConnection, snap: Snapshot, sids: np.ndarray,
        q: RangeQuery, where: str,
    ) -> str:
        """(sid, b, cnt, sum, min, max) per step bucket, from rollups where a block has one."""
        step = q.step_ms
        raw_blocks, tail_blocks, parts = [], [], []
        sid_filter = self._sid_filter(cur, sids)
        for block in snap.blocks:
            rollup = None
            if not snap.needs_dedupe:
                rollup = next(
                    (n for n in reversed(list(ROLLUPS)) if n in block.meta.rollups
                     and step % ROLLUPS[n] == 0 and q.start_ms % ROLLUPS[n] == 0),
                    None,
                )
            if rollup is None:
                raw_blocks.append(block)
                continue
            # Whole rollup buckets up to `cut`; the partial bucket holding `end` is read raw.
            width = ROLLUPS[rollup]
            cut = (q.end_ms + 1) // width * width
            path = block.rollup_path(rollup).as_posix()
            parts.append(
                f"SELECT sid, ts // {step} AS b, sum(cnt) AS cnt, sum(sum) AS sum, "
                f"min(min) AS min, max(max) AS max FROM read_parquet('{path}') "
                f"WHERE {sid_filter} AND {where} AND ts < {cut} GROUP BY ALL"
            )
            if block.meta.max_ts >= cut:
                tail_blocks.append((block, cut))
        sources = []
        if raw_blocks or snap.head.num_rows:
            raw = Snapshot(raw_blocks, snap.head, snap.head_may_overlap)
            sources.append(self._source(cur, raw, sids, q.start_ms // step * step, q.end_ms))
        for block, cut in tail_blocks:
            sources.append(self._source(cur, Snapshot([block], _EMPTY_HEAD, False), sids,
                                        cut, q.end_ms))
        for source in sources:
            parts.append(
                f"SELECT sid, ts // {step} AS b, count(*) AS cnt, sum(value) AS sum, "
                f"min(value) AS min, max(value) AS max FROM ({source}) s "
                f"WHERE {where} GROUP BY ALL"
            )
        if not parts:
            return "SELECT 0::BIGINT AS sid, 0::BIGINT AS b, 0 AS cnt, 0.0 AS sum, " \
                   "0.0 AS min, 0.0 AS max WHERE false"
        return " UNION ALL ".join(parts)

    def _sid_filter(self, cur: duckdb.DuckDBPyConnection, sids: np.ndarray) -> str:
        lo, hi = int(sids.min()), int(sids.max())
        if len(sids) <= _INLINE_SIDS:
            listed = ",".join(str(int(s)) for s in sids)
            return f"sid BETWEEN {lo} AND {hi} AND sid IN ({listed})"
        cur.register("wanted", pa.table({"wsid": sids}))
        return f"sid BETWEEN {lo} AND {hi} AND sid IN (SELECT wsid FROM wanted)"

    def _source(
        self, cur: duckdb.DuckDBPyConnection, snap: Snapshot, sids: np.ndarray,
        start_ms: int, end_ms: int | None,
    ) -> str:
        """SQL of the (sid, ts, value) rows of the selected series in a time range."""
        cond = self._sid_filter(cur, sids) + f" AND ts >= {start_ms}"
        if end_ms is not None:
            cond += f" AND ts <= {end_ms}"
        head = f"head_{id(snap.head)}"  # one name per table: a query may read two heads
        cur.register(head, snap.head)
        if not snap.needs_dedupe:
            parts = [f"SELECT sid, ts, value FROM {head} WHERE {cond}"]
            if snap.blocks:
                paths = ", ".join(f"'{b.samples_path.as_posix()}'" for b in snap.blocks)
                parts.append(
                    f"SELECT sid, ts, {VALUE_SQL} AS value FROM read_parquet([{paths}]) "
                    f"WHERE {cond}"
                )
            return " UNION ALL ".join(parts)
        # Late or duplicate samples exist: the newest generation of a (sid, ts) wins.
        parts = [f"SELECT sid, ts, value, {2**62} AS gen FROM {head} WHERE {cond}"]
        for b in snap.blocks:
            parts.append(
                f"SELECT sid, ts, {VALUE_SQL} AS value, {b.meta.gen} AS gen "
                f"FROM read_parquet('{b.samples_path.as_posix()}') WHERE {cond}"
            )
        union = " UNION ALL ".join(parts)
        return f"SELECT sid, ts, arg_max(value, gen) AS value FROM ({union}) GROUP BY sid, ts"
