"""What is wrong with an event, said so that a client can fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class InvalidEvent(ValueError):
    """One event cannot be accepted; `errors` names each bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))
        self.errors = errors


class EventTooLarge(InvalidEvent):
    """One event is over the per-event size limit (413 when alone)."""
