"""Topic names: the shared, dead-letter and dedicated topics, the consumer's subscription,
the KafkaTopic object's name, and which topic a tenant's events go to."""

from __future__ import annotations

import re

import pytest

from userflow import topics
from userflow.config import Settings


def test_the_platforms_topics_and_a_tenants() -> None:
    assert topics.shared_topic("userflow.events") == "userflow.events.shared"
    assert topics.dlq_topic("userflow.events") == "userflow.events.dlq"
    assert topics.tenant_topic("userflow.events", "acme") == "userflow.events.acme"
    settings = Settings(topic_prefix="t.events")
    assert (settings.shared_topic, settings.dlq_topic) == ("t.events.shared", "t.events.dlq")


def test_the_reserved_names_are_the_platforms_topics() -> None:
    assert topics.RESERVED_NAMES == frozenset({"shared", "dlq"})
    assert {topics.tenant_topic("p", name) for name in topics.RESERVED_NAMES} == {
        topics.shared_topic("p"), topics.dlq_topic("p")}


@pytest.mark.parametrize(("mode", "topic"), [("dedicated", "userflow.events.acme"),
                                              ("shared", "userflow.events.shared")])
def test_a_tenants_events_go_to_the_topic_of_its_mode(mode: str, topic: str) -> None:
    assert topics.topic_for("userflow.events", "acme", mode) == topic


@pytest.mark.parametrize(
    ("topic", "subscribed"),
    [
        ("userflow.events.shared", True),
        ("userflow.events.acme", True),
        ("userflow.events.dl", True),
        ("userflow.events.dlqa", True),
        ("userflow.events.xlq", True),
        ("userflow.events.dlq", False),
        ("userflow.eventsXshared", False),
        ("other.events.acme", False),
    ],
)
def test_the_subscription_leaves_out_the_dead_letters(topic: str, subscribed: bool) -> None:
    # Python's re agrees with POSIX extended regex on this pattern's constructs.
    assert bool(re.match(topics.subscription_pattern("userflow.events"), topic)) is subscribed


def test_the_subscription_takes_every_other_name_of_the_dead_letters_length() -> None:
    pattern = re.compile(topics.subscription_pattern("p"))
    chars = "dlqx"
    names = {a + b + c for a in chars for b in chars for c in chars}
    assert {n for n in names if not pattern.match(f"p.{n}")} == {"dlq"}


def test_the_subscription_is_the_regex_librdkafka_always_got() -> None:
    # Derived from DLQ_NAME now; spelled out before, and the same text.
    c = "[A-Za-z0-9._-]"
    assert topics.subscription_pattern("userflow.events") == (
        f"^userflow\\.events\\.({c}{{1,2}}|{c}{{4,}}|[^d]{c}{c}|d[^l]{c}|dl[^q])$")


@pytest.mark.parametrize(("prefix", "name"), [("userflow.events", "userflow-events-acme"),
                                              ("my_co.events", "my-co-events-acme")])
def test_the_kafkatopic_object_name_is_a_dns_name(prefix: str, name: str) -> None:
    assert topics.object_name(prefix, "acme") == name
