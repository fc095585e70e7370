"""What is wrong with an analytics request, said so that a client can fix it."""

from __future__ import annotations

from userflow.events.errors import FieldError


class BadParameters(ValueError):
    """One or more parameters cannot be answered; `errors` names each and why."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))
        self.errors = errors


def bad(field: str, reason: str) -> BadParameters:
    return BadParameters([FieldError(field, reason)])


class NotAuthorized(PermissionError):
    """No live read key of a company was presented."""


class NotFound(LookupError):
    """The thing asked for (an experiment, a user) has no events in the tenant's data."""
