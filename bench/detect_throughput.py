"""Detector throughput: samples/s through the full ensemble for many series (issue 5).

Builds one `Ensemble` with the default configuration, warms it up on SERIES series
(random walks with noise and a daily cycle, one sample a minute) until every series is past
its warm-up, then times batches of several shapes: every series × 1 sample (what the engine
sees when each series reports once per ingest batch), every series × 10 samples, and a
tenth of the series × 100 samples. Prints samples/s and ms per batch per shape.

    .venv/bin/python bench/detect_throughput.py [--series 10000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from seismo.detect import DetectConfig, Ensemble

STEP_MS = 60_000
AIM = 200_000


class Feed:
    """Synthetic samples per series, continuing in time across calls."""

    def __init__(self, series: int, seed: int = 1) -> None:
        self.rng = np.random.default_rng(seed)
        self.series = series
        self.level = self.rng.uniform(10, 100, series)
        self.next_ts = np.full(series, 1_700_000_000_000, dtype=np.int64)

    def batch(self, slots: np.ndarray, per_series: int) -> tuple[np.ndarray, ...]:
        k = len(slots)
        steps = self.rng.normal(0, 0.1, (k, per_series)).cumsum(axis=1)
        ts = self.next_ts[slots, None] + STEP_MS * np.arange(per_series)[None, :]
        daily = 5 * np.sin(2 * np.pi * ts / 86_400_000)
        values = self.level[slots, None] + steps + daily + self.rng.normal(0, 1, (k, per_series))
        self.level[slots] += steps[:, -1]
        self.next_ts[slots] += STEP_MS * per_series
        return (np.repeat(slots, per_series), ts.ravel(), values.ravel())


def measure(ensemble: Ensemble, feed: Feed, slots: np.ndarray, per_series: int,
            seconds: float) -> tuple[float, float, int]:
    """Run batches for about `seconds`; return samples/s, median ms per batch, batches."""
    times: list[float] = []
    samples = 0
    spent = 0.0
    while spent < seconds or len(times) < 3:
        batch = feed.batch(slots, per_series)
        started = time.perf_counter()
        ensemble.update(*batch)
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        spent += elapsed
        samples += len(batch[0])
    return samples / spent, statistics.median(times) * 1000, len(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per shape")
    args = ap.parse_args()

    config = DetectConfig()
    ensemble = Ensemble(config)
    feed = Feed(args.series)
    every = np.arange(args.series)
    started = time.perf_counter()
    warm_batches = (config.warmup + 99) // 100 + 1
    for _ in range(warm_batches):
        ensemble.update(*feed.batch(every, 100))
    warm_s = time.perf_counter() - started
    print(f"# detector throughput: {args.series:,} series, default DetectConfig "
          f"({', '.join(config.detectors)}), {platform.node()}, Python "
          f"{platform.python_version()}, numpy {np.__version__}")
    print(f"warm-up: {warm_batches * 100 * args.series:,} samples in {warm_s:.1f} s\n")
    print("| batch shape | samples/batch | samples/s | ms/batch (median) | batches | aim |")
    print("|---|---:|---:|---:|---:|---|")
    tenth = every[: max(args.series // 10, 1)]
    for label, slots, per in ((f"{args.series:,} series × 1", every, 1),
                              (f"{args.series:,} series × 10", every, 10),
                              (f"{len(tenth):,} series × 100", tenth, 100)):
        rate, ms, n = measure(ensemble, feed, slots, per, args.seconds)
        verdict = "meets" if rate >= AIM else "misses"
        print(f"| {label} | {len(slots) * per:,} | {rate:,.0f} | {ms:.1f} | {n} | "
              f"≥ {AIM:,}: {verdict} |")
    state = ensemble.to_bytes()
    print(f"\nstate snapshot: {len(state) / 2**20:.1f} MiB for {args.series:,} series")


if __name__ == "__main__":
    main()
