"""The whole simulated week: visitors and bots, in the order the events happened."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Final

from userflow.simulate import planted
from userflow.simulate.bots import write_bot
from userflow.simulate.incidents import Incidents
from userflow.simulate.messages import Message, to_ms
from userflow.simulate.sessions import write_session
from userflow.simulate.truth import Truth, compute_truth
from userflow.simulate.visitors import Planner

# The tracker starts a new session after 30 minutes without activity.
_SESSION_GAP_MS: Final = 35 * 60_000


@dataclass(frozen=True, slots=True)
class Simulation:
    messages: list[Message]  # in send order: by event time
    truth: Truth


def generate(events: int, seed: int, start: datetime | None = None,
             anomalies: bool = False) -> Simulation:
    """Exactly `events` messages over the 7 days from `start` (default: the 7 days ending now).

    With `anomalies`: over the 28 days from `start` (a UTC midnight; default: the four
    weeks ending at today's), with planted.py's incidents in the last week.
    """
    if events < 0:
        raise ValueError("events must be ≥ 0")
    window = planted.ANOMALY_WINDOW if anomalies else planted.WINDOW
    if start is None:
        now = datetime.now(UTC)
        start = (now.replace(hour=0, minute=0, second=0, microsecond=0) if anomalies
                 else now) - window
    elif start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    elif start + window > datetime.now(UTC):
        raise ValueError(f"the window would reach into the future; start at least"
                         f" {window.days} days ago")
    start_ms = to_ms(start)
    end_ms = start_ms + int(window.total_seconds() * 1000)
    rng = random.Random(seed)
    incidents = Incidents(rng, start_ms) if anomalies else None
    bot_budget = round(events * planted.BOT_SHARE)
    timed = _humans(rng, start_ms, end_ms, events - bot_budget, incidents)
    timed += _bots(rng, start_ms, end_ms, bot_budget)
    timed.sort(key=itemgetter(0))
    messages = [msg for _, msg in timed]
    return Simulation(messages, compute_truth(messages, seed, start_ms, end_ms, incidents))


def _humans(
    rng: random.Random, start_ms: int, end_ms: int, budget: int, incidents: Incidents | None
) -> list[tuple[int, Message]]:
    planner = Planner(rng, start_ms, end_ms, incidents)
    timed: list[tuple[int, Message]] = []
    # Every visitor adds a message (a first visit starts 2 h before the end), so this ends.
    while len(timed) < budget:
        visitor = planner.visitor()
        mine: list[tuple[int, Message]] = []
        user_id = visitor.user_id if visitor.logged_in else None
        ended = start_ms - _SESSION_GAP_MS
        for plan in visitor.sessions:
            # A visit that ran long pushes the next one back, past the session timeout.
            begin = max(plan.start_ms, ended + _SESSION_GAP_MS)
            ended, user_id = write_session(rng, visitor, plan, user_id, begin, mine, incidents)
        # The last visitor is cut short so the total is exact.
        timed += [item for item in mine if item[0] <= end_ms][: budget - len(timed)]
    return timed


def _bots(rng: random.Random, start_ms: int, end_ms: int, budget: int) -> list[tuple[int, Message]]:
    timed: list[tuple[int, Message]] = []
    # Each run adds at least one message and ends inside the window by construction.
    while len(timed) < budget:
        write_bot(rng, start_ms, end_ms, budget - len(timed), timed)
    return timed
