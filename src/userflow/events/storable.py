"""Whether a normalised event can become a row of `user_events`: one check, run on both sides.

The ingest's normalisers end with it (`check`), the consumer runs it on every
event it reads before it writes, so an event the ingest accepts is one the
consumer stores: only a drift between the two (different versions or
settings) or a bug can send an event to the dead-letter topic. The limits
come from the row format (`userflow.events.columns`); what PostgreSQL or our
JSON encoder would refuse is named here first, because a refused row would
fail its whole batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import attrgetter
from typing import Any, Final

from userflow.events.addresses import canonical_ip
from userflow.events.columns import COLUMNS, Kind
from userflow.events.fields import Collector
from userflow.events.model import EVENT_TYPES, Event
from userflow.events.receipt import Receipt
from userflow.events.timestamps import aware

# Properties and traits may nest this deep (an object in an object is 2).
JSON_MAX_DEPTH: Final = 32
# `longest` when nothing bounds the texts: every limit is below it, so every text is measured.
_UNBOUNDED: Final = 2**31
# What orjson writes (and PostgreSQL's jsonb would keep exactly): int64 and uint64.
JSON_INT_MIN: Final = -(2**63)
JSON_INT_MAX: Final = 2**64 - 1
# Older events are refused at ingest (by each tenant's retention); one this
# old is a broken clock, and storing it would create a partition nobody keeps.
OLDEST: Final = datetime(2000, 1, 1, tzinfo=UTC)


def _column_checks() -> Callable[[Event, int], tuple[str, str, int, int] | None]:
    """The integer ranges and text limits of the row format, as one generated function.

    It returns (kind, field, low, high) for the first value out of bounds, or None.
    Generated, as dataclasses generate __init__: a loop over the columns costs
    three times as much, on every event on both sides. Texts are measured only
    below `longest` (a text cannot be longer than the JSON it came in).
    """
    lines = ["def check(event, longest):"]
    for c in COLUMNS:
        if c.field and c.kind is Kind.INT:
            lines += [f"    v = event.{c.field}",
                      f"    if v is not None and not {c.low} <= v <= {c.high}:",
                      f"        return ('out_of_range', {c.field!r}, {c.low}, {c.high})"]
    texts = sorted((c.max_chars, c.field) for c in COLUMNS
                   if c.field and c.max_chars and c.kind in (Kind.ID, Kind.TEXT, Kind.TEXT_ID))
    for limit in sorted({limit for limit, _ in texts}):
        lines.append(f"    if longest > {limit}:")
        for _, field in (t for t in texts if t[0] == limit):
            lines += [f"        v = event.{field}",
                      f"        if v is not None and len(v) > {limit}:",
                      f"            return ('too_long', {field!r}, 0, {limit})"]
    lines.append("    return None")
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # noqa: S102
    checked: Callable[[Event, int], tuple[str, str, int, int] | None] = namespace["check"]
    return checked


_columns: Final = _column_checks()
# Every text an event carries, the clipped user agent and the address included.
_TEXTS: Final = tuple(
    c.field for c in COLUMNS if c.field and c.kind in (
        Kind.ID, Kind.TEXT, Kind.TEXT_ID, Kind.AGENT_ID, Kind.INET)
)
_JSON: Final = tuple(c.field for c in COLUMNS if c.field and c.kind is Kind.JSON)
_texts = attrgetter(*_TEXTS)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an event cannot be stored: what kind of problem, in which field, and where inside it."""

    kind: str
    field: str
    reason: str
    # Below the field, for properties and traits: ".a.b[2]".
    path: str = ""

    @property
    def code(self) -> str:
        """The short machine reason the dead-letter topic carries: `<kind>:<field>`."""
        return f"{self.kind}:{self.field}"


def problem(event: Event, check_nul: bool, max_future: timedelta,
            longest: int = _UNBOUNDED) -> Refusal | None:
    """Why `event` can never be stored, or None when it can.

    `check_nul`: whether a NUL may be anywhere in it; a NUL can only reach a
    string through the JSON escape `\\u0000`, so the caller's scan of the raw
    bytes spares the search in nearly every event. `longest`: no text in it is
    longer than this (the length of the JSON it was decoded from), so limits at
    or above it need not be measured.
    """
    if check_nul:
        for field, value in zip(_TEXTS, _texts(event), strict=True):
            if value is not None and "\x00" in value:
                return Refusal("nul_byte", field, "contains a NUL byte")
    if event.event_type not in EVENT_TYPES:
        return Refusal("bad_enum", "event_type", f"must be one of {', '.join(sorted(EVENT_TYPES))}")
    # Binary COPY would not refuse integers out of range: psycopg's int4/int2 dumpers
    # wrap them silently (2**31 is stored as -2**31; measured).
    bad = _columns(event, longest)
    if bad is not None:
        kind, field, low, high = bad
        if kind == "too_long":
            return Refusal(kind, field, f"is longer than {high} characters")
        return Refusal(kind, field, f"must be between {low} and {high}")
    if event.ip_address is not None and canonical_ip(event.ip_address) is None:
        return Refusal("bad_inet", "ip_address", "is not one IPv4 or IPv6 address")
    timestamp = aware(event.event_timestamp)
    if timestamp < OLDEST:
        return Refusal("out_of_range", "event_timestamp", f"is before {OLDEST:%Y-%m-%d}")
    if timestamp > aware(event.received_at) + max_future:
        return Refusal("out_of_range", "event_timestamp",
                       f"is more than {int(max_future.total_seconds())} seconds in the future")
    for field in _JSON:
        value = getattr(event, field)
        if value:
            found = json_problem(value, check_nul)
            if found is not None:
                kind, path, reason = found
                return Refusal(kind, field, reason, path)
    return None


def check(event: Event, r: Receipt, paths: Mapping[str, str], c: Collector) -> None:
    """The normalisers' last step: add the refusal, if any, naming where it was in the payload.

    `paths` maps an Event field to where the payload format keeps it.
    """
    # The normalisers measured every text against these same limits (MAX_CHARS) as
    # they made the event, cutting or refusing it: measuring again is the consumer's
    # check, against an event that may come from another version.
    refusal = problem(event, r.may_contain_nul, _seconds(r.max_future_seconds), longest=0)
    if refusal is not None:
        c.add(paths.get(refusal.field, refusal.field) + refusal.path, refusal.reason)


@lru_cache(maxsize=8)
def _seconds(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)


def json_problem(value: dict[str, Any] | list[Any], check_nul: bool) -> tuple[str, str, str] | None:
    """(kind, where, why) for the first thing in `value` that jsonb or our encoder would refuse or alter.

    Too deep (past JSON_MAX_DEPTH), a NUL in a key or a string, an integer
    outside int64/uint64 (orjson cannot write it), a float that is not finite
    (JSON has no such number). Iterative, so no nesting can exhaust the stack.
    """
    stack: list[tuple[dict[str, Any] | list[Any], str, int]] = [(value, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if depth > JSON_MAX_DEPTH:
            return "bad_json", path, f"nests deeper than {JSON_MAX_DEPTH} levels"
        pairs = node.items() if type(node) is dict else enumerate(node)
        keyed = type(node) is dict
        for key, item in pairs:
            if keyed and check_nul and "\x00" in key:
                return "nul_byte", f"{path}.<key>", "contains a NUL byte"
            kind = type(item)
            if kind is str:
                if check_nul and "\x00" in item:
                    return "nul_byte", _at(path, key, keyed), "contains a NUL byte"
            elif kind is int:
                if not JSON_INT_MIN <= item <= JSON_INT_MAX:
                    return "bad_json", _at(path, key, keyed), (
                        "is an integer outside the 64-bit range; send it as a string")
            elif kind is float:
                if not math.isfinite(item):
                    return "bad_json", _at(path, key, keyed), "is not a finite number"
            elif kind is dict or kind is list:
                if item:
                    stack.append((item, _at(path, key, keyed), depth + 1))
            elif item is not None and kind is not bool:
                return "bad_json", _at(path, key, keyed), "is not a JSON value"
    return None


def _at(path: str, key: object, keyed: bool) -> str:
    return f"{path}.{key}" if keyed else f"{path}[{key}]"

