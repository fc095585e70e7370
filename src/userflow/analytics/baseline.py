"""A series' own seasonal baseline, and how far each point lies from it (find_anomalies' method).

- Baseline: a robust linear model (statsmodels RLM, Huber's T norm) of the
  series on a linear trend and one level per seasonal position (the day of the
  week for days, the hour of the day for hours). An M-estimator gives an
  outlier little weight, so a point far off does not pull its own expectation
  (or its weekday's) towards itself; with three to five weekly cycles of days a
  seasonal-trend decomposition (STL) absorbs a lone outlier into its seasonal
  part instead, and misses it. Counts are fitted on a log scale (log(1 + x)):
  traffic's daily and weekly cycles scale with its level. Rates are fitted as
  they are. expected = the fitted value, kept within what the metric can be.
- Two noises, and a point must be beyond both to count:
  - the series' own: the MAD of the residuals (on the fitted scale), scaled to
    a normal sigma (scipy's median_abs_deviation, scale "normal");
  - chance: the exact tail probability of the point under a Poisson of the
    expected count, or a binomial of the expected rate over the point's n,
    turned into a normal quantile. The expectation is held 0.5 / N away from 0
    (and a rate's from 1), N being the series' buckets (a count) or its total n
    (a rate): a series that never once failed has a failure rate known only to
    be below about 1 / N, not to be zero.
  robust z = the smaller of the two z-scores, with the residual's sign; the
  MAD-based one is Iglewicz and Hoaglin's modified z-score, whose cut-off for an
  outlier is 3.5.
- A missing point (a rate over an empty bucket) is left out of the fit and has
  no z.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import statsmodels.api as sm
from scipy.stats import binom, median_abs_deviation, norm, poisson
from statsmodels.tools.sm_exceptions import ConvergenceWarning

Kind = Literal["count", "rate"]
# Fewer cycles than this and a seasonal position's level rests on one or two points.
MIN_CYCLES: Final = 3


@dataclass(frozen=True, slots=True)
class Fitted:
    expected: float | None  # None: the point is missing
    robust_z: float | None


def fit(values: Sequence[float | None], sizes: Sequence[int], period: int,
        kind: Kind) -> list[Fitted]:
    """Each point's expected value and robust z; `sizes` are the counts behind a rate (its n).

    Raises ValueError for fewer than MIN_CYCLES cycles of known points: the caller
    decides what that means (anomalies.py says so in its answer).
    """
    if len(values) != len(sizes):
        raise ValueError("one size per value")
    known = np.array([v is not None for v in values])
    if period < 2 or known.sum() < MIN_CYCLES * period:
        raise ValueError(f"{int(known.sum())} known points are fewer than {MIN_CYCLES} cycles"
                         f" of {period}")
    y = np.array([0.0 if v is None else float(v) for v in values])
    n = np.array(sizes, dtype=float)
    at = np.arange(len(y))
    design = np.column_stack([np.ones(len(y)), at / len(y)]
                             + [(at % period == k).astype(float) for k in range(1, period)])
    scaled = np.log1p(y) if kind == "count" else y
    with warnings.catch_warnings():
        # A series the model fits exactly (a rate that is always 1) has a scale of 0.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = sm.RLM(scaled[known], design[known], M=sm.robust.norms.HuberT()).fit()
    fitted = design @ model.params
    residual = scaled - fitted
    center = float(np.median(residual[known]))
    spread = float(median_abs_deviation(residual[known], scale="normal"))
    if kind == "count":
        expected = np.maximum(np.expm1(fitted), 0.0)
        chance = _poisson_z(y, np.maximum(expected, 0.5 / len(y)))
    else:
        expected = np.clip(fitted, 0.0, 1.0)
        total = max(float(n[known].sum()), 1.0)
        chance = _binomial_z(y, n, np.clip(expected, 0.5 / total, 1.0 - 0.5 / total))
    out: list[Fitted] = []
    for i in range(len(y)):
        if not known[i]:
            out.append(Fitted(None, None))
            continue
        off = residual[i] - center
        own = abs(off) / spread if spread > 0 else (np.inf if off else 0.0)
        out.append(Fitted(float(expected[i]), float(np.copysign(min(own, chance[i]), off))))
    return out


def _tail_z(p: np.ndarray) -> np.ndarray:
    """A one-sided tail probability as a normal quantile, never below 0."""
    return np.maximum(norm.isf(np.clip(p, 1e-300, 1.0)), 0.0)


def _poisson_z(x: np.ndarray, lam: np.ndarray) -> np.ndarray:
    counts = np.round(x)
    up = poisson.sf(counts - 1, lam)  # P(X >= x)
    down = poisson.cdf(counts, lam)  # P(X <= x)
    return _tail_z(np.where(x >= lam, up, down))


def _binomial_z(rate: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    k = np.round(rate * n)
    up = binom.sf(k - 1, n, p)
    down = binom.cdf(k, n, p)
    return _tail_z(np.where(rate >= p, up, down))
