"""Every number of a narrative, traced to the tool results it may come from.

A number in the text is traced when some number of a tool result rounds to it
at the precision the text shows: "12.5%" is a result of 0.125 (a share, 0.1245
to 0.1255) or of 12.5 (a percentage already); "5,421" is 5421; "5.4k" is 5,350
to 5,450; "-38%" or "fell 38%" is a relative change of -0.38 (a sign the prose
words instead of writing is not held against it). A date (2026-11-28) or a
time of day (15:00) is traced when a result's timestamp holds it. Result
numbers are the JSON numbers of the answers, not digits inside their texts
(a definition's "30 minutes" is no figure of the tenant's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

# A date (with a time of day), a time of day, or a number with its thousands separators,
# decimals, a k/M suffix and a percent sign.
TOKEN: Final = re.compile(
    r"(?P<date>\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2})?)"
    r"|(?P<time>\b\d{1,2}:\d{2}\b)"
    r"|(?P<number>(?<![\w.])[-−+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?[kKM](?![a-zA-Z]))?"
    r"(?:\s?%)?)")
_STAMP: Final = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})")
_DATE_ONLY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_SCALE: Final = {"k": 1_000, "K": 1_000, "M": 1_000_000}


@dataclass(frozen=True, slots=True)
class Token:
    start: int
    end: int
    text: str
    traced: bool


@dataclass(frozen=True, slots=True)
class Facts:
    """What the tool results hold: their numbers, dates and times of day."""

    numbers: tuple[float, ...]
    dates: frozenset[str]  # YYYY-MM-DD and YYYY-MM-DD HH:MM
    times: frozenset[str]  # HH:MM

    @classmethod
    def of(cls, results: Iterable[Any]) -> Facts:
        numbers: set[float] = set()
        dates: set[str] = set()
        times: set[str] = set()
        for value in _walk(list(results)):
            if isinstance(value, str):
                for day, clock in _STAMP.findall(value):
                    dates.update((day, f"{day} {clock}"))
                    times.update((clock, clock.lstrip("0") or "0"))
                dates.update(_DATE_ONLY.findall(value))
            else:
                numbers.add(float(value))
        return cls(tuple(sorted(numbers)), frozenset(dates), frozenset(times))


def _walk(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _walk(v)
    elif isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        yield value


def _spelled(text: str) -> tuple[float, float]:
    """A written number's value and the half-width of the interval it stands for."""
    body = text.replace("−", "-").replace(",", "").replace("%", "").strip()
    scale = 1
    if body and body[-1] in _SCALE:
        scale, body = _SCALE[body[-1]], body[:-1].strip()
    exponent = Decimal(body).as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return float(body) * scale, 0.5 * 10.0 ** -places * scale


def _near(numbers: tuple[float, ...], value: float, half: float) -> bool:
    low, high = value - half - 1e-9 * max(1.0, abs(value)), value + half + 1e-9 * max(1.0, abs(value))
    return any(low <= n <= high for n in numbers)


def traced_number(facts: Facts, text: str) -> bool:
    value, half = _spelled(text)
    candidates = [(value, half)]
    if "%" in text:
        candidates.append((value / 100, half / 100))
    candidates += [(-v, h) for v, h in candidates]  # the prose may word the sign
    return any(_near(facts.numbers, v, h) for v, h in candidates)


def tokens(text: str, facts: Facts) -> list[Token]:
    """Each date, time and number of `text`, and whether a tool result holds it."""
    out: list[Token] = []
    for m in TOKEN.finditer(text):
        if m.group("date"):
            traced = m.group("date").replace("T", " ") in facts.dates
        elif m.group("time"):
            traced = m.group("time") in facts.times
        else:
            traced = traced_number(facts, m.group("number"))
        out.append(Token(m.start(), m.end(), m.group(0), traced))
    return out
