"""Rate limiting: one token bucket per API key, user or client address, in memory.

Each bucket holds up to `per_minute` tokens and refills at `per_minute` a minute; a request takes
one. An empty bucket answers how long until the next token (the 429's Retry-After). In memory and
per process: it protects one `km serve` from a runaway client, not a fleet from a botnet.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict


class RateLimiter:
    def __init__(self, per_minute: int, max_buckets: int = 10_000, clock=time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_buckets = max_buckets
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # who -> (tokens, when)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def take(self, who: str) -> float:
        """0 when `who` may go ahead (a token is taken), else the seconds until a token is free."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(who, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[who] = (tokens, now)  # most recently used last
            while len(self._buckets) > self.max_buckets:  # forget the idlest: a full bucket anyway
                self._buckets.popitem(last=False)
            return wait


def retry_after(wait_s: float) -> str:
    """The Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
