"""The chart tests' tools: helm, kubeconform and the JSON schemas they validate against.

Everything is built or fetched once into a cache outside the repository
(`${XDG_CACHE_HOME:-~/.cache}/userflow`), so a second run (or CI on the same
machine) reuses it:

- `helm` and `kubeconform`: built from the Go module proxy by scripts/k8s-tools.sh.
- Kubernetes schemas: the `kubernetes-validate` package's strict schemas for
  one Kubernetes version, each kind's file made standalone (its definitions
  inlined) so kubeconform can read it offline.
- CRD schemas: CustomResourceDefinitions from Go modules that ship them
  (`go mod download`), Strimzi's from tests/k8s/crds/, and the chart's own
  Company CRD, each `openAPIV3Schema` turned into a strict JSON schema
  (unknown fields are errors) in kubeconform's `{group}/{kind}_{version}.json` layout.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHART = ROOT / "deploy" / "helm" / "userflow"
KUBE_VERSION = "1.33.0"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


class ToolError(RuntimeError):
    """A tool could not be built or fetched; the message names the command and its error."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "userflow"


def run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run a command; raise ToolError with the command line and its output when it fails."""
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"`{' '.join(cmd)}` could not run: {exc}") from exc
    if done.returncode != 0:
        raise ToolError(f"`{' '.join(cmd)}` exited {done.returncode}:\n{done.stderr.strip()}\n{done.stdout.strip()}")
    return done


# --- helm and kubeconform ------------------------------------------------------

@dataclass(frozen=True)
class Tools:
    helm: Path
    kubeconform: Path


def build_tools() -> Tools:
    """scripts/k8s-tools.sh builds both once and prints their directory."""
    done = run(["bash", str(ROOT / "scripts" / "k8s-tools.sh")], timeout=1800)
    bin_dir = Path(done.stdout.strip().splitlines()[-1])
    tools = Tools(bin_dir / "helm", bin_dir / "kubeconform")
    for tool in (tools.helm, tools.kubeconform):
        if not os.access(tool, os.X_OK):
            raise ToolError(f"scripts/k8s-tools.sh printed {bin_dir}, but {tool} is not an executable")
    return tools


def go_binary() -> str:
    found = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    if not os.access(found, os.X_OK):
        raise ToolError(f"no go toolchain: looked for $GO, go on PATH and {found}")
    return found


def go_module_dir(module: str, version: str) -> Path:
    """The extracted module from the Go module proxy (`go mod download`), cached by Go."""
    workdir = cache_dir() / "go-work"
    workdir.mkdir(parents=True, exist_ok=True)  # no go.mod here: module mode is off
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GO111MODULE": "on"}
    done = run([go_binary(), "mod", "download", "-json", f"{module}@{version}"], cwd=workdir, env=env)
    info = json.loads(done.stdout)
    if info.get("Error") or not info.get("Dir"):
        raise ToolError(f"`go mod download -json {module}@{version}`: {info.get('Error') or 'no Dir'}")
    return Path(info["Dir"])


# --- CRDs and their schemas ----------------------------------------------------

# CustomResourceDefinitions taken from Go modules that ship them: (module, version, files).
CRD_MODULES: list[tuple[str, str, list[str]]] = [
    ("github.com/prometheus-operator/prometheus-operator", "v0.85.0", [
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
    ]),
    ("github.com/kedacore/keda/v2", "v2.21.0", [
        "config/crd/bases/keda.sh_scaledobjects.yaml",
    ]),
    ("sigs.k8s.io/gateway-api", "v1.6.3", [
        "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
    ]),
    ("github.com/cloudnative-pg/cloudnative-pg", "v1.28.0", [
        "config/crd/bases/postgresql.cnpg.io_clusters.yaml",
    ]),
]
# Written here from Strimzi's published CRDs (no registry ships them); see the file.
VENDORED_CRDS = [HERE / "crds" / "strimzi-kafka-v1-subset.yaml"]


def crd_documents(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                yield doc


def strict_schema(node: Any) -> Any:
    """OpenAPI v3 (Kubernetes structural schema) → JSON schema where unknown fields are errors."""
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: value for key, value in node.items() if not key.startswith("x-kubernetes-")}
    for key in ("properties", "patternProperties", "$defs"):
        if isinstance(out.get(key), dict):
            out[key] = {name: strict_schema(value) for name, value in out[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = strict_schema(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [strict_schema(item) for item in out[key]]
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    if node.get("x-kubernetes-embedded-resource") and "properties" in out:
        for name in ("apiVersion", "kind"):
            out["properties"].setdefault(name, {"type": "string"})
        out["properties"].setdefault("metadata", {"type": "object"})
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def crd_schemas(crd: dict[str, Any], object_meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"<group>/<kind>_<version>.json": schema} for every served version of a CRD."""
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    found: dict[str, dict[str, Any]] = {}
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        source = (version.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")
        if not source:
            continue
        schema = strict_schema(copy.deepcopy(source))
        schema.setdefault("type", "object")
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
        props["kind"] = {"type": "string", "enum": [kind]}
        # The definitions live at the root: "#/$defs/..." resolves against the document.
        props["metadata"] = {"$ref": object_meta["$ref"]}
        schema["$defs"] = object_meta["$defs"]
        schema["additionalProperties"] = False
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
        schema["$schema"] = DRAFT
        found[f"{group}/{kind.lower()}_{version['name']}.json"] = schema
    return found


# --- Kubernetes schemas ----------------------------------------------------------

def _kubernetes_validate_dir() -> tuple[Path, str]:
    import kubernetes_validate  # noqa: PLC0415  (a test dependency, imported where needed)
    from kubernetes_validate.version import __version__  # noqa: PLC0415

    minor = ".".join(KUBE_VERSION.split(".")[:2])
    path = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{minor}.0-local-strict"
    if not (path / "_definitions.json").exists():
        raise ToolError(f"kubernetes-validate {__version__} has no strict schemas for Kubernetes {minor} ({path})")
    return path, __version__


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref.rsplit("/", 1)[-1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _local_refs(node: Any) -> Any:
    """'/api/_definitions.json#/$defs/X' → '#/$defs/X' (the definitions travel with the file)."""
    if isinstance(node, dict):
        return {k: ("#/$defs/" + v.rsplit("/", 1)[-1] if k == "$ref" and isinstance(v, str) else _local_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_local_refs(v) for v in node]
    return node


def _closure(start: Any, defs: dict[str, Any]) -> dict[str, Any]:
    todo, seen = list(_refs(start)), {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = _local_refs(defs[name])
        todo.extend(_refs(defs[name]))
    return seen


def object_meta_schema(defs: dict[str, Any]) -> dict[str, Any]:
    meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    return {"$ref": f"#/$defs/{meta}", "$defs": _closure({"$ref": meta}, defs)}


def write_kubernetes_schemas(out: Path) -> dict[str, Any]:
    """Each top-level kind's strict schema, standalone; returns the shared definitions."""
    src, _ = _kubernetes_validate_dir()
    defs = json.loads((src / "_definitions.json").read_text())["$defs"]
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.json")):
        if path.name == "_definitions.json":
            continue
        schema = json.loads(path.read_text())
        if "x-kubernetes-group-version-kind" not in schema:
            continue  # a part of a kind, not a kind
        schema.pop("$id", None)
        schema = _local_refs(schema)
        schema["$defs"] = _closure(schema, defs)
        schema["$schema"] = DRAFT
        (out / path.name).write_text(json.dumps(schema))
    return defs


def _schema_key() -> str:
    """Changes whenever anything that goes into the cached schemas changes."""
    _, kv_version = _kubernetes_validate_dir()
    parts = [KUBE_VERSION, kv_version, Path(__file__).read_text(), json.dumps(CRD_MODULES)]
    parts += [p.read_text() for p in VENDORED_CRDS]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def schema_dir() -> Path:
    """The cached schema directory: k8s/<kind>-<group>-<version>.json and <group>/<kind>_<version>.json."""
    final = cache_dir() / "k8s-schemas" / _schema_key()
    if (final / ".complete").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="building-", dir=final.parent))
    try:
        defs = write_kubernetes_schemas(work / "k8s")
        meta = object_meta_schema(defs)
        (work / "object-meta.json").write_text(json.dumps(meta))
        crd_files = [go_module_dir(module, version) / file
                     for module, version, files in CRD_MODULES for file in files]
        missing = [str(p) for p in crd_files if not p.exists()]
        if missing:
            raise ToolError(f"CRD files missing from their Go modules: {missing}")
        for crd in crd_documents([*crd_files, *VENDORED_CRDS]):
            for rel, schema in crd_schemas(crd, meta).items():
                target = work / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(schema))
        (work / ".complete").write_text("")
        try:
            work.rename(final)
        except OSError:  # another run finished first; use its copy
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return final


def write_crd_schemas(crds: Iterable[dict[str, Any]], out: Path, base: Path) -> None:
    """Schemas of CRDs rendered by the chart itself (the Company CRD), next to the cached ones."""
    meta = json.loads((base / "object-meta.json").read_text())
    for crd in crds:
        for rel, schema in crd_schemas(crd, meta).items():
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(schema))


# --- rendering and validation --------------------------------------------------------

def helm_template(helm: Path, values: list[Path], api_versions: list[str], *,
                  release: str = "uf", namespace: str = "userflow",
                  extra: list[str] | None = None) -> str:
    cmd = [str(helm), "template", release, str(CHART), "--namespace", namespace,
           "--kube-version", KUBE_VERSION]
    for api in api_versions:
        cmd += ["--api-versions", api]
    for path in values:
        cmd += ["--values", str(path)]
    cmd += extra or []
    return run(cmd, timeout=120).stdout


def parse_manifests(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kubeconform(tool: Path, files: list[Path], locations: list[Path]) -> dict[str, Any]:
    """Validate offline and strictly (unknown fields are errors, a kind without a
    schema is an error); returns kubeconform's JSON report: `resources` lists
    every resource that is not valid, `summary` counts them all."""
    cmd = [str(tool), "-strict", "-summary", "-output", "json",
           "-kubernetes-version", KUBE_VERSION, "-n", "2"]
    for loc in locations:
        cmd += ["-schema-location", str(loc)]
    cmd += [str(f) for f in files]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise ToolError(f"`{' '.join(cmd)}` exited {done.returncode} without a JSON report:\n"
                        f"{done.stderr}\n{done.stdout}") from exc
    report.setdefault("resources", [])
    return report


def schema_locations(base: Path, extra: Path) -> list[Path]:
    """kubeconform's templates for the core kinds and the CRDs (cached and rendered)."""
    return [
        base / "k8s" / "{{.ResourceKind}}{{.KindSuffix}}.json",
        base / "{{.Group}}" / "{{.ResourceKind}}_{{.ResourceAPIVersion}}.json",
        extra / "{{.Group}}" / "{{.ResourceKind}}_{{.ResourceAPIVersion}}.json",
    ]
