"""A site on Segment's analytics.js switches to UserFlow by configuration alone.

The real @segment/analytics-next from npm (pinned in segment_next/package-lock.json,
bundled with esbuild), in Debian's Chromium, on a page served from its own loopback
origin: pointed at the test stack's ingest, its page, identify and track calls are
stored once each, in its standard mode through /v1/p, /v1/i, /v1/t and in its
batching mode through /v1/b. Every request the page makes is recorded, and any that
would leave loopback (Segment's CDN or API) is refused and fails the test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from playwright.sync_api import Browser, Request, Route

from userflow.store.tenants import NewTenant

from .browser import console_of, serve_site
from .conftest import make_tenant
from .stack import Stack

pytestmark = pytest.mark.services

PACKAGE = Path(__file__).resolve().parent / "segment_next"
BUNDLE = PACKAGE / "dist" / "analytics-next.js"
# What the bundle is made from: a change to any of them builds it again.
SOURCES = (PACKAGE / "package.json", PACKAGE / "package-lock.json", PACKAGE / "entry.js")
INSTALLED = PACKAGE / "node_modules" / ".package-lock.json"

# The site's own tracking code, the same whichever backend the configuration names.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Pricing</title>
<link rel="icon" href="data:,">
<script type="application/json" id="segment-config">%(config)s</script>
<script src="/analytics-next.js"></script>
<script>
  const config = JSON.parse(document.getElementById('segment-config').textContent)
  window.analytics = AnalyticsBrowser.load(config.settings, config.options)
  analytics.page('Pricing', {section: 'plans'})
  analytics.identify('user-42', {plan: 'pro'})
  analytics.track('Signed Up', {plan: 'pro', seats: 3})
</script>
</head><body><h1>Pricing</h1></body></html>
"""


def _stale() -> bool:
    return not BUNDLE.exists() or BUNDLE.stat().st_mtime < max(s.stat().st_mtime for s in SOURCES)


def _npm(*args: str) -> None:
    done = subprocess.run(["npm", *args], cwd=PACKAGE, capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"npm {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")


@pytest.fixture(scope="module")
def sdk_bundle() -> Path:
    """analytics-next bundled into one browser file: npm ci and esbuild, once, when stale."""
    if _stale():
        lock = PACKAGE / "package-lock.json"
        if not INSTALLED.exists() or INSTALLED.stat().st_mtime < lock.stat().st_mtime:
            _npm("ci", "--no-audit", "--no-fund")
        _npm("run", "build")
    return BUNDLE


@dataclass
class Traffic:
    """Every request the page made (method, URL), and those refused for leaving loopback."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def paths(self, origin: str, method: str) -> list[str]:
        return [urlsplit(url).path for m, url in self.requests
                if m == method and url.startswith(origin + "/")]


@dataclass
class Visit:
    tenant: NewTenant
    origin: str
    traffic: Traffic
    anonymous_id: str
    rows: list[dict[str, Any]]
    console: list[str]


Config = Callable[[NewTenant], dict[str, Any]]


def visit(browser: Browser, stack: Stack, bundle: Path, root: Path, config: Config) -> Visit:
    """Load the site's page once, configured by `config`, and wait for its three events."""
    root.mkdir()
    shutil.copy(bundle, root / "analytics-next.js")
    with serve_site(root) as site:
        tenant = make_tenant(stack.database_url, "Segment site",
                             company={"allowed_origins": [site.origin]})
        (root / "index.html").write_text(PAGE % {"config": json.dumps(config(tenant))})
        traffic = Traffic()

        def refuse(route: Route) -> None:
            traffic.refused.append(route.request.url)
            route.abort()

        def seen(request: Request) -> None:
            traffic.requests.append((request.method, request.url))

        context = browser.new_context()
        # Only what would leave loopback is intercepted; the rest goes untouched.
        context.route(re.compile(r"^(?!http://127\.0\.0\.1[:/])"), refuse)
        context.on("request", seen)
        page = context.new_page()
        try:
            with console_of(page) as console:
                page.goto(site.url("/"))
                # AnalyticsBrowser is a promise of [Analytics, Context] once it has loaded.
                anonymous_id = page.evaluate("analytics.then(([a]) => a.user().anonymousId())")
                stack.wait_rows(3, tenant.company_id)
        finally:
            context.close()
    return Visit(tenant, site.origin, traffic, anonymous_id, stored(stack, tenant), console)


def stored(stack: Stack, tenant: NewTenant) -> list[dict[str, Any]]:
    with psycopg.connect(stack.database_url) as conn:
        cur = conn.execute(
            "SELECT event_id::text, event_type::text, event_name, user_id, anonymous_id,"
            " page_url, page_title, traits, metadata FROM events WHERE company_id = %s"
            " ORDER BY event_timestamp", (tenant.company_id,))
        names = [c.name for c in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def assert_the_three_calls(v: Visit) -> None:
    """page, identify, track: each stored once, as the SDK made it."""
    assert v.traffic.refused == [], "the page tried to leave loopback"
    assert len({r["event_id"] for r in v.rows}) == len(v.rows) == 3, v.rows
    by_type = {r["event_type"]: r for r in v.rows}
    page, ident, track = by_type["page_view"], by_type["identify"], by_type["custom"]
    assert (page["event_name"], page["page_url"], page["page_title"]) == (
        "Pricing", v.origin + "/", "Pricing")
    # analytics.js copies the page's name into its properties.
    assert page["metadata"] == {"name": "Pricing", "section": "plans"}
    assert (ident["user_id"], ident["traits"]) == ("user-42", {"plan": "pro"})
    assert (track["event_name"], track["user_id"], track["metadata"]) == (
        "Signed Up", "user-42", {"plan": "pro", "seats": 3})
    assert {r["anonymous_id"] for r in v.rows} == {v.anonymous_id}
    assert not [line for line in v.console if line.startswith("error")], v.console


def test_cdn_url_alone_switches_the_site(browser: Browser, stack: Stack, sdk_bundle: Path,
                                         tmp_path: Path) -> None:
    """cdnURL at the ingest: its settings document names the ingest as the API host."""
    v = visit(browser, stack, sdk_bundle, tmp_path / "site",
              lambda t: {"settings": {"writeKey": t.write_key, "cdnURL": stack.url}, "options": {}})
    assert_the_three_calls(v)
    assert v.traffic.paths(stack.url, "GET") == [f"/v1/projects/{v.tenant.write_key}/settings"]
    assert sorted(v.traffic.paths(stack.url, "POST")) == ["/v1/i", "/v1/p", "/v1/t"]


def test_batching_with_cdn_settings(browser: Browser, stack: Stack, sdk_bundle: Path,
                                    tmp_path: Path) -> None:
    """cdnSettings given inline and apiHost set: nothing fetched, the batch posted to /v1/b."""
    host = stack.url.removeprefix("http://")

    def config(t: NewTenant) -> dict[str, Any]:
        segment = {"apiHost": f"{host}/v1", "protocol": "http",
                   "deliveryStrategy": {"strategy": "batching", "config": {"size": 3}}}
        return {"settings": {"writeKey": t.write_key, "cdnSettings": {
                    "integrations": {"Segment.io": {"apiKey": t.write_key}},
                    "metrics": {"sampleRate": 0}}},
                "options": {"integrations": {"Segment.io": segment}}}

    v = visit(browser, stack, sdk_bundle, tmp_path / "site", config)
    assert_the_three_calls(v)
    assert v.traffic.paths(stack.url, "GET") == []
    assert v.traffic.paths(stack.url, "POST") == ["/v1/b"]
