"""`userflow report`'s steps, behind a progress display: key, data, Claude, page, file.

With ANTHROPIC_API_KEY set (and not --no-ai) Claude writes the narrative; without
it, or when the AI analysis fails, the page holds the data sections alone and
says so at its top. The read key is the report's own (tenant_key.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import anthropic
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from userflow.ai.reader import reader_of
from userflow.analytics import period as periods
from userflow.analytics.errors import bad
from userflow.analytics.period import Period
from userflow.config import Settings
from userflow.report import gather, narrative, render
from userflow.report.tenant_key import report_key

_SINCE: Final = re.compile(r"(\d{1,3})([hdw])")


def since(text: str, tz: str = "UTC", now: datetime | None = None) -> Period:
    """`--since`: "7d" is the last 7 days, today included; "48h" the last 48 hours; "2w" 14 days."""
    m = _SINCE.fullmatch(text.strip())
    if m is None:
        raise bad("since", "a number and a unit: 7d (days, today included), 48h, 2w")
    count, unit = int(m.group(1)), m.group(2)
    if count < 1:
        raise bad("since", "must be at least 1")
    if unit == "h":
        end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
        end += timedelta(hours=1)
        return periods.parse((end - timedelta(hours=count)).isoformat(), end.isoformat(), tz)
    days = count * (7 if unit == "w" else 1)
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(periods.zone_of(tz))).date()
    return periods.parse((today - timedelta(days=days - 1)).isoformat(),
                         (today + timedelta(days=1)).isoformat(), tz)


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    narrative: bool
    ai_failed: bool  # asked for, and the API or the conversation failed
    why_no_narrative: str | None
    untraced: int
    calls: int


@contextmanager
def _progress(console: Console) -> Iterator[Callable[[str], None]]:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                  TextColumn("[dim]step {task.completed}"), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("starting", total=None)

        def step(what: str) -> None:
            progress.update(task, description=what, advance=1)
        yield step
        progress.update(task, description="done")


def write_report(s: Settings, slug: str, span: Period, out: Path, *, ai: bool,
                 funnel: list[dict[str, str]] | None, goal: str | None,
                 console: Console) -> Written:
    """Writes the report to `out`; raises UnknownTenant, BadParameters, psycopg.Error."""
    wants_ai = ai and bool(os.environ.get("ANTHROPIC_API_KEY"))
    why = None if wants_ai else ("--no-ai was given" if not ai else "ANTHROPIC_API_KEY is not set")
    told: narrative.Narrative | None = None
    failed = False
    with _progress(console) as step:
        step(f"minting a read key for {slug}")
        with report_key(s.database_url_for("operator"), slug) as key, \
                reader_of(s, key.read_key) as reader:
            found = gather.gather(reader, span, funnel, goal, lambda what: step(f"asking {what}"))
            if wants_ai:
                try:
                    told = narrative.write(reader, span, s.ai_model, step)
                except (anthropic.APIError, narrative.NarrativeFailed) as exc:
                    why, failed = f"the AI analysis failed ({type(exc).__name__}: {exc})", True
        step("drawing the charts and the page")
        page, tally = render.page(key.name, found, told, why, datetime.now(UTC))
        step(f"writing {out}")
        out.write_text(page, encoding="utf-8")
    return Written(out, told is not None, failed, why, tally.untraced,
                   len(found.calls) + (len(told.calls) if told else 0))
