"""What the generated messages hold, counted from the messages by DESIGN.md's definitions.

Conventions where DESIGN leaves a choice:
- a user is `userId or anonymousId` of a message; identities are not merged, so a
  visitor who logs in or signs up counts once anonymous and once by user id;
- a bot is a message whose user agent is one of the simulator's bot agents;
  everything below but `events`, `users.bots`/`users.all` and `bots` leaves bots out;
- device type and country are the simulator's own labels of the user agent and IP;
- a funnel actor's device type is the device type of the actor's first event;
- "after" is strictly later in time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import orjson

from userflow.simulate import agents, planted
from userflow.simulate.countries import country_of
from userflow.simulate.incidents import Incidents
from userflow.simulate.messages import Message, event_type, iso, to_ms

FUNNEL_WINDOW_MS: Final = 86_400_000
# DESIGN's event types: the seed's six, then custom (track) and identify.
EVENT_TYPES: Final = (
    "page_view",
    "click",
    "scroll",
    "form_submit",
    "hover",
    "keydown",
    "custom",
    "identify",
)
_ENGAGED: Final = frozenset({"click", "form_submit", "custom"})


@dataclass(frozen=True, slots=True)
class EventCounts:
    total: int
    by_type: dict[str, int]
    by_country: dict[str, int]
    by_device_type: dict[str, int]  # bots under "bot"


@dataclass(frozen=True, slots=True)
class Users:
    humans: int
    bots: int
    all: int


@dataclass(frozen=True, slots=True)
class Sessions:
    total: int
    bounced: int
    bounce_rate: float


@dataclass(frozen=True, slots=True)
class Bots:
    events: int
    share: float
    sessions: int


@dataclass(frozen=True, slots=True)
class FunnelStep:
    event_type: str
    path: str | None = None
    event_name: str | None = None


FUNNEL_STEPS: Final = (
    FunnelStep("page_view", path="/products"),
    FunnelStep("custom", event_name="Product Added"),
    FunnelStep("page_view", path="/checkout"),
    FunnelStep("custom", event_name=planted.GOAL_EVENT),
)


@dataclass(frozen=True, slots=True)
class Funnel:
    steps: tuple[FunnelStep, ...]
    actor: str
    window_seconds: int
    counts: list[int]  # actors reaching each step
    counts_by_device_type: dict[str, list[int]]
    conversion: float  # last step / first step
    conversion_by_device_type: dict[str, float]


@dataclass(frozen=True, slots=True)
class Variant:
    exposed: int
    converted: int
    rate: float


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    goal_event: str
    variants: dict[str, Variant]
    lift_absolute: float  # treatment rate - control rate
    lift_relative: float  # treatment rate / control rate - 1
    planted_rates: dict[str, float]
    planted_lift_relative: float


@dataclass(frozen=True, slots=True)
class FeatureAdoption:
    feature: str
    event: str
    adopters: int
    active_users: int
    rate: float
    planted_visitor_rate: float  # share of visitors planted to adopt; users ≠ visitors, see above


@dataclass(frozen=True, slots=True)
class CheckoutDrop:
    """The day one device's checkout conversion (checkout form submitted → order) halves."""

    day_from: str
    day_to: str
    device_type: str
    planted_failure: float
    checkout_steps: tuple[FunnelStep, ...]
    checkouts: int  # checkout forms the device's humans submitted that day
    failed: int  # of them, answered by the error event instead of an order
    conversion: float  # (checkouts - failed) / checkouts
    conversion_other_days: float  # the same over the window's other days


@dataclass(frozen=True, slots=True)
class Spike:
    """The hour a newsletter lands a share of the visitors on the site."""

    hour_from: str
    hour_to: str
    planted_share: float
    sessions: int  # human sessions starting in the hour
    sessions_same_hour_other_days: float  # mean, over the window's other days


@dataclass(frozen=True, slots=True)
class PlantedAnomalies:
    quiet_week_from: str  # a week with nothing planted
    quiet_week_to: str
    error_event: str
    checkout_drop: CheckoutDrop
    spike: Spike


@dataclass(frozen=True, slots=True)
class Truth:
    seed: int
    n: int
    window_start: str
    window_end: str
    first_timestamp: str | None
    last_timestamp: str | None
    events: EventCounts  # every message, bots included
    human_events: EventCounts
    users: Users
    sessions: Sessions
    bots: Bots
    funnel: Funnel
    experiment: Experiment
    feature_adoption: FeatureAdoption
    anomalies: PlantedAnomalies | None = None  # an anomalies run's incidents

    def to_json(self) -> str:
        return orjson.dumps(self, option=orjson.OPT_INDENT_2).decode()


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _step_of(kind: str, msg: Message) -> int:
    """Index of the funnel step msg is, or -1."""
    for i, step in enumerate(FUNNEL_STEPS):
        if step.event_type != kind:
            continue
        if step.path is not None and msg["context"]["page"]["path"] == step.path:
            return i
        if step.event_name is not None and msg.get("event") == step.event_name:
            return i
    return -1


def _reached(hits: list[tuple[int, int]]) -> int:
    """Steps an actor reached: the best run from any step-1 event, in order, within the window."""
    best = 0
    for i, (t0, step) in enumerate(hits):
        if step != 0:
            continue
        k, last = 1, t0
        for t, s in hits[i + 1 :]:
            if t > t0 + FUNNEL_WINDOW_MS:
                break
            if s == k and t > last:
                k, last = k + 1, t
        best = max(best, k)
        if best == len(FUNNEL_STEPS):
            break
    return best


class _Tally:
    def __init__(self) -> None:
        self.by_type: Counter[str] = Counter()
        self.by_country: Counter[str] = Counter()
        self.by_device: Counter[str] = Counter()

    def add(self, kind: str, country: str, device: str) -> None:
        self.by_type[kind] += 1
        self.by_country[country] += 1
        self.by_device[device] += 1

    def counts(self) -> EventCounts:
        return EventCounts(
            self.by_type.total(),
            {kind: self.by_type[kind] for kind in EVENT_TYPES},
            dict(sorted(self.by_country.items())),
            dict(sorted(self.by_device.items())),
        )


def compute_truth(messages: list[Message], seed: int, start_ms: int, end_ms: int,
                  incidents: Incidents | None = None) -> Truth:
    every, humans = _Tally(), _Tally()
    bot_actors: set[str] = set()
    bot_sessions: set[str] = set()
    actor_device: dict[str, str] = {}
    session_pages: Counter[str] = Counter()
    engaged_sessions: set[str] = set()
    funnel_hits: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
    exposures: dict[str, tuple[int, str]] = {}
    goals: defaultdict[str, list[int]] = defaultdict(list)
    adopters: set[str] = set()

    for msg in messages:
        ctx = msg["context"]
        agent = agents.BY_UA[ctx["userAgent"]]
        kind = event_type(msg)
        country = country_of(ctx["ip"]) or "unknown"
        every.add(kind, country, agent.device_type)
        actor = msg.get("userId") or msg["anonymousId"]
        session = ctx["sessionId"]
        if agent.device_type == "bot":
            bot_actors.add(actor)
            bot_sessions.add(session)
            continue
        humans.add(kind, country, agent.device_type)
        actor_device.setdefault(actor, agent.device_type)
        if kind == "page_view":
            session_pages[session] += 1
        elif kind in _ENGAGED:
            engaged_sessions.add(session)
        session_pages.setdefault(session, 0)
        t = to_ms(datetime.fromisoformat(msg["timestamp"]))
        step = _step_of(kind, msg)
        if step >= 0:
            funnel_hits[actor].append((t, step))
        properties = msg.get("properties") or {}
        exposed = (
            properties.get("experiment_id") == planted.EXPERIMENT_ID and "variant" in properties
        )
        if exposed and (actor not in exposures or t < exposures[actor][0]):
            exposures[actor] = (t, properties["variant"])
        if kind == "custom" and msg["event"] == planted.GOAL_EVENT:
            goals[actor].append(t)
        if (
            kind == "custom"
            and msg["event"] == planted.FEATURE_EVENT
            and properties.get("feature") == planted.FEATURE
        ):
            adopters.add(actor)

    timestamps = [m["timestamp"] for m in messages]
    bounced = sum(
        1 for s, pages in session_pages.items() if pages == 1 and s not in engaged_sessions
    )
    bot_events = every.by_type.total() - humans.by_type.total()
    return Truth(
        seed=seed,
        n=len(messages),
        window_start=iso(start_ms),
        window_end=iso(end_ms),
        first_timestamp=min(timestamps, default=None),
        last_timestamp=max(timestamps, default=None),
        events=every.counts(),
        human_events=humans.counts(),
        users=Users(len(actor_device), len(bot_actors), len(actor_device.keys() | bot_actors)),
        sessions=Sessions(len(session_pages), bounced, _ratio(bounced, len(session_pages))),
        bots=Bots(bot_events, _ratio(bot_events, len(messages)), len(bot_sessions)),
        funnel=_funnel(funnel_hits, actor_device),
        experiment=_experiment(exposures, goals),
        feature_adoption=FeatureAdoption(
            planted.FEATURE,
            planted.FEATURE_EVENT,
            len(adopters),
            len(actor_device),
            _ratio(len(adopters), len(actor_device)),
            planted.FEATURE_ADOPTION,
        ),
        anomalies=None if incidents is None else _anomalies(messages, start_ms, incidents),
    )


CHECKOUT_STEPS: Final = (
    FunnelStep("form_submit", path="/checkout"),
    FunnelStep("custom", event_name=planted.GOAL_EVENT),
)
_DAY_MS: Final = 86_400_000
_HOUR_MS: Final = 3_600_000


def _anomalies(messages: list[Message], start_ms: int, incidents: Incidents) -> PlantedAnomalies:
    checkouts: Counter[bool] = Counter()  # by "on the drop day", the device's
    failed: Counter[bool] = Counter()
    session_starts: dict[str, int] = {}
    for msg in messages:
        agent = agents.BY_UA[msg["context"]["userAgent"]]
        if agent.device_type == "bot":
            continue
        t = to_ms(datetime.fromisoformat(msg["timestamp"]))
        session_starts.setdefault(msg["context"]["sessionId"], t)
        if agent.device_type != planted.CHECKOUT_DROP_DEVICE or msg["type"] != "track":
            continue
        on_day = incidents.drop_from_ms <= t < incidents.drop_to_ms
        properties = msg.get("properties") or {}
        if msg["event"] == "form_submit" and properties.get("element_selector") == planted.CHECKOUT_FORM:
            checkouts[on_day] += 1
        elif msg["event"] == planted.ERROR_EVENT:
            failed[on_day] += 1
    hourly: Counter[int] = Counter((t - start_ms) // _HOUR_MS for t in session_starts.values())
    spike_hour = (incidents.spike_from_ms - start_ms) // _HOUR_MS
    same_hour = [hourly[h] for h in range(spike_hour % 24, max(hourly, default=0) + 1, 24)
                 if h != spike_hour]
    quiet_from = start_ms + planted.QUIET_WEEK * 7 * _DAY_MS
    return PlantedAnomalies(
        quiet_week_from=iso(quiet_from),
        quiet_week_to=iso(quiet_from + 7 * _DAY_MS),
        error_event=planted.ERROR_EVENT,
        checkout_drop=CheckoutDrop(
            day_from=iso(incidents.drop_from_ms),
            day_to=iso(incidents.drop_to_ms),
            device_type=planted.CHECKOUT_DROP_DEVICE,
            planted_failure=planted.CHECKOUT_FAILURE,
            checkout_steps=CHECKOUT_STEPS,
            checkouts=checkouts[True],
            failed=failed[True],
            conversion=_ratio(checkouts[True] - failed[True], checkouts[True]),
            conversion_other_days=_ratio(checkouts[False] - failed[False], checkouts[False]),
        ),
        spike=Spike(
            hour_from=iso(incidents.spike_from_ms),
            hour_to=iso(incidents.spike_to_ms),
            planted_share=planted.SPIKE_SHARE,
            sessions=hourly[spike_hour],
            sessions_same_hour_other_days=round(sum(same_hour) / len(same_hour), 6)
            if same_hour else 0.0,
        ),
    )


def _funnel(hits: dict[str, list[tuple[int, int]]], actor_device: dict[str, str]) -> Funnel:
    steps = len(FUNNEL_STEPS)
    counts = [0] * steps
    by_device: dict[str, list[int]] = {d: [0] * steps for d in sorted(planted.DEVICE_MIX)}
    for actor, actor_hits in hits.items():
        reached = _reached(sorted(actor_hits))
        for k in range(reached):
            counts[k] += 1
            by_device[actor_device[actor]][k] += 1
    return Funnel(
        steps=FUNNEL_STEPS,
        actor="user",
        window_seconds=FUNNEL_WINDOW_MS // 1000,
        counts=counts,
        counts_by_device_type=by_device,
        conversion=_ratio(counts[-1], counts[0]),
        conversion_by_device_type={d: _ratio(c[-1], c[0]) for d, c in by_device.items()},
    )


def _experiment(exposures: dict[str, tuple[int, str]], goals: dict[str, list[int]]) -> Experiment:
    exposed: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    for actor, (first, variant) in exposures.items():
        exposed[variant] += 1
        if any(t > first for t in goals.get(actor, ())):
            converted[variant] += 1
    variants = {
        v: Variant(exposed[v], converted[v], _ratio(converted[v], exposed[v]))
        for v in planted.CONVERSION
    }
    control, treatment = variants[planted.CONTROL].rate, variants[planted.TREATMENT].rate
    return Experiment(
        experiment_id=planted.EXPERIMENT_ID,
        goal_event=planted.GOAL_EVENT,
        variants=variants,
        lift_absolute=round(treatment - control, 6),
        lift_relative=round(treatment / control - 1, 6) if control else 0.0,
        planted_rates=dict(planted.CONVERSION),
        planted_lift_relative=round(
            planted.CONVERSION[planted.TREATMENT] / planted.CONVERSION[planted.CONTROL] - 1, 6
        ),
    )
