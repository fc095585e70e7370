"""The common filters, turned into SQL through an allow-list.

Every filter is a list of values (a repeated query parameter), matched
exactly; values are bound parameters, never SQL text. A filter speaks of
events; where a metric counts sessions it counts those whose first event
matches (device, place, referrer, campaign: the session's own, as PostHog's
initial session properties), or that hold a matching event (page viewed, event
type, event name, experiment exposure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Final

from userflow.analytics.errors import BadParameters
from userflow.events.errors import FieldError

EVENT_TYPES: Final = ("page_view", "click", "scroll", "form_submit", "hover", "keydown",
                      "custom", "identify")
# Values in one filter; a longer list is a scan in disguise.
MAX_VALUES: Final = 100
MAX_VALUE_CHARS: Final = 2048


@dataclass(frozen=True, slots=True)
class _Column:
    event: str  # over tenant.events (alias e)
    session: str  # over tenant.session_rollup (alias s); {p} is the bound list
    # Where a session holds a set of values, "any of the list is among them".


# name -> how it reads on events and on sessions
_COLUMNS: Final[dict[str, _Column]] = {
    "country": _Column("e.country = ANY({p})", "s.country = ANY({p})"),
    "region": _Column("e.region = ANY({p})", "s.region = ANY({p})"),
    "city": _Column("e.city = ANY({p})", "s.city = ANY({p})"),
    "device_type": _Column("e.device_type = ANY({p})", "s.device_type = ANY({p})"),
    "browser": _Column("e.browser = ANY({p})", "s.browser = ANY({p})"),
    "os": _Column("e.os = ANY({p})", "s.os = ANY({p})"),
    "page": _Column("e.page_path = ANY({p})", "s.pages && {p}"),
    "referrer": _Column("userflow_url_host(e.referrer) = ANY({p})", "s.referrer_domain = ANY({p})"),
    "utm_source": _Column("e.utm_source = ANY({p})", "s.utm_source = ANY({p})"),
    "utm_medium": _Column("e.utm_medium = ANY({p})", "s.utm_medium = ANY({p})"),
    "utm_campaign": _Column("e.utm_campaign = ANY({p})", "s.utm_campaign = ANY({p})"),
    "event_type": _Column("e.event_type::text = ANY({p})", "s.event_types::text[] && {p}"),
    "event_name": _Column("e.event_name = ANY({p})", "s.event_names && {p}"),
    "experiment": _Column("e.experiment_id = ANY({p})",
                          "EXISTS (SELECT FROM unnest(s.exposures) x"
                          " WHERE split_part(x, E'\\x1f', 1) = ANY({p}))"),
    "variant": _Column("e.variant = ANY({p})",
                       "EXISTS (SELECT FROM unnest(s.exposures) x"
                       " WHERE split_part(x, E'\\x1f', 2) = ANY({p}))"),
}
NAMES: Final = tuple(_COLUMNS)


@dataclass(frozen=True, slots=True)
class Filters:
    country: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    city: tuple[str, ...] = ()
    device_type: tuple[str, ...] = ()
    browser: tuple[str, ...] = ()
    os: tuple[str, ...] = ()
    page: tuple[str, ...] = ()
    referrer: tuple[str, ...] = ()
    utm_source: tuple[str, ...] = ()
    utm_medium: tuple[str, ...] = ()
    utm_campaign: tuple[str, ...] = ()
    event_type: tuple[str, ...] = ()
    event_name: tuple[str, ...] = ()
    experiment: tuple[str, ...] = ()
    variant: tuple[str, ...] = ()
    include_bots: bool = False

    def active(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)
                if f.name in _COLUMNS and getattr(self, f.name)]

    @property
    def any(self) -> bool:
        return bool(self.active())

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {name: list(values) for name, values in self.active()}
        out["include_bots"] = self.include_bots
        return out


@dataclass(slots=True)
class Where:
    """Conditions and their bound parameters, built up by one query."""

    conditions: list[str] = field(default_factory=list)
    params: dict[str, object] = field(default_factory=dict)

    def add(self, condition: str, **params: object) -> None:
        self.conditions.append(condition)
        self.params.update(params)

    def sql(self) -> str:
        return " AND ".join(self.conditions) if self.conditions else "true"


def on_events(f: Filters, where: Where, alias: str = "e", prefix: str = "f_") -> Where:
    """f as conditions on tenant.events rows (alias e)."""
    for name, values in f.active():
        key = f"{prefix}{name}"
        where.add(_COLUMNS[name].event.replace("e.", f"{alias}.").format(p=f"%({key})s"),
                  **{key: list(values)})
    if not f.include_bots:
        where.add(f"NOT {alias}.is_bot")
    return where


def on_sessions(f: Filters, where: Where, alias: str = "s", prefix: str = "f_") -> Where:
    """f as conditions on tenant.session_rollup rows (alias s)."""
    for name, values in f.active():
        key = f"{prefix}{name}"
        where.add(_COLUMNS[name].session.replace("s.", f"{alias}.").format(p=f"%({key})s"),
                  **{key: list(values)})
    if not f.include_bots:
        where.add(f"NOT {alias}.is_bot")
    return where


def parse(query: Mapping[str, Sequence[str]]) -> Filters:
    """Filters from query parameters (each name may repeat); others are the caller's."""
    errors: list[FieldError] = []
    values: dict[str, object] = {}
    for name in NAMES:
        given = tuple(query.get(name, ()))
        if len(given) > MAX_VALUES:
            errors.append(FieldError(name, f"at most {MAX_VALUES} values"))
        elif any(len(v) > MAX_VALUE_CHARS or "\x00" in v for v in given):
            errors.append(FieldError(name, f"a value is over {MAX_VALUE_CHARS} characters or holds NUL"))
        elif name == "event_type" and (unknown := [v for v in given if v not in EVENT_TYPES]):
            errors.append(FieldError(name, f"unknown event type {unknown[0][:64]!r}; one of "
                                           + ", ".join(EVENT_TYPES)))
        elif given:
            values[name] = given
    bots = query.get("include_bots", ())
    if bots:
        flag = boolean(bots[-1])
        if flag is None:
            errors.append(FieldError("include_bots", "must be true or false"))
        else:
            values["include_bots"] = flag
    if errors:
        raise BadParameters(errors)
    return Filters(**values)  # type: ignore[arg-type]


def boolean(text: str) -> bool | None:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    return None
