"""Fixtures of the chart tests: the tools (built once, cached), the schemas, the renders.

No Kubernetes cluster is needed: `helm template` renders the chart for a given
Kubernetes version and set of served APIs, and kubeconform validates the
result offline against the Kubernetes and CRD schemas. When a tool cannot be
built the tests fail (never skip) with the command and its error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import tools

VALUES_DIR = Path(__file__).resolve().parent / "values"
VALUE_SETS = sorted(p.stem for p in VALUES_DIR.glob("*.yaml"))


@dataclass
class Render:
    """One value set rendered: its manifests, parsed, and the file they were written to."""

    name: str
    api_versions: list[str]
    path: Path
    docs: list[dict[str, Any]] = field(default_factory=list)

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def named(self, kind: str, suffix: str) -> dict[str, Any] | None:
        found = [d for d in self.kind(kind) if d["metadata"]["name"].endswith(suffix)]
        assert len(found) <= 1, f"{self.name}: several {kind} end with {suffix}"
        return found[0] if found else None


def api_versions_of(values: Path) -> list[str]:
    """The APIs the cluster serves for a value set: its `# api-versions: a b c` line."""
    for line in values.read_text().splitlines():
        if m := re.match(r"#\s*api-versions:(.*)$", line):
            return m.group(1).split()
    raise AssertionError(f"{values} has no '# api-versions:' line")


@pytest.fixture(scope="session")
def k8s_tools() -> tools.Tools:
    try:
        return tools.build_tools()
    except tools.ToolError as exc:
        error = str(exc)
    pytest.fail(f"could not build the Kubernetes test tools:\n{error}", pytrace=False)


@pytest.fixture(scope="session")
def schemas() -> Path:
    try:
        return tools.schema_dir()
    except (tools.ToolError, ImportError) as exc:
        error = str(exc)
    pytest.fail(f"could not prepare the JSON schemas:\n{error}", pytrace=False)


@pytest.fixture(scope="session")
def render_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("renders")


def do_render(k8s_tools: tools.Tools, out: Path, name: str, values: list[Path],
              api_versions: list[str], extra: list[str] | None = None) -> Render:
    text = tools.helm_template(k8s_tools.helm, values, api_versions, extra=extra)
    path = out / f"{name}.yaml"
    path.write_text(text)
    return Render(name, api_versions, path, tools.parse_manifests(text))


@pytest.fixture(scope="session")
def renders(k8s_tools: tools.Tools, render_dir: Path) -> dict[str, Render]:
    """Every value set in tests/k8s/values, rendered once for the session."""
    found, failures = {}, []
    for name in VALUE_SETS:
        values = VALUES_DIR / f"{name}.yaml"
        try:
            found[name] = do_render(k8s_tools, render_dir, name, [values], api_versions_of(values))
        except tools.ToolError as exc:
            failures.append(f"helm template failed for {name}:\n{exc}")
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
    return found
