"""Reading a metric's parameters from a request's query string, strictly.

Each metric's `from_args` asks for what it takes; whatever it did not ask for
is an unknown parameter, and every problem is collected, so a 400 names each
bad parameter and why (as the ingest's answers do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from userflow.analytics import filters, period
from userflow.analytics.errors import BadParameters
from userflow.analytics.filters import Filters
from userflow.analytics.period import Period
from userflow.events.errors import FieldError

T = TypeVar("T")
MAX_TEXT = 2048


class Args:
    def __init__(self, query: Mapping[str, Sequence[str]]) -> None:
        self._query = query
        self._asked: set[str] = set()
        self.errors: list[FieldError] = []

    def _last(self, name: str) -> str | None:
        self._asked.add(name)
        values = self._query.get(name)
        return values[-1] if values else None

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self._last(name)
        if value is None or value == "":
            return default
        if len(value) > MAX_TEXT or "\x00" in value:
            self.errors.append(FieldError(name, f"over {MAX_TEXT} characters or holds NUL"))
            return default
        return value

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            self.errors.append(FieldError(name, "is required"))
            return ""
        return value

    def choice(self, name: str, choices: Sequence[T], default: T) -> T:
        value = self.text(name)
        if value is None:
            return default
        for choice in choices:
            if value == choice:
                return choice
        self.errors.append(FieldError(name, "must be one of " + ", ".join(map(str, choices))))
        return default

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.errors.append(FieldError(name, "must be an integer"))
            return default
        if not low <= number <= high:
            self.errors.append(FieldError(name, f"must be between {low} and {high}"))
            return default
        return number

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            self.errors.append(FieldError(name, "must be a number"))
            return default
        if not low <= number <= high:  # NaN fails this too
            self.errors.append(FieldError(name, f"must be between {low:g} and {high:g}"))
            return default
        return number

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        parsed = filters.boolean(value)
        if parsed is None:
            self.errors.append(FieldError(name, "must be true or false"))
            return default
        return parsed

    def period(self, max_days: int = period.MAX_DAYS) -> Period | None:
        try:
            return period.parse(self.text("from"), self.text("to"), self.text("tz"), max_days)
        except BadParameters as exc:
            self.errors.extend(exc.errors)
            return None

    def filters(self) -> Filters:
        self._asked.update(filters.NAMES)
        self._asked.add("include_bots")
        try:
            return filters.parse(self._query)
        except BadParameters as exc:
            self.errors.extend(exc.errors)
            return Filters()

    def done(self) -> None:
        """Raise for every problem seen and every parameter nobody asked for."""
        unknown = sorted(set(self._query) - self._asked)
        errors = self.errors + [FieldError(name[:64], "unknown parameter") for name in unknown]
        if errors:
            raise BadParameters(errors)
