"""Rule evaluation cost: 10,000 rules over 10,000 series, batch after batch (issue 6).

Run with `make bench` (or `.venv/bin/python bench/rule_eval.py --help`). In one process,
no server: a `SeriesIndex` and `Head` of 10,000 series `cpu{host="h<i>"}` and the
`Evaluator` the server runs, with RULES rules in a realistic mix:

- 70 % thresholds on one series each: `cpu{host="h<i>"} > 90` (with `resolve` on half);
- 20 % window rules: `avg_over_time(cpu{host="h<i>"}[1m]) > 80`, `rate(...[1m]) > 5`;
- 10 % rules over many series: `cpu{host=~"h1.*"} > 99` (regex) and ratios.

Each batch holds one sample of every series (10,000 samples): a mean-reverting walk
around 45, and each batch a random 1 % of series jumps to 95, so alerts keep opening and
resolving as it runs (hundreds of transitions per batch). The
time per batch is what evaluating every rule on a full batch costs; samples/s is how many
samples one core can check against the rules. Data generation is not timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from ingest import machine  # bench/ingest.py
from seismo.alerting.evaluator import Evaluator
from seismo.alerting.rules import parse_rule
from seismo.store.batch import Batch
from seismo.store.head import Head
from seismo.store.series import SeriesIndex


def make_rules(count: int, series: int, metric: str = "cpu") -> list[dict[str, str]]:
    rules = []
    for i in range(count):
        sel = f'{metric}{{host="h{i % series}"}}'
        kind = i % 10
        if kind < 7:
            rule = {"name": f"High{i}", "expr": f"{sel} > 90"}
            if kind % 2:
                rule["resolve"] = f"{sel} < 80"
        elif kind == 7:
            rule = {"name": f"Avg{i}", "expr": f"avg_over_time({sel}[1m]) > 80"}
        elif kind == 8:
            rule = {"name": f"Rate{i}", "expr": f"rate({sel}[1m]) > 5"}
        else:
            rule = {"name": f"Wide{i}", "expr": f'{metric}{{host=~"h{i % 97}.*"}} > 99'}
        rules.append(rule)
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    index, head = SeriesIndex(args.series * 2), Head()
    slots = np.array([index.slot_for("cpu", {"host": f"h{i}"}) for i in range(args.series)],
                     dtype=np.int32)
    clock = [1_700_000_000_000]
    transitions = [0]
    evaluator = Evaluator(index, lambda: head.latest, clock=lambda: clock[0],
                          on_change=lambda t, tr: transitions.__setitem__(0, transitions[0] + 1))
    started = time.perf_counter()
    evaluator.set_rules([parse_rule(r) for r in make_rules(args.rules, args.series)])
    load_s = time.perf_counter() - started

    rng = np.random.default_rng(1)
    values = rng.uniform(20, 70, args.series)
    sids = index.ids(slots)
    times: list[float] = []
    for b in range(args.batches + 10):
        clock[0] += 1000
        # Mean-reverting around 45 (sd ~10): a stationary load, not a drift upwards.
        values = np.clip(values + 0.1 * (45 - values) + rng.normal(0, 4.4, args.series), 0, 100)
        hot = rng.random(args.series) < 0.01
        batch_values = np.where(hot, 95.0, values)
        ts = np.full(args.series, clock[0], np.int64)
        batch = Batch(slots, sids, ts, batch_values)
        head.observe(slots, ts, batch_values)
        t0 = time.perf_counter()
        evaluator.on_batch(batch)
        evaluator.tick()
        if b >= 10:  # the first batches build the (rule, series) pairs
            times.append(time.perf_counter() - t0)
    changed = make_rules(args.rules, args.series)
    changed[0]["expr"] = 'cpu{host="h0"} > 91'
    rules = [parse_rule(r) for r in changed]
    t0 = time.perf_counter()
    evaluator.set_rules(rules)  # one rule changed: only it is matched against the series
    change_s = time.perf_counter() - t0
    median = statistics.median(times)
    p99 = float(np.percentile(times, 99))
    figures = {
        "rules": args.rules, "series": args.series, "batches": args.batches,
        "rule_load_s": round(load_s, 3), "one_rule_change_s": round(change_s, 3),
        "pairs": len(evaluator._pair_rule),
        "ms_per_batch_median": round(median * 1000, 2),
        "ms_per_batch_p99": round(p99 * 1000, 2),
        "samples_per_s": round(args.series / median), "transitions": transitions[0],
        "active_alerts": len(evaluator.alerts), "machine": machine(),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{args.rules:,} rules over {args.series:,} series, {args.batches} batches of "
          f"{args.series:,} samples (one per series)")
    print(f"  rules loaded and indexed in {load_s:.2f} s; "
          f"{figures['pairs']:,} (rule, series) pairs")
    print(f"  one rule changed afterwards: re-indexed in {change_s * 1000:.0f} ms")
    print(f"  evaluation per batch (incl. timer tick): median {median * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms")
    print(f"  = {args.series / median:,.0f} samples/s checked against every rule on one core")
    print(f"  alert transitions during the run: {transitions[0]:,}; active at the end: "
          f"{len(evaluator.alerts):,}")
    print(f"  machine: {figures['machine']}")


if __name__ == "__main__":
    main()
