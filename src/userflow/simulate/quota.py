"""Planted shares held by quotas rather than coin flips, so a small run shows them too."""

from __future__ import annotations

import math


class Quota:
    """Says yes to `rate` of its callers, spread evenly from a random phase (error diffusion)."""

    def __init__(self, rate: float, phase: float) -> None:
        self._rate = rate
        self._phase = phase
        self._calls = 0

    def take(self) -> bool:
        k = self._calls
        self._calls += 1
        return math.floor(self._rate * (k + 1) + self._phase) > math.floor(
            self._rate * k + self._phase
        )
