"""A dedicated tenant's Strimzi KafkaTopic: the manifest it should have, and what to do.

The object lives next to the Kafka cluster (UF_STRIMZI_NAMESPACE), so it cannot
be owned by the Company (owner references do not cross namespaces): the
annotation `userflow.io/owner` names the Company, and the finalizer deletes it.
Kafka cannot take partitions away from a topic, so a plan never shrinks one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from userflow import topics
from userflow.config import Settings
from userflow.operator.errors import InvalidSpec
from userflow.operator.spec import Desired

STRIMZI = ("kafka.strimzi.io", "v1", "kafkatopics")
OWNER_ANNOTATION = "userflow.io/owner"
MANAGED_BY = {"app.kubernetes.io/managed-by": "userflow-operator"}


def manifest(want: Desired, config: Settings, owner: str, partitions: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{STRIMZI[0]}/{STRIMZI[1]}",
        "kind": "KafkaTopic",
        "metadata": {
            "name": topics.object_name(config.topic_prefix, want.slug),
            "namespace": config.strimzi_namespace,
            "labels": {"strimzi.io/cluster": config.strimzi_cluster,
                       "userflow.io/company": want.slug, **MANAGED_BY},
            "annotations": {OWNER_ANNOTATION: owner},
        },
        "spec": {
            "topicName": want.topic,
            "partitions": partitions,
            "replicas": config.strimzi_topic_replicas,
            "config": {"retention.ms": want.kafka_retention_ms},
        },
    }


@dataclass(frozen=True, slots=True)
class TopicPlan:
    action: Literal["create", "patch", "delete", "none"]
    name: str
    body: dict[str, Any] | None = None
    note: str = ""


def owned_by(current: Mapping[str, Any], owner: str) -> bool:
    return (current.get("metadata", {}).get("annotations") or {}).get(OWNER_ANNOTATION) == owner


def plan(want: Desired, config: Settings, owner: str,
         current: Mapping[str, Any] | None) -> TopicPlan:
    """Create, patch, delete (a dedicated topic left from a tier change) or leave alone."""
    name = topics.object_name(config.topic_prefix, want.slug)
    if current is not None and not owned_by(current, owner):
        raise InvalidSpec(f"KafkaTopic {config.strimzi_namespace}/{name} exists and is not"
                          f" managed by this Company ({owner})")
    if want.partitions is None:
        return TopicPlan("delete", name) if current is not None else TopicPlan("none", name)
    have = int((current or {}).get("spec", {}).get("partitions") or 0)
    partitions = max(want.partitions, have)
    note = (f"keeps {have} partitions: a Kafka topic cannot shrink" if have > want.partitions else "")
    body = manifest(want, config, owner, partitions)
    if current is None:
        return TopicPlan("create", name, body, note)
    if differs(body, current):
        return TopicPlan("patch", name, body, note)
    return TopicPlan("none", name, None, note)


def differs(body: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    spec, have = body["spec"], current.get("spec") or {}
    if any(have.get(k) != spec[k] for k in ("topicName", "partitions", "replicas")):
        return True
    if str((have.get("config") or {}).get("retention.ms")) != str(spec["config"]["retention.ms"]):
        return True
    labels = current.get("metadata", {}).get("labels") or {}
    return any(labels.get(k) != v for k, v in body["metadata"]["labels"].items())


def readiness(current: Mapping[str, Any] | None) -> tuple[bool, str, str]:
    """Strimzi's own verdict: (ok, reason, note). The object in place counts as ready
    until Strimzi says otherwise, since without its operator nobody ever will."""
    for cond in (current or {}).get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "False":
            return False, "StrimziNotReady", f"{cond.get('reason', '')}: {cond.get('message', '')}"
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            return True, "", "Strimzi reports it Ready"
    return True, "", "Strimzi has not reported on it yet"
