"""The fuzzers of tests/fuzz, long and random: many examples per parser and per API route.

Run with `make fuzz` (or `.venv/bin/python bench/fuzz.py --examples 20000`). `make test`
runs the same properties with ~150 examples (4 per route), derandomised; this run draws
new random inputs every time, so it can find what the fixed seed never reaches. Prints
each test's time and pytest's report; the exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000,
                        help="hypothesis examples per parser test and per API operation "
                             "(default 5000)")
    parser.add_argument("-k", default="", help="pytest -k expression, e.g. 'promql or otlp'")
    args = parser.parse_args()
    env = {**os.environ, "FUZZ_EXAMPLES": str(args.examples)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=0",
           "--durations=0", "tests/fuzz"] + (["-k", args.k] if args.k else [])
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
