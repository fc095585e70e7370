"""Tenant identity: what a slug, a company name and a tier may be.

One set of rules for every way a tenant is made (`userflow tenant create`, the
Company operator, the store itself, whose CHECK constraint in
sql/007_tenant_identity.sql says the same), so none of them can make a tenant
another refuses.

A slug names the tenant's Kafka topic (`<prefix>.<slug>`), its KafkaTopic and
its Secret, so it is a DNS label. It is never a company id: ids and slugs are
separate namespaces, and a slug that reads as a UUID (any text whose letters
and digits, hyphens removed, are 32 hex digits, which is what both Python's
`uuid.UUID` and PostgreSQL's uuid input accept) could be taken for one by a
careless lookup. The platform's own topic names (`shared`, `dlq`) are reserved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from userflow import topics

Tier = Literal["free", "basic", "pro", "enterprise"]
TopicMode = Literal["shared", "dedicated"]
TIERS: Final[tuple[Tier, ...]] = ("free", "basic", "pro", "enterprise")

SLUG_MAX: Final = 63
NAME_MAX: Final = 255
# <prefix>.shared and <prefix>.dlq are the platform's own topics.
RESERVED_SLUGS: Final = topics.RESERVED_NAMES
_SLUG: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_UUID_HEX: Final = re.compile(r"[0-9a-f]{32}")


class InvalidIdentity(ValueError):
    """A slug, name or tier that no tenant may have; the message says which rule it breaks."""


@dataclass(frozen=True, slots=True)
class TierDefaults:
    """What a tier gives a Company that does not say otherwise."""

    retention_days: int
    rate_limit: int
    partitions: int
    # How long a dedicated topic keeps events for a replay (never longer than retention_days).
    kafka_retention_days: int


TIER_DEFAULTS: Final[dict[Tier, TierDefaults]] = {
    "free": TierDefaults(retention_days=30, rate_limit=50, partitions=1, kafka_retention_days=1),
    "basic": TierDefaults(retention_days=90, rate_limit=200, partitions=1, kafka_retention_days=3),
    "pro": TierDefaults(retention_days=395, rate_limit=2_000, partitions=3, kafka_retention_days=7),
    "enterprise": TierDefaults(retention_days=730, rate_limit=10_000, partitions=6,
                               kafka_retention_days=14),
}


def looks_like_uuid(text: str) -> bool:
    return _UUID_HEX.fullmatch(text.replace("-", "").lower()) is not None


def check_slug(slug: str) -> str:
    """The slug itself when a tenant may have it; raises InvalidIdentity saying why not."""
    if not _SLUG.fullmatch(slug):
        raise InvalidIdentity(
            f"slug {slug!r} must be a DNS label: 1 to {SLUG_MAX} lower-case letters, digits or"
            " '-', starting and ending with a letter or digit (it names the tenant's topic)")
    if slug in RESERVED_SLUGS:
        raise InvalidIdentity(f"slug {slug!r} is reserved: its topic is the platform's own")
    if looks_like_uuid(slug):
        raise InvalidIdentity(f"slug {slug!r} reads as a UUID, and a slug may never be taken"
                              " for a company id")
    return slug


def slugify(name: str) -> str:
    """A valid slug made from a company name; raises InvalidIdentity when none can be."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:SLUG_MAX].strip("-")
    if not slug:
        raise InvalidIdentity(f"name {name!r} has no letters or digits to make a slug from;"
                              " give a slug")
    return check_slug(slug)


def check_name(name: str) -> str:
    """The company's display name, trimmed; raises InvalidIdentity when it cannot be stored."""
    trimmed = name.strip()
    if not trimmed:
        raise InvalidIdentity("the company name is empty")
    if len(trimmed) > NAME_MAX:
        raise InvalidIdentity(f"the company name is longer than {NAME_MAX} characters")
    if "\x00" in trimmed:
        raise InvalidIdentity("the company name contains a NUL byte")
    return trimmed


def check_tier(tier: str) -> Tier:
    for known in TIERS:
        if tier == known:
            return known
    raise InvalidIdentity(f"tier {tier!r} is not one of {', '.join(TIERS)}")


def default_topic_mode(tier: Tier) -> TopicMode:
    """Paying tiers get their own topic, so a noisy neighbour cannot delay them."""
    return "dedicated" if tier in ("pro", "enterprise") else "shared"
