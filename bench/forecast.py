"""Forecasting (issue 8): fit + predict time for 1,000 series, and accuracy on NAB series.

Run with `make bench` (or `.venv/bin/python bench/forecast.py --help`). In one process, no
server, `seismo.forecast.forecast_many` (what `GET /api/v1/forecast` and forecast rules run):

- **Speed.** 1,000 synthetic series (a third random walks, a third linear trends with
  noise, a third an hourly sine with noise) of 1 day at 1 minute (1,440 points), forecast
  1 h ahead (60 steps) with the backtest the API reports; then 1 week at 5 minutes (2,016
  points, a daily season) 1 h and 1 day ahead; then the forecast-rule path (no backtest,
  360 points). Median of `--repeat` runs; data generation is not timed.
- **Accuracy on real-world series.** Every NAB file (`../shared/nab/data/*/*.csv`, used
  as generic series, anomalies and all) resampled to its own median step, forecast from
  `--origins` origins spread over its second half, each with up to `--history` points
  before it, `--horizon` steps ahead. MASE (scaled by the in-sample naive lag-1 error),
  sMAPE (%) and the share of actual values inside the 80 % interval, against the naive
  (last value) and seasonal-naive (one day before) forecasts; and how well the backtest
  figure reported with each forecast predicts its realised error (Spearman's rho).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from ingest import machine  # bench/ingest.py
from seismo.forecast import forecast_many
from seismo.forecast.accuracy import coverage, mase, naive_scale, smape
from seismo.forecast.model import seasonal_naive

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NAB = ROOT.parent / "shared" / "nab" / "data"
DAY_MS = 86_400_000


def synthetic(rows: int, steps: int, step_ms: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    minutes = t * step_ms / 60_000
    out = np.empty((rows, steps))
    kind = np.arange(rows) % 3
    walk = 50 + np.cumsum(rng.normal(0, 1, (rows, steps)), axis=1)
    trend = (100 - rng.uniform(0.01, 0.1, (rows, 1)) * t[None, :]
             + rng.normal(0, 1, (rows, steps)))
    daily = 20 * np.sin(2 * np.pi * minutes / 1440)[None, :] if step_ms >= 300_000 else 0
    sine = (50 + 10 * np.sin(2 * np.pi * minutes / 60)[None, :] + daily
            + rng.normal(0, 1, (rows, steps)))
    out[kind == 0], out[kind == 1], out[kind == 2] = walk[kind == 0], trend[kind == 1], \
        sine[kind == 2]
    return out


def timed(y: np.ndarray, step_ms: int, horizon: int, repeat: int, backtest: bool = True
          ) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f = forecast_many(y, step_ms, horizon, backtest=backtest)
        runs.append(time.perf_counter() - t0)
    models: dict[str, int] = {}
    for m in f.model:
        models[m] = models.get(m, 0) + 1
    return {"series": y.shape[0], "points": y.shape[1], "step_s": step_ms / 1000,
            "horizon": horizon, "backtest": backtest, "median_s": round(statistics.median(runs), 3),
            "min_s": round(min(runs), 3), "models": models,
            "seasonal": int((f.period > 1).sum())}


def read_nab(path: Path) -> tuple[np.ndarray, int]:
    """The file's values on a grid of its median step (NaN where no sample), and the step."""
    with path.open() as fh:
        rows = list(csv.reader(fh))[1:]
    ts = np.array([dt.datetime.fromisoformat(r[0]).replace(tzinfo=dt.UTC).timestamp()
                   for r in rows]) * 1000
    values = np.array([float(r[1]) for r in rows])
    order = np.argsort(ts, kind="stable")
    ts, values = ts[order].astype(np.int64), values[order]
    step = int(np.median(np.diff(ts)))
    col = (ts - ts[0]) // step
    grid = np.full(int(col[-1]) + 1, np.nan)
    grid[col] = values
    return grid, step


def nab_accuracy(data: Path, origins: int, history: int, horizon: int) -> dict[str, Any]:
    files = sorted(data.glob("*/*.csv"))
    if not files:
        raise SystemExit(f"error: no CSV files under {data}")
    by_step: dict[int, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for path in files:
        series, step = read_nab(path)
        n = len(series)
        for k in range(origins):
            origin = n // 2 + (n // 2 - horizon) * k // max(origins - 1, 1)
            origin = min(origin, n - horizon)
            past = series[max(0, origin - history):origin]
            future = series[origin:origin + horizon]
            by_step.setdefault(step, []).append((path.stem, past, future))
    res: dict[str, list[float]] = {key: [] for key in (
        "mase", "smape", "coverage", "naive_mase", "naive_smape", "snaive_mase",
        "snaive_smape", "reported_mase")}
    models: dict[str, int] = {}
    fit_s = 0.0
    for step, items in by_step.items():
        width = max(len(p) for _, p, _ in items)
        y = np.full((len(items), width), np.nan)
        for i, (_, past, _) in enumerate(items):
            y[i, width - len(past):] = past
        actual = np.stack([f for _, _, f in items])
        t0 = time.perf_counter()
        f = forecast_many(y, step, horizon, level=0.8)
        fit_s += time.perf_counter() - t0
        scale = naive_scale(y, np.ones(len(items), np.int64))
        naive = seasonal_naive(y, 1, horizon, 0.8)[0]
        day = round(DAY_MS / step)
        snaive = seasonal_naive(y, day, horizon, 0.8)[0] if width > day else naive
        for key, values in (
                ("mase", mase(actual, f.mean, scale)), ("smape", smape(actual, f.mean)),
                ("coverage", coverage(actual, f.lower, f.upper)),
                ("naive_mase", mase(actual, naive, scale)), ("naive_smape", smape(actual, naive)),
                ("snaive_mase", mase(actual, snaive, scale)),
                ("snaive_smape", smape(actual, snaive)), ("reported_mase", f.mase)):
            res[key].extend(np.asarray(values, np.float64).tolist())
        for m in f.model:
            models[m] = models.get(m, 0) + 1
    arr = {k: np.asarray(v) for k, v in res.items()}
    ok = np.isfinite(arr["mase"]) & np.isfinite(arr["naive_mase"]) & np.isfinite(arr["smape"])

    def dist(a: np.ndarray) -> dict[str, float]:
        a = a[ok & np.isfinite(a)]
        q = np.percentile(a, [10, 25, 50, 75, 90])
        return {"p10": round(q[0], 3), "p25": round(q[1], 3), "median": round(q[2], 3),
                "p75": round(q[3], 3), "p90": round(q[4], 3), "mean": round(float(a.mean()), 3)}

    both = ok & np.isfinite(arr["reported_mase"])
    rho = spearmanr(arr["reported_mase"][both], arr["mase"][both]).statistic
    return {
        "files": len(files), "forecasts": int(ok.sum()), "origins": origins,
        "history": history, "horizon": horizon, "fit_s": round(fit_s, 2),
        "mase": dist(arr["mase"]), "smape": dist(arr["smape"]),
        "naive_mase": dist(arr["naive_mase"]), "naive_smape": dist(arr["naive_smape"]),
        "snaive_mase": dist(arr["snaive_mase"]), "snaive_smape": dist(arr["snaive_smape"]),
        "beats_naive": round(float(np.mean(arr["mase"][ok] < arr["naive_mase"][ok])), 3),
        "ties_naive": round(float(np.mean(arr["mase"][ok] == arr["naive_mase"][ok])), 3),
        "coverage_80": round(float(np.nanmean(arr["coverage"][ok])), 3),
        "reported_vs_realised_rho": round(float(rho), 3), "models": models,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nab", type=Path, default=DEFAULT_NAB, help="NAB data dir")
    ap.add_argument("--origins", type=int, default=5, help="forecast origins per NAB file")
    ap.add_argument("--history", type=int, default=2016, help="points before each origin")
    ap.add_argument("--horizon", type=int, nargs="+", default=[12, 48],
                    help="NAB horizons, in steps of each file")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()

    speed = [
        timed(synthetic(args.series, 1440, 60_000), 60_000, 60, args.repeat),
        timed(synthetic(args.series, 2016, 300_000, 1), 300_000, 12, args.repeat),
        timed(synthetic(args.series, 2016, 300_000, 1), 300_000, 288, args.repeat),
        timed(synthetic(args.series, 360, 60_000, 2), 60_000, 240, args.repeat, backtest=False),
    ]
    accuracy = [nab_accuracy(args.nab, args.origins, args.history, h) for h in args.horizon]
    figures = {"speed": speed, "nab": accuracy, "machine": machine(),
               "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}
    if args.json:
        print(json.dumps(figures))
        return
    print(f"# Forecasting, {figures['date']}")
    print("\nfit + predict, all series at once (median of "
          f"{args.repeat} runs):\n")
    print("| series | history | step | horizon | backtest | median s | min s | seasonal |")
    print("|---|---|---|---|---|---|---|---|")
    for s in speed:
        print(f"| {s['series']:,} | {s['points']:,} | {s['step_s']:g} s | {s['horizon']} | "
              f"{'yes' if s['backtest'] else 'no'} | {s['median_s']} | {s['min_s']} | "
              f"{s['seasonal']} |")
    for a in accuracy:
        print(f"\nNAB: {a['files']} files x {a['origins']} origins = {a['forecasts']} "
              f"forecasts of {a['horizon']} steps from up to {a['history']} points "
              f"(fitting took {a['fit_s']} s)\n")
        print("| forecast | MASE p10 | p25 | median | p75 | p90 | mean | sMAPE median | mean |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, key in (("seismo", ""), ("naive", "naive_"), ("seasonal naive (1 d)",
                                                                 "snaive_")):
            m, s = a[f"{key}mase"], a[f"{key}smape"]
            print(f"| {name} | {m['p10']} | {m['p25']} | {m['median']} | {m['p75']} | "
                  f"{m['p90']} | {m['mean']} | {s['median']} | {s['mean']} |")
        print(f"\nseismo's MASE below naive's in {a['beats_naive']:.0%} of forecasts (equal in "
              f"{a['ties_naive']:.0%}); actual values inside the 80 % interval: "
              f"{a['coverage_80']:.0%}; backtest MASE reported vs realised: Spearman rho "
              f"{a['reported_vs_realised_rho']}")
        print(f"models: {a['models']}")
    print(f"\nmachine: {figures['machine']}")


if __name__ == "__main__":
    main()
