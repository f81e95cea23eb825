"""Shared hypothesis strategies and the one property every fuzz test checks."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from seismo.errors import SeismoError

# Fixed, small and derandomised: the fuzzers run in `make test` and must stay fast and
# repeatable. `bench/fuzz.py` sets FUZZ_EXAMPLES for a long, random run (not SEISMO_*:
# the server refuses unknown SEISMO_ variables).
LONG_RUN_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=LONG_RUN_EXAMPLES or 150, derandomize=not LONG_RUN_EXAMPLES,
                deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12,
)


def grammar_text(pieces: list[str], *, max_size: int = 12) -> st.SearchStrategy[str]:
    """Text glued from grammar fragments and random characters: gets past the lexer."""
    fragment = st.sampled_from(pieces) | st.text(max_size=3)
    return st.lists(fragment, max_size=max_size).map("".join)


def refuses_cleanly(call: Callable[[], Any]) -> Any:
    """Run `call`; a SeismoError is a clean refusal, anything else fails the test."""
    try:
        return call()
    except SeismoError as exc:
        assert exc.message, "a refusal must say why"
        return None
