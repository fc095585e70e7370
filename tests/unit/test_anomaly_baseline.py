"""find_anomalies' method on small series worked by hand, and its parameters from a query string."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy.stats import binom, norm, poisson

from userflow.analytics import anomalies
from userflow.analytics.anomalies import _Bucket, _judge
from userflow.analytics.args import Args
from userflow.analytics.baseline import fit
from userflow.analytics.errors import BadParameters
from userflow.analytics.period import Period

WEEK = [100.0, 120.0, 130.0, 125.0, 110.0, 60.0, 50.0]


def test_a_spike_on_a_flat_series_is_judged_by_chance() -> None:
    values = [100.0] * 28
    values[20] = 200.0
    got = fit(values, [int(v) for v in values], 7, "count")
    # Every other point is 100 exactly, so the residuals' MAD is 0: chance alone judges
    # the spike, as a Poisson of mean 100 seeing 200 or more.
    assert got[20].expected == pytest.approx(100)
    assert got[20].robust_z == pytest.approx(norm.isf(poisson.sf(199, 100)))
    assert all(f.robust_z == pytest.approx(0) for i, f in enumerate(got) if i != 20)


def test_a_weekday_s_own_level_is_its_baseline() -> None:
    values = [WEEK[i % 7] for i in range(28)]
    values[17] = 62.0  # a Thursday (position 3, usually 125) halved
    got = fit(values, [int(v) for v in values], 7, "count")
    assert got[17].expected == pytest.approx(125)
    assert got[17].robust_z == pytest.approx(-norm.isf(poisson.cdf(62, 125)))
    assert got[16].expected == pytest.approx(130) and got[19].expected == pytest.approx(60)


def test_the_series_own_spread_judges_when_it_is_larger_than_chance() -> None:
    rng = np.random.default_rng(4)
    values = [float(round(v)) for v in 1000 * np.exp(rng.normal(0, 0.1, 35))]  # 10 % noise
    got = fit(values, [int(v) for v in values], 7, "count")
    residual = np.log1p(values) - np.log1p([f.expected for f in got])
    center = np.median(residual)
    own = (residual - center) / (np.median(np.abs(residual - center)) / norm.ppf(0.75))
    # Poisson's noise on 1000 is 3 %: a point 1 sigma off by the series' spread is many by
    # chance's, so the series' spread is what judges it.
    off = [i for i in range(35) if abs(own[i]) >= 1]
    assert len(off) >= 10
    assert [got[i].robust_z for i in off] == pytest.approx([own[i] for i in off])


def test_a_rate_is_judged_by_the_binomial_of_its_own_n() -> None:
    values = [0.5] * 28
    values[10] = 0.3
    wide = fit(values, [100] * 28, 7, "rate")[10]
    thin = fit(values, [10] * 28, 7, "rate")[10]
    assert wide.expected == pytest.approx(0.5)
    assert wide.robust_z == pytest.approx(-norm.isf(binom.cdf(30, 100, 0.5)))
    assert thin.robust_z == pytest.approx(-norm.isf(binom.cdf(3, 10, 0.5)))  # 3 of 10: chance
    assert abs(thin.robust_z) < 3.5 < abs(wide.robust_z)


def test_a_rate_that_never_failed_is_not_known_to_be_exactly_one() -> None:
    values = [1.0] * 28
    values[24] = 0.5
    got = fit(values, [10] * 28, 7, "rate")
    # 280 checkouts, none failed: the failure rate is taken to be 0.5 / 280.
    p = 1 - 0.5 / 280
    assert got[24].robust_z == pytest.approx(-norm.isf(binom.cdf(5, 10, p)))
    one_failure = fit([1.0] * 27 + [0.9], [10] * 28, 7, "rate")[27]
    assert -3.5 < one_failure.robust_z < 0


def test_a_missing_point_is_not_judged_and_too_few_cycles_are_refused() -> None:
    values: list[float | None] = [0.2] * 28
    values[5] = None
    got = fit(values, [50] * 28, 7, "rate")
    assert got[5].expected is None and got[5].robust_z is None
    with pytest.raises(ValueError):
        fit([1.0] * 20, [1] * 20, 7, "count")
    with pytest.raises(ValueError):
        fit([None] * 7 + [1.0] * 14, [1] * 21, 7, "count")


def test_unfinished_buckets_and_those_before_the_first_session_are_left_out() -> None:
    start = datetime(2026, 11, 2, tzinfo=UTC)
    p = anomalies.Params(Period(start + timedelta(days=21), start + timedelta(days=28)), "events")
    first_session = start + timedelta(hours=5)
    buckets = [_Bucket(start + timedelta(days=d), 100.0, 100) for d in range(-3, 28)]
    now = start + timedelta(days=27, hours=12)  # the last day is still running
    got = _judge(p, buckets, first_session, now)
    assert got.history_from == start.isoformat()  # the day of the first session, not before
    assert [s.t for s in got.series][-1] == (start + timedelta(days=26)).isoformat()
    assert not got.series[0].judged  # the first session's day is likely partial: history only
    assert sum(s.judged for s in got.series) == 6 and got.enough_history


def args(**query: str) -> Args:
    return Args({k: [v] for k, v in query.items()})


def test_from_args_reads_steps_as_the_funnel_body_does() -> None:
    got = anomalies.from_args(args(
        metric="funnel_conversion", **{"from": "2026-11-01", "to": "2026-11-08"},
        steps='[{"event_type": "form_submit", "page": "/checkout"},'
              ' {"event_type": "custom", "event_name": "Order Completed"}]',
        device_type="desktop", threshold="4"))
    assert [s.event_type for s in got.steps] == ["form_submit", "custom"]
    assert got.filters.device_type == ("desktop",) and got.threshold == 4.0


@pytest.mark.parametrize(("query", "field"), [
    ({}, "metric"),
    ({"metric": "money"}, "metric"),
    ({"metric": "events", "interval": "week"}, "interval"),
    ({"metric": "events", "threshold": "nan"}, "threshold"),
    ({"metric": "events", "threshold": "lots"}, "threshold"),
    ({"metric": "funnel_conversion", "steps": "[{"}, "steps"),
    ({"metric": "funnel_conversion", "steps": '[{"event_type": "buy"}, {"event_type": "click"}]'},
     "steps.0.event_type"),
    ({"metric": "funnel_conversion", "steps": '[{"event_type": "click"}, {"event_type": "click"}]',
      "from": "2026-01-01", "to": "2026-06-01"}, "to"),
    ({"metric": "page_errors", "event_name": "x"}, "event_name"),
    ({"metric": "events", "colour": "red"}, "colour"),
])
def test_bad_parameters_name_the_field(query: dict[str, str], field: str) -> None:
    with pytest.raises(BadParameters) as caught:
        anomalies.from_args(args(**query))
    assert field in [e.field for e in caught.value.errors], caught.value
