"""Every rule about Kafka topic names, from the prefix (UF_TOPIC_PREFIX).

- `<prefix>.shared`: the events of every tenant without a topic of its own;
- `<prefix>.<slug>`: a dedicated tenant's events;
- `<prefix>.dlq`: what the consumer could not store, with the reason in a header.

So a tenant's slug may not be `shared` or `dlq` (RESERVED_NAMES), the consumer
reads every `<prefix>.*` topic but the dead letters, and the Strimzi KafkaTopic
object of a dedicated topic carries the same name with dashes.
"""

from __future__ import annotations

from typing import Final

SHARED_NAME: Final = "shared"
DLQ_NAME: Final = "dlq"
# The platform's own topics' names, which no tenant's slug may take.
RESERVED_NAMES: Final = frozenset({SHARED_NAME, DLQ_NAME})
# A character of a topic name, as Kafka allows them.
_CHAR: Final = "[A-Za-z0-9._-]"


def shared_topic(prefix: str) -> str:
    return f"{prefix}.{SHARED_NAME}"


def dlq_topic(prefix: str) -> str:
    return f"{prefix}.{DLQ_NAME}"


def tenant_topic(prefix: str, slug: str) -> str:
    """A dedicated tenant's topic. `slug` must not be one of RESERVED_NAMES: its events
    would go to the platform's own topic."""
    return f"{prefix}.{slug}"


def topic_for(prefix: str, slug: str, topic_mode: str) -> str:
    """The topic a tenant's events go to: its own when its topic_mode is "dedicated",
    else the shared one."""
    return tenant_topic(prefix, slug) if topic_mode == "dedicated" else shared_topic(prefix)


def subscription_pattern(prefix: str) -> str:
    """Every `<prefix>.<name>` topic but the dead letters', as a POSIX extended regex.

    librdkafka matches subscriptions with POSIX regex, which has no
    lookahead, so "not dlq" is spelled out: any name of another length, or
    one of the same length that differs from it somewhere (for "dlq":
    `[^d]..`, `d[^l].` or `dl[^q]`).
    """
    escaped = prefix.replace(".", "\\.")
    return f"^{escaped}\\.({_any_but(DLQ_NAME)})$"


def _any_but(word: str) -> str:
    """POSIX regex alternatives that match every name of _CHARs except `word`."""
    n = len(word)
    shorter = [f"{_CHAR}{{1,{n - 1}}}"] if n > 1 else []
    differing = [f"{word[:i]}[^{word[i]}]{_CHAR * (n - 1 - i)}" for i in range(n)]
    return "|".join([*shorter, f"{_CHAR}{{{n + 1},}}", *differing])


def object_name(prefix: str, slug: str) -> str:
    """The KafkaTopic object of a dedicated topic: userflow.events + acme -> userflow-events-acme
    (a DNS name, which has no dots or underscores; its spec.topicName has the topic's)."""
    return f"{prefix.replace('.', '-').replace('_', '-')}-{slug}"
