"""The desired state of a Company: what its resource asks for, with the tier's defaults.

Pure functions over the resource's body; the CRD's schema already refused most
bad input, and what it cannot see (a name that is no slug, a tier this code
does not know) is an InvalidSpec here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from userflow import topics
from userflow.config import Settings
from userflow.operator.errors import InvalidSpec
from userflow.store.tenants import TIERS, CompanyFields, Tier, default_topic_mode

GROUP, VERSION, PLURAL = "userflow.io", "v1alpha1", "companies"
ROTATE_ANNOTATION = "userflow.io/rotate-keys"
SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DeletionPolicy = Literal["Retain", "Purge"]


@dataclass(frozen=True, slots=True)
class TierDefaults:
    retention_days: int
    rate_limit: int
    partitions: int
    # How long a dedicated topic keeps events for a replay (never longer than retention_days).
    kafka_retention_days: int


TIER_DEFAULTS: dict[Tier, TierDefaults] = {
    "free": TierDefaults(retention_days=30, rate_limit=50, partitions=1, kafka_retention_days=1),
    "basic": TierDefaults(retention_days=90, rate_limit=200, partitions=1, kafka_retention_days=3),
    "pro": TierDefaults(retention_days=395, rate_limit=2_000, partitions=3, kafka_retention_days=7),
    "enterprise": TierDefaults(retention_days=730, rate_limit=10_000, partitions=6,
                               kafka_retention_days=14),
}


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
    if not SLUG.match(company.name):
        raise InvalidSpec(f"metadata.name {company.name!r} must be a DNS label (lower-case letters,"
                          " digits and '-', at most 63): it names the tenant's topic")
    if company.name in topics.RESERVED_NAMES:
        raise InvalidSpec(f"metadata.name {company.name!r} is reserved: its topic is the platform's own")
    return company.name


def desired(company: Company, config: Settings) -> Desired:
    spec = company.spec
    slug = slug_of(company)
    tier = spec.get("tier")
    if tier not in TIERS:
        raise InvalidSpec(f"spec.tier {tier!r} is not one of {', '.join(TIERS)}")
    defaults = TIER_DEFAULTS[tier]
    name = str(spec.get("displayName") or "").strip()
    if not name:
        raise InvalidSpec("spec.displayName is required")
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
