"""The desired state of a Company: what its resource asks for, with the tier's defaults.

Pure functions over the resource's body; the CRD's schema already refused most
bad input, and what it cannot see (a name that is no slug, a tier this code
does not know) is an InvalidSpec here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from userflow import topics
from userflow.config import Settings
from userflow.operator.errors import InvalidSpec
from userflow.identity import (
    TIER_DEFAULTS,
    InvalidIdentity,
    check_name,
    check_slug,
    check_tier,
    default_topic_mode,
)
from userflow.store.tenants import CompanyFields

GROUP, VERSION, PLURAL = "userflow.io", "v1alpha1", "companies"
ROTATE_ANNOTATION = "userflow.io/rotate-keys"
DeletionPolicy = Literal["Retain", "Purge"]


@dataclass(frozen=True, slots=True)
class Company:
    """The resource as the operator sees it; `body` is kept for kopf.adopt."""

    namespace: str
    name: str
    uid: uuid.UUID
    generation: int
    spec: Mapping[str, Any]
    annotations: Mapping[str, str]
    status: Mapping[str, Any]
    body: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Company:
        meta = body["metadata"]
        return cls(meta["namespace"], meta["name"], uuid.UUID(meta["uid"]),
                   int(meta.get("generation") or 0), dict(body.get("spec") or {}),
                   dict(meta.get("annotations") or {}), dict(body.get("status") or {}), body)

    @property
    def owner(self) -> str:
        """What the company row records as its owner."""
        return f"{self.namespace}/{self.name}"

    @property
    def known_company_id(self) -> uuid.UUID | None:
        try:
            return uuid.UUID(self.status["companyId"])
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def deletion_policy(self) -> DeletionPolicy:
        return "Purge" if self.spec.get("deletionPolicy") == "Purge" else "Retain"


@dataclass(frozen=True, slots=True)
class Desired:
    slug: str
    fields: CompanyFields
    topic: str
    # A dedicated topic's partitions and retention; None for the shared topic.
    partitions: int | None
    kafka_retention_ms: int | None
    secret_name: str
    rotation: str


def secret_name(company_name: str) -> str:
    return f"{company_name}-userflow-keys"


def slug_of(company: Company) -> str:
    """The Company's name is its tenant's slug, under the rules every tenant follows."""
    try:
        return check_slug(company.name)
    except InvalidIdentity as exc:
        raise InvalidSpec(f"metadata.name: {exc}") from None


def desired(company: Company, config: Settings) -> Desired:
    spec = company.spec
    slug = slug_of(company)
    try:
        tier = check_tier(str(spec.get("tier")))
    except InvalidIdentity as exc:
        raise InvalidSpec(f"spec.tier: {exc}") from None
    defaults = TIER_DEFAULTS[tier]
    try:
        name = check_name(str(spec.get("displayName") or ""))
    except InvalidIdentity as exc:
        raise InvalidSpec(f"spec.displayName: {exc}") from None
    mode = spec.get("topicMode") or default_topic_mode(tier)
    retention = int(spec.get("retentionDays") or defaults.retention_days)
    fields = CompanyFields(
        name=name, tier=tier, retention_days=retention, topic_mode=mode,
        region=spec.get("region") or None, email=spec.get("contactEmail") or None,
        allowed_origins=tuple(sorted(set(spec.get("allowedOrigins") or ()))),
        rate_limit_per_second=int(spec.get("rateLimit") or defaults.rate_limit),
    )
    dedicated = mode == "dedicated"
    kafka_days = min(defaults.kafka_retention_days, retention)
    return Desired(
        slug=slug, fields=fields,
        topic=topics.topic_for(config.topic_prefix, slug, mode),
        partitions=int(spec.get("partitions") or defaults.partitions) if dedicated else None,
        kafka_retention_ms=kafka_days * 86_400_000 if dedicated else None,
        secret_name=secret_name(company.name),
        rotation=str(company.annotations.get(ROTATE_ANNOTATION, "")),
    )
