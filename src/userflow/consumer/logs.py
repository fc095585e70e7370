"""Logging for consumer processes that nobody else set logging up for.

Records carry their facts as `extra` fields; this formatter writes them as
key=value pairs after the message. A process whose root logger already has
a handler (the CLI's telemetry set-up) keeps it.
"""

from __future__ import annotations

import logging
from typing import Final

_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(
            f"{key}={value!r}" if isinstance(value, str) and " " in value else f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD
        )
        return f"{line} {extras}" if extras else line


def configure(level: str, process: str) -> None:
    """Log to stderr as `<time> <level> <process> <logger>: <message> key=value…`."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(
        KeyValueFormatter(f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level.upper())
