"""The analyst's resources: the metric definitions, and the schema a tenant's run_sql reads.

`userflow://metrics` lists every tool with its definition; `userflow://metrics/<tool>`
is one tool's definition and arguments; `userflow://schema` is the tenant views
with their columns (what describe_data lists), read through the tenant's key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from userflow.ai import describe, tools
from userflow.ai.reader import Reader

METRICS: Final = "userflow://metrics"
SCHEMA: Final = "userflow://schema"


class UnknownResource(LookupError):
    """No resource has that URI."""


@dataclass(frozen=True, slots=True)
class Resource:
    uri: str
    name: str
    description: str
    mime_type: str


def listed() -> list[Resource]:
    out = [Resource(METRICS, "metric definitions", "Every tool's definition", "text/markdown"),
           Resource(SCHEMA, "tenant-visible schema", "The tenant views run_sql reads, with their "
                    "columns", "text/markdown")]
    out += [Resource(f"{METRICS}/{t.name}", f"{t.name} definition",
                     f"What {t.name} computes and the arguments it takes", "text/markdown")
            for t in tools.TOOLS]
    return out


def _tool_page(t: tools.Tool) -> str:
    return (f"# {t.name}\n\n{t.description}\n\n## Arguments (JSON Schema)\n\n```json\n"
            f"{json.dumps(t.input_schema, indent=2)}\n```\n")


def _schema(reader: Reader) -> str:
    views = next(p for p in describe.PARTS if p.name == "views")
    columns: dict[str, list[str]] = reader.run(views.query).result
    lines = ["# The tenant views", "",
             "run_sql reads these (unqualified names resolve here first), scoped to this "
             "tenant's read key.", ""]
    for view, cols in columns.items():
        lines += [f"## {view}", "", *(f"- {c}" for c in cols), ""]
    lines += ["## Helpers", "", *(f"- `{name}`: {text}" for name, text in describe.HELPERS.items())]
    return "\n".join(lines) + "\n"


def read(reader: Reader, uri: str) -> str:
    if uri == METRICS:
        return "# Metric definitions\n\n" + "\n".join(
            f"- **{t.name}**: {tools.definition(t)}" for t in tools.TOOLS) + "\n"
    if uri == SCHEMA:
        return _schema(reader)
    if uri.startswith(f"{METRICS}/"):
        try:
            return _tool_page(tools.tool(uri.removeprefix(f"{METRICS}/")))
        except tools.UnknownTool:
            pass
    raise UnknownResource(f"no resource {uri[:200]!r}")
