"""converge() and finalize(): a Company's whole reconciliation, as plain functions.

converge() reads the desired state, then makes each piece match it, in order:
the company row (which also proves this Company owns the slug), the topic, the
keys. It never raises: it returns the status to write and the error, if any,
that stopped it, and handlers.py turns that into kopf's retry or give-up. Run it
as often as you like: with nothing to change it changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import psycopg
from psycopg_pool import ConnectionPool

from userflow import topics
from userflow.config import Settings
from userflow.operator import keys, topic
from userflow.operator.errors import InvalidSpec, Unavailable
from userflow.operator.kube import Kube
from userflow.operator.spec import Company, Desired, desired, secret_name, slug_of
from userflow.operator.status import STEPS, Condition, render
from userflow.store import tenants


def utcnow() -> datetime:
    return datetime.now(UTC)


def open_pool(config: Settings) -> ConnectionPool:
    """The operator's database connections, shared by every handler and timer tick.

    One connection is kept open and the pool grows to config.operator_db_pool_max when
    handlers run at once. Each connection is checked (an empty query) before it is handed
    out, so after a PostgreSQL restart a dead one is replaced instead of failing a handler.
    While the server is down the pool keeps reconnecting in the background; a handler waits
    at most config.operator_db_wait_seconds, then gets PoolTimeout (a psycopg.OperationalError,
    so Unavailable, so kopf's TemporaryError). A reconnection attempt gives up after 30 s
    (its backoff would otherwise grow to minutes) and the next request starts a fresh one.
    Opened without waiting: the operator starts, and reports, with the database down.
    """
    pool: ConnectionPool = ConnectionPool(
        config.database_url_for("operator"), min_size=1, max_size=max(1, config.operator_db_pool_max),
        kwargs={"autocommit": True, "connect_timeout": 5},
        check=ConnectionPool.check_connection, timeout=config.operator_db_wait_seconds,
        reconnect_timeout=30.0, name="userflow-operator", open=False)
    pool.open(wait=False)
    return pool


@dataclass
class Deps:
    config: Settings
    kube: Kube
    # Opened at the operator's start-up and closed at its clean-up (handlers.py).
    pool: ConnectionPool
    now: Callable[[], datetime] = field(default=utcnow)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: dict[str, Any]
    error: InvalidSpec | Unavailable | None = None
    # What this pass changed, one line each (the handler logs them: kopf posts them as Events).
    done: tuple[str, ...] = ()


@contextmanager
def database(deps: Deps) -> Iterator[psycopg.Connection]:
    """A pooled connection (autocommit), back to the pool afterwards. Any psycopg error,
    the pool's timeout and closed pool included, is Unavailable: kopf retries later."""
    try:
        with deps.pool.connection() as conn:
            yield conn
    except psycopg.Error as exc:
        raise Unavailable(f"database: {exc}".strip(), "DatabaseUnavailable") from exc


def converge(company: Company, deps: Deps) -> Outcome:
    now = deps.now()
    status: dict[str, Any] = {"observedGeneration": company.generation}
    conditions: dict[str, Condition] = {}
    done: list[str] = []
    try:
        want = desired(company, deps.config)
        status.update(topic=want.topic, secretName=want.secret_name)
        with database(deps) as conn:
            company_id = sync_row(conn, company, want, done)
            status["companyId"] = str(company_id)
            conditions["DatabaseReady"] = Condition.ok(
                "DatabaseReady", "RowInPlace", f"company {want.slug} ({company_id})")
            conditions["TopicReady"] = sync_topic(deps, company, want, done)
            conditions["KeysReady"] = sync_keys(deps, conn, company, want, company_id, now, done)
    except (InvalidSpec, Unavailable) as exc:
        return Outcome(finish(company, status, conditions, now, exc), exc, tuple(done))
    return Outcome(finish(company, status, conditions, now), None, tuple(done))


def finish(company: Company, status: dict[str, Any], conditions: dict[str, Condition],
           now: datetime, error: InvalidSpec | Unavailable | None = None) -> dict[str, Any]:
    """The status: the failed step says why, the steps after it wait."""
    missing = [t for t in STEPS if t not in conditions]
    if error is not None and missing:
        conditions[missing[0]] = Condition.failed(missing[0], error.reason, str(error))
        for later in missing[1:]:
            conditions[later] = Condition(later, "Unknown", "Waiting", f"waits for {missing[0]}")
    status["conditions"] = render(conditions, company.status.get("conditions") or [], now)
    return status


def sync_row(conn: psycopg.Connection, company: Company, want: Desired,
             done: list[str]) -> uuid.UUID:
    try:
        company_id, change = tenants.upsert_owned(
            conn, want.slug, want.fields, owner=company.owner, uid=company.uid,
            company_id=company.known_company_id)
    except tenants.NotOwned as exc:
        raise InvalidSpec(str(exc)) from exc
    except psycopg.errors.UniqueViolation as exc:
        if "email" in str(exc.diag.constraint_name or ""):
            raise InvalidSpec(f"spec.contactEmail {want.fields.email!r} is already the contact"
                              " of another company") from exc
        raise
    if change != "unchanged":
        done.append(f"{change} the company row {want.slug} ({company_id})")
    return company_id


def sync_topic(deps: Deps, company: Company, want: Desired, done: list[str]) -> Condition:
    cfg, kube = deps.config, deps.kube
    if not cfg.strimzi_namespace:
        return Condition.ok("TopicReady", "TopicNotManaged",
                            f"events go to {want.topic}; without UF_STRIMZI_NAMESPACE Kafka makes the topic")
    name = topics.object_name(cfg.topic_prefix, want.slug)
    current = kube.get_topic(cfg.strimzi_namespace, name)
    step = topic.plan(want, cfg, company.owner, current)
    if step.action == "create":
        kube.create_topic(cfg.strimzi_namespace, step.body or {})
    elif step.action == "patch":
        kube.patch_topic(cfg.strimzi_namespace, step.body or {})
    elif step.action == "delete":
        kube.delete_topic(cfg.strimzi_namespace, name)
    if step.action != "none":
        verb = {"create": "created", "patch": "patched", "delete": "deleted"}[step.action]
        done.append(f"{verb} KafkaTopic {cfg.strimzi_namespace}/{name}")
    if want.partitions is None:
        gone = f"; the dedicated KafkaTopic {name} was deleted" if step.action == "delete" else ""
        return Condition.ok("TopicReady", "SharedTopic", f"events go to {want.topic}{gone}")
    fine, reason, strimzi = topic.readiness(current if step.action == "none" else None)
    if not fine:
        return Condition.failed("TopicReady", reason, strimzi)
    partitions = (step.body or current or {}).get("spec", {}).get("partitions")
    note = "".join(f"; {n}" for n in (step.note, strimzi) if n)
    return Condition.ok("TopicReady", "KafkaTopicApplied",
                        f"KafkaTopic {cfg.strimzi_namespace}/{name}: {want.topic},"
                        f" {partitions} partitions{note}")


def owns_secret(secret: Mapping[str, Any], company: Company) -> bool:
    """Ours when a Company of this name owns it (a Company made again re-adopts it)."""
    refs = secret.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("kind") == "Company" and r.get("name") == company.name for r in refs)


def sync_keys(deps: Deps, conn: psycopg.Connection, company: Company, want: Desired,
              company_id: uuid.UUID, now: datetime, done: list[str]) -> Condition:
    namespace, name = company.namespace, want.secret_name
    secret = deps.kube.get_secret(namespace, name)
    if secret is not None and not owns_secret(secret, company):
        raise InvalidSpec(f"Secret {namespace}/{name} exists and is not this Company's")
    live = tenants.live_keys(conn, company_id)
    plan = keys.plan(keys.SecretKeys.from_secret(secret), live, want.rotation, now)
    grace = timedelta(seconds=deps.config.operator_key_grace_seconds)
    made = keys.apply(conn, company_id, plan, grace, now)
    if made is not None:
        body = keys.secret_body(name, made, want.rotation, company_id, want.topic)
        kopf.adopt(body, owner=dict(company.body))
        deps.kube.put_secret(namespace, body, exists=secret is not None)
        done.append(f"{plan.reason}: a new write and read key in Secret {namespace}/{name}")
    if plan.revoke_now:
        done.append(f"revoked {len(plan.revoke_now)} key(s): rotated out, or gone from the Secret")
    until = [k.revoke_after for k in live if k.revoke_after and k.revoke_after > now]
    if plan.revoke_later:
        until.append(now + grace)
    old = f"; replaced keys work until {max(until):%Y-%m-%dT%H:%M:%SZ}" if until else ""
    return Condition.ok("KeysReady", "KeysInPlace", f"Secret {namespace}/{name}{old}")


def finalize(company: Company, deps: Deps) -> str:
    """On delete: revoke the keys, delete the KafkaTopic and the Secret, then keep
    (Retain) or delete (Purge) the company's row and events. Returns what it did."""
    cfg, kube, done = deps.config, deps.kube, []
    try:
        slug: str | None = slug_of(company)
    except InvalidSpec:
        slug = None  # it never got a row or a topic
    company_id = None
    if slug is not None:
        with database(deps) as conn:
            company_id = tenants.owned_company(conn, slug, company.owner)
            if company_id is not None:
                done.append(f"revoked {tenants.revoke_all(conn, company_id)} key(s)")
        if cfg.strimzi_namespace:
            name = topics.object_name(cfg.topic_prefix, slug)
            current = kube.get_topic(cfg.strimzi_namespace, name)
            if current is not None and topic.owned_by(current, company.owner):
                kube.delete_topic(cfg.strimzi_namespace, name)
                done.append(f"deleted KafkaTopic {cfg.strimzi_namespace}/{name}")
    name = secret_name(company.name)
    secret = kube.get_secret(company.namespace, name)
    if secret is not None and owns_secret(secret, company):
        kube.delete_secret(company.namespace, name)
        done.append(f"deleted Secret {name}")
    if company_id is not None and company.deletion_policy == "Purge":
        with database(deps) as conn:
            events = tenants.purge(conn, company_id)
        done.append(f"purged {events} event(s), the keys and the company row (the event ids'"
                    " digests cannot be told apart by company and age out with retention)")
    elif company_id is not None:
        done.append(f"retained the company row {company_id} and its events")
    return "; ".join(done) or "nothing to clean up"
