"""Per-token ingest rate limits: a token bucket in samples that may go into debt.

A request is admitted while the bucket is not negative, then its whole sample count is
taken, so one request bigger than the bucket is never starved; the next one waits until
the debt is paid back (Retry-After = debt / rate). Buckets are per key (a token id).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_BUCKETS = 10_000  # beyond it the least recently used bucket is forgotten (refilled)


class _Bucket:
    __slots__ = ("level", "rate", "updated")

    def __init__(self, rate: float, now: float, capacity: float) -> None:
        self.rate = rate
        self.level = capacity
        self.updated = now


class RateLimiter:
    """Samples per second per key; a bucket holds at most `burst_s` seconds of its rate."""

    def __init__(self, *, burst_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 max_buckets: int = MAX_BUCKETS) -> None:
        if burst_s <= 0:
            raise ValueError("burst_s must be positive")
        self.burst_s = burst_s
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[object, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: object, rate: float, cost: float) -> float:
        """Admit `cost` samples for `key` at `rate`/s: 0.0, or the seconds to wait first.

        A refused request takes nothing. A rate of 0 or less means no limit.
        """
        if rate <= 0:
            return 0.0
        with self._lock:
            return self._take(key, rate, cost)

    def _take(self, key: object, rate: float, cost: float) -> float:
        now = self.clock()
        capacity = rate * self.burst_s
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(rate, now, capacity)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.level = min(capacity, bucket.level + (now - bucket.updated) * bucket.rate)
            bucket.rate = rate
            bucket.updated = now
        if bucket.level < 0:
            return -bucket.level / rate
        bucket.level -= cost
        return 0.0

    def forget(self, key: object) -> None:
        """Drop the bucket of `key` (a revoked token)."""
        with self._lock:
            self._buckets.pop(key, None)
