"""Request bodies, serialised before the clock starts; only sentAt is filled in at send time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from userflow.simulate.messages import Message

SINGLE_PATHS: Final = {"page": "/v1/page", "track": "/v1/track", "identify": "/v1/identify"}


@dataclass(frozen=True, slots=True)
class Body:
    path: str
    head: bytes  # the JSON up to sentAt's value
    events: int

    def with_sent_at(self, sent_at: str) -> bytes:
        return self.head + sent_at.encode() + b'"}'


def batch_bodies(messages: list[Message], size: int) -> list[Body]:
    return [
        Body("/v1/batch", b'{"batch":' + orjson.dumps(chunk) + b',"sentAt":"', len(chunk))
        for chunk in (messages[i : i + size] for i in range(0, len(messages), size))
    ]


def single_bodies(messages: list[Message]) -> list[Body]:
    # The message's own closing brace gives way to sentAt.
    return [
        Body(SINGLE_PATHS[m["type"]], orjson.dumps(m)[:-1] + b',"sentAt":"', 1) for m in messages
    ]
