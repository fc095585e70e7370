"""A/B tests worked by hand: counts built per variant, the statistics checked against
scipy computed here another way on the same counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from math import exp, sqrt
from urllib.parse import quote

import httpx
import pytest
from scipy.stats import chi2, chi2_contingency, norm

from userflow.analytics import experiments, period
from userflow.analytics.args import Args
from userflow.analytics.errors import BadParameters, NotFound
from userflow.analytics.filters import Filters
from userflow.events.model import Event

from .analytics_support import BOT, ask, event, store
from .conftest import make_tenant

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
RANGE = period.parse("2026-11-02", "2026-11-09")
EXP = "checkout-v2"


def exposure(c, when: datetime, actor: str, variant: str | None, event_type: str = "page_view",  # type: ignore[no-untyped-def]
             experiment: str = EXP, **kw) -> Event:
    return event(c, when, event_type, session=f"s-{actor}", anon=actor, page=kw.pop("page", "/cart"),
                 experiment_id=experiment, variant=variant, **kw)


def purchase(c, when: datetime, actor: str, page: str = "/checkout?step=2#pay",  # type: ignore[no-untyped-def]
             name: str = "Purchase", **kw) -> Event:
    return event(c, when, "custom", session=f"s-{actor}", anon=actor, page=page, event_name=name, **kw)


def arm(c, variant: str, users: int, converters: int) -> list[Event]:  # type: ignore[no-untyped-def]
    """`users` exposed users, the first `converters` of whom buy an hour later."""
    out = []
    for i in range(users):
        when = T0 + timedelta(minutes=i)
        out.append(exposure(c, when, f"{variant}-{i}", variant))
        if i < converters:
            out.append(purchase(c, when + HOUR, f"{variant}-{i}"))
    return out


@pytest.fixture(scope="module")
def shop(database_url: str):  # type: ignore[no-untyped-def]
    made = make_tenant(database_url, "Experiment Shop")
    c = made.company_id
    store(database_url, [
        # control: 38 + "before" + "refund" = 40 exposed, 10 converted.
        *arm(c, "control", 38, 10),
        *[exposure(c, T0 + 2 * HOUR, "before", "control"), purchase(c, T0 + HOUR, "before")],
        *[exposure(c, T0, "refund", "control"), purchase(c, T0 + HOUR, "refund", name="Refund")],
        # B: 49 + "instant" = 50 exposed, 20 converted: the exposing event is the goal itself.
        *arm(c, "B", 49, 19),
        exposure(c, T0 + 3 * HOUR, "instant", "B", "custom", page="/checkout", event_name="Purchase"),
        # C: 28 + "late" + "elsewhere" = 30 exposed, 3 converted.
        *arm(c, "C", 28, 3),
        *[exposure(c, T0, "late", "C"), purchase(c, datetime(2026, 11, 9, 1, tzinfo=UTC), "late")],
        *[exposure(c, T0, "elsewhere", "C"), purchase(c, T0 + HOUR, "elsewhere", page="/checkout/done")],
        # Exposed to control and then B, and buys: in no variant.
        exposure(c, T0, "both", "control"), exposure(c, T0 + HOUR, "both", "B"),
        purchase(c, T0 + 2 * HOUR, "both"),
        # Exposed before the range only; a bot; another experiment's user; none counts.
        exposure(c, T0 - timedelta(days=2), "earlier", "control"),
        purchase(c, T0 + HOUR, "earlier"),
        exposure(c, T0, "crawler", "B", agent=BOT), purchase(c, T0 + HOUR, "crawler", agent=BOT),
        exposure(c, T0, "other", "control", experiment="pricing"),
        # A second experiment where nobody converts, and a variant D whose only user
        # also saw B.
        exposure(c, T0, "f1", "control", experiment="flat"),
        exposure(c, T0, "f2", "control", experiment="flat"),
        exposure(c, T0, "f3", "B", experiment="flat"),
        exposure(c, T0, "f4", "B", experiment="flat"),
        exposure(c, T0, "f5", "B", experiment="flat"),
        exposure(c, T0 + HOUR, "f5", "D", experiment="flat"),
    ])
    return made


def result(database_url: str, read_key: str, **kw) -> experiments.Result:  # type: ignore[no-untyped-def]
    p = experiments.Params(RANGE, kw.pop("experiment_id", EXP), kw.pop("goal_event_type", "custom"),
                           **{"goal_page": "/checkout", "goal_event_name": "Purchase", **kw})
    return ask(database_url, read_key, experiments.build(p)).result


def test_exposures_and_conversions_are_counted_per_variant(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    got = result(database_url, shop.read_key)
    assert [(v.variant, v.exposed, v.converted) for v in got.variants] == [
        ("control", 40, 10), ("B", 50, 20), ("C", 30, 3)]
    assert got.multiple_variant_users == 1
    assert (got.experiment_id, got.control) == (EXP, "control")
    assert got.goal == experiments.Goal("custom", "/checkout", "Purchase")
    assert [v.rate for v in got.variants] == [0.25, 0.4, 0.1]
    control = got.variants[0]
    assert (control.lift, control.p_value, control.ci95_low, control.ci95_high) == (None,) * 4
    # The bot counts when asked for: B gets its exposure and its purchase.
    with_bots = result(database_url, shop.read_key, filters=Filters(include_bots=True))
    assert [(v.exposed, v.converted) for v in with_bots.variants][1] == (51, 21)


def test_the_statistics_agree_with_scipy_on_the_same_counts(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    got = {v.variant: v for v in result(database_url, shop.read_key).variants}
    for name, (n, k) in {"B": (50, 20), "C": (30, 3)}.items():
        v, rate, base = got[name], k / n, 10 / 40
        assert v.lift == pytest.approx((rate - base) / base)
        # The pooled two-proportion z-test is the chi-square test of the 2x2 table
        # without continuity correction (z² = χ²).
        table = [[k, n - k], [10, 30]]
        assert v.p_value == pytest.approx(chi2_contingency(table, correction=False).pvalue, rel=1e-9)
        low, high = norm.interval(0.95, loc=rate - base,
                                  scale=sqrt(rate * (1 - rate) / n + base * (1 - base) / 40))
        assert (v.ci95_low, v.ci95_high) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))
    assert got["B"].lift == pytest.approx(0.6) and got["C"].lift == pytest.approx(-0.6)
    # Not 1.96: the interval uses norm.ppf(0.975) = 1.95996...
    b = got["B"]
    assert b.ci95_high - b.ci95_low != pytest.approx(2 * 1.96 * sqrt(.4 * .6 / 50 + .25 * .75 / 40),
                                                     rel=1e-9)


def test_the_sample_ratio_check_is_chi_square_against_an_even_split(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    got = result(database_url, shop.read_key)
    # 40, 50, 30 against 40 each: χ² = (0 + 100 + 100) / 40 = 5 on 2 degrees of
    # freedom, whose survival function is exp(-5/2).
    assert got.srm_p_value == pytest.approx(exp(-2.5), rel=1e-9)
    assert got.srm_p_value == pytest.approx(chi2.sf(5, 2), rel=1e-9)


def test_another_control_and_a_goal_without_page_or_name(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    got = result(database_url, shop.read_key, control="B")
    assert [v.variant for v in got.variants] == ["B", "C", "control"]
    assert got.variants[2].lift == pytest.approx((0.25 - 0.4) / 0.4)
    # Any custom event after exposure: "refund" and "elsewhere" now convert, and
    # "instant"'s exposing event still does; "late"'s is after `to`.
    anything = result(database_url, shop.read_key, goal_page=None, goal_event_name=None)
    assert [(v.variant, v.converted) for v in anything.variants] == [
        ("control", 11), ("B", 20), ("C", 4)]


def test_no_conversions_and_a_variant_of_excluded_users_give_no_statistics(
        database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    got = result(database_url, shop.read_key, experiment_id="flat")
    assert [(v.variant, v.exposed, v.converted, v.rate) for v in got.variants] == [
        ("control", 2, 0, 0.0), ("B", 2, 0, 0.0), ("D", 0, 0, None)]
    assert got.multiple_variant_users == 1
    b = got.variants[1]
    # A control rate of 0 has no relative lift; a pooled rate of 0 no z-test.
    assert (b.lift, b.p_value, b.ci95_low, b.ci95_high) == (None, None, 0.0, 0.0)
    assert got.srm_p_value == pytest.approx(chi2.sf((2 * (2 - 4 / 3) ** 2 + (4 / 3) ** 2) / (4 / 3), 2))


def test_an_unknown_experiment_is_not_found_and_an_unknown_control_is_a_bad_parameter(
        database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        result(database_url, shop.read_key, experiment_id="nope")
    with pytest.raises(NotFound):  # "pricing" has an exposure, but not in a range of 2027
        ask(database_url, shop.read_key, experiments.build(experiments.Params(
            period.parse("2027-01-01", "2027-01-02"), "pricing", "custom")))
    with pytest.raises(BadParameters) as caught:
        result(database_url, shop.read_key, control="treatment")
    assert [e.field for e in caught.value.errors] == ["control"]


def get(api_url: str, path: str, key: str, params: dict[str, str]) -> httpx.Response:
    return httpx.get(api_url + path, params=params, headers={"Authorization": f"Bearer {key}"},
                     timeout=30)


QUERY = {"from": "2026-11-02", "to": "2026-11-09", "goal_event_type": "custom",
         "goal_page": "/checkout", "goal_event_name": "Purchase"}


def test_over_http_a_path_parameter_404_and_400(api_url: str, database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    path = f"/v1/analytics/experiments/{EXP}"
    ok = get(api_url, path, shop.read_key, QUERY)
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert [(v["variant"], v["exposed"], v["converted"]) for v in body["variants"]] == [
        ("control", 40, 10), ("B", 50, 20), ("C", 30, 3)]
    assert body["srm_p_value"] == pytest.approx(exp(-2.5))
    assert body["meta"]["source"] == "events"
    assert get(api_url, "/v1/analytics/experiments/nope", shop.read_key, QUERY).status_code == 404
    control = get(api_url, path, shop.read_key, {**QUERY, "control": "x'; --"})
    assert control.status_code == 400
    assert [e["field"] for e in control.json()["errors"]] == ["control"]
    # Another tenant's key finds no such experiment.
    other = make_tenant(database_url, "Experiment Other")
    assert get(api_url, path, other.read_key, QUERY).status_code == 404


HOSTILE = ["'; DROP TABLE user_events; --", "\") UNION SELECT value FROM text_value --", "%(start)s",
           "{p}", "é" * 3000]


def test_hostile_parameters_get_400_or_404_never_500(api_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    for value in HOSTILE:
        r = get(api_url, "/v1/analytics/experiments/" + quote(value, safe=""), shop.read_key, QUERY)
        assert r.status_code in (400, 404), (value, r.status_code, r.text[:200])
        # A filter may leave no exposure (404); the goal's and the control's are values.
        for name, codes in (("goal_event_type", {400}), ("goal_page", {200, 400}),
                            ("goal_event_name", {200, 400}), ("control", {400}),
                            ("country", {404, 400})):
            r = get(api_url, f"/v1/analytics/experiments/{EXP}", shop.read_key,
                    {**QUERY, name: value})
            assert r.status_code in codes, (name, value, r.status_code, r.text[:200])


def test_bad_parameters_are_named() -> None:
    def fields(query: dict[str, list[str]]) -> set[str]:
        with pytest.raises(BadParameters) as caught:
            experiments.from_args(Args({"experiment_id": [EXP], "goal_event_type": ["custom"],
                                        **query}))
        return {e.field for e in caught.value.errors}

    assert fields({"goal_event_type": ["purchase"]}) == {"goal_event_type"}
    assert fields({"goal_event_type": []}) == {"goal_event_type"}
    assert fields({"experiment_id": [""]}) == {"experiment_id"}
    assert fields({"goal_page": ["/" * 3000]}) == {"goal_page"}
    assert fields({"goal_element": ["#buy"]}) == {"goal_element"}
    assert fields({"to": ["2026-11-02"], "from": ["2026-11-09"]}) == {"from"}
    p = experiments.from_args(Args({"experiment_id": [EXP], "goal_event_type": ["click"],
                                    "goal_page": ["/"]}))
    assert (p.control, p.goal) == ("control", experiments.Goal("click", "/", None))
    with pytest.raises(BadParameters, match="goal_event_type"):
        experiments.Params(RANGE, EXP, "purchase")
