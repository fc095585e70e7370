"""The operator's plain functions, without a cluster: desired state, topic and key
plans, conditions."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from userflow.config import Settings
from userflow.operator import keys, status, topic
from userflow.operator.errors import InvalidSpec
from userflow.operator.spec import ROTATE_ANNOTATION, Company, desired
from userflow.store.keys import key_hash
from userflow.store.tenants import LiveKey

CONFIG = Settings(database_url="postgresql://unused", topic_prefix="userflow.events",
                  strimzi_namespace="kafka", strimzi_cluster="main", strimzi_topic_replicas=3)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def company(name: str = "acme", namespace: str = "shop", annotations: dict[str, str] | None = None,
            **spec: Any) -> Company:
    body = {"metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                         "generation": 1, "annotations": annotations or {}},
            "spec": {"displayName": "Acme", "tier": "pro", **spec}}
    return Company.from_body(body)


# --- desired state ---------------------------------------------------------------------

def test_tier_decides_topic_mode_partitions_and_limits() -> None:
    pro = desired(company(), CONFIG)
    assert (pro.slug, pro.topic, pro.partitions) == ("acme", "userflow.events.acme", 3)
    assert pro.fields.retention_days == 395 and pro.fields.rate_limit_per_second == 2000
    assert pro.kafka_retention_ms == 7 * 86_400_000
    assert pro.secret_name == "acme-userflow-keys"
    free = desired(company(tier="free"), CONFIG)
    assert (free.topic, free.partitions, free.kafka_retention_ms) == ("userflow.events.shared", None, None)


def test_spec_overrides_the_tier() -> None:
    want = desired(company(tier="free", topicMode="dedicated", partitions=2, retentionDays=1,
                           rateLimit=7, allowedOrigins=["https://b", "https://a", "https://b"],
                           contactEmail="ops@acme.example", region="eu-west-1"), CONFIG)
    assert (want.partitions, want.fields.retention_days, want.fields.rate_limit_per_second) == (2, 1, 7)
    assert want.kafka_retention_ms == 86_400_000  # never longer in Kafka than retention allows
    assert want.fields.allowed_origins == ("https://a", "https://b")
    assert (want.fields.email, want.fields.region) == ("ops@acme.example", "eu-west-1")


@pytest.mark.parametrize("name", ["a.b", "x" * 64, "shared", "dlq"])
def test_names_that_cannot_be_a_tenant(name: str) -> None:
    with pytest.raises(InvalidSpec, match="metadata.name"):
        desired(company(name), CONFIG)


def test_rotation_comes_from_the_annotation() -> None:
    assert desired(company(annotations={ROTATE_ANNOTATION: "2026-11-28"}), CONFIG).rotation == "2026-11-28"


# --- KafkaTopic -----------------------------------------------------------------------

def test_topic_is_created_then_left_alone() -> None:
    want = desired(company(), CONFIG)
    first = topic.plan(want, CONFIG, "shop/acme", None)
    assert first.action == "create"
    body = first.body
    assert body["metadata"]["name"] == "userflow-events-acme"
    assert body["metadata"]["namespace"] == "kafka"
    assert body["metadata"]["labels"]["strimzi.io/cluster"] == "main"
    assert body["spec"] == {"topicName": "userflow.events.acme", "partitions": 3, "replicas": 3,
                            "config": {"retention.ms": 7 * 86_400_000}}
    assert topic.plan(want, CONFIG, "shop/acme", body).action == "none"


def test_topic_grows_but_never_shrinks() -> None:
    pro = desired(company(), CONFIG)
    current = topic.plan(desired(company(tier="enterprise"), CONFIG), CONFIG, "shop/acme", None).body
    step = topic.plan(pro, CONFIG, "shop/acme", current)
    assert step.action == "patch"  # retention changes with the tier, partitions stay
    assert step.body["spec"]["partitions"] == 6 and "cannot shrink" in step.note
    grown = topic.plan(desired(company(partitions=12), CONFIG), CONFIG, "shop/acme", current)
    assert grown.body["spec"]["partitions"] == 12


def test_shared_tenant_loses_its_dedicated_topic() -> None:
    current = topic.plan(desired(company(), CONFIG), CONFIG, "shop/acme", None).body
    assert topic.plan(desired(company(tier="free"), CONFIG), CONFIG, "shop/acme", current).action == "delete"
    assert topic.plan(desired(company(tier="free"), CONFIG), CONFIG, "shop/acme", None).action == "none"


def test_a_topic_of_another_company_is_not_touched() -> None:
    current = topic.plan(desired(company(), CONFIG), CONFIG, "other/acme", None).body
    with pytest.raises(InvalidSpec, match="not managed by this Company"):
        topic.plan(desired(company(), CONFIG), CONFIG, "shop/acme", current)


def test_strimzi_not_ready_is_reported() -> None:
    ok, reason, _ = topic.readiness({"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "KafkaError", "message": "boom"}]}})
    assert (ok, reason) == (False, "StrimziNotReady")
    assert topic.readiness(None) == (True, "", "Strimzi has not reported on it yet")
    assert topic.readiness({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})[0]


# --- keys -----------------------------------------------------------------------------

def live(kind: str, key: str, revoke_after: datetime | None = None) -> LiveKey:
    return LiveKey(uuid.uuid4(), kind, key_hash(key), revoke_after)  # type: ignore[arg-type]


def held(rotation: str = "") -> keys.SecretKeys:
    return keys.SecretKeys("ufw_w", "ufr_r", rotation)


def test_first_keys() -> None:
    plan = keys.plan(None, [], "", NOW)
    assert plan.generate and plan.reason == "KeysCreated" and not plan.revoke_now


def test_keys_in_place_change_nothing() -> None:
    w, r = live("write", "ufw_w"), live("read", "ufr_r")
    assert keys.plan(held(), [w, r], "", NOW) == keys.KeyPlan(False)


def test_rotation_keeps_the_old_pair_for_the_grace_period() -> None:
    w, r = live("write", "ufw_w"), live("read", "ufr_r")
    plan = keys.plan(held(""), [w, r], "1", NOW)
    assert plan.generate and plan.reason == "KeysRotated"
    assert set(plan.revoke_later) == {w.key_id, r.key_id} and not plan.revoke_now
    # Once the Secret records the rotation, the pair in grace is left alone until it is due.
    in_grace = [live("write", "ufw_old", NOW + timedelta(seconds=5)),
                live("write", "ufw_w"), live("read", "ufr_r")]
    assert keys.plan(held("1"), in_grace, "1", NOW) == keys.KeyPlan(False)
    due = keys.plan(held("1"), in_grace, "1", NOW + timedelta(seconds=6))
    assert due == keys.KeyPlan(False, (in_grace[0].key_id,))


def test_lost_or_revoked_keys_are_replaced_and_strays_revoked() -> None:
    w, r = live("write", "ufw_w"), live("read", "ufr_r")
    gone = keys.plan(None, [w, r], "", NOW)  # the Secret was deleted: its values are gone
    assert gone.generate and gone.reason == "KeysReplaced" and set(gone.revoke_now) == {w.key_id, r.key_id}
    half = keys.plan(held(), [w], "", NOW)  # someone revoked the read key
    assert half.generate and set(half.revoke_now) == {w.key_id}
    stray = live("write", "ufw_unknown")  # made, but its Secret write failed
    assert keys.plan(held(), [w, r, stray], "", NOW) == keys.KeyPlan(False, (stray.key_id,))


def test_secret_round_trip() -> None:
    body = keys.secret_body("acme-userflow-keys", keys.NewKeys("ufw_a", "ufr_b"), "7",
                            uuid.uuid4(), "userflow.events.acme")
    assert base64.b64decode(body["data"]["writeKey"]) == b"ufw_a"
    assert keys.SecretKeys.from_secret(body) == keys.SecretKeys("ufw_a", "ufr_b", "7")
    assert keys.SecretKeys.from_secret({"data": {"writeKey": "e30="}}) is None


# --- status -----------------------------------------------------------------------------

def test_conditions_keep_their_transition_time() -> None:
    ok = {t: status.Condition.ok(t, "Fine") for t in status.STEPS}
    first = status.render(ok, [], NOW)
    assert [c["type"] for c in first] == ["Ready", *status.STEPS]
    assert first[0]["status"] == "True"
    later = NOW + timedelta(minutes=5)
    assert status.render(ok, first, later) == first
    broken = {**ok, "KeysReady": status.Condition.failed("KeysReady", "Unavailable", "api down")}
    second = status.render(broken, first, later)
    assert second[0] == {"type": "Ready", "status": "False", "reason": "Unavailable",
                         "message": "KeysReady: api down", "lastTransitionTime": "2026-11-28T12:05:00Z"}
    assert second[1] == first[1]
    assert status.changes({"topic": "a", "x": 1}, {"topic": "a", "x": 2}) == {"x": 2}
