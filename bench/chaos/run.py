"""Run the chaos scenarios at full size: `.venv/bin/python bench/chaos/run.py [NAME ...]`.

Prints each scenario's figures as JSON lines and a summary table; exits 1 if any scenario
is not ok. Everything runs on 127.0.0.1; work directories are printed and kept.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: chaos.*, ingest

SCENARIOS = ["crash", "overload", "consumers", "diskfull", "clock"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"scenarios to run, of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--smoke", action="store_true", help="the short versions of make test")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    results = {}
    for name in args.names or SCENARIOS:
        module = importlib.import_module(f"chaos.{name}")
        work = Path(tempfile.mkdtemp(prefix=f"seismo-chaos-{name}-"))
        print(f"== {name} (work dir {work})", flush=True)
        started = time.monotonic()
        figures = module.run(work, **(module.SMOKE if args.smoke else module.FULL))
        figures["seconds"] = round(time.monotonic() - started, 1)
        results[name] = figures
        print(json.dumps({"scenario": name, **figures}, default=str), flush=True)
    print("\n| scenario | ok | seconds |\n|---|---|---:|")
    for name, figures in results.items():
        print(f"| {name} | {figures.get('ok')} | {figures['seconds']} |")
    return 0 if all(f.get("ok") for f in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
