"""The report as one HTML page: each section's text (Claude's, traced) over its figures
(figures.py), the appendix of every tool call, and a note at the top: no narrative and why,
or how many of the narrative's numbers were traced. Numbers in Claude's text that no tool
result holds are marked (trace.py). Every text is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import orjson

from userflow.report.figures import FIGURES
from userflow.report.gather import Call, Gathered
from userflow.report.narrative import Narrative
from userflow.report.sections import SECTIONS
from userflow.report.trace import Facts, tokens

_BOLD: Final = re.compile(r"\*\*(.+?)\*\*")
_BULLET: Final = re.compile(r"^\s*[-*]\s")
_STYLE: Final = """
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f6f6f6}
.note{background:#fff6d5;border:1px solid #e8d27a;padding:.6em 1em;margin:1em 0}
.narrative{background:#f4f8ff;border-left:4px solid #4c72b0;padding:.4em 1em;margin:.8em 0}
mark.untraced,mark.legend{background:#ffc9c9;outline:1px dashed #c44e52}
figure{margin:.8em 0}figure img{max-width:100%}figcaption{font-size:.85em;color:#555}
.appendix td{font-family:ui-monospace,monospace;font-size:.8em;text-align:left;vertical-align:top}
"""


# --- Claude's text ----------------------------------------------------------------------

@dataclass(slots=True)
class Tally:
    traced: int = 0
    untraced: int = 0


def prose(text: str, facts: Facts, tally: Tally) -> str:
    """Claude's text as HTML: paragraphs and bullets, each number traced or marked."""
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if all(_BULLET.match(line) for line in lines):
            items = "".join(f"<li>{_marked(_BULLET.sub('', line), facts, tally)}</li>"
                            for line in lines)
            blocks.append(f"<ul>{items}</ul>")
        else:
            blocks.append(f"<p>{_marked(' '.join(lines), facts, tally)}</p>")
    return "".join(blocks)


def _marked(text: str, facts: Facts, tally: Tally) -> str:
    out, at = [], 0
    for t in tokens(text, facts):
        out.append(html.escape(text[at:t.start]))
        if t.traced:
            tally.traced += 1
            out.append(html.escape(t.text))
        else:
            tally.untraced += 1
            out.append('<mark class="untraced" title="no tool result holds this number">'
                       f"{html.escape(t.text)}</mark>")
        at = t.end
    out.append(html.escape(text[at:]))
    return _BOLD.sub(r"<strong>\1</strong>", "".join(out))


# --- the page ---------------------------------------------------------------------------

def _summary_of(c: Call) -> str:
    content = c.content
    if c.is_error:
        return f"error {content.get('code')}: {content.get('message', '')}"[:300]
    parts = []
    result = content.get("result")
    if isinstance(result, dict) and "anomalies" in result:
        parts.append(f"{len(result['anomalies'])} anomalies in {result['metric']}"
                     f" by {result['interval']}")
    if "row_count" in content:
        parts.append(f"{content['row_count']} rows ({content.get('cut', 0)} cut)")
    if "counts" in content:
        parts.append(", ".join(f"{k} {v:,}" for k, v in content["counts"].items()
                               if isinstance(v, int)))
    population = content.get("population")
    if isinstance(population, dict):
        parts.append(f"behind it: {population.get('sessions', 0):,} sessions,"
                     f" {population.get('users', 0):,} users, {population.get('events', 0):,} events")
    return "; ".join(parts) or f"{len(orjson.dumps(content)):,} bytes of JSON"


def _appendix(calls: Sequence[Call]) -> str:
    rows = "".join(
        f"<tr><td>{i}</td><td>{c.caller}</td><td>{html.escape(c.name)}</td>"
        f"<td>{html.escape(orjson.dumps(c.arguments).decode())}</td>"
        f"<td>{html.escape(_summary_of(c))}</td><td>{c.seconds:.2f}</td></tr>"
        for i, c in enumerate(calls, 1))
    return ('<table id="tool-calls" class="appendix"><tr><th>#</th><th>by</th><th>tool</th>'
            f"<th>arguments</th><th>result</th><th>seconds</th></tr>{rows}</table>")


def page(company: str, g: Gathered, narrative: Narrative | None, why_no_narrative: str | None,
         generated: datetime) -> tuple[str, Tally]:
    """The report's HTML, and how many of the narrative's numbers were traced."""
    tally = Tally()
    facts = Facts.of(c.content for c in narrative.calls) if narrative else None
    span = g.period
    head = (f"<h1>UX report: {html.escape(company)}</h1><p id=\"range\" data-from=\"{span.start.isoformat()}\""
            f" data-to=\"{span.end.isoformat()}\" data-tz=\"{html.escape(span.tz)}\">"
            f"{html.escape(span.start.isoformat())}"
            f" to {html.escape(span.end.isoformat())} ({html.escape(span.tz)}); generated"
            f" {html.escape(generated.isoformat(timespec='seconds'))}")
    sections = []
    for key, title in SECTIONS:
        text = ""
        if narrative is not None and facts is not None and narrative.sections.get(key):
            text = f'<div class="narrative">{prose(narrative.sections[key], facts, tally)}</div>'
        elif key == "recommendations":
            text = "<p>Recommendations are Claude's, and there is no AI narrative.</p>"
        sections.append(f'<section id="{key}"><h2>{html.escape(title)}</h2>{text}'
                        f"{FIGURES[key](g)}</section>")
    if narrative is not None and facts is not None and narrative.sections.get("notes"):
        sections.append('<section id="notes"><h2>Further notes</h2><div class="narrative">'
                        f'{prose(narrative.sections["notes"], facts, tally)}</div></section>')
    if narrative is None:
        head += ('</p><p class="note" id="no-ai">No AI narrative: '
                 f"{html.escape(why_no_narrative or '')}. The sections below are the data"
                 " alone, computed by the same tools the AI analyst uses.</p>")
    else:
        cut = ("" if narrative.stop_reason == "end_turn" else
               f' Claude\'s text ended early (stop reason {html.escape(str(narrative.stop_reason))}).')
        head += (f"; narrative by {html.escape(narrative.model)} in {narrative.turns} turns and"
                 f" {len(narrative.calls)} tool calls.</p><p class=\"note\" id=\"traced\">{cut}Numbers"
                 f" in the narrative: {tally.traced} traced to a tool result,"
                 f" <strong>{tally.untraced} not found in any</strong>"
                 + (" (marked like <mark class=\"legend\">this</mark>)" if tally.untraced else "")
                 + ".</p>")
    calls = list(g.calls) + (list(narrative.calls) if narrative else [])
    appendix = (f'<section id="appendix"><h2>Appendix: every tool call ({len(calls)})</h2>'
                f"{_appendix(calls)}</section>")
    body = head + "".join(sections) + appendix
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>UX report:'
            f" {html.escape(company)}</title><style>{_STYLE}</style></head><body>{body}"
            "</body></html>"), tally
