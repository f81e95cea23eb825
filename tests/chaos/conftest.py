"""The chaos scenarios live in bench/chaos (full size, `make chaos`); these tests run
their smoke versions. bench/ goes on sys.path so `chaos.<scenario>` and `ingest` import."""

import sys
from pathlib import Path

BENCH = str(Path(__file__).resolve().parents[2] / "bench")
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)
