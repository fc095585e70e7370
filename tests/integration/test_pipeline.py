"""End to end: events through each endpoint → exactly those rows, field by field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg.rows import dict_row

from userflow.store.tenants import NewTenant

from .conftest import make_tenant
from .payloads import CHROME_WINDOWS, GOOGLEBOT, IPHONE, iso, message, mixed_batch
from .stack import Stack

pytestmark = pytest.mark.services


def post_batch(stack: Stack, key: str, batch: list[dict], **extra: object) -> httpx.Response:
    return httpx.post(f"{stack.url}/v1/batch", json={"batch": batch, **extra}, auth=(key, ""),
                      timeout=30)


def stored(stack: Stack, event_id: str) -> dict:
    with psycopg.connect(stack.database_url, row_factory=dict_row) as conn:
        row = conn.execute("SELECT * FROM events WHERE event_id = %s", (event_id,)).fetchone()
    assert row is not None, f"event {event_id} not stored"
    return row


def test_batch_endpoint_stores_each_event_once_field_by_field(stack: Stack, tenant: NewTenant) -> None:
    batch = mixed_batch(240)
    for i in range(0, len(batch), 80):
        r = post_batch(stack, tenant.write_key, batch[i:i + 80], sentAt=iso(datetime.now(UTC)))
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 80
    assert stack.wait_rows(240, tenant.company_id) == 240

    click = next(m for m in batch if m.get("event") == "click")
    row = stored(stack, click["messageId"])
    assert row["event_type"] == "click" and row["user_id"] == "u1" and row["session_id"] == "s1"
    assert (row["element_selector"], row["element_text"], row["target_url"]) == (
        "#buy", "Buy", "https://shop.example/cart")
    assert (row["x_coordinate"], row["y_coordinate"]) == (10, 20)
    assert row["page_url"] == "https://shop.example/products?utm_source=news"
    assert row["utm_source"] == "news" and row["referrer"] == "https://www.google.com/"
    sent = datetime.fromisoformat(click["timestamp"].replace("Z", "+00:00"))
    assert abs(row["event_timestamp"] - sent) < timedelta(seconds=2)
    # enrichment
    assert row["user_agent"] == CHROME_WINDOWS
    assert (row["browser"], row["os"], row["device_type"]) == ("Chrome", "Windows", "desktop")
    assert row["country"] == "US" and str(row["ip_address"]) == "8.8.8.8"
    assert row["is_bot"] is False

    order = stored(stack, next(m for m in batch if m.get("event") == "Order Completed")["messageId"])
    assert (order["event_type"], order["event_name"]) == ("custom", "Order Completed")
    assert (order["experiment_id"], order["variant"]) == ("exp-1", "treatment")
    assert order["metadata"] == {"revenue": 19.99}
    ident = stored(stack, next(m for m in batch if m["type"] == "identify")["messageId"])
    assert ident["traits"] == {"plan": "pro"}


def test_single_endpoints(stack: Stack, tenant: NewTenant) -> None:
    sent = []
    for path, msg in [("track", message("track", "Signed Up")), ("page", message("page")),
                      ("identify", message("identify")), ("screen", message("screen"))]:
        msg.pop("type")
        r = httpx.post(f"{stack.url}/v1/{path}", json=msg,
                       headers={"X-UserFlow-Key": tenant.write_key}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["event_id"] == msg["messageId"]
        sent.append(msg["messageId"])
    assert stack.wait_rows(4, tenant.company_id) == 4
    types = {str(stored(stack, m)["event_type"]) for m in sent}
    assert types == {"custom", "page_view", "identify"}


def test_mobile_and_bot_enrichment(stack: Stack, tenant: NewTenant) -> None:
    phone = message("page", ua=IPHONE, ip="81.2.69.142")
    bot = message("page", ua=GOOGLEBOT)
    assert post_batch(stack, tenant.write_key, [phone, bot]).status_code == 200
    stack.wait_rows(2, tenant.company_id)
    row = stored(stack, phone["messageId"])
    assert (row["device_type"], row["os"], row["country"]) == ("mobile", "iOS", "GB")
    assert stored(stack, bot["messageId"])["is_bot"] is True


def test_seed_send_event_with_key_and_legacy_keyless(stack: Stack, database_url: str) -> None:
    keyed = make_tenant(database_url, "Seedco")
    legacy = make_tenant(database_url, "Oldco", legacy_keyless_ingest=True)
    payload = {"event_id": str(uuid.uuid4()), "event_timestamp": int(datetime.now(UTC).timestamp()),
               "user_id": "3", "session_id": str(uuid.uuid4()), "company_id": "new_company1",
               "event_type": "click", "page_url": "https://example.com/cart",
               "element_selector": "#button1", "element_text": "Submit", "element_type": "button",
               "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
               "ip_address": "192.168.1.20", "device_type": "Desktop", "x_coordinate": 5,
               "y_coordinate": 6, "session_duration_seconds": 120,
               "metadata": '{"custom_data": "value"}'}
    r = httpx.post(f"{stack.url}/send_event", json=payload,
                   headers={"X-UserFlow-Key": keyed.write_key}, timeout=30)
    assert r.status_code == 200, r.text
    # Without a key: refused for a normal tenant, accepted for one that opted in.
    nokey = {**payload, "event_id": str(uuid.uuid4()), "company_id": str(keyed.company_id)}
    r = httpx.post(f"{stack.url}/send_event", json=nokey, timeout=30)
    assert r.status_code == 401
    r = httpx.post(f"{stack.url}/send_event",
                   json={**payload, "event_id": str(uuid.uuid4()), "company_id": str(legacy.company_id)},
                   timeout=30)
    assert r.status_code == 200, r.text
    # Only the id names a company, never its slug, which anyone could guess.
    r = httpx.post(f"{stack.url}/send_event",
                   json={**payload, "event_id": str(uuid.uuid4()), "company_id": legacy.slug},
                   timeout=30)
    assert r.status_code == 401
    assert stack.wait_rows(1, keyed.company_id) == 1
    assert stack.wait_rows(1, legacy.company_id) == 1
    row = stored(stack, payload["event_id"])
    assert (row["element_text"], row["device_type"], row["metadata"]) == (
        "Submit", "Desktop", {"custom_data": "value"})


def test_official_segment_python_client(stack: Stack, tenant: NewTenant) -> None:
    from segment.analytics import Client

    client = Client(tenant.write_key, host=stack.url, sync_mode=True, max_retries=1)
    client.track(user_id="seg-1", event="Article Read", properties={"title": "Hello"})
    client.page(user_id="seg-1", name="Home", properties={"url": "https://blog.example/"})
    client.identify(user_id="seg-1", traits={"email": "a@example.com"})
    client.flush()
    assert stack.wait_rows(3, tenant.company_id) == 3


def test_same_batch_three_times_is_stored_once(stack: Stack, tenant: NewTenant) -> None:
    batch = mixed_batch(50)
    for _ in range(3):
        assert post_batch(stack, tenant.write_key, batch).status_code == 200
    assert stack.wait_rows(50, tenant.company_id) == 50


def test_retries_across_midnight_and_minutes_apart_are_one_row(stack: Stack, tenant: NewTenant) -> None:
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    before = message("track", "click", ts=midnight - timedelta(milliseconds=2))
    after = {**before, "timestamp": iso(midnight + timedelta(milliseconds=3))}
    later = {**before, "timestamp": iso(midnight + timedelta(minutes=7))}
    no_time = message("track", "scroll")
    no_time.pop("timestamp")
    for msg in (before, after, later, no_time):
        assert post_batch(stack, tenant.write_key, [msg]).status_code == 200
    assert post_batch(stack, tenant.write_key, [no_time]).status_code == 200
    assert stack.wait_rows(2, tenant.company_id) == 2


def _counters(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every counter sample of the ingest's /metrics (summed over its workers)."""
    text = httpx.get(f"{stack.url}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_metrics_count_accepted_events_and_refused_requests(stack: Stack,
                                                             tenant: NewTenant) -> None:
    accepted = ("userflow_ingest_events_total", (("endpoint", "/v1/batch"),
                                                 ("verdict", "accepted")))
    refused = ("userflow_ingest_refused_requests_total", (("code", "unauthorized"),
                                                          ("status", "401")))
    before = _counters(stack)
    assert post_batch(stack, tenant.write_key, mixed_batch(3)).status_code == 200
    assert post_batch(stack, "wk_nobody", mixed_batch(2)).status_code == 401
    after = _counters(stack)
    assert after[accepted] - before.get(accepted, 0.0) == 3
    assert after[refused] - before.get(refused, 0.0) == 1
