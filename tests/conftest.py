"""Shared test set-up: the real services from `make services`, never mocks."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def local_env() -> dict[str, str]:
    """UF_* settings: the environment first, then .local/env written by `make services`."""
    env: dict[str, str] = {}
    path = ROOT / ".local" / "env"
    if path.exists():
        for line in path.read_text().splitlines():
            if m := re.match(r"\s*export\s+(UF_[A-Z_]+)=(.*)$", line):
                env[m.group(1)] = m.group(2).strip().strip("'\"")
    env.update({k: v for k, v in os.environ.items() if k.startswith("UF_")})
    return env


@pytest.fixture(scope="session")
def service_env() -> dict[str, str]:
    env = local_env()
    missing = {"UF_ADMIN_DATABASE_URL", "UF_KAFKA_BOOTSTRAP"} - env.keys()
    if missing:
        pytest.fail(f"{sorted(missing)} not set: run `make services` (make test does) first")
    return env
