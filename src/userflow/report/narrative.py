"""Claude's part of a report: it drives the analysis over the analyst's tools and writes the text.

The anthropic SDK (it reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL itself)
runs a tool-use conversation: the task is the MCP server's "weekly UX report"
prompt (ai/prompts.py) for the report's range, the tools are the MCP server's
(ai/tools.py, answered through the report's Reader), and each tool_use turn
is answered with tool_result blocks until Claude ends its turn with the
report's text, one `## Section` heading per section (sections.py). Every call
is kept for the appendix and for tracing the text's numbers (trace.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import anthropic
import orjson

from userflow.ai import prompts, tools
from userflow.ai.reader import Reader
from userflow.analytics.period import Period
from userflow.report.gather import Call, call
from userflow.report.sections import SECTIONS

MAX_TURNS: Final = 40
MAX_TOKENS: Final = 16_000
SYSTEM: Final = ("You are UserFlow's product analyst. You answer only from the tools' results,"
                 " which are this one tenant's data; you never guess a figure.")
FORMAT: Final = ("Write the report in Markdown: one section per heading, these headings in this"
                 " order, each as a line of its own: "
                 + "; ".join(f"## {title}" for _, title in SECTIONS)
                 + ". Open with the anomalies find_anomalies finds in the range (say when there"
                 " are none). Paragraphs and '- ' bullets only, no tables: the report shows"
                 " the data under your text.")
_HEADING: Final = re.compile(r"^#{1,3}\s+(.+?)\s*$", re.MULTILINE)
_NUMBERED: Final = re.compile(r"^\d+[.)]\s*")


class NarrativeFailed(RuntimeError):
    """Claude gave no report text (the API refused, or the conversation did not end)."""


@dataclass(slots=True)
class Narrative:
    model: str
    sections: dict[str, str]  # section id -> Claude's text; "notes" for headings of its own
    calls: list[Call] = field(default_factory=list)
    turns: int = 0
    stop_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


def split_sections(text: str) -> dict[str, str]:
    """The text under each `## Title` heading, by section id; other text goes to "notes"."""
    ids = {title.lower(): key for key, title in SECTIONS} | {key: key for key, _ in SECTIONS}
    out: dict[str, str] = {}
    marks = list(_HEADING.finditer(text))
    preamble = text[:marks[0].start()] if marks else text
    if preamble.strip():
        out["notes"] = preamble.strip()
    for i, mark in enumerate(marks):
        body = text[mark.end():marks[i + 1].start() if i + 1 < len(marks) else len(text)].strip()
        title = _NUMBERED.sub("", mark.group(1)).rstrip(":").strip()
        key = ids.get(title.lower())
        if key is None:  # a heading of Claude's own: kept, as text, among the notes
            key, body = "notes", f"{title}\n\n{body}"
        out[key] = f"{out[key]}\n\n{body}".strip() if key in out else body
    return out


def write(reader: Reader, period: Period, model: str, step: Callable[[str], None],
          client: anthropic.Anthropic | None = None) -> Narrative:
    """The narrative of the report over `period`; raises NarrativeFailed, anthropic.APIError."""
    client = client or anthropic.Anthropic()
    offered = [{"name": t.name, "description": t.description, "input_schema": t.input_schema}
               for t in tools.TOOLS]
    task = prompts.prompt("weekly_ux_report").text(
        {"from": period.start.isoformat(), "to": period.end.isoformat(), "tz": period.tz})
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"{task}\n\n{FORMAT}"}]
    told = Narrative(model, {})
    for turn in range(1, MAX_TURNS + 1):
        step(f"Claude, turn {turn}")
        response = client.messages.create(model=model, max_tokens=MAX_TOKENS, system=SYSTEM,
                                          tools=offered, messages=messages)  # type: ignore[arg-type]
        told.turns, told.stop_reason = turn, response.stop_reason
        told.input_tokens += response.usage.input_tokens
        told.output_tokens += response.usage.output_tokens
        # The assistant's turn goes back as it came (thinking blocks and their signatures too).
        messages.append({"role": "assistant", "content": [
            b.model_dump(mode="json", exclude_none=True) for b in response.content]})
        uses = [b for b in response.content if b.type == "tool_use"]
        if response.stop_reason == "tool_use" and uses:
            answers = []
            for use in uses:
                step(f"Claude asks {use.name}")
                done = call(reader, "claude", use.name,
                            use.input if isinstance(use.input, dict) else {"input": use.input})
                told.calls.append(done)
                answers.append({"type": "tool_result", "tool_use_id": use.id,
                                "content": orjson.dumps(done.content).decode(),
                                "is_error": done.is_error})
            messages.append({"role": "user", "content": answers})
            continue
        text = "\n".join(b.text for b in response.content if b.type == "text").strip()
        if not text:
            raise NarrativeFailed(f"Claude ended its turn ({response.stop_reason}) without text")
        told.sections = split_sections(text)
        return told
    raise NarrativeFailed(f"no report text after {MAX_TURNS} turns")
