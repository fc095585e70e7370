"""The shape every processing step has, as in getsentry/arroyo.

A step takes work with `submit`, does what is due with `poll`, finishes
what it holds with `join`, and passes its output to the next step. A step
that cannot take more work yet raises `MessageRejected`: the runner keeps
the work, pauses the partitions and offers it again later. Offsets reach
the last step (`commit.CommitOffsets`) only after the steps before it have
finished with the messages they cover.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

TPayload = TypeVar("TPayload", contravariant=True)


class MessageRejected(Exception):
    """Backpressure: the step is still busy with earlier work; offer this again later."""


class ProcessingStep(Protocol[TPayload]):
    def submit(self, payload: TPayload) -> None:
        """Take `payload`, or raise MessageRejected without taking any of it."""

    def poll(self) -> None:
        """Do the work that is due (a batch that timed out, a retry whose delay passed)."""

    def join(self, timeout: float) -> None:
        """Finish everything held, waiting up to `timeout` seconds; what is left is dropped."""

    def close(self) -> None:
        """No more submits will come."""

    def terminate(self) -> None:
        """Drop everything held at once (partitions lost: another member owns them now)."""
