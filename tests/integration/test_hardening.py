"""The hardening issue's defects, each against the running stack: every 2xx is stored, no
tenant reaches another, and a careless or hostile client costs what it should.

Each of these failed on the main before the fix (the issue lists how).
"""

from __future__ import annotations

import gzip
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from psycopg.rows import dict_row

from userflow.identity import InvalidIdentity
from userflow.store import tenants
from userflow.store.tenants import NewTenant

from .conftest import make_tenant, update_company
from .payloads import iso, message
from .stack import ROOT, TRUSTED_PROXY, USERFLOW, Stack, free_port, wait_for

pytestmark = pytest.mark.services


def post(stack: Stack, key: str, batch: list[Any], **kw: Any) -> httpx.Response:
    return httpx.post(f"{stack.url}/v1/batch", json={"batch": batch}, auth=(key, ""), timeout=30,
                      **kw)


def row_of(stack: Stack, event_id: str) -> dict[str, Any] | None:
    with psycopg.connect(stack.database_url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM events WHERE event_id = %s", (event_id,)).fetchone()


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*USERFLOW, *args], env=stack.env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


# --- 1. tenant takeover ------------------------------------------------------------------

def test_no_tenant_can_take_another_companys_id_as_its_slug(stack: Stack, database_url: str) -> None:
    """Defect 1: a tenant whose slug was B's company id took B's events from then on."""
    victim = make_tenant(database_url, "Victim")
    for slug in (str(victim.company_id), victim.company_id.hex):
        made = cli(stack, "tenant", "create", "--name", "Evil", "--slug", slug)
        assert made.returncode == 1 and "reads as a UUID" in made.stderr, made.stderr
        assert "Traceback" not in made.stderr
    with psycopg.connect(database_url) as conn:
        with pytest.raises(InvalidIdentity):
            tenants.create(conn, "Evil", slug=str(victim.company_id))
        # Nor can anything that writes the table directly.
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO company (slug, name) VALUES (%s, 'Evil')",
                         (str(victim.company_id),))
        conn.rollback()
        update_company(conn, victim.company_id, name="Victim, renamed")
    sent = message("page")
    assert post(stack, victim.write_key, [sent]).status_code == 200
    assert stack.wait_rows(1, victim.company_id) == 1
    assert (row := row_of(stack, sent["messageId"])) and row["company_id"] == victim.company_id


@pytest.mark.parametrize(("args", "says"), [
    (("--slug", "dlq"), "reserved"),
    (("--slug", "shared"), "reserved"),
    (("--slug", "Not A Slug"), "DNS label"),
    (("--slug", "x" * 64), "DNS label"),
])
def test_the_cli_refuses_bad_slugs_with_a_clear_error(stack: Stack, args: tuple[str, ...],
                                                      says: str) -> None:
    """Defects 4 and 9: `dlq` sent a tenant's events to the dead-letter topic; a bad slug printed
    a psycopg traceback."""
    made = cli(stack, "tenant", "create", "--name", "Somebody", *args)
    assert made.returncode == 1 and says in made.stderr and "Traceback" not in made.stderr


def test_a_long_name_is_a_clear_error(stack: Stack) -> None:
    made = cli(stack, "tenant", "create", "--name", "N" * 300, "--slug", "long-name")
    assert made.returncode == 1 and "longer than 255" in made.stderr
    assert "Traceback" not in made.stderr


# --- 5. key lifetime -----------------------------------------------------------------------

def set_revoke_after(database_url: str, key: str, when: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(f"UPDATE api_key SET revoke_after = {when}"  # noqa: S608  (our own literal)
                     " WHERE key_hash = sha256(convert_to(%s, 'UTF8'))", (key,))


def test_a_rotated_out_key_stops_at_its_revoke_after_without_pg_cron(
        stack: Stack, database_url: str) -> None:
    """Defect 5: the ingest checked revoked_at only, which pg_cron or the operator set later
    (58 s measured), or never. This database has no pg_cron and no operator."""
    t = make_tenant(database_url, "Rotated")
    assert post(stack, t.write_key, [message("page")]).status_code == 200
    set_revoke_after(database_url, t.write_key, "now() + interval '3 seconds'")
    time.sleep(0.5)  # the new revoke_after reaches the ingest through NOTIFY
    assert post(stack, t.write_key, [message("page")]).status_code == 200
    # Nothing changes in the database now: the clock alone ends the key.
    wait_for(lambda: post(stack, t.write_key, [message("page")]).status_code == 401, 10,
             "the key's revoke_after to pass")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT revoked_at FROM api_key WHERE key_hash ="
                            " sha256(convert_to(%s, 'UTF8'))", (t.write_key,)).fetchone() == (None,)
    other = make_tenant(database_url, "Expired")
    set_revoke_after(database_url, other.write_key, "now() - interval '1 second'")
    wait_for(lambda: post(stack, other.write_key, [message("page")]).status_code == 401, 5,
             "an expired key to be refused")


# --- 2. forwarded addresses ----------------------------------------------------------------

def from_address(source: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30)


def test_x_forwarded_for_from_a_client_that_is_no_proxy_is_ignored(
        stack: Stack, tenant: NewTenant) -> None:
    """Defect 2: the header was trusted from anyone, so a client chose its own IP and country."""
    sent = {**message("page"), "context": {"sessionId": "s"}}  # no context.ip
    with from_address("127.0.0.1") as client:
        r = client.post(f"{stack.url}/v1/batch", json={"batch": [sent]},
                        auth=(tenant.write_key, ""), headers={"X-Forwarded-For": "81.2.69.142"})
    assert r.status_code == 200
    stack.wait_rows(1, tenant.company_id)
    row = row_of(stack, sent["messageId"])
    assert row is not None and str(row["ip_address"]) == "127.0.0.1" and row["country"] is None


@pytest.mark.parametrize(("forwarded", "ip"), [
    ("81.2.69.142:5678", "81.2.69.142"),
    ("[2001:4860:4860::8888]:443", "2001:4860:4860::8888"),
    ("6.6.6.6, 81.2.69.142", "81.2.69.142"),
    ("unknown", None),
    ("[2001:db8::1", None),
    ("fe80::1%eth0", None),
    ("081.2.69.142", None),
    ("<script>", None),
])
def test_forwarded_addresses_from_a_trusted_proxy_are_parsed_strictly_and_stored(
        stack: Stack, tenant: NewTenant, forwarded: str, ip: str | None) -> None:
    """Defect 2: `1.2.3.4:5678`, `unknown`, `[v6]`, zones, leading zeros got 200 and were then
    dead-lettered as bad_inet. Now each is stored, with the address or without one."""
    sent = {**message("page"), "context": {"sessionId": "s"}}
    with from_address(TRUSTED_PROXY) as client:
        r = client.post(f"{stack.url}/v1/batch", json={"batch": [sent]},
                        auth=(tenant.write_key, ""), headers={"X-Forwarded-For": forwarded})
    assert r.status_code == 200
    assert stack.wait_rows(1, tenant.company_id) == 1
    row = row_of(stack, sent["messageId"])
    assert row is not None
    assert (str(row["ip_address"]) if row["ip_address"] else None) == ip


@pytest.mark.parametrize("ip", ["1.2.3.4:5678", "fe80::1%eth0", "010.1.1.1", "1.2.3.4/32"])
def test_an_address_in_the_payload_is_refused_unless_it_is_one(
        stack: Stack, tenant: NewTenant, ip: str) -> None:
    r = post(stack, tenant.write_key, [message("page", ip=ip)])
    assert r.status_code == 400
    assert r.json()["results"][0]["errors"][0]["field"] == "context.ip"


# --- 3. deep nesting, and numbers ----------------------------------------------------------

def deep(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"1" + b"}" * (depth - 1)


@pytest.mark.parametrize("depth", [254, 300, 1000])
def test_deep_properties_are_refused_and_their_neighbours_stored(
        stack: Stack, tenant: NewTenant, depth: int) -> None:
    """Defect 3: 254+ levels got 200 and were dead-lettered; ~1,000 levels gave a 500 for the
    whole batch (its good events lost) on every retry."""
    good = [message("page"), message("page")]
    bad = orjson.dumps(message("track", "e"))[:-1] + b',"properties":' + deep(depth) + b"}"
    body = b'{"batch":[' + orjson.dumps(good[0]) + b"," + bad + b"," + orjson.dumps(good[1]) + b"]}"
    for _ in range(2):  # a retry gets the same answer
        r = httpx.post(f"{stack.url}/v1/batch", content=body, auth=(tenant.write_key, ""),
                       headers={"Content-Type": "application/json"}, timeout=30)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert (answer["accepted"], answer["rejected"]) == (2, 1)
        (error,) = answer["results"][1]["errors"]
        assert error["field"].startswith("properties.a.a") and "deeper than 32" in error["reason"]
    assert stack.wait_rows(2, tenant.company_id) == 2


@pytest.mark.parametrize("number", [b"18446744073709551616", b"-9223372036854775809",
                                    b"123456789012345678901234567890"])
def test_integers_past_64_bits_are_refused_naming_the_field(
        stack: Stack, tenant: NewTenant, number: bytes) -> None:
    """Defect 9: they silently became floats."""
    body = orjson.dumps(message("track", "Order", order={"id": 1}))
    body = body.replace(b'{"id":1}', b'{"id":' + number + b"}")
    r = httpx.post(f"{stack.url}/v1/track", content=body, auth=(tenant.write_key, ""),
                   headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400
    assert r.json()["errors"] == [{"field": "properties.order.id", "reason":
                                   "is an integer outside the 64-bit range; send it as a string"}]


def test_the_largest_64_bit_integers_are_stored_exactly(stack: Stack, tenant: NewTenant) -> None:
    sent = message("track", "Order", big=2**64 - 1, small=-(2**63))
    assert post(stack, tenant.write_key, [sent]).status_code == 200
    stack.wait_rows(1, tenant.company_id)
    row = row_of(stack, sent["messageId"])
    assert row is not None and row["metadata"] == {"big": 2**64 - 1, "small": -(2**63)}


# --- 6. exactly once at any distance -------------------------------------------------------

def test_a_retry_ten_days_later_with_another_timestamp_is_one_row(
        stack: Stack, tenant: NewTenant) -> None:
    """Defect 6: the duplicate probe covered a day either side."""
    first = message("page", ts=datetime.now(UTC) - timedelta(days=10))
    retry = {**first, "timestamp": iso(datetime.now(UTC) - timedelta(seconds=1))}
    assert post(stack, tenant.write_key, [first]).status_code == 200
    assert stack.wait_rows(1, tenant.company_id) == 1
    # The marker shares the retry's session, so its partition: stored after the retry was read.
    marker = message("page")
    assert post(stack, tenant.write_key, [retry, marker]).status_code == 200
    assert stack.wait_rows(2, tenant.company_id) == 2
    assert row_of(stack, marker["messageId"]) is not None


# --- 7. bounded work -----------------------------------------------------------------------

def test_a_batch_of_too_many_messages_is_refused_whole_and_briefly(
        stack: Stack, tenant: NewTenant) -> None:
    """Defect 7: 250,000 invalid entries in 500 KB got a 25 MB answer and a 1.5 s stall."""
    body = b'{"batch":[' + b",".join([b"1"] * 250_000) + b"]}"
    r = httpx.post(f"{stack.url}/v1/batch", content=body, auth=(tenant.write_key, ""),
                   headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413 and len(r.content) < 1024
    assert r.json()["errors"] == [{"field": "batch", "reason": "has more than 2000 messages"}]


def test_the_answer_lists_at_most_100_rejected_events(stack: Stack, tenant: NewTenant) -> None:
    batch: list[Any] = [1] * 1999 + [message("page")]
    r = post(stack, tenant.write_key, batch)
    assert r.status_code == 200
    answer = r.json()
    assert (answer["accepted"], answer["rejected"], answer["results_omitted"]) == (1, 1999, 1899)
    listed = [v for v in answer["results"] if v["status"] == "rejected"]
    assert len(listed) == 100 and [v["index"] for v in listed] == list(range(100))
    assert answer["results"][-1]["index"] == 1999 and answer["results"][-1]["status"] == "accepted"
    assert len(r.content) < 20_000


def raw_request(stack: Stack, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
    sock.sendall(head)
    return sock


def test_a_body_that_never_arrives_gets_408_and_the_connection_closed(
        stack: Stack, tenant: NewTenant) -> None:
    """Defect 7: such a request held its connection forever."""
    head = (f"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-UserFlow-Key: {tenant.write_key}\r\nContent-Length: 100\r\n\r\n{{\"ba").encode()
    started = time.monotonic()
    with raw_request(stack, head) as sock:
        answer = b""
        while chunk := sock.recv(65536):  # ends when the server closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"request_timeout" in answer and time.monotonic() - started < 8


def test_a_client_that_leaves_mid_body_is_one_log_line(stack: Stack, tenant: NewTenant) -> None:
    """Defect 7: each disconnect logged a full traceback."""
    assert stack.ingest is not None
    before = stack.ingest.log.read_text(errors="replace")
    head = (f"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-UserFlow-Key: {tenant.write_key}\r\nContent-Length: 1000\r\n\r\n{{\"batch\"").encode()
    raw_request(stack, head).close()

    def logged() -> str:
        return stack.ingest.log.read_text(errors="replace")[len(before):]  # type: ignore[union-attr]

    wait_for(lambda: "client disconnected" in logged(), 10, "the disconnect to be logged")
    time.sleep(0.5)
    assert "Traceback" not in logged() and logged().count("client disconnected") == 1


# --- 9. the smaller ones -------------------------------------------------------------------

def test_gzip_followed_by_garbage_is_refused(stack: Stack, tenant: NewTenant) -> None:
    body = gzip.compress(orjson.dumps({"batch": [message("page")]})) + b"garbage"
    r = httpx.post(f"{stack.url}/v1/batch", content=body, auth=(tenant.write_key, ""), timeout=30,
                   headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 400
    assert r.json()["errors"] == [{"field": "body", "reason": "trailing data after the gzip stream"}]


def test_a_seed_event_without_page_url_is_refused(stack: Stack, tenant: NewTenant) -> None:
    seed = {"event_type": "click", "user_id": "3", "event_timestamp": int(time.time())}
    r = httpx.post(f"{stack.url}/send_event", json=seed,
                   headers={"X-UserFlow-Key": tenant.write_key}, timeout=30)
    assert r.status_code == 400
    assert r.json()["errors"] == [{"field": "page_url", "reason": "is required"}]


def test_keyless_legacy_mode_takes_the_company_id_only(stack: Stack, database_url: str) -> None:
    legacy = make_tenant(database_url, "Legacy", legacy_keyless_ingest=True)
    seed = {"event_type": "click", "user_id": "3", "page_url": "https://old.example/"}
    for company, status in ((legacy.slug, 401), (str(legacy.company_id).upper(), 200),
                            (str(uuid.uuid4()), 401)):
        r = httpx.post(f"{stack.url}/send_event", json={**seed, "company_id": company}, timeout=30)
        assert r.status_code == status, (company, r.text)


# --- /metrics and /docs ----------------------------------------------------------------------

def test_metrics_on_their_own_port_and_docs_off(stack: Stack, tenant: NewTenant,
                                                tmp_path: Path) -> None:
    """A NetworkPolicy can keep /metrics internal when it has a port of its own."""
    metrics_port = free_port()
    own = Stack({**stack.env, "UF_INGEST_METRICS_PORT": str(metrics_port),
                 "UF_INGEST_DOCS": "false"}, stack.database_url, tmp_path)
    own.start_ingest(workers=2)
    try:
        assert post(own, tenant.write_key, [message("page")]).status_code == 200
        for path in ("/metrics", "/docs", "/redoc", "/openapi.json"):
            assert httpx.get(f"{own.url}{path}", timeout=10).status_code == 404, path
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert 'userflow_ingest_events_total{endpoint="/v1/batch",verdict="accepted"} 1.0' in text
    finally:
        own.stop()
    # The test stack keeps both on its main port, as the default does.
    assert httpx.get(f"{stack.url}/openapi.json", timeout=10).status_code == 200
    assert "userflow_ingest_events_total" in httpx.get(f"{stack.url}/metrics", timeout=10).text
