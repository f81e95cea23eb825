"""Chaos scenarios (issue 12): seismo under crashes, overload, slow consumers, a full disk
and clock jumps. `make chaos` runs them all at full size (`bench/chaos/run.py`); each has
a short smoke version in `tests/chaos/`, run by `make test`.

Every scenario module exposes `run(work: Path, ...) -> dict` (the figures, and `ok`) and
`SMOKE`/`FULL` keyword sets for it. Modules import `bench/ingest.py` as `ingest`, so
`bench/` must be on `sys.path` (run.py and tests/chaos/conftest.py put it there).
"""
