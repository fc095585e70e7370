"""Coercing one JSON value into one event field, or saying why it cannot be.

Each function takes the raw value and the field's path in the payload (for the
error message) and collects errors instead of raising, so one response can
name every bad field at once.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any, Final

from userflow.events.errors import FieldError

ID_MAX: Final = 256
URL_MAX: Final = 8192
TEXT_MAX: Final = 1024  # longer descriptive text is cut, as Amplitude does
INT4_MIN: Final = -(2**31)
INT4_MAX: Final = 2**31 - 1


class Collector:
    """Accumulates field errors while a payload is normalised."""

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, reason: str) -> None:
        self.errors.append(FieldError(field, reason))

    def identifier(self, value: Any, field: str) -> str | None:
        """An id: strings as they are, numbers as their decimal text (Segment coerces too)."""
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
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.add(field, "must be an IP address string")
            return None
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            self.add(field, "is not a valid IPv4 or IPv6 address")
            return None

    def mapping(self, value: Any, field: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(field, "must be a JSON object")
            return {}
        return value


def event_id(raw: Any, company_id: uuid.UUID, errors: Collector, field: str) -> uuid.UUID:
    """The client's id when given (a UUID as is, anything else hashed per company), else a new one.

    Hashing a non-UUID id with the company as namespace keeps the same id from
    two companies apart and makes a retry map to the same row.
    """
    text = errors.identifier(raw, field)
    if text is None:
        return uuid.uuid4()
    try:
        return uuid.UUID(text)
    except ValueError:
        return uuid.uuid5(company_id, text)


def nul_path(value: Any, path: str) -> str | None:
    """The path of the first NUL byte in a key or string anywhere inside value."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return f"{path}.<key>"
            found = nul_path(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = nul_path(item, f"{path}[{i}]")
            if found:
                return found
    return None
