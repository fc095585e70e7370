"""A tenant's allowed_origins: which browser origins may send its events."""

from __future__ import annotations

import pytest

from userflow.ingest.cors import ANY_ORIGIN, OriginPolicy


@pytest.mark.parametrize("entries", [[], [""], ["*"], ["https://shop.example", "*"]])
def test_no_entries_or_a_star_allow_any_origin(entries: list[str]) -> None:
    policy = OriginPolicy.parse(entries)
    assert policy is ANY_ORIGIN
    assert policy.allows("https://anything.example") and policy.allows("null")


def test_exact_entries_match_scheme_host_and_port() -> None:
    policy = OriginPolicy.parse(["https://shop.example", "http://localhost:3000"])
    assert policy.allows("https://shop.example")
    assert policy.allows("http://localhost:3000")
    assert not policy.allows("http://shop.example")         # another scheme
    assert not policy.allows("https://shop.example:8443")   # another port
    assert not policy.allows("http://localhost:3001")
    assert not policy.allows("https://www.shop.example")
    assert not policy.allows("null")


def test_entries_are_read_as_browsers_serialise_origins() -> None:
    policy = OriginPolicy.parse([" HTTPS://Shop.Example/ ", "https://b.example:443",
                                 "http://c.example:80"])
    assert policy.allows("https://shop.example")
    assert policy.allows("https://b.example")
    assert policy.allows("http://c.example")
    assert policy.allows("HTTPS://SHOP.EXAMPLE")


def test_wildcard_entries_match_subdomains_only() -> None:
    policy = OriginPolicy.parse(["https://*.example.com"])
    assert policy.allows("https://www.example.com")
    assert policy.allows("https://a.b.example.com")
    assert not policy.allows("https://example.com")          # the domain itself
    assert not policy.allows("http://www.example.com")       # another scheme
    assert not policy.allows("https://www.example.com:8443") # another port
    assert not policy.allows("https://evilexample.com")
    assert not policy.allows("https://x@www.example.com")
    assert not policy.allows("https://.example.com")


def test_wildcard_with_a_port() -> None:
    policy = OriginPolicy.parse(["http://*.local.test:8080"])
    assert policy.allows("http://app.local.test:8080")
    assert not policy.allows("http://app.local.test")
