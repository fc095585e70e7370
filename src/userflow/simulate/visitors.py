"""Who visits and what each visit is for, decided before any message is written.

The planted figures are held by quotas rather than coin flips: within each
(variant, device) group the share of buyers follows the planted rate to within
one visitor, so the truth shows the planted lift even for a few thousand users.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from userflow.simulate import agents, planted, site
from userflow.simulate.agents import Agent
from userflow.simulate.countries import COUNTRIES, random_ip
from userflow.simulate.incidents import Incidents
from userflow.simulate.messages import new_id
from userflow.simulate.quota import Quota
from userflow.simulate.site import Campaign

_HOUR: Final = 3_600_000
# Relative traffic by local hour of day: quiet nights, lunch and evening peaks.
# fmt: off
_HOUR_WEIGHTS: Final = (0.25, 0.15, 0.1, 0.08, 0.08, 0.12, 0.25, 0.45, 0.6, 0.7, 0.8, 0.85,
                        0.9, 0.85, 0.8, 0.8, 0.8, 0.85, 0.9, 1.0, 1.0, 0.95, 0.75, 0.45)
# fmt: on
# Sessions per visitor in the window: most come once, a few keep coming back.
_SESSION_COUNTS: Final = ((1, 50), (2, 22), (3, 12), (4, 7), (5, 4), (6, 2), (7, 1.5), (8, 1))
# Room left after a planned start, so a session is over before the window ends.
_LATEST_START: Final = 2 * _HOUR
# fmt: off
_FIRST_NAMES: Final = ("emma", "liam", "olivia", "noah", "ava", "lucas", "mia", "leon", "sofia",
                       "arjun", "priya", "yuki", "haruto", "camille", "louis", "ana", "chloe")
_LAST_NAMES: Final = ("smith", "muller", "martin", "silva", "sato", "patel", "brown", "dubois",
                      "wilson", "schmidt", "santos", "tanaka", "kumar", "taylor", "roy", "nguyen")
# fmt: on
_EMAIL_TLDS: Final = ("com", "org", "net")  # example.* is reserved: no real inbox
_PLANS: Final = (("free", 70), ("plus", 22), ("pro", 8))
# Which campaigns may bring a visit of each intent. A bounce never lands on
# /products: a lone product page view would be an exposure with no chance to buy.
_LANDINGS: Final = {"shop": ("shop", "home"), "read": ("read", "home"), "bounce": ("read", "home")}


@dataclass(frozen=True, slots=True)
class SessionPlan:
    start_ms: int  # planned; a long previous session pushes it later
    intent: str  # bounce | shop | read | support | account
    depth: int  # shop only: deepest funnel step reached, 4 = buys
    login: bool
    signup: bool
    toggle_theme: bool
    campaign: Campaign | None
    referrer: str


@dataclass(frozen=True, slots=True)
class Visitor:
    anonymous_id: str
    user_id: str | None  # None for a visitor who never logs in or signs up
    logged_in: bool  # a remembered login: user_id is on every event from the first
    agent: Agent
    ip: str
    variant: str
    traits: dict[str, Any]
    sessions: tuple[SessionPlan, ...]


T = TypeVar("T")


def _weighted(rng: random.Random, pairs: tuple[tuple[T, float], ...]) -> T:
    return rng.choices([v for v, _ in pairs], [w for _, w in pairs])[0]


class Planner:
    def __init__(self, rng: random.Random, start_ms: int, end_ms: int,
                 incidents: Incidents | None = None) -> None:
        self._rng = rng
        self._start_ms = start_ms
        self._end_ms = end_ms
        self._incidents = incidents
        self._buys = {
            (v, d): Quota(planted.conversion_rate(v, d), rng.random())
            for v in planted.CONVERSION
            for d in planted.DEVICE_MIX
        }
        self._adopts = Quota(planted.FEATURE_ADOPTION, rng.random())

    def visitor(self) -> Visitor:
        rng = self._rng
        device = _weighted(rng, tuple(planted.DEVICE_MIX.items()))
        agent = rng.choices(agents.HUMAN[device], [a.weight for a in agents.HUMAN[device]])[0]
        country = rng.choices(COUNTRIES, [c.weight for c in COUNTRIES])[0]
        offset = rng.choice(country.utc_offsets)
        member = rng.random() < 0.30
        shopper = rng.random() < 0.55
        variant = planted.CONTROL if rng.random() < 0.5 else planted.TREATMENT
        buys = shopper and self._buys[variant, device].take()
        depth = (
            4
            if buys
            else _weighted(rng, tuple(zip((1, 2, 3), planted.ABANDON_DEPTH[device], strict=True)))
        )
        adopts = self._adopts.take()
        signs_up = not member and rng.random() < 0.12

        sessions = self._sessions(offset, member, shopper, depth, adopts, signs_up)
        user_id = (
            f"usr_{rng.getrandbits(48):012x}" if member or any(s.signup for s in sessions) else None
        )
        return Visitor(
            anonymous_id=new_id(rng),
            user_id=user_id,
            logged_in=member and not any(s.login for s in sessions),
            agent=agent,
            ip=random_ip(rng, country.blocks),
            variant=variant,
            traits=self._traits(member),
            sessions=sessions,
        )

    def _sessions(
        self, offset: float, member: bool, shopper: bool, depth: int, adopts: bool, signs_up: bool
    ) -> tuple[SessionPlan, ...]:
        rng = self._rng
        arrival = self._incidents.spike_arrival() if self._incidents else None
        starts = self._starts(offset, _weighted(rng, _SESSION_COUNTS), arrival)
        intents = [self._intent(i, member, shopper) for i in range(len(starts))]
        if shopper and "shop" not in intents:
            intents[-1] = "shop"
        if adopts and all(i == "bounce" for i in intents):
            intents[-1] = self._intent(1, member, shopper, bounce=0.0)
        engaged = [i for i, intent in enumerate(intents) if intent != "bounce"]
        first_engaged = engaged[0] if engaged else -1
        last_shop = max((i for i, intent in enumerate(intents) if intent == "shop"), default=-1)
        # A member whose login this browser forgot logs in at the start of the first real visit.
        login_at = first_engaged if member and engaged and rng.random() < 0.4 else -1
        # Sign-up ends the last visit, so no later exposure lands on the new identity.
        signup_at = len(intents) - 1 if signs_up and intents[-1] != "bounce" else -1
        plans = []
        for i, (start, intent) in enumerate(zip(starts, intents, strict=True)):
            campaign = self._campaign(intent, first=i == 0, login=i == login_at)
            # Earlier shopping visits browse or fill the cart; the last one goes deepest.
            shop_depth = (
                depth
                if i == last_shop
                else rng.randint(1, min(2, depth))
                if intent == "shop"
                else 0
            )
            # Adopters switch dark mode on in their first real visit and now and then again later.
            toggle = adopts and (i == first_engaged or (intent != "bounce" and rng.random() < 0.25))
            plans.append(
                SessionPlan(
                    start_ms=start,
                    intent=intent,
                    depth=shop_depth,
                    login=i == login_at,
                    signup=i == signup_at,
                    toggle_theme=toggle,
                    campaign=campaign,
                    referrer=campaign.referrer if campaign else _weighted(rng, site.REFERRERS),
                )
            )
        return tuple(plans)

    def _starts(self, offset: float, count: int, first: int | None = None) -> list[int]:
        """Session starts on different days, at hours people are awake in their own time zone;
        `first`, when given, is the first visit's (a spike's arrival)."""
        starts = [self._awake(offset, None) if first is None else first]
        while len(starts) < count:
            start = self._awake(offset, starts[-1])
            if start > self._end_ms - _LATEST_START:
                break
            starts.append(start)
        return starts

    def _awake(self, offset: float, previous: int | None) -> int:
        """A start anywhere in the window, or a day or so after `previous`, at a likely local hour.

        Rejection sampling on the local hour; after a few tries any hour will do.
        """
        rng = self._rng
        for _ in range(12):
            if previous is None:
                ms = rng.randint(self._start_ms, self._end_ms - _LATEST_START)
            else:
                ms = previous + _LATEST_START + int(rng.expovariate(1 / (30 * _HOUR)))
            if rng.random() < _HOUR_WEIGHTS[int(ms / _HOUR + offset) % 24]:
                break
        return ms

    def _intent(self, index: int, member: bool, shopper: bool, bounce: float | None = None) -> str:
        rng = self._rng
        if rng.random() < (bounce if bounce is not None else 0.40 if index == 0 else 0.25):
            return "bounce"
        account = 0.10 if member else 0.0
        if shopper:
            return _weighted(
                rng,
                (("shop", 0.65), ("read", 0.25 - account), ("support", 0.10), ("account", account)),
            )
        return _weighted(rng, (("read", 0.70 - account), ("support", 0.30), ("account", account)))

    def _campaign(self, intent: str, first: bool, login: bool) -> Campaign | None:
        if self._rng.random() >= (0.22 if first else 0.08):
            return None
        # A visit that starts with logging in starts on the home page.
        lands = ("home",) if login else _LANDINGS.get(intent, ("home",))
        fits = [c for c in site.CAMPAIGNS if c.lands_on in lands]
        return self._rng.choice(fits)

    def _traits(self, member: bool) -> dict[str, Any]:
        rng = self._rng
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        traits: dict[str, Any] = {
            "email": f"{first}.{last}{rng.randint(1, 99)}@example.{rng.choice(_EMAIL_TLDS)}",
            "first_name": first.title(),
            "last_name": last.title(),
            "plan": _weighted(rng, _PLANS) if member else "free",
        }
        if member:
            joined = datetime.fromtimestamp(self._start_ms / 1000, UTC).date() - timedelta(
                days=rng.randint(30, 900)
            )
            traits["signup_date"] = joined.isoformat()
        return traits
