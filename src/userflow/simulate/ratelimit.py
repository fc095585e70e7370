"""A token bucket shared by the sending threads."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved; it starts empty, so the start is paced too."""

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self._rate = rate
        self._burst = burst
        self._tokens = 0.0
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self, tokens: int) -> None:
        """Blocks until `tokens` are granted: takes them on credit and sleeps off the debt."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate) - tokens
            self._last = now
            debt = -self._tokens
        if debt > 0:
            time.sleep(debt / self._rate)
