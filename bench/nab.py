"""NAB benchmark: score seismo's detector ensemble on the Numenta Anomaly Benchmark (issue 5).

Runs every file under the NAB data directory through `seismo.detect.detect_series` (the
function behind `seismo detect`; one ensemble, one slot per file, batches of `--batch-rows`
rows per series in time order), writes `<category>/<name>.csv` results with
`timestamp,anomaly_score,...`, then runs the NAB scorer (`score.py --optimize`: one
corpus-wide threshold per profile) and prints its table. One configuration for every file:
the defaults of `DetectConfig`, or `--set key=value` for experiments.

    .venv/bin/python bench/nab.py [--nab ../shared/nab] [--out DIR] [--set z_half=6]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from seismo.detect import DetectConfig, detect_series, read_series, write_scores

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NAB = ROOT.parent / "shared" / "nab"


def _config(sets: list[str]) -> DetectConfig:
    changes: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(DetectConfig)}
    for item in sets:
        key, _, text = item.partition("=")
        if key not in fields:
            sys.exit(f"error: --set {key}: no such DetectConfig field")
        if key == "detectors":
            changes[key] = tuple(x for x in text.split(",") if x)
        elif key == "weights":
            changes[key] = {k: float(w) for k, w in
                            (pair.split(":") for pair in text.split(",") if pair)}
        elif key == "seasonality":
            changes[key] = text
        else:
            changes[key] = type(getattr(DetectConfig(), key))(float(text))
    return dataclasses.replace(DetectConfig(), **changes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nab", type=Path, default=DEFAULT_NAB, help="NAB dir (data/, labels/)")
    ap.add_argument("--out", type=Path, help="results dir [a temporary one]")
    ap.add_argument("--batch-rows", type=int, default=100, help="rows per series per batch")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a DetectConfig default (for experiments)")
    ap.add_argument("--json", type=Path, help="write the scorer's full report here")
    args = ap.parse_args()

    config = _config(args.set)
    files = sorted((args.nab / "data").glob("*/*.csv"))
    if not files:
        sys.exit(f"error: no CSV files under {args.nab / 'data'}")
    out = args.out or Path(tempfile.mkdtemp(prefix="seismo-nab-"))
    data = [read_series(f) for f in files]
    started = time.perf_counter()
    scores = detect_series([(d.ts, d.values) for d in data], config, args.batch_rows)
    elapsed = time.perf_counter() - started
    rows = sum(len(d.values) for d in data)
    for f, d, s in zip(files, data, scores, strict=True):
        target = out / f.parent.name / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        write_scores(target, d, s)

    print(f"# NAB: seismo detect, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
          f"{platform.node()}, Python {platform.python_version()}")
    print(f"{len(files)} files, {rows:,} rows in {elapsed:.1f} s "
          f"({rows / elapsed:,.0f} rows/s); results in {out}")
    changed = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
               if getattr(config, f.name) != getattr(DetectConfig(), f.name)}
    print(f"config: defaults{' + ' + json.dumps(changed) if changed else ''}\n")
    command = [sys.executable, str(args.nab / "score.py"), "--results", str(out),
               "--data", str(args.nab / "data"),
               "--labels", str(args.nab / "labels" / "combined_windows.json"),
               "--profiles", str(args.nab / "profiles.json"), "--optimize"]
    if args.json:
        command += ["--json", str(args.json)]
    sys.exit(subprocess.run(command, check=False).returncode)


if __name__ == "__main__":
    main()
