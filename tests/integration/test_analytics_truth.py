"""The simulator's planted figures come out of the query API.

`userflow simulate --truth` sends a week of traffic through the ingest and the
consumer and writes what it planted and what its messages hold (the truth,
counted by DESIGN's definitions in Python). Asked over HTTP with the tenant's
read key, the API must give the truth's funnel by device, A/B counts and
adoption, and the planted effects must show within sampling error: mobile
converts worse than desktop, the treatment's lift is the planted one.
"""

from __future__ import annotations

import json
import math
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from userflow.simulate import planted
from userflow.simulate.truth import FUNNEL_STEPS

from .analytics_support import refresh
from .conftest import make_tenant
from .stack import USERFLOW, Stack

EVENTS = 40_000


@pytest.fixture(scope="module")
def simulated(stack: Stack, api_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Any, dict[str, Any], dict[str, str]]:
    made = make_tenant(database_url, "Truth Shop")
    truth_file = tmp_path_factory.mktemp("truth") / "truth.json"
    subprocess.run([*USERFLOW, "simulate", "--url", stack.url, "--key", made.write_key,
                    "--events", str(EVENTS), "--seed", "7", "--truth", str(truth_file)],
                   env=stack.env, check=True, capture_output=True, timeout=300)
    stack.wait_rows(EVENTS, made.company_id, timeout=180)
    refresh(database_url)
    truth = json.loads(Path(truth_file).read_text())
    end = datetime.fromisoformat(truth["window_end"].replace("Z", "+00:00")) + timedelta(seconds=1)
    span = {"from": truth["window_start"], "to": end.isoformat()}
    return made, truth, span


def ask(api_url: str, key: str, path: str, body: dict[str, Any] | None = None,
        **params: str) -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    if body is not None:
        r = httpx.post(api_url + path, json=body, headers=headers, timeout=60)
    else:
        r = httpx.get(api_url + path, params=params, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_funnel_by_device_is_the_truth_s(api_url: str, simulated) -> None:  # type: ignore[no-untyped-def]
    made, truth, span = simulated
    steps = [{"event_type": s.event_type, **({"page": s.path} if s.path else {}),
              **({"event_name": s.event_name} if s.event_name else {})} for s in FUNNEL_STEPS]
    got = ask(api_url, made.read_key, "/v1/analytics/funnel",
              {**span, "steps": steps, "breakdown": "device_type"})
    assert [s["count"] for s in got["steps"]] == truth["funnel"]["counts"]
    by_device = {row["value"]: [s["count"] for s in row["steps"]] for row in got["breakdown"]}
    assert by_device == {d: c for d, c in truth["funnel"]["counts_by_device_type"].items() if c[0]}
    # Planted: mobile shoppers abandon earlier and buy less than desktop ones.
    rate = {d: c[-1] / c[0] for d, c in by_device.items()}
    assert rate["mobile"] < rate["desktop"]


def test_the_experiment_shows_the_planted_lift(api_url: str, simulated) -> None:  # type: ignore[no-untyped-def]
    made, truth, span = simulated
    got = ask(api_url, made.read_key, f"/v1/analytics/experiments/{planted.EXPERIMENT_ID}",
              goal_event_type="custom", goal_event_name=planted.GOAL_EVENT, **span)
    variants = {v["variant"]: v for v in got["variants"]}
    for name, want in truth["experiment"]["variants"].items():
        assert variants[name]["exposed"] == want["exposed"]
        # The truth counts a goal strictly after the first exposure, the API at or after it.
        assert 0 <= variants[name]["converted"] - want["converted"] <= max(2, want["converted"] // 50)
    control, treatment = variants[planted.CONTROL], variants[planted.TREATMENT]
    # The planted relative lift (0.30) lies within three standard errors of the measured one.
    p0, p1 = control["rate"], treatment["rate"]
    se = math.sqrt(p1 * (1 - p1) / treatment["exposed"] / p0 ** 2
                   + p1 ** 2 * (1 - p0) / p0 ** 3 / control["exposed"])
    assert abs(treatment["lift"] - truth["experiment"]["planted_lift_relative"]) < 3 * se
    assert got["srm_p_value"] > 0.001  # the split is even, as planted


def test_adoption_is_the_truth_s(api_url: str, simulated) -> None:  # type: ignore[no-untyped-def]
    made, truth, span = simulated
    got = ask(api_url, made.read_key, "/v1/analytics/adoption", feature=planted.FEATURE_EVENT,
              **span)
    want = truth["feature_adoption"]
    assert (got["adopters"], got["active_users"]) == (want["adopters"], want["active_users"])
    assert got["adoption_rate"] == pytest.approx(want["rate"], abs=1e-6)


def test_sessions_and_bots_are_the_truth_s(api_url: str, simulated) -> None:  # type: ignore[no-untyped-def]
    made, truth, span = simulated
    got = ask(api_url, made.read_key, "/v1/analytics/sessions", **span)
    assert got["sessions"] == truth["sessions"]["total"]
    assert got["bounce_rate"] == pytest.approx(truth["sessions"]["bounce_rate"], abs=1e-6)
    bots = ask(api_url, made.read_key, "/v1/analytics/bots", **span)
    assert bots["bot_events"] == truth["bots"]["events"]
