"""The query API over HTTP, and tenant isolation through it and through raw SQL.

Two tenants with pages, texts and a user agent of their own: a read key of one
never shows anything of the other, whatever the endpoint or the SQL; the
shared dictionaries (text_value, user_agent) are out of the reader's reach.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from userflow.store import keys

from .analytics_support import ask, event, refresh, store
from .conftest import make_tenant
from .stack import ROLE_OF, as_role

T0 = datetime(2026, 11, 9, 12, 0, tzinfo=UTC)
RANGE = {"from": "2026-11-09", "to": "2026-11-10"}
B_AGENT = "SecretAgent/7.0 (only tenant B uses this)"
# Every GET endpoint with the parameters it needs.
GETS: dict[str, dict[str, str]] = {
    "/v1/analytics/overview": {**RANGE, "interval": "hour"},
    "/v1/analytics/sessions": RANGE,
    "/v1/analytics/breakdown": {**RANGE, "dimension": "browser"},
    "/v1/analytics/pages": RANGE,
    "/v1/analytics/heatmap": {**RANGE, "page": "/"},
    "/v1/analytics/realtime": {},
    "/v1/analytics/bots": RANGE,
    "/v1/analytics/retention": {**RANGE, "interval": "week"},
    "/v1/analytics/adoption": {**RANGE, "feature": "#buy"},
    "/v1/analytics/anomalies": {**RANGE, "metric": "sessions"},
}


@pytest.fixture(scope="module")
def tenants(database_url: str) -> tuple[Any, Any]:
    a = make_tenant(database_url, "Tenant A")
    b = make_tenant(database_url, "Tenant B")
    s = timedelta(seconds=1)
    store(database_url, [
        event(a.company_id, T0, session="a1", anon="alice", page="/a-secret-page?token=A"),
        event(a.company_id, T0 + 9 * s, "click", session="a1", anon="alice",
              page="/a-secret-page", element_text="A's button"),
        event(b.company_id, T0, session="b1", anon="bob", page="/b-secret-page", agent=B_AGENT),
        event(b.company_id, T0 + 5 * s, session="b1", anon="bob", page="/b-only-next",
              agent=B_AGENT, element_text="B's secret text"),
        event(b.company_id, T0 + 7 * s, session="b2", anon="bea", page="/b-secret-page",
              agent=B_AGENT),
    ])
    refresh(database_url)
    return a, b


def get(api_url: str, path: str, key: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.get(api_url + path, params=params, headers=headers, timeout=30)


def test_every_endpoint_answers_each_tenant_with_its_own_data(api_url: str, tenants) -> None:  # type: ignore[no-untyped-def]
    a, b = tenants
    for path, params in GETS.items():
        for key, mine, theirs in ((a.read_key, "a-", "b-"), (b.read_key, "b-", "a-")):
            r = get(api_url, path, key, **params)
            assert r.status_code == 200, (path, r.text)
            assert theirs + "secret" not in r.text and theirs + "only" not in r.text, path
            assert r.json()["meta"].get("tz", "UTC") == "UTC"
    pages = get(api_url, "/v1/analytics/pages", b.read_key, **RANGE).json()["rows"]
    assert [(p["page"], p["views"], p["visitors"]) for p in pages] == [
        ("/b-secret-page", 2, 2), ("/b-only-next", 1, 1)]
    totals = get(api_url, "/v1/analytics/overview", a.read_key, **RANGE).json()["totals"]
    assert (totals["events"], totals["users"], totals["sessions"]) == (2, 1, 1)


def test_only_a_live_read_key_reads(api_url: str, database_url: str, tenants) -> None:  # type: ignore[no-untyped-def]
    a, _ = tenants
    path = "/v1/analytics/sessions"
    assert get(api_url, path, None).status_code == 401
    assert get(api_url, path, a.write_key).status_code == 401
    assert get(api_url, path, "ufr_" + "x" * 43).status_code == 401
    assert get(api_url, path, "x" * 300).status_code == 401
    basic = httpx.get(api_url + path, params=RANGE, auth=(a.read_key, ""), timeout=30)
    assert basic.status_code == 200 and basic.json()["sessions"] == 1
    garbage = httpx.get(api_url + path, headers={"Authorization": "Basic %%%"}, timeout=30)
    assert garbage.status_code == 401 and garbage.json()["code"] == "unauthorized"
    # A revoked key stops reading at once (no cache on the read side).
    spare = make_tenant(database_url, "Revoked")
    assert get(api_url, path, spare.read_key).status_code == 200
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE api_key SET revoked_at = now() WHERE key_hash = %s",
                     (keys.key_hash(spare.read_key),))
    assert get(api_url, path, spare.read_key).status_code == 401


def reader(database_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(as_role(database_url, ROLE_OF["reader"]), autocommit=True)


def test_raw_sql_as_the_reader_sees_one_tenant_and_no_dictionary(database_url: str, tenants) -> None:  # type: ignore[no-untyped-def]
    a, b = tenants
    with reader(database_url) as conn:
        # No key: every tenant view is empty.
        for view in ("events", "session_rollup", "session_page_rollup", "actor_hour_rollup",
                     "company"):
            assert conn.execute(f"SELECT count(*) FROM tenant.{view}").fetchone() == (0,), view
        # A psql session binds its key once (sql/020); a key set by hand scopes nothing.
        conn.execute("SELECT set_config('userflow.read_key', %s, false)", (a.read_key,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="userflow_bind_read_key"):
            conn.execute("SELECT count(*) FROM tenant.events")
        conn.execute("SELECT userflow_bind_read_key(%s, true)", (a.read_key,))
        urls = {u for (u,) in conn.execute("SELECT DISTINCT page_url FROM tenant.events")}
        assert urls == {"https://shop.example/a-secret-page?token=A",
                        "https://shop.example/a-secret-page"}
        texts = {t for (t,) in conn.execute(
            "SELECT element_text FROM tenant.events WHERE element_text IS NOT NULL")}
        assert texts == {"A's button"}
        agents = {u for (u,) in conn.execute("SELECT DISTINCT user_agent FROM tenant.events")}
        assert B_AGENT not in agents
        assert conn.execute("SELECT count(*) FROM tenant.company").fetchone() == (1,)
        # Another tenant's conditions find nothing, a write key reads nothing.
        assert conn.execute("SELECT count(*) FROM tenant.events WHERE company_id = %s",
                            (b.company_id,)).fetchone() == (0,)
        conn.execute("SELECT userflow_bind_read_key(%s, true)", (b.write_key,))
        assert conn.execute("SELECT count(*) FROM tenant.events").fetchone() == (0,)
        # The shared dictionaries and the tables behind the views are out of reach.
        for statement in ("SELECT value FROM text_value", "SELECT user_agent FROM user_agent",
                          "SELECT page_url_id FROM user_events", "SELECT * FROM events",
                          "SELECT * FROM session_rollup", "SELECT key_hash FROM api_key",
                          "SELECT * FROM mv_user_activity"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        # Nor do the planner's statistics show their values.
        assert conn.execute("SELECT count(*) FROM pg_stats WHERE tablename IN"
                            " ('text_value', 'user_agent', 'user_events')").fetchone() == (0,)


def test_the_analytics_functions_see_only_the_key_s_tenant(database_url: str, tenants) -> None:  # type: ignore[no-untyped-def]
    from userflow.analytics import pages, period

    a, b = tenants
    day = period.parse(RANGE["from"], RANGE["to"])
    for key, want in ((a.read_key, {"/a-secret-page"}), (b.read_key, {"/b-secret-page", "/b-only-next"})):
        rows = ask(database_url, key, pages.build(pages.Params(day))).result.rows
        assert {r.page for r in rows} == want


HOSTILE = ["'; DROP TABLE user_events; --", "1 OR 1=1", "\") UNION SELECT value FROM text_value --",
           "$$; SELECT pg_sleep(10); $$", "%(start)s", "{p}", "\\x00", "é" * 3000]


@pytest.mark.parametrize("path", list(GETS))
def test_hostile_parameters_get_400_or_a_bounded_answer(api_url: str, tenants, path: str) -> None:  # type: ignore[no-untyped-def]
    a, _ = tenants
    base = GETS[path]
    names = list(dict.fromkeys([*base, "tz", "country", "page", "event_name", "limit",
                                "nonsense"]))
    for name in names:
        for value in HOSTILE:
            r = get(api_url, path, a.read_key, **{**base, name: value})
            assert r.status_code in (200, 400), (path, name, value, r.status_code, r.text[:300])
            if r.status_code == 400:
                body = r.json()
                assert body["code"] == "invalid_request"
                assert body["errors"] and all(e["field"] and e["reason"] for e in body["errors"])


@pytest.mark.parametrize(("params", "field"), [
    ({"dimension": "password"}, "dimension"),
    ({"from": "2026-11-10", "to": "2026-11-09"}, "from"),
    ({"from": "2016-01-01", "to": "2026-01-01"}, "to"),
    ({"from": "yesterday"}, "from"),
    ({"tz": "Mars/Olympus_Mons"}, "tz"),
    ({"event_type": "purchase"}, "event_type"),
    ({"limit": "1000000"}, "limit"),
    ({"include_bots": "maybe"}, "include_bots"),
    ({"colour": "red"}, "colour"),
])
def test_bad_parameters_name_the_field(api_url: str, tenants, params: dict[str, str],  # type: ignore[no-untyped-def]
                                       field: str) -> None:
    a, _ = tenants
    r = get(api_url, "/v1/analytics/breakdown", a.read_key,
            **{**RANGE, "dimension": "browser", **params})
    assert r.status_code == 400, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.text


def test_openapi_health_and_metrics(api_url: str, tenants) -> None:  # type: ignore[no-untyped-def]
    spec = httpx.get(api_url + "/openapi.json", timeout=10).json()
    for path in GETS:
        assert path in spec["paths"], path
        names = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
        assert {"country", "include_bots"} <= names
        assert {"from", "to", "tz"} <= names or path.endswith("/realtime")
    timeline = spec["paths"]["/v1/analytics/users/{user_id}/timeline"]["get"]["parameters"]
    assert {"name": "user_id", "in": "path", "required": True,
            "schema": {"type": "string"}} in timeline
    experiment = spec["paths"]["/v1/analytics/experiments/{experiment_id}"]["get"]["parameters"]
    assert {"experiment_id", "goal_event_type", "goal_page", "goal_event_name", "control",
            "from", "country"} <= {p["name"] for p in experiment}
    assert httpx.get(api_url + "/healthz", timeout=10).json() == {"status": "ok"}
    assert httpx.get(api_url + "/readyz", timeout=10).status_code == 200
    get(api_url, "/v1/analytics/sessions", tenants[0].read_key, **RANGE)
    metrics = httpx.get(api_url + "/metrics", timeout=10).text
    assert 'userflow_api_requests_total{endpoint="/v1/analytics/sessions",status="200"}' in metrics
