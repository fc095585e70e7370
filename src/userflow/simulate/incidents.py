"""The incidents an anomalies run plants (planted.py's constants), decided as the run unfolds.

A run without them (the default) draws nothing extra from its random stream, so
its messages are those it always was for a seed.
"""

from __future__ import annotations

import random
from typing import Final

from userflow.simulate import planted
from userflow.simulate.quota import Quota

_DAY_MS: Final = 86_400_000
_HOUR_MS: Final = 3_600_000


class Incidents:
    """The checkout failures of the drop day and the spike hour's visitors, of one run."""

    def __init__(self, rng: random.Random, start_ms: int) -> None:
        if start_ms % _DAY_MS:
            raise ValueError("an anomalies run starts at a UTC midnight, so that its planted day"
                             " is one day of a daily series")
        self._rng = rng
        self.drop_from_ms = start_ms + planted.CHECKOUT_DROP_DAY * _DAY_MS
        self.drop_to_ms = self.drop_from_ms + _DAY_MS
        self.spike_from_ms = start_ms + planted.SPIKE_HOUR * _HOUR_MS
        self.spike_to_ms = self.spike_from_ms + _HOUR_MS
        # Error diffusion: of the drop day's checkouts on the device, the planted share fails.
        self._failures = Quota(planted.CHECKOUT_FAILURE, rng.random())

    def payment_fails(self, device_type: str, at_ms: int) -> bool:
        """Whether a checkout submitted at `at_ms` from this device fails (asked once a checkout)."""
        return (device_type == planted.CHECKOUT_DROP_DEVICE
                and self.drop_from_ms <= at_ms < self.drop_to_ms and self._failures.take())

    def spike_arrival(self) -> int | None:
        """A first visit's start in the spike hour for SPIKE_SHARE of the visitors; else None."""
        if self._rng.random() >= planted.SPIKE_SHARE:
            return None
        return self._rng.randrange(self.spike_from_ms, self.spike_to_ms)
