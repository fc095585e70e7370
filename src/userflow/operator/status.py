"""The Company's status: four conditions and what the tenant is made of.

Ready is True when DatabaseReady, TopicReady and KeysReady all are. A
condition keeps its lastTransitionTime while its status stays the same, and
only the fields that changed are patched, so a drift check that finds nothing
writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

STEPS = ("DatabaseReady", "TopicReady", "KeysReady")
Status3 = Literal["True", "False", "Unknown"]


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: Status3
    reason: str
    message: str = ""

    @classmethod
    def ok(cls, type_: str, reason: str, message: str = "") -> Condition:
        return cls(type_, "True", reason, message)

    @classmethod
    def failed(cls, type_: str, reason: str, message: str) -> Condition:
        return cls(type_, "False", reason, message)


def ready(conditions: Mapping[str, Condition]) -> Condition:
    waiting = [t for t in STEPS if conditions[t].status != "True"]
    if not waiting:
        return Condition.ok("Ready", "Reconciled", "row, topic and keys are in place")
    first = conditions[waiting[0]]
    return Condition("Ready", "False" if first.status == "False" else "Unknown", first.reason,
                     f"{first.type}: {first.message}")


def render(conditions: Mapping[str, Condition], old: list[Mapping[str, Any]],
           now: datetime) -> list[dict[str, Any]]:
    """Ready first, then the steps; lastTransitionTime moves only when status does."""
    before = {c.get("type"): c for c in old or []}
    out = []
    for cond in (ready(conditions), *(conditions[t] for t in STEPS)):
        prev = before.get(cond.type) or {}
        since = prev.get("lastTransitionTime") if prev.get("status") == cond.status else None
        out.append({"type": cond.type, "status": cond.status, "reason": cond.reason,
                    "message": cond.message[:32_000],
                    "lastTransitionTime": since or now.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return out


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The status fields to patch: those that differ (None removes a field)."""
    return {k: v for k, v in new.items() if old.get(k) != v}
