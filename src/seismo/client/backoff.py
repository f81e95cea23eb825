"""How long a client waits before reconnecting: exponential backoff with full jitter.

A plain object with an injectable random source, so the policy is tested without sleeping.
Reference: "Exponential Backoff And Jitter", AWS Architecture Blog (2015).
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable


class Backoff:
    """Attempt n (from 0) waits uniform(0, min(max_s, initial_s · 2ⁿ)); `reset()` starts over.

    >>> backoff = Backoff(initial_s=0.2, max_s=1.0, random=lambda: 1.0)
    >>> [backoff.next_delay_s() for _ in range(5)]
    [0.2, 0.4, 0.8, 1.0, 1.0]
    >>> backoff.reset(); backoff.next_delay_s()
    0.2
    """

    def __init__(self, initial_s: float = 0.2, max_s: float = 10.0, *,
                 random: Callable[[], float] = _random.random) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("need 0 < initial_s <= max_s")
        self.initial_s = initial_s
        self.max_s = max_s
        self.random = random
        self.attempts = 0

    def ceiling_s(self) -> float:
        """The longest the next delay can be."""
        # The exponent stops growing once the cap is reached, so it never overflows.
        return min(self.max_s, self.initial_s * 2.0 ** min(self.attempts, 64))

    def next_delay_s(self) -> float:
        """The delay before the next attempt; counts the attempt."""
        delay = self.random() * self.ceiling_s()
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """After a successful connection: the next failure waits at most `initial_s` again."""
        self.attempts = 0
