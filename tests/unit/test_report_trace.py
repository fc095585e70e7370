"""Tracing a narrative's numbers to the tool results, and reading its sections."""

from __future__ import annotations

import pytest

from userflow.report.narrative import split_sections
from userflow.report.trace import Facts, tokens

RESULTS = [{"result": {"sessions": 5421, "bounce_rate": 0.4312, "scroll": 12.5,
                       "anomalies": [{"t": "2026-11-28T15:00:00+00:00", "relative_change": -0.38}]},
            "definition": "a session ends after 30 minutes without activity"}]


@pytest.mark.parametrize(("text", "traced"), [
    ("5,421", True), ("5421", True), ("5.4k", True), ("5k", True), ("5,420", False),
    ("43.1%", True), ("43%", True), ("43.2%", False), ("0.43", True),
    ("12.5%", True),  # a percentage the result holds as it is
    ("38%", True), ("-38%", True), ("−0.38", True),  # the sign may be worded
    ("2026-11-28", True), ("2026-11-28 15:00", True), ("15:00", True), ("16:00", False),
    ("2026-11-29", False),
    ("30", False),  # in a definition's text, not a figure
])
def test_a_number_is_traced_at_the_precision_written(text: str, traced: bool) -> None:
    got = tokens(f"We saw {text} this week.", Facts.of(RESULTS))
    assert [(t.text, t.traced) for t in got] == [(text, traced)]


def test_every_number_of_a_sentence_is_found_once() -> None:
    got = tokens("On 2026-11-28 at 15:00, 5,421 sessions (43.1%) and 86,421 Martians.",
                 Facts.of(RESULTS))
    assert [(t.text, t.traced) for t in got] == [
        ("2026-11-28", True), ("15:00", True), ("5,421", True), ("43.1%", True),
        ("86,421", False)]


def test_sections_are_read_by_their_headings() -> None:
    text = ("Preface.\n## Anomalies\nNone.\n## 2. Executive summary:\nGood.\n"
            "## A heading of its own\nMore.\n## Recommendations\n- Do it.")
    assert split_sections(text) == {
        "notes": "Preface.\n\nA heading of its own\n\nMore.", "anomalies": "None.",
        "summary": "Good.", "recommendations": "- Do it."}
