"""Tenant identity rules: one set for the CLI, the store and the operator."""

from __future__ import annotations

import uuid

import pytest

from userflow.identity import (
    NAME_MAX,
    RESERVED_SLUGS,
    InvalidIdentity,
    check_name,
    check_slug,
    check_tier,
    looks_like_uuid,
    slugify,
)
from userflow.operator.errors import InvalidSpec
from userflow.operator.spec import Company, slug_of
from userflow.topics import RESERVED_NAMES

SOME_ID = uuid.UUID("0b8a3c5e-1f2d-4e6a-9b7c-8d9e0f1a2b3c")


@pytest.mark.parametrize("slug", ["acme", "a", "shop-42", "x" * 63, "0b8a3c5e"])
def test_good_slugs(slug: str) -> None:
    assert check_slug(slug) == slug


@pytest.mark.parametrize("slug", [
    str(SOME_ID),                       # another company's id, as `uuid` writes it
    SOME_ID.hex,                        # the same id without hyphens
    "0b8a-3c5e1f2d4e6a9b7c8d9e0f1a2b3c",  # with stray hyphens, as uuid.UUID and PostgreSQL read it
])
def test_a_slug_never_reads_as_a_company_id(slug: str) -> None:
    assert looks_like_uuid(slug) and uuid.UUID(slug) == SOME_ID
    with pytest.raises(InvalidIdentity, match="reads as a UUID"):
        check_slug(slug)


@pytest.mark.parametrize("slug", sorted(RESERVED_SLUGS))
def test_the_platforms_own_topic_names_are_reserved(slug: str) -> None:
    with pytest.raises(InvalidIdentity, match="reserved"):
        check_slug(slug)


def test_reserved_slugs_are_the_topic_names() -> None:
    assert RESERVED_SLUGS == RESERVED_NAMES == {"shared", "dlq"}


@pytest.mark.parametrize("slug", ["", "Acme", "-acme", "acme-", "a_b", "a.b", "x" * 64, "café",
                                  "a\x00b"])
def test_slugs_that_are_no_dns_label(slug: str) -> None:
    with pytest.raises(InvalidIdentity, match="DNS label"):
        check_slug(slug)


def test_slugify_makes_valid_slugs_or_says_why_not() -> None:
    assert slugify("Acme Corp.") == "acme-corp"
    with pytest.raises(InvalidIdentity, match="no letters or digits"):
        slugify("!!!")
    with pytest.raises(InvalidIdentity, match="reserved"):
        slugify("DLQ")
    with pytest.raises(InvalidIdentity, match="UUID"):
        slugify(str(SOME_ID).upper())


def test_names() -> None:
    assert check_name("  Acme  ") == "Acme"
    for bad, reason in (("", "empty"), (" ", "empty"), ("x" * (NAME_MAX + 1), "longer"),
                        ("a\x00", "NUL")):
        with pytest.raises(InvalidIdentity, match=reason):
            check_name(bad)


def test_tiers() -> None:
    assert check_tier("pro") == "pro"
    with pytest.raises(InvalidIdentity, match="not one of"):
        check_tier("platinum")


def company(name: str) -> Company:
    return Company.from_body({"metadata": {"namespace": "shop", "name": name,
                                           "uid": str(uuid.uuid4())}, "spec": {}})


@pytest.mark.parametrize("name", [str(SOME_ID), "dlq", "shared"])
def test_the_operator_refuses_what_the_cli_refuses(name: str) -> None:
    with pytest.raises(InvalidSpec, match="metadata.name"):
        slug_of(company(name))
