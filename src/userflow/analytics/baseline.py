"""A series' own seasonal baseline, and how far each point lies from it (find_anomalies' method).

- Baseline: robust STL (statsmodels; LOESS seasonal-trend decomposition whose
  robustness weights keep an outlier from dragging the fit towards itself) with
  the series' seasonal cycle (`period` points: 7 for days, 24 for hours):
  expected = trend + seasonal, kept within what the metric can be (a count is
  at least 0, a rate lies in [0, 1]).
- Spread: the MAD of the residuals (scipy's median_abs_deviation, scaled to a
  normal sigma: 1.4826 MAD), but never below the point's own sampling error:
  sqrt(expected) for a count (Poisson; at least 1, so that one event against
  an expected 0 is not many sigmas), sqrt(p (1 - p) / n) for a rate over n
  (binomial, with p held 0.5 / n away from 0 and 1 for the same reason). A
  steady series (MAD 0) or a thin bucket (few sessions behind a rate) is then
  judged by what chance alone would do to it.
- robust z = (residual - median residual) / spread: the modified z-score of
  Iglewicz and Hoaglin, whose cut-off for an outlier is 3.5.
- A missing point (a rate over an empty bucket) is filled in linearly for the
  fit and has no z.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from scipy.stats import median_abs_deviation
from statsmodels.tsa.seasonal import STL

Kind = Literal["count", "rate"]
# Fewer cycles than this and the seasonal shape is a guess, not a baseline.
MIN_CYCLES: Final = 3


@dataclass(frozen=True, slots=True)
class Fitted:
    expected: float
    robust_z: float | None  # None: the point is missing


def fit(values: Sequence[float | None], sizes: Sequence[int], period: int,
        kind: Kind) -> list[Fitted]:
    """Each point's expected value and robust z; `sizes` are the counts behind a rate (its n).

    Raises ValueError for fewer than MIN_CYCLES cycles or no known point: the caller
    decides what that means (anomalies.py says so in its answer).
    """
    if len(values) != len(sizes):
        raise ValueError("one size per value")
    if period < 2 or len(values) < MIN_CYCLES * period:
        raise ValueError(f"{len(values)} points are fewer than {MIN_CYCLES} cycles of {period}")
    y = np.array([np.nan if v is None else float(v) for v in values])
    known = ~np.isnan(y)
    if not known.any():
        raise ValueError("no point is known")
    at = np.arange(len(y))
    filled = np.interp(at, at[known], y[known])
    parts = STL(filled, period=period, robust=True).fit()
    expected = np.clip(parts.trend + parts.seasonal, 0.0, 1.0 if kind == "rate" else None)
    residual = filled - expected
    center = float(np.median(residual[known]))
    spread = float(median_abs_deviation(residual[known], scale="normal"))
    n = np.maximum(np.array(sizes, dtype=float), 1.0)
    if kind == "count":
        chance = np.sqrt(np.maximum(expected, 1.0))
    else:
        p = np.clip(expected, 0.5 / n, 1.0 - 0.5 / n)
        chance = np.sqrt(p * (1.0 - p) / n)
    z = (residual - center) / np.maximum(spread, chance)
    return [Fitted(float(e), float(s) if k else None)
            for e, s, k in zip(expected, z, known, strict=True)]
