"""Browsers posting from websites: preflights, each tenant's allowed origins, CORS on every answer."""

from __future__ import annotations

import httpx
import orjson
import psycopg
import pytest

from userflow.ingest.app import EVENT_PATHS
from userflow.store.tenants import NewTenant

from .conftest import make_tenant, update_company
from .payloads import message
from .stack import Stack, wait_for

pytestmark = pytest.mark.services

SHOP = "https://shop.example"


def browser_post(stack: Stack, origin: str | None, body: object, path: str = "/v1/batch",
                 **headers: str) -> httpx.Response:
    """As analytics.js sends it: text/plain (no preflight), the write key in the body."""
    h = {"Content-Type": "text/plain", **headers}
    if origin is not None:
        h["Origin"] = origin
    return httpx.post(f"{stack.url}{path}", content=orjson.dumps(body), headers=h, timeout=30)


def batch_of(tenant: NewTenant, *messages: dict) -> dict:
    return {"batch": list(messages), "writeKey": tenant.write_key}


def stored_ids(stack: Stack, tenant: NewTenant) -> set[str]:
    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute("SELECT event_id::text FROM events WHERE company_id = %s",
                            (tenant.company_id,)).fetchall()
    return {r[0] for r in rows}


def vary(r: httpx.Response) -> set[str]:
    return {v.strip().lower() for v in ",".join(r.headers.get_list("vary")).split(",")}


@pytest.mark.parametrize("path", EVENT_PATHS)
def test_preflight_is_answered_for_any_origin(stack: Stack, path: str) -> None:
    r = httpx.options(f"{stack.url}{path}", timeout=10, headers={
        "Origin": "https://any.site.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization,x-userflow-key,traceparent"})
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == "https://any.site.example"
    assert {m.strip() for m in r.headers["access-control-allow-methods"].split(",")} == {
        "POST", "OPTIONS"}
    assert r.headers["access-control-allow-headers"] == (
        "content-type,authorization,x-userflow-key,traceparent")
    assert int(r.headers["access-control-max-age"]) > 0
    assert "origin" in vary(r)
    assert r.content == b""


def test_preflight_without_requested_headers_lists_ours(stack: Stack) -> None:
    r = httpx.options(f"{stack.url}/v1/track", timeout=10, headers={
        "Origin": SHOP, "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "authorization", "x-userflow-key", "content-encoding"} <= allowed


def test_other_paths_and_requests_without_origin_get_no_cors(stack: Stack, tenant: NewTenant) -> None:
    r = httpx.get(f"{stack.url}/healthz", headers={"Origin": SHOP}, timeout=10)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = browser_post(stack, None, batch_of(tenant, message("page")))
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    assert "origin" not in vary(r)


def test_allowed_origin_is_echoed_and_the_event_stored(stack: Stack, database_url: str) -> None:
    t = make_tenant(database_url, "Shop", company={"allowed_origins": [SHOP, "https://b.example"]})
    msg = message("page")
    r = browser_post(stack, SHOP, batch_of(t, msg))
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == SHOP
    assert "origin" in vary(r)
    assert "retry-after" in r.headers["access-control-expose-headers"].lower()
    # With JSON and the key in a header, as after a preflight.
    single = message("track", "Signed Up")
    single.pop("type")
    r = httpx.post(f"{stack.url}/v1/track", json=single, timeout=30,
                   headers={"Origin": "https://b.example", "X-UserFlow-Key": t.write_key})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://b.example"
    assert stack.wait_rows(2, t.company_id) == 2
    assert stored_ids(stack, t) == {msg["messageId"], single["messageId"]}


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/track", "/send_event"])
def test_disallowed_origin_is_403_and_nothing_is_stored(stack: Stack, database_url: str,
                                                       path: str) -> None:
    t = make_tenant(database_url, "Shop", company={"allowed_origins": [SHOP]})
    msg = message("track", "click")
    body: dict = batch_of(t, msg) if path == "/v1/batch" else {**msg, "writeKey": t.write_key}
    if path == "/send_event":
        body = {"event_id": msg["messageId"], "user_id": "u1", "event_type": "click",
                "page_url": "https://evil.example/"}
    r = browser_post(stack, "https://evil.example", body, path,
                     **{"X-UserFlow-Key": t.write_key})
    assert r.status_code == 403, r.text
    answer = r.json()
    assert answer["code"] == "origin_not_allowed"
    assert [e["field"] for e in answer["errors"]] == ["Origin"]
    assert "access-control-allow-origin" not in r.headers
    assert "origin" in vary(r)
    # A good event sent after it: by the time it is stored, the refused one would be too.
    good = message("track", "click")
    assert browser_post(stack, SHOP, batch_of(t, good)).status_code == 200
    assert stack.wait_rows(1, t.company_id) == 1
    assert stored_ids(stack, t) == {good["messageId"]}


def test_wildcard_entries(stack: Stack, database_url: str) -> None:
    t = make_tenant(database_url, "Wild", company={"allowed_origins": ["https://*.example.com"]})
    for origin in ("https://www.example.com", "https://eu.app.example.com"):
        r = browser_post(stack, origin, batch_of(t, message("page")))
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
    for origin in ("https://example.com", "http://www.example.com",
                   "https://www.example.com.evil.test", "null"):
        r = browser_post(stack, origin, batch_of(t, message("page")))
        assert r.status_code == 403, origin
    assert stack.wait_rows(2, t.company_id) == 2


def test_a_star_or_no_entries_allow_any_origin(stack: Stack, database_url: str) -> None:
    for origins in ([], ["*"]):
        t = make_tenant(database_url, "Open", company={"allowed_origins": origins})
        r = browser_post(stack, "https://anywhere.example", batch_of(t, message("page")))
        assert r.status_code == 200 and (
            r.headers["access-control-allow-origin"] == "https://anywhere.example")
        assert stack.wait_rows(1, t.company_id) == 1


def test_error_answers_are_readable_by_the_page(stack: Stack, database_url: str) -> None:
    t = make_tenant(database_url, "Shop", company={"allowed_origins": [SHOP]})
    unknown = browser_post(stack, SHOP, {"batch": [message("page")], "writeKey": "ufw_nope"})
    not_json = httpx.post(f"{stack.url}/v1/batch", content=b"{oops", timeout=30,
                          headers={"Origin": SHOP, "Content-Type": "text/plain"})
    bad_event = browser_post(stack, SHOP, batch_of(t, {"type": "nope"}))
    too_big = browser_post(stack, SHOP, {**message("track", "e", blob="x" * 40_000),
                                         "writeKey": t.write_key}, "/v1/track")
    for r, status in ((unknown, 401), (not_json, 400), (bad_event, 400), (too_big, 413)):
        assert r.status_code == status, r.text
        assert r.headers["access-control-allow-origin"] == SHOP, status
        assert "origin" in vary(r)


def test_an_update_of_allowed_origins_applies_without_a_restart(stack: Stack,
                                                                database_url: str) -> None:
    t = make_tenant(database_url, "Moving", company={"allowed_origins": [SHOP]})
    msg = message("page")
    assert browser_post(stack, "https://new.example", batch_of(t, msg)).status_code == 403
    with psycopg.connect(database_url) as conn:
        update_company(conn, t.company_id, allowed_origins=["https://new.example"])
    # Resending is harmless: a worker that has not reloaded yet refuses it and
    # stores nothing, and the same messageId is one row.
    wait_for(lambda: browser_post(stack, "https://new.example", batch_of(t, msg)).status_code == 200,
             30, "the new origin to be allowed")

    # The old origin is refused now; an event that is invalid anyway stores nothing either way.
    def old_refused() -> bool:
        return browser_post(stack, SHOP, batch_of(t, {"type": "nope"})).status_code == 403

    wait_for(old_refused, 30, "the old origin to be refused")
    assert stack.wait_rows(1, t.company_id) == 1
    assert stored_ids(stack, t) == {msg["messageId"]}
