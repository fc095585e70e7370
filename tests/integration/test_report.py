"""`userflow report` as a user runs it, on a simulated week: without AI its figures are the
analytics functions', its HTML parses and its charts are PNGs; with AI, the anthropic SDK
talks to a local server that speaks the Messages API and plays a recorded conversation.

The local server is the project's one stand-in (the real API is paid and out of
reach here). It checks what the client sends (the tools offered, each tool_use
answered by a tool_result holding the tool's JSON) and answers with the wire
format's content blocks, stop reasons and usage.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import html5lib
import psycopg
import pytest

from userflow.analytics import (adoption, breakdown, experiments, funnel, overview, pages,
                                period, sessions)
from userflow.events.receipt import Receipt
from userflow.events.segment import from_segment
from userflow.report.figures import fmt
from userflow.simulate import generate, planted
from userflow.simulate.truth import FUNNEL_STEPS

from .analytics_support import ask, refresh, store
from .conftest import make_tenant
from .stack import ROOT, USERFLOW, free_port, role_env

pytestmark = pytest.mark.services

FUNNEL = ", ".join(f"{s.event_type} {s.path or s.event_name}" for s in FUNNEL_STEPS)
STEPS = tuple(funnel.Step(s.event_type, page=s.path, event_name=s.event_name) for s in FUNNEL_STEPS)
PNG = b"\x89PNG\r\n\x1a\n"
INVENTED = "86,421"


@pytest.fixture(scope="module")
def shop(database_url: str) -> Any:
    made = make_tenant(database_url, "Report Shop")
    sim = generate(20_000, seed=12)
    receipt = Receipt(made.company_id, datetime.now(UTC), retention_days=3650,
                      max_future_seconds=86_400)
    store(database_url, [from_segment(m, receipt) for m in sim.messages])
    refresh(database_url)
    return made


def live_read_keys(database_url: str, company: Any) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM api_key WHERE company_id = %s AND kind = 'read'"
                           " AND revoked_at IS NULL", (company,)).fetchone()
    assert row is not None
    return int(row[0])


def report_env(database_url: str, **extra: str) -> dict[str, str]:
    """The roles' URLs of the scratch database; no Anthropic setting but the test's own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UF_", "ANTHROPIC_"))}
    return {**env, **role_env(database_url), **extra}


def run_report(database_url: str, slug: str, out: Path, *extra: str,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*USERFLOW, "report", "--tenant", slug, "--since", "7d", "--out",
                           str(out), "--funnel", FUNNEL, *extra],
                          env=report_env(database_url, **(env or {})), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


class Tables(HTMLParser):
    """Each table's cell texts by its id, the images' sources, marked numbers, ids seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.alts: list[str] = []
        self.marked: list[str] = []
        self.ids: dict[str, dict[str, str]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._mark = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids[a["id"]] = a
        if tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a["src"])
            self.alts.append(a["alt"])
        elif tag == "mark" and a.get("class") == "untraced":
            self._mark = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "mark":
            self._mark = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._mark:
            self.marked.append(data)


def parsed(text: str) -> Tables:
    html5lib.HTMLParser(strict=True).parse(text)  # raises on any parse error
    tables = Tables()
    tables.feed(text)
    return tables


def body(t: Tables, ident: str) -> list[list[str]]:
    return t.tables[ident][1:]


def test_without_ai_the_figures_are_the_analytics_functions(database_url: str, shop: Any,
                                                            tmp_path: Path) -> None:
    before = live_read_keys(database_url, shop.company_id)
    out = tmp_path / "report.html"
    done = run_report(database_url, shop.slug, out, "--no-ai")
    assert done.returncode == 0, done.stderr
    assert "no narrative: --no-ai was given" in done.stderr
    page = parsed(out.read_text())
    assert "no-ai" in page.ids and "traced" not in page.ids
    assert live_read_keys(database_url, shop.company_id) == before  # its own key, revoked
    meta = page.ids["range"]
    span = period.parse(meta["data-from"], meta["data-to"], meta["data-tz"])
    key = shop.read_key

    total = ask(database_url, key, overview.build(overview.Params(span, "day"))).result
    s = ask(database_url, key, sessions.build(sessions.Params(span))).result
    assert body(page, "traffic-totals") == [[fmt(v, "int") for v in (
        total.totals.events, total.totals.users, total.totals.new_users,
        total.totals.returning_users, total.totals.sessions)]]
    assert body(page, "traffic-daily") == [[p.t, fmt(p.events, "int"), fmt(p.users, "int"),
                                            fmt(p.sessions, "int")] for p in total.series]
    assert body(page, "sessions-figures") == [[
        fmt(s.sessions, "int"), fmt(s.users, "int"), fmt(s.bounce_rate, "pct"),
        fmt(s.median_duration_s, "sec"), fmt(s.avg_duration_s, "sec"),
        fmt(s.pages_per_session, "num")]]
    devices = ask(database_url, key, breakdown.build(breakdown.Params(span, "device_type",
                                                                      limit=10))).result
    assert [r[:3] for r in body(page, "breakdown-device_type")] == [
        [r.value or "(none)", fmt(r.sessions, "int"), fmt(r.users, "int")] for r in devices.rows]
    f = ask(database_url, key, funnel.build(funnel.Params(span, STEPS,
                                                          breakdown="device_type"))).result
    assert [r[1] for r in body(page, "funnel-steps")] == [fmt(st.count, "int") for st in f.steps]
    assert [r[3] for r in body(page, "funnel-devices")] == [
        fmt(b.steps[-1].conversion_from_first, "pct") for b in f.breakdown or []]
    top = ask(database_url, key, pages.build(pages.Params(span, limit=15))).result
    assert [r[:2] for r in body(page, "pages")] == [[p.page, fmt(p.views, "int")]
                                                   for p in top.rows]
    test = ask(database_url, key, experiments.build(experiments.Params(
        span, planted.EXPERIMENT_ID, "custom", goal_event_name=planted.GOAL_EVENT))).result
    assert [r[:4] for r in body(page, f"experiment-{planted.EXPERIMENT_ID}")] == [
        [v.variant, fmt(v.exposed, "int"), fmt(v.converted, "int"), fmt(v.rate, "pct")]
        for v in test.variants]
    dark = ask(database_url, key, adoption.build(adoption.Params(
        span, planted.FEATURE_EVENT))).result
    assert [planted.FEATURE_EVENT, fmt(dark.adopters, "int"), fmt(dark.active_users, "int"),
            fmt(dark.adoption_rate, "pct")] in [r[:4] for r in body(page, "adoption")]
    # The anomalies open the report: a week is enough history by the hour, not by the day.
    checked = {r[0]: r for r in body(page, "anomalies-checked")}
    assert checked["sessions.hour"][3] == "enough" and "needs 21" in checked["sessions.day"][3]
    # Charts: PNGs inlined, each decodes to a PNG.
    assert {"overview: events, users and sessions per day", "breakdown by device_type: sessions",
            "breakdown by device_type: bounce rate", "funnel: actors at each step",
            "pages: views", "breakdown by country: sessions"} <= set(page.alts)
    assert any(alt.startswith("sessions.hour: ") for alt in page.alts)
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG)
    # The appendix lists every call the report made.
    calls = body(page, "tool-calls")
    assert {r[2] for r in calls} >= {"describe_data", "overview", "sessions", "breakdown",
                                     "pages", "paths", "funnel", "experiments", "adoption",
                                     "find_anomalies"}
    assert all(r[1] == "report" for r in calls)


def test_bad_arguments_are_refused_with_the_reason(database_url: str, shop: Any,
                                                   tmp_path: Path) -> None:
    for extra, slug, words in ((("--since", "yesterday"), shop.slug, "since"),
                               (("--funnel", "purchase /x"), shop.slug, "funnel.0"),
                               ((), "no-such-shop", "no tenant has the slug")):
        done = subprocess.run([*USERFLOW, "report", "--tenant", slug, "--out",
                               str(tmp_path / "r.html"), "--no-ai", *extra],
                              env=report_env(database_url), cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode in (1, 2) and words in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "r.html").exists()


# --- with AI: the Messages API, played by a local server ---------------------------------

@dataclass
class Conversation:
    """The recorded conversation, and what the client sent at each turn."""

    model: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)  # tool_use id -> the JSON returned

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def answered(self, request: dict[str, Any], ids: list[str]) -> None:
        """The last message must answer each tool_use id with its tool's JSON."""
        last = request["messages"][-1]
        self.check(last["role"] == "user", "the tool results come as a user turn")
        blocks = {b.get("tool_use_id"): b for b in last["content"] if b["type"] == "tool_result"}
        self.check(sorted(blocks) == sorted(ids), f"tool_result for {ids}, got {sorted(blocks)}")
        for i in ids:
            block = blocks.get(i, {})
            try:
                self.results[i] = json.loads(block.get("content", ""))
            except (TypeError, json.JSONDecodeError):
                self.problems.append(f"tool_result {i} is not the tool's JSON")
            self.check(block.get("is_error") is False, f"tool {i} failed: {block}")
        # The assistant's tool_use turn goes back as it was.
        previous = request["messages"][-2]
        uses = [b["id"] for b in previous["content"] if b["type"] == "tool_use"]
        self.check(previous["role"] == "assistant" and uses == ids, "the tool_use turn echoed")

    def reply(self, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(request)
        turn = len(self.requests)
        self.check(request.get("model") == self.model, f"model {request.get('model')}")
        names = {t["name"] for t in request.get("tools", [])}
        self.check({"find_anomalies", "sessions", "breakdown", "funnel", "describe_data",
                    "run_sql"} <= names, f"tools offered: {sorted(names)}")
        self.check(all(t["input_schema"]["type"] == "object" for t in request["tools"]),
                   "every tool has an object schema")
        if turn == 1:
            self.check("weekly UX report" in request["messages"][0]["content"], "the task")
            return _message("tool_use", [_use("toolu_1", "sessions", {}),
                                         _use("toolu_2", "find_anomalies",
                                              {"metric": "sessions", "interval": "hour"})])
        if turn == 2:
            self.answered(request, ["toolu_1", "toolu_2"])
            return _message("tool_use", [
                {"type": "text", "text": "Now the devices."},
                _use("toolu_3", "breakdown", {"dimension": "device_type", "limit": 3})])
        self.answered(request, ["toolu_3"])
        s = self.results["toolu_1"]["result"]
        found = self.results["toolu_2"]["result"]["anomalies"]
        top = self.results["toolu_3"]["result"]["rows"][0]
        text = "\n".join([
            "## Anomalies",
            f"find_anomalies flagged {len(found)} hours of sessions by the hour.",
            "## Executive summary",
            f"The week had {s['sessions']:,} sessions from {s['users']:,} users; the bounce"
            f" rate was {100 * s['bounce_rate']:.1f}%.",
            "## Devices and browsers",
            f"- {top['value']} led with {top['sessions']:,} sessions.",
            "## Recommendations",
            f"- Write to the {INVENTED} newsletter readers about the new range.",
        ])
        return _message("end_turn", [{"type": "text", "text": text}])


def _use(ident: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": ident, "name": name, "input": arguments}


def _message(stop: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "msg_test", "type": "message", "role": "assistant", "model": "claude-test",
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 1200, "output_tokens": 80}}


@pytest.fixture
def messages_api() -> Iterator[tuple[str, Conversation]]:
    conversation = Conversation(model="claude-test-model")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            # The SDK sends the key as x-api-key or, in this version, as a bearer token.
            key = self.headers.get("x-api-key") or self.headers.get(
                "authorization", "").removeprefix("Bearer ")
            if self.path != "/v1/messages" or key != "test-key":
                conversation.problems.append(f"{self.path} with key {key!r}")
                self.send_error(404)
                return
            request = json.loads(self.rfile.read(int(self.headers["content-length"])))
            answer = json.dumps(conversation.reply(request)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: Any) -> None:
            return

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", conversation
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_with_ai_the_narrative_s_numbers_are_traced_and_the_invented_one_marked(
        database_url: str, shop: Any, tmp_path: Path,
        messages_api: tuple[str, Conversation]) -> None:
    url, conversation = messages_api
    out = tmp_path / "report.html"
    done = run_report(database_url, shop.slug, out, env={
        "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": url,
        "UF_AI_MODEL": "claude-test-model"})
    assert conversation.problems == []
    assert done.returncode == 0, done.stderr
    assert len(conversation.requests) == 3
    text = out.read_text()
    page = parsed(text)
    s = conversation.results["toolu_1"]["result"]
    # The tool results' numbers are in the narrative, unmarked; the invented one is marked.
    assert f"{s['sessions']:,} sessions from {s['users']:,} users" in text
    assert f"{100 * s['bounce_rate']:.1f}%" in text
    assert page.marked == [INVENTED]
    assert INVENTED.replace(",", "") not in json.dumps(conversation.results)
    traced = re.search(r"(\d+) traced to a tool result, <strong>(\d+) not found", text)
    assert traced is not None and traced.group(2) == "1" and int(traced.group(1)) >= 5
    # The appendix lists Claude's calls beside the report's own.
    claude = [r for r in body(page, "tool-calls") if r[1] == "claude"]
    assert [(r[2], json.loads(r[3])) for r in claude] == [
        ("sessions", {}), ("find_anomalies", {"metric": "sessions", "interval": "hour"}),
        ("breakdown", {"dimension": "device_type", "limit": 3})]
    assert all("behind it:" in r[4] for r in claude)
    assert "no-ai" not in page.ids and "claude-test-model" in text


def test_a_failing_api_leaves_the_data_report_and_says_why(database_url: str, shop: Any,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = run_report(database_url, shop.slug, out, env={
        "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{free_port()}"})
    assert done.returncode == 3, done.stderr
    page = parsed(out.read_text())
    assert "the AI analysis failed" in out.read_text() and "no-ai" in page.ids
    assert body(page, "sessions-figures")

