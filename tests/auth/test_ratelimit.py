"""The per-token ingest limiter: a token bucket in samples that may go into debt."""

from __future__ import annotations

import pytest

from seismo.auth import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_admits_up_to_the_burst_then_asks_to_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert limiter.take("a", 100, 60) == 0.0
    assert limiter.take("a", 100, 40) == 0.0   # the bucket is now exactly empty
    assert limiter.take("a", 100, 1) == 0.0    # empty is not negative: admitted, 1 in debt
    assert limiter.take("a", 100, 1) == pytest.approx(0.01)


def test_a_big_request_is_admitted_and_the_next_waits_for_the_debt() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert limiter.take("a", 10, 1000) == 0.0         # never starved, however big
    assert limiter.take("a", 10, 1) == pytest.approx(99.0)  # debt 990 / 10 per s
    clock.now += 50
    assert limiter.take("a", 10, 1) == pytest.approx(49.0)  # refused requests take nothing
    clock.now += 49
    assert limiter.take("a", 10, 5) == 0.0


def test_refill_is_capped_at_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(burst_s=2, clock=clock)
    assert limiter.take("a", 10, 20) == 0.0
    clock.now += 3600
    assert limiter.take("a", 10, 21) == 0.0
    assert limiter.take("a", 10, 1) == pytest.approx(0.1)  # no more than 2 s were saved


def test_keys_are_independent_and_zero_means_no_limit() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert limiter.take(1, 5, 100) == 0.0
    assert limiter.take(1, 5, 1) > 0
    assert limiter.take(2, 5, 1) == 0.0
    assert all(limiter.take(3, 0, 10**9) == 0.0 for _ in range(3))


def test_forget_and_the_bound_on_buckets() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock, max_buckets=2)
    limiter.take("a", 1, 100)
    limiter.forget("a")
    assert limiter.take("a", 1, 1) == 0.0  # a fresh, full bucket
    limiter.take("b", 1, 100)
    limiter.take("c", 1, 100)  # pushes "a" out (least recently used)
    limiter.take("d", 1, 100)  # pushes "b" out
    assert limiter.take("b", 1, 1) == 0.0
