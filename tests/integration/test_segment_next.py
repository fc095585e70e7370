"""What Segment's analytics.js (@segment/analytics-next) sends, over HTTP: its short paths,
its batching path, text/plain bodies with the write key inside, and the settings document
it fetches from its CDN. The SDK itself, in Chromium: test_browser_segment.py."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from userflow.ingest.app import SHORT_PATHS
from userflow.store import tenants
from userflow.store.tenants import NewTenant

from .conftest import make_tenant
from .payloads import iso
from .stack import TRUSTED_PROXY, Stack, wait_for

pytestmark = pytest.mark.services

SITE = "https://shop.example"
# What each short path stores: (event_type, event_name).
STORED_AS = {
    "track": ("custom", "Signed Up"),
    "page": ("page_view", "Pricing"),
    "screen": ("page_view", "Pricing"),
    "identify": ("identify", None),
    "group": ("custom", "$group"),
    "alias": ("custom", "$alias"),
}


@pytest.fixture(scope="module")
def site_tenant(database_url: str) -> NewTenant:
    return make_tenant(database_url, "Segment site", company={"allowed_origins": [SITE]})


def sdk_message(kind: str, write_key: str, anonymous_id: str) -> dict[str, Any]:
    """A message as analytics-next 1.84 builds it (plugins/segmentio: normalize)."""
    msg: dict[str, Any] = {
        "type": kind,
        "messageId": f"ajs-next-{int(datetime.now(UTC).timestamp() * 1000)}-{uuid.uuid4()}",
        "anonymousId": anonymous_id,
        "userId": None,
        "timestamp": iso(datetime.now(UTC) - timedelta(seconds=1)),
        "integrations": {},
        "context": {
            "page": {"path": "/pricing", "referrer": "", "search": "?utm_source=ads",
                     "title": "Pricing", "url": f"{SITE}/pricing?utm_source=ads"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36",
            "locale": "en-GB",
            "library": {"name": "analytics.js", "version": "npm:next-1.84.3"},
            "timezone": "Europe/London",
        },
        "properties": {},
        "writeKey": write_key,
        "sentAt": iso(datetime.now(UTC)),
    }
    if kind == "track":
        msg.update(event="Signed Up", properties={"plan": "pro"})
    elif kind in ("page", "screen"):
        msg.update(name="Pricing", properties={**msg["context"]["page"], "section": "plans",
                                                 "name": "Pricing"})
    elif kind == "identify":
        msg.update(userId="user-42", traits={"plan": "pro"})
    elif kind == "group":
        msg.update(groupId="acme", traits={"seats": 5})
    else:
        msg.update(userId="user-42", previousId=anonymous_id)
    return msg


def sdk_post(stack: Stack, path: str, body: object, origin: str = SITE,
             basic_key: str | None = None) -> httpx.Response:
    """text/plain, as the SDK sends it; the key in the body, and as Basic user when given."""
    headers = {"Content-Type": "text/plain", "Origin": origin}
    if basic_key is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{basic_key}:".encode()).decode()
    return httpx.post(f"{stack.url}{path}", content=orjson.dumps(body), headers=headers,
                      timeout=30)


def stored(stack: Stack, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT event_id::text, event_type::text, event_name, user_id, anonymous_id,"
            " page_url, utm_source, traits, metadata FROM events WHERE event_id = ANY(%s)",
            (event_ids,)).fetchall()
    names = ("event_id", "event_type", "event_name", "user_id", "anonymous_id", "page_url",
             "utm_source", "traits", "metadata")
    return {r[0]: dict(zip(names, r, strict=True)) for r in rows}


def test_each_short_path_stores_its_type(stack: Stack, database_url: str) -> None:
    t = make_tenant(database_url, "Short paths", company={"allowed_origins": [SITE]})
    anonymous = str(uuid.uuid4())
    ids: dict[str, str] = {}
    for path, kind in SHORT_PATHS.items():
        msg = sdk_message(kind, t.write_key, anonymous)
        r = sdk_post(stack, path, msg)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["access-control-allow-origin"] == SITE
        ids[kind] = r.json()["event_id"]
        assert ids[kind] == str(uuid.uuid5(t.company_id, msg["messageId"]))
    assert stack.wait_rows(len(SHORT_PATHS), t.company_id) == len(SHORT_PATHS)
    rows = stored(stack, list(ids.values()))
    for kind, event_id in ids.items():
        row = rows[event_id]
        assert (row["event_type"], row["event_name"]) == STORED_AS[kind], kind
        assert row["anonymous_id"] == anonymous
        assert row["page_url"] == f"{SITE}/pricing?utm_source=ads"
        assert row["utm_source"] == "ads"
    assert rows[ids["track"]]["metadata"] == {"plan": "pro"}
    assert rows[ids["identify"]]["user_id"] == "user-42"
    assert rows[ids["identify"]]["traits"] == {"plan": "pro"}
    assert rows[ids["group"]]["metadata"]["groupId"] == "acme"
    assert rows[ids["alias"]]["metadata"]["previousId"] == anonymous
    # path and search dropped (the URL holds them); the name analytics.js copies kept.
    assert rows[ids["page"]]["metadata"] == {"section": "plans", "name": "Pricing"}


def test_a_short_path_is_its_long_path(stack: Stack, site_tenant: NewTenant) -> None:
    """The SDK's retry of a message, to /v1/t or to /v1/track, is the same row."""
    msg = sdk_message("track", site_tenant.write_key, str(uuid.uuid4()))
    first = sdk_post(stack, "/v1/t", msg, basic_key=site_tenant.write_key)
    again = sdk_post(stack, "/v1/track", msg)
    assert first.status_code == again.status_code == 200
    assert first.json()["event_id"] == again.json()["event_id"]
    stack.wait_rows(1, site_tenant.company_id)
    assert len(stored(stack, [first.json()["event_id"]])) == 1


def test_a_short_path_needs_the_key_and_an_allowed_origin(stack: Stack,
                                                          site_tenant: NewTenant) -> None:
    msg = sdk_message("page", site_tenant.write_key, str(uuid.uuid4()))
    refused = sdk_post(stack, "/v1/p", msg, origin="https://evil.example")
    assert refused.status_code == 403 and refused.json()["code"] == "origin_not_allowed"
    keyless = sdk_post(stack, "/v1/p", {k: v for k, v in msg.items() if k != "writeKey"})
    assert keyless.status_code == 401
    assert [e["field"] for e in keyless.json()["errors"]] == ["writeKey"]
    # Readable by the page, so its developer sees why.
    assert keyless.headers["access-control-allow-origin"] == SITE
    assert stored(stack, [str(uuid.uuid5(site_tenant.company_id, msg["messageId"]))]) == {}


def test_the_batching_path(stack: Stack, database_url: str) -> None:
    """deliveryStrategy 'batching' posts {writeKey, batch, sentAt} to /v1/b, each message
    without its own sentAt (plugins/segmentio/batched-dispatcher)."""
    t = make_tenant(database_url, "Batching", company={"allowed_origins": [SITE]})
    anonymous = str(uuid.uuid4())
    batch = [sdk_message(kind, t.write_key, anonymous) for kind in ("page", "track", "identify")]
    for msg in batch:
        del msg["sentAt"]
    body = {"writeKey": t.write_key, "batch": batch, "sentAt": iso(datetime.now(UTC))}
    r = sdk_post(stack, "/v1/b", body, basic_key=t.write_key)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["accepted"], answer["rejected"]) == (3, 0)
    assert r.headers["access-control-allow-origin"] == SITE
    # The same batch again (the SDK retries a batch whole): no new rows.
    assert sdk_post(stack, "/v1/b", body).status_code == 200
    assert stack.wait_rows(3, t.company_id) == 3
    rows = stored(stack, [v["event_id"] for v in answer["results"]])
    assert sorted((r["event_type"], r["event_name"]) for r in rows.values()) == [
        ("custom", "Signed Up"), ("identify", None), ("page_view", "Pricing")]


def settings_of(stack: Stack, key: str, client: httpx.Client | None = None,
                **headers: str) -> httpx.Response:
    get = client.get if client is not None else httpx.get
    return get(f"{stack.url}/v1/projects/{key}/settings", headers=headers, timeout=30)


def test_the_settings_document(stack: Stack, site_tenant: NewTenant) -> None:
    r = settings_of(stack, site_tenant.write_key, Origin="https://anywhere.example")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["cache-control"] == "public, max-age=300"
    doc = r.json()
    assert doc["integrations"] == {"Segment.io": {
        "apiKey": site_tenant.write_key, "apiHost": f"127.0.0.1:{stack.port}/v1",
        "protocol": "http", "addBundledMetadata": False, "unbundledIntegrations": [],
        "maybeBundledConfigIds": {}}}
    # Nothing more for the SDK to load or send elsewhere.
    assert doc["remotePlugins"] == [] and doc["enabledMiddleware"] == {}
    assert doc["middlewareSettings"] == {} and doc["edgeFunction"] == {}
    assert doc["metrics"] == {"sampleRate": 0} and doc["legacyVideoPluginsEnabled"] is False
    assert doc["analyticsNextEnabled"] is True
    assert doc["plan"]["track"]["__default"]["enabled"] is True


def test_the_settings_name_the_host_a_trusted_proxy_was_asked_for(
        stack: Stack, site_tenant: NewTenant) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "events.example.com"}
    with httpx.Client(transport=httpx.HTTPTransport(local_address=TRUSTED_PROXY)) as proxy:
        doc = settings_of(stack, site_tenant.write_key, proxy, **forwarded).json()
    segment = doc["integrations"]["Segment.io"]
    assert (segment["protocol"], segment["apiHost"]) == ("https", "events.example.com/v1")
    # From anyone else the same headers say nothing.
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.1")) as client:
        doc = settings_of(stack, site_tenant.write_key, client, **forwarded).json()
    segment = doc["integrations"]["Segment.io"]
    assert (segment["protocol"], segment["apiHost"]) == ("http", f"127.0.0.1:{stack.port}/v1")


def test_settings_for_an_unknown_or_revoked_key_are_404(stack: Stack, database_url: str) -> None:
    t = make_tenant(database_url, "Revoked")
    assert settings_of(stack, t.write_key).status_code == 200
    with psycopg.connect(database_url) as conn:
        assert tenants.revoke_key(conn, t.write_key)
    # The ingest hears of it through NOTIFY.
    wait_for(lambda: settings_of(stack, t.write_key).status_code == 404, 10, "the revocation")
    for key in (t.write_key, "ufw_" + "0" * 43):
        r = settings_of(stack, key, Origin=SITE)
        assert r.status_code == 404, r.text
        answer = r.json()
        assert answer["code"] == "not_found"
        assert [e["field"] for e in answer["errors"]] == ["writeKey"]
        assert r.headers["access-control-allow-origin"] == "*"
        assert r.headers["cache-control"] == "no-store"


def test_settings_preflight(stack: Stack) -> None:
    r = httpx.options(f"{stack.url}/v1/projects/any/settings", timeout=10, headers={
        "Origin": SITE, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-requested-with"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert {m.strip() for m in r.headers["access-control-allow-methods"].split(",")} == {
        "GET", "OPTIONS"}
    assert r.headers["access-control-allow-headers"] == "x-requested-with"
