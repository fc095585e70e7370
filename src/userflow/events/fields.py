"""Coercing one JSON value into one event field, or saying why it cannot be.

Each function takes the raw value and the field's path in the payload (for the
error message) and collects errors instead of raising, so one response can
name every bad field at once.

These run a dozen times per event, so each checks the overwhelmingly common
case first (a clean `str` within its limit, an `int` within range, a
canonical IPv4 address or UUID) and hands everything else to the general
code.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from userflow.events.addresses import canonical_ip
from userflow.events.columns import ID_MAX, INT4_MAX, INT4_MIN, TEXT_MAX, URL_MAX
from userflow.events.errors import FieldError


class Collector:
    """Accumulates field errors while a payload is normalised.

    Each check first decides the common case inline and otherwise defers to
    its `_any_*` counterpart, which handles every value and would decide the
    common case the same way (tests/unit/test_normalise_fast_paths.py).
    """

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, reason: str) -> None:
        self.errors.append(FieldError(field, reason))

    def identifier(self, value: Any, field: str) -> str | None:
        """An id: strings as they are, numbers as their decimal text (Segment coerces too)."""
        if type(value) is str and value and len(value) <= ID_MAX and "\x00" not in value:
            return value
        return self._any_identifier(value, field)

    def _any_identifier(self, value: Any, field: str) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.add(field, "must be a string or a number")
            return None
        text = value if isinstance(value, str) else str(value)
        if "\x00" in text:
            self.add(field, "contains a NUL byte")
            return None
        if len(text) > ID_MAX:
            self.add(field, f"is longer than {ID_MAX} characters")
            return None
        return text

    def text(self, value: Any, field: str, limit: int = TEXT_MAX, cut: bool = True) -> str | None:
        if type(value) is str and len(value) <= limit and "\x00" not in value:
            return value or None
        return self._any_text(value, field, limit, cut)

    def _any_text(self, value: Any, field: str, limit: int, cut: bool) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.add(field, "must be a string")
            return None
        text = value if isinstance(value, str) else str(value)
        if "\x00" in text:
            self.add(field, "contains a NUL byte")
            return None
        if len(text) > limit:
            if not cut:
                self.add(field, f"is longer than {limit} characters")
                return None
            text = text[:limit]
        return text or None

    def url(self, value: Any, field: str) -> str | None:
        return self.text(value, field, URL_MAX, cut=False)

    def integer(self, value: Any, field: str, low: int = INT4_MIN, high: int = INT4_MAX) -> int | None:
        if type(value) is int and low <= value <= high:
            return value
        return self._any_integer(value, field, low, high)

    def _any_integer(self, value: Any, field: str, low: int, high: int) -> int | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            self.add(field, "must be a number")
            return None
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                self.add(field, "must be a number")
                return None
        if not isinstance(value, int | float) or value != value:  # NaN
            self.add(field, "must be a number")
            return None
        if not low <= value <= high:
            self.add(field, f"must be between {low} and {high}")
            return None
        return round(value)

    def ip(self, value: Any, field: str) -> str | None:
        """The address's canonical text (userflow.events.addresses: strict, no zone or port)."""
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.add(field, "must be an IP address string")
            return None
        address = canonical_ip(value.strip())
        if address is None:
            self.add(field, "is not one IPv4 or IPv6 address (no port, zone or prefix length)")
        return address

    def mapping(self, value: Any, field: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(field, "must be a JSON object")
            return {}
        return value


def parse_uuid(text: str) -> uuid.UUID | None:
    """The UUID that `uuid.UUID(text)` reads, or None when it reads none.

    msgspec parses the plain hex forms (with or without hyphens) in C, several
    times faster; `uuid.UUID` also takes braces, `urn:uuid:` and stray
    hyphens, so it still decides whatever msgspec refuses.
    """
    try:
        return msgspec.convert(text, uuid.UUID)
    except msgspec.ValidationError:
        pass
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def event_id(raw: Any, company_id: uuid.UUID, errors: Collector, field: str) -> uuid.UUID:
    """The client's id when given (a UUID as is, anything else hashed per company), else a new one.

    Hashing a non-UUID id with the company as namespace keeps the same id from
    two companies apart and makes a retry map to the same row.
    """
    text = errors.identifier(raw, field)
    if text is None:
        return uuid.uuid4()
    parsed = parse_uuid(text)
    return parsed if parsed is not None else uuid.uuid5(company_id, text)
