"""The client's address: X-Forwarded-For is believed only from trusted proxies, and read strictly."""

from __future__ import annotations

import ipaddress

import pytest

from userflow.events.addresses import canonical_ip, host_of
from userflow.ingest.forwarded import TrustedProxies

NONE = TrustedProxies.parse("")
INGRESS = TrustedProxies.parse("10.244.0.0/16, 192.168.1.7")


@pytest.mark.parametrize("header", ["1.2.3.4", "1.2.3.4:5678", "unknown", "[2001:db8::1]:443"])
def test_without_trusted_proxies_the_header_is_ignored(header: str) -> None:
    assert NONE.client_ip("203.0.113.9", [header]) == "203.0.113.9"


def test_a_client_that_is_no_proxy_cannot_fake_its_address() -> None:
    assert INGRESS.client_ip("203.0.113.9", ["1.2.3.4"]) == "203.0.113.9"


@pytest.mark.parametrize(("headers", "client"), [
    (["1.2.3.4"], "1.2.3.4"),
    (["1.2.3.4:5678"], "1.2.3.4"),
    (["[2001:db8::1]:443"], "2001:db8::1"),
    (["2001:DB8::1"], "2001:db8::1"),
    # What the client itself put first is not believed: the ingress appended the last entry.
    (["6.6.6.6, 1.2.3.4"], "1.2.3.4"),
    # Proxies of ours in the chain are skipped.
    (["1.2.3.4, 10.244.3.3"], "1.2.3.4"),
    (["1.2.3.4", "10.244.3.3"], "1.2.3.4"),
    # Every hop ours: the first of them.
    (["10.244.1.1, 10.244.2.2"], "10.244.1.1"),
])
def test_trusted_proxies_forward_the_client(headers: list[str], client: str) -> None:
    assert INGRESS.client_ip("10.244.0.5", headers) == client


@pytest.mark.parametrize("entry", ["unknown", "fe80::1%eth0", "01.2.3.4", "1.2.3.4:x", "[::1",
                                   "1.2.3.4:5678:9", "::1:80]", "", "junk", "1.2.3.4/24",
                                   "١.2.3.4", "1.2.3.4:١٢"])
def test_what_is_not_an_address_gives_none_rather_than_a_bad_one(entry: str) -> None:
    assert INGRESS.client_ip("10.244.0.5", [entry]) is None


def test_the_socket_address_is_read_strictly_too() -> None:
    assert NONE.client_ip(None, []) is None
    assert NONE.client_ip("::FFFF:1.2.3.4", []) == str(ipaddress.ip_address("::ffff:1.2.3.4"))


def test_a_bad_setting_names_its_entry() -> None:
    with pytest.raises(ValueError, match="'10.0.0.0/33'"):
        TrustedProxies.parse("10.0.0.0/8, 10.0.0.0/33")


@pytest.mark.parametrize(("text", "address"), [
    ("1.2.3.4", "1.2.3.4"), ("2001:0db8:0000::0001", "2001:db8::1"), ("::", "::"),
    ("1.2.3.04", None), ("1.2.3.4 ", None), ("fe80::1%1", None), ("1.2.3.4/32", None),
    ("256.1.1.1", None), ("", None), ("::ffff:999.1.1.1", None),
])
def test_canonical_addresses(text: str, address: str | None) -> None:
    assert canonical_ip(text) == address


def test_host_of_takes_ports_only_where_they_belong() -> None:
    assert host_of("[::1]:8080") == "::1"
    assert host_of("[1.2.3.4]:80") is None
    assert host_of("::1") == "::1"


def reached(proxies: TrustedProxies, peer: str, host: str | None = "ingest.local:8080",
            proto: list[str] | None = None, fhost: list[str] | None = None) -> tuple[str, str | None]:
    return proxies.reached_as(peer, "http", host, proto or [], fhost or [])


def test_where_the_client_reached_us_is_the_request_own_without_a_trusted_proxy() -> None:
    spoof = (["https"], ["evil.example"])
    assert reached(NONE, "10.244.0.5", "ingest.local:8080", *spoof) == ("http", "ingest.local:8080")
    assert reached(INGRESS, "203.0.113.9", "ingest.local:8080", *spoof) == (
        "http", "ingest.local:8080")


@pytest.mark.parametrize(("proto", "fhost", "expected"), [
    (["https"], ["events.example.com"], ("https", "events.example.com")),
    (["HTTPS"], ["events.example.com:8443"], ("https", "events.example.com:8443")),
    # The entry our own proxy appended, the last one, not what the client put first.
    (["http, https"], ["evil.example, events.example.com"], ("https", "events.example.com")),
    (["http", "https"], ["[2001:db8::1]:443"], ("https", "[2001:db8::1]:443")),
    # What is not a scheme or a host is ignored, and the request's own are kept.
    (["gopher"], ["events.example.com/path"], ("http", "ingest.local:8080")),
    ([], ["user@evil.example"], ("http", "ingest.local:8080")),
    ([""], [" "], ("http", "ingest.local:8080")),
])
def test_a_trusted_proxy_names_the_scheme_and_host(proto: list[str], fhost: list[str],
                                                    expected: tuple[str, str]) -> None:
    assert reached(INGRESS, "10.244.0.5", "ingest.local:8080", proto, fhost) == expected


@pytest.mark.parametrize("host", [None, "", "a b", "evil.example/x", "-bad.example", "a..b"])
def test_a_host_that_is_no_authority_is_none(host: str | None) -> None:
    assert reached(NONE, "203.0.113.9", host) == ("http", None)
