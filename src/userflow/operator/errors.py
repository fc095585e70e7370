"""The two ways a reconciliation fails; handlers.py turns them into kopf's errors."""

from __future__ import annotations


class InvalidSpec(ValueError):
    """The resource asks for something that cannot be: retrying will not help
    until the resource changes (kopf.PermanentError)."""

    reason = "InvalidSpec"


class Unavailable(RuntimeError):
    """The database or the Kubernetes API failed: retry later (kopf.TemporaryError)."""

    def __init__(self, message: str, reason: str = "Unavailable") -> None:
        super().__init__(message)
        self.reason = reason
