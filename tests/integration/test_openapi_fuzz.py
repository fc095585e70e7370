"""Schemathesis over the ingest's own OpenAPI: whatever it generates, never a 5xx.

Run through schemathesis' own command line (its pytest plugin does not load
under pytest 9), against the running app, with a real write key, from the
examples, the coverage of each schema's edges and random fuzzing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from userflow.store.tenants import NewTenant

from .conftest import make_tenant
from .stack import Stack

pytestmark = pytest.mark.services

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture(scope="module")
def fuzz_tenant(database_url: str) -> NewTenant:
    return make_tenant(database_url, "Fuzz")


def test_no_server_errors(stack: Stack, fuzz_tenant: NewTenant, tmp_path: Path) -> None:
    run = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{stack.url}/openapi.json",
         "-H", f"X-UserFlow-Key: {fuzz_tenant.write_key}",
         "--checks", "not_a_server_error", "--max-examples", "60", "--seed", "20261128",
         "--phases", "examples,coverage,fuzzing", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "generated" in run.stdout


def test_schema_is_served(stack: Stack) -> None:
    doc = httpx.get(f"{stack.url}/openapi.json", timeout=10).json()
    assert {"/v1/batch", "/v1/track", "/v1/page", "/v1/identify", "/send_event"} <= doc["paths"].keys()
