"""Hostile input: each gets its documented 4xx, the service stays up, good events around it land."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from userflow.store.tenants import NewTenant, revoke_key

from .conftest import make_tenant
from .payloads import iso, message
from .stack import Stack

pytestmark = pytest.mark.services


def raw_post(stack: Stack, key: str | None, body: bytes, path: str = "/v1/batch",
             content_type: str = "application/json", **headers: str) -> httpx.Response:
    h = {"Content-Type": content_type, **headers}
    if key:
        h["X-UserFlow-Key"] = key
    return httpx.post(f"{stack.url}{path}", content=body, headers=h, timeout=30)


def error_fields(r: httpx.Response) -> set[str]:
    return {e["field"] for e in r.json()["errors"]}


def test_bad_events_in_a_batch_do_not_sink_the_good_ones(stack: Stack, tenant: NewTenant) -> None:
    good = [message("page") for _ in range(5)]
    bad = [
        {**message("track", "click"), "userId": "nul\u0000byte"},
        {**message("track", "e"), "properties": {"deep": {"er": "x\u0000"}}},
        {**message("track", "click"), "timestamp": iso(datetime.now(UTC) + timedelta(days=365))},
        {**message("track", "e"), "type": "teleport"},
        {"type": "track", "event": "no identity"},
        {**message("track", "scroll"), "properties": {"scroll_depth": "deep"}},
        {**message("track", "e"), "properties": ["not", "an", "object"]},
        {**message("track", "click"), "context": {"ip": "not-an-ip"}},
        "not even an object",
    ]
    batch = [good[0], *bad[:4], good[1], good[2], *bad[4:], good[3], good[4]]
    r = httpx.post(f"{stack.url}/v1/batch", json={"batch": batch}, auth=(tenant.write_key, ""),
                   timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (5, len(bad))
    rejected = [v for v in body["results"] if v["status"] == "rejected"]
    assert all(v["errors"] and v["errors"][0]["reason"] for v in rejected)
    fields = {e["field"] for v in rejected for e in v["errors"]}
    assert {"userId", "properties.deep.er", "timestamp", "type", "properties.scroll_depth",
            "properties", "context.ip", "message"} <= fields
    assert stack.wait_rows(5, tenant.company_id) == 5


def test_whole_batch_bad_is_400(stack: Stack, tenant: NewTenant) -> None:
    r = httpx.post(f"{stack.url}/v1/batch", json={"batch": [{"type": "nope"}]},
                   auth=(tenant.write_key, ""), timeout=30)
    assert r.status_code == 400 and r.json()["rejected"] == 1


@pytest.mark.parametrize(("body", "field"), [
    (b'{"batch": [\xff\xfe]}', "body"),                  # invalid UTF-8
    (b"[" * 10_000 + b"]" * 10_000, "body"),             # 10,000-deep nesting
    (b"{not json", "body"),
    (b'{"batch": "no"}', "batch"),
    (b'{"batch": []}', "batch"),
    (b"", "body"),
])
def test_malformed_bodies_are_400(stack: Stack, tenant: NewTenant, body: bytes, field: str) -> None:
    r = raw_post(stack, tenant.write_key, body)
    assert r.status_code == 400, r.text
    assert field in error_fields(r)


def test_deep_nesting_inside_properties_is_refused_cleanly(stack: Stack, tenant: NewTenant) -> None:
    deep = b'{"type":"track","event":"e","userId":"u","properties":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_001
    r = raw_post(stack, tenant.write_key, deep, "/v1/track")
    assert r.status_code in (400, 413), r.text


def test_size_limits(stack: Stack, tenant: NewTenant) -> None:
    five_mb = b'{"batch": [' + b'"' + b"x" * (5 * 1024 * 1024) + b'"]}'
    assert raw_post(stack, tenant.write_key, five_mb).status_code == 413
    big_event = message("track", "e", blob="x" * 40_000)
    r = httpx.post(f"{stack.url}/v1/track", json=big_event, auth=(tenant.write_key, ""), timeout=30)
    assert r.status_code == 413
    # In a batch, the one big event is rejected and its neighbours land.
    r = httpx.post(f"{stack.url}/v1/batch", json={"batch": [big_event, message("page")]},
                   auth=(tenant.write_key, ""), timeout=30)
    assert r.status_code == 200 and r.json()["accepted"] == 1
    bomb = gzip.compress(b'{"batch": [' + b" " * (20 * 1024 * 1024) + b"]}")
    assert raw_post(stack, tenant.write_key, bomb, **{"Content-Encoding": "gzip"}).status_code == 413
    assert stack.wait_rows(1, tenant.company_id) == 1


def test_gzip_bodies_are_accepted(stack: Stack, tenant: NewTenant) -> None:
    body = httpx.Request("POST", "/", json={"batch": [message("page")]}).read()
    r = raw_post(stack, tenant.write_key, gzip.compress(body), **{"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert stack.wait_rows(1, tenant.company_id) == 1


def test_wrong_content_type_is_415(stack: Stack, tenant: NewTenant) -> None:
    r = raw_post(stack, tenant.write_key, b"<xml/>", content_type="application/xml")
    assert r.status_code == 415 and "Content-Type" in error_fields(r)


def test_keys(stack: Stack, database_url: str) -> None:
    t = make_tenant(database_url, "Keyco")
    batch = {"batch": [message("page")]}
    assert httpx.post(f"{stack.url}/v1/batch", json=batch, timeout=30).status_code == 401
    assert httpx.post(f"{stack.url}/v1/batch", json=batch, auth=("ufw_unknown", ""),
                      timeout=30).status_code == 401
    assert httpx.post(f"{stack.url}/v1/batch", json={**batch, "writeKey": t.write_key},
                      timeout=30).status_code == 200
    # A read key cannot write.
    assert httpx.post(f"{stack.url}/v1/batch", json=batch, auth=(t.read_key, ""),
                      timeout=30).status_code == 401
    with psycopg.connect(database_url) as conn:
        assert revoke_key(conn, t.write_key)
    time.sleep(0.5)  # the ingest hears of it through LISTEN/NOTIFY
    r = httpx.post(f"{stack.url}/v1/batch", json=batch, auth=(t.write_key, ""), timeout=30)
    assert r.status_code == 401 and r.json()["errors"][0]["reason"] == "unknown or revoked"


def test_service_stays_up(stack: Stack) -> None:
    assert httpx.get(f"{stack.url}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{stack.url}/readyz", timeout=5).status_code == 200
    assert stack.ingest is not None and stack.ingest.proc is not None
    assert stack.ingest.proc.poll() is None


def test_unknown_keys_are_ignored_not_fatal(stack: Stack, tenant: NewTenant) -> None:
    msg = {**message("track", "click"), "someNewField": {"x": 1}, "channel": "server"}
    r = httpx.post(f"{stack.url}/v1/batch", json={"batch": [msg], "extra": True},
                   auth=(tenant.write_key, ""), timeout=30)
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert stack.wait_rows(1, tenant.company_id) == 1
