"""The Helm chart (deploy/helm/userflow): lint, render, validate, and what must hold.

Each value set in tests/k8s/values is rendered with `helm template` for
Kubernetes 1.33 and the APIs its `# api-versions:` line says the cluster
serves; every manifest is validated offline and strictly against the
Kubernetes and CRD JSON schemas; then the chart's own rules are checked on
the parsed objects.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from userflow.store import bootstrap

from . import tools
from .conftest import VALUE_SETS, VALUES_DIR, Render, api_versions_of, do_render

ROOT = tools.ROOT
CHART = tools.CHART
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
          "app.kubernetes.io/component", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by",
          "helm.sh/chart")
HOOK = "helm.sh/hook"
# Each component's own PostgreSQL role's URL (DESIGN.md invariant 5; userflow.config.Role).
ROLE_URL_ENV = {"migrate": "UF_MIGRATE_DATABASE_URL", "ingest": "UF_INGEST_DATABASE_URL",
                "consumer": "UF_CONSUMER_DATABASE_URL", "operator": "UF_OPERATOR_DATABASE_URL",
                "api": "UF_READER_DATABASE_URL", "mcp": "UF_READER_DATABASE_URL"}
# The login roles (sql/bootstrap.sql), by their password's name: the processes' and Grafana's.
ROLES = tuple(bootstrap.ROLES)
# The roles a component of the chart connects as (Grafana's is no component).
COMPONENT_ROLES = tuple(r for r in ROLES if r != "dashboards")

# The first test to ask for the tools may build them (a few minutes, once per machine).
pytestmark = pytest.mark.timeout(1800)


# --- helpers -----------------------------------------------------------------------

def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels", {})
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def autoscaled_min(render: Render) -> dict[str, tuple[str, int]]:
    """Deployment name → (autoscaler kind, minimum replicas)."""
    found: dict[str, tuple[str, int]] = {}
    for hpa in render.kind("HorizontalPodAutoscaler"):
        found[hpa["spec"]["scaleTargetRef"]["name"]] = ("HorizontalPodAutoscaler", hpa["spec"].get("minReplicas", 1))
    for so in render.kind("ScaledObject"):
        name = so["spec"]["scaleTargetRef"]["name"]
        assert name not in found, f"{render.name}: {name} has both an HPA and a ScaledObject"
        found[name] = ("ScaledObject", so["spec"].get("minReplicaCount", 0))
    return found


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


def validate(k8s_tools: tools.Tools, schemas: Path, render: Render, tmp: Path) -> dict[str, Any]:
    crds = render.kind("CustomResourceDefinition")
    tools.write_crd_schemas(crds, tmp, schemas)
    return tools.kubeconform(k8s_tools.kubeconform, [render.path], tools.schema_locations(schemas, tmp))


def render_notes(k8s_tools: tools.Tools, name: str, tmp: Path) -> str:
    """NOTES.txt as `helm install` would print it for a value set. `helm template` leaves NOTES
    out and `helm install --dry-run` needs a cluster, so a copy of the chart renders it into a
    ConfigMap."""
    chart = tmp / "chart"
    shutil.copytree(CHART, chart)
    notes = chart / "templates" / "NOTES.txt"
    (chart / "templates" / "_notes.tpl").write_text(
        '{{- define "test.notes" -}}\n' + notes.read_text() + "\n{{- end }}\n")
    notes.unlink()
    (chart / "templates" / "notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data: {notes: {{ include "test.notes" . | quote }}}\n')
    values = VALUES_DIR / f"{name}.yaml"
    cmd = [str(k8s_tools.helm), "template", "uf", str(chart), "--namespace", "userflow",
           "--kube-version", tools.KUBE_VERSION, "--values", str(values),
           "--show-only", "templates/notes.yaml"]
    for api in api_versions_of(values):
        cmd += ["--api-versions", api]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)["data"]["notes"]


def company_crd(k8s_tools: tools.Tools, render_dir: Path) -> dict[str, Any]:
    render = do_render(k8s_tools, render_dir, "company-crd", [], [],
                       extra=["--show-only", "templates/crd-company.yaml"])
    (crd,) = render.kind("CustomResourceDefinition")
    return crd


# --- lint and schema validation ---------------------------------------------------------------

def test_helm_lint_strict(k8s_tools: tools.Tools) -> None:
    """`helm lint --strict` is clean with the defaults and with every value set."""
    for values in [None, *sorted(VALUES_DIR.glob("*.yaml"))]:
        cmd = [str(k8s_tools.helm), "lint", "--strict", str(CHART)]
        if values:
            cmd += ["--values", str(values)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout}\n{done.stderr}"
        assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


@pytest.mark.parametrize("name", VALUE_SETS)
def test_manifests_match_the_schemas(name: str, renders: dict[str, Render], k8s_tools: tools.Tools,
                                     schemas: Path, tmp_path: Path) -> None:
    """Every rendered object is valid against its Kubernetes or CRD schema; none is skipped."""
    render = renders[name]
    report = validate(k8s_tools, schemas, render, tmp_path)
    problems = [f"{r['kind']} {r['name']}: {r.get('msg')}" for r in report["resources"]]
    assert not problems, "\n".join(problems)
    assert report["summary"] == {"valid": len(render.docs), "invalid": 0, "errors": 0, "skipped": 0}


def test_validation_is_strict(renders: dict[str, Render], k8s_tools: tools.Tools, schemas: Path,
                              tmp_path: Path) -> None:
    """The validator does reject unknown fields, bad values and kinds it has no schema for."""
    docs = [dict(d) for d in renders["defaults"].docs]
    broken = []
    for doc in docs:
        doc = json.loads(json.dumps(doc))
        if doc["kind"] == "Deployment":
            doc["spec"]["replica"] = 2
        elif doc["kind"] == "KafkaTopic":
            doc["spec"]["partitions"] = 0
        elif doc["kind"] == "Kafka":
            doc["spec"]["zookeeper"] = {"replicas": 3}  # gone in kafka.strimzi.io/v1
        elif doc["kind"] == "ServiceMonitor":
            doc["spec"]["endpoints"][0]["scrapeTimeout"] = 30
        broken.append(doc)
    broken.append({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all(broken))
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    tools.write_crd_schemas(crds, tmp_path / "crd", schemas)
    report = tools.kubeconform(k8s_tools.kubeconform, [path], tools.schema_locations(schemas, tmp_path / "crd"))
    bad = {(r["kind"], r["status"]) for r in report["resources"]}
    assert ("Deployment", "statusInvalid") in bad
    assert ("KafkaTopic", "statusInvalid") in bad
    assert ("Kafka", "statusInvalid") in bad
    assert ("ServiceMonitor", "statusInvalid") in bad
    assert ("Widget", "statusError") in bad


def test_sample_company_matches_the_crd(k8s_tools: tools.Tools, schemas: Path, render_dir: Path,
                                        tmp_path: Path) -> None:
    """deploy/kind/sample-company.yaml is a valid Company; a wrong one is refused field by field."""
    crd = company_crd(k8s_tools, render_dir)
    tools.write_crd_schemas([crd], tmp_path / "crd", schemas)
    locations = tools.schema_locations(schemas, tmp_path / "crd")
    sample = ROOT / "deploy" / "kind" / "sample-company.yaml"
    report = tools.kubeconform(k8s_tools.kubeconform, [sample], locations)
    assert report["resources"] == [] and report["summary"]["valid"] >= 1, report

    (company,) = [d for d in yaml.safe_load_all(sample.read_text()) if d]
    wrong = json.loads(json.dumps(company))
    wrong["spec"].update(tier="gold", retentionDays=0, partitions=101, rateLimit=0, topicMode="private",
                         deletionPolicy="Delete", colour="blue")
    path = tmp_path / "wrong.yaml"
    path.write_text(yaml.safe_dump(wrong))
    report = tools.kubeconform(k8s_tools.kubeconform, [path], locations)
    (result,) = report["resources"]
    assert result["status"] == "statusInvalid"
    for field in ("tier", "retentionDays", "partitions", "rateLimit", "topicMode", "deletionPolicy", "colour"):
        assert field in result["msg"], (field, result["msg"])


def test_company_crd(k8s_tools: tools.Tools, render_dir: Path) -> None:
    """companies.userflow.io: schema, status subresource, printer columns, kept on uninstall."""
    crd = company_crd(k8s_tools, render_dir)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["spec"]["scope"] == "Namespaced"
    (version,) = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Tier", "Topic", "Ready", "Age"]
    root = version["schema"]["openAPIV3Schema"]
    spec = root["properties"]["spec"]["properties"]
    assert set(spec) == {"displayName", "tier", "region", "contactEmail", "retentionDays", "allowedOrigins",
                         "rateLimit", "topicMode", "partitions", "deletionPolicy"}
    assert spec["tier"]["enum"] == ["free", "basic", "pro", "enterprise"]
    assert (spec["retentionDays"]["minimum"], spec["retentionDays"]["maximum"]) == (1, 3650)
    assert (spec["partitions"]["minimum"], spec["partitions"]["maximum"]) == (1, 100)
    assert spec["rateLimit"]["minimum"] >= 1
    assert spec["allowedOrigins"]["items"]["type"] == "string"
    assert spec["topicMode"]["enum"] == ["dedicated", "shared"] and "default" not in spec["topicMode"]
    assert spec["deletionPolicy"] == {**spec["deletionPolicy"], "enum": ["Retain", "Purge"], "default": "Retain"}
    status = root["properties"]["status"]["properties"]
    assert {"conditions", "observedGeneration", "companyId", "topic", "secretName"} <= set(status)
    condition = status["conditions"]["items"]["properties"]
    assert set(condition) == {"type", "status", "reason", "message", "lastTransitionTime"}


# --- chart-level rules, for every value set -------------------------------------------------------

@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_object_is_labelled(name: str, renders: dict[str, Render]) -> None:
    render = renders[name]
    for doc in render.docs:
        labels = doc["metadata"].get("labels", {})
        missing = [label for label in LABELS if not labels.get(label)]
        assert not missing, f"{name}: {doc['kind']} {doc['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/part-of"] == "userflow"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
    for obj in (d for d in render.docs if d["kind"] in WORKLOAD_KINDS):
        template_labels = obj["spec"]["template"]["metadata"]["labels"]
        assert all(template_labels.get(label) for label in LABELS), obj["metadata"]["name"]
        if obj["kind"] != "Job":
            assert selector_matches(obj["spec"]["selector"], template_labels)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_workload_is_restricted(name: str, renders: dict[str, Render]) -> None:
    """Pod Security Standard `restricted`: non-root, seccomp, no privilege escalation, no capabilities,
    read-only root filesystem; UserFlow's own image runs as uid 10001."""
    workloads = [d for d in renders[name].docs if d["kind"] in WORKLOAD_KINDS]
    assert workloads
    for obj in workloads:
        where = f"{name}: {obj['kind']} {obj['metadata']['name']}"
        pod = pod_spec(obj).get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, where
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert isinstance(pod.get("fsGroup"), int), where
        assert not pod_spec(obj).get("hostNetwork") and not pod_spec(obj).get("hostPID"), where
        for container in containers(obj):
            ctx = container.get("securityContext", {})
            assert ctx.get("allowPrivilegeEscalation") is False, where
            assert ctx.get("readOnlyRootFilesystem") is True, where
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not ctx.get("capabilities", {}).get("add"), where
            assert not ctx.get("privileged"), where
            if container["image"].startswith("userflow:"):
                assert pod.get("runAsUser") == 10001 and ctx.get("runAsUser", 10001) == 10001, where
        # A read-only root filesystem needs somewhere to write.
        mounts = {m["mountPath"] for c in containers(obj) for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, where


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_container_has_probes_and_resources(name: str, renders: dict[str, Render]) -> None:
    for obj in (d for d in renders[name].docs if d["kind"] in WORKLOAD_KINDS):
        for container in containers(obj):
            where = f"{name}: {obj['kind']} {obj['metadata']['name']}/{container['name']}"
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(part, {})), f"{where}: {part}"
            if obj["kind"] != "Job":  # a Job's pod ends by itself
                assert container.get("livenessProbe"), f"{where}: no liveness probe"
                assert container.get("readinessProbe"), f"{where}: no readiness probe"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_no_deployment_has_two_autoscalers(name: str, renders: dict[str, Render]) -> None:
    """An HPA and a KEDA ScaledObject never target the same Deployment; every target exists
    and leaves `replicas` to its autoscaler."""
    render = renders[name]
    deployments = {d["metadata"]["name"]: d for d in render.kind("Deployment")}
    targets = [x["spec"]["scaleTargetRef"]["name"] for x in render.kind("HorizontalPodAutoscaler")]
    targets += [x["spec"]["scaleTargetRef"]["name"] for x in render.kind("ScaledObject")]
    assert len(targets) == len(set(targets)), f"{name}: {targets}"
    for target in targets:
        assert target in deployments, f"{name}: autoscaler of a missing Deployment {target}"
        assert "replicas" not in deployments[target]["spec"], f"{name}: {target} fixes replicas"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_pdbs_exist_exactly_where_more_than_one_pod_runs(name: str, renders: dict[str, Render]) -> None:
    render = renders[name]
    scaled = autoscaled_min(render)
    pdbs = render.kind("PodDisruptionBudget")
    for obj in render.kind("Deployment") + render.kind("StatefulSet"):
        obj_name = obj["metadata"]["name"]
        pods = scaled[obj_name][1] if obj_name in scaled else obj["spec"].get("replicas", 1)
        labels = obj["spec"]["template"]["metadata"]["labels"]
        covering = [p for p in pdbs if selector_matches(p["spec"]["selector"], labels)]
        if pods > 1:
            assert len(covering) == 1, f"{name}: {obj_name} runs {pods} pods and has {len(covering)} PDBs"
        else:
            assert not covering, f"{name}: {obj_name} runs {pods} pod(s) but has a PDB"
    for pdb in pdbs:
        assert any(selector_matches(pdb["spec"]["selector"], o["spec"]["template"]["metadata"]["labels"])
                   for o in render.kind("Deployment") + render.kind("StatefulSet")), pdb["metadata"]["name"]
    for cluster in render.kind("Cluster"):  # CloudNativePG makes its own
        assert cluster["spec"]["enablePDB"] is (cluster["spec"]["instances"] > 1)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_operator_is_a_singleton(name: str, renders: dict[str, Render]) -> None:
    render = renders[name]
    operator = render.named("Deployment", "-operator")
    if name == "minimal":
        assert operator is None and not render.kind("ClusterRole")
        return
    assert operator is not None
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    assert pod_spec(operator)["containers"][0]["args"][0] == "operator"
    assert not any(x["spec"]["scaleTargetRef"]["name"] == operator["metadata"]["name"]
                   for x in render.kind("HorizontalPodAutoscaler") + render.kind("ScaledObject"))


@pytest.mark.parametrize("name", VALUE_SETS)
def test_operator_rbac_is_limited(name: str, renders: dict[str, Render]) -> None:
    render = renders[name]
    allowed = {
        ("userflow.io", "companies"): {"get", "list", "watch", "patch", "update"},
        ("userflow.io", "companies/status"): {"get", "list", "watch", "patch", "update"},
        ("userflow.io", "companies/finalizers"): {"get", "list", "watch", "patch", "update"},
        ("", "secrets"): {"create", "get", "patch", "update", "delete"},
        ("", "events"): {"create"},
        ("events.k8s.io", "events"): {"create"},
        ("kopf.dev", "clusterkopfpeerings"): {"get", "list", "watch", "patch"},
        ("kopf.dev", "kopfpeerings"): {"get", "list", "watch", "patch"},
        ("", "namespaces"): {"list", "watch"},
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
        ("kafka.strimzi.io", "kafkatopics"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    }
    granted: dict[tuple[str, str], set[str]] = {}
    for role in render.kind("ClusterRole") + render.kind("Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], role["metadata"]["name"]
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    key = (group, resource)
                    assert key in allowed, f"{name}: unexpected rights on {key}"
                    assert set(rule["verbs"]) <= allowed[key], f"{name}: {key}: {rule['verbs']}"
                    granted.setdefault(key, set()).update(rule["verbs"])
    if name == "minimal":
        assert not granted
        return
    assert granted[("userflow.io", "companies")] == allowed[("userflow.io", "companies")]
    assert granted[("", "secrets")] == allowed[("", "secrets")]
    roles = render.kind("Role")
    if any(d["kind"] == "Kafka" for d in render.docs):
        (kafka,) = render.kind("Kafka")
        (role,) = roles
        assert role["metadata"]["namespace"] == kafka["metadata"]["namespace"]
    else:
        assert not roles


@pytest.mark.parametrize("name", VALUE_SETS)
def test_migration_job_is_a_helm_hook(name: str, renders: dict[str, Render]) -> None:
    jobs = renders[name].kind("Job")
    if name == "minimal":
        assert not jobs
        return
    (job,) = jobs
    annotations = job["metadata"]["annotations"]
    assert set(annotations[HOOK].split(",")) == {"post-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    assert pod_spec(job)["containers"][0]["args"] == ["migrate"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1


@pytest.mark.parametrize("name", VALUE_SETS)
def test_environment_matches_the_settings(name: str, renders: dict[str, Render]) -> None:
    """Every UF_* variable the chart sets is one the code reads: a field of config.Settings."""
    from userflow.config import Settings  # noqa: PLC0415

    known = {f"UF_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    for obj in (d for d in renders[name].docs if d["kind"] in WORKLOAD_KINDS):
        for container in containers(obj):
            if not container["image"].startswith("userflow:"):
                continue
            env = env_of(container)
            assert len(env) == len(container["env"]), f"duplicate env in {obj['metadata']['name']}"
            unknown = {n for n in env if n.startswith("UF_")} - known
            assert not unknown, f"{name}: {obj['metadata']['name']} sets {unknown}"
            if container["args"][:2] == ["db", "bootstrap"]:
                continue  # the superuser's step: only what it needs (tests/k8s/test_least_privilege.py)
            assert {"UF_KAFKA_BOOTSTRAP", "UF_TOPIC_PREFIX", "UF_CONSUMER_GROUP",
                    "UF_LOG_LEVEL"} <= set(env), obj["metadata"]["name"]
            # Traces go out only where a collector was named.
            assert (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or {}).get("value") == (
                "http://otel-collector.monitoring:4318" if name == "everything" else None)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_names_are_unique_and_valid(name: str, renders: dict[str, Render]) -> None:
    seen = set()
    for doc in renders[name].docs:
        key = (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"])
        assert key not in seen, f"{name}: {key} twice"
        seen.add(key)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"]), key
        assert len(doc["metadata"]["name"]) <= 63 or doc["kind"] == "CustomResourceDefinition", key


# --- particular value sets ---------------------------------------------------------------

def test_defaults(renders: dict[str, Render], k8s_tools: tools.Tools, tmp_path: Path) -> None:
    """What a kind cluster gets: ingest behind nginx with an HPA, a CPU-scaled consumer, the
    query API, the operator, Strimzi Kafka, PostgreSQL with pg_cron, monitoring objects; no MCP
    server (it is off unless mcp.enabled)."""
    render = renders["defaults"]
    ingest = render.named("Deployment", "-ingest")
    assert ingest is not None
    (container,) = pod_spec(ingest)["containers"]
    assert container["args"] == ["ingest", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    multiproc = env_of(container)["PROMETHEUS_MULTIPROC_DIR"]["value"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == multiproc)
    volume = next(v for v in pod_spec(ingest)["volumes"] if v["name"] == mount["name"])
    assert "emptyDir" in volume
    (ingress,) = render.kind("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    paths = {p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert paths == {"/v1", "/send_event", "/t.js"}  # /metrics and the probes stay inside
    assert {h["spec"]["scaleTargetRef"]["name"] for h in render.kind("HorizontalPodAutoscaler")} == {
        ingest["metadata"]["name"], render.named("Deployment", "-consumer")["metadata"]["name"]}
    assert not render.kind("ScaledObject") and not render.kind("HTTPRoute")
    assert render.named("Deployment", "-api") is not None and render.named("Service", "-api") is not None
    assert render.named("Deployment", "-mcp") is None and render.named("Service", "-mcp") is None
    notes = render_notes(k8s_tools, "defaults", tmp_path)
    assert "kubectl apply -f deploy/kind/sample-company.yaml" in notes
    assert "kubectl -n <company namespace> get secret" in notes
    assert "Query API" in notes and "MCP server" not in notes
    assert len(render.kind("ServiceMonitor")) == 2 and len(render.kind("PodMonitor")) == 1


def test_the_query_api_by_default(renders: dict[str, Render], k8s_tools: tools.Tools) -> None:
    """`userflow api --workers N` as userflow_reader, probed on /healthz and /readyz, its
    /metrics on a port of its own (UF_API_METRICS_PORT) that the ServiceMonitor scrapes."""
    render = renders["defaults"]
    deployment = render.named("Deployment", "-api")
    (container,) = pod_spec(deployment)["containers"]
    assert container["args"] == ["api", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    env = env_of(container)
    assert env["UF_API_METRICS_PORT"]["value"] == "9100"
    assert "UF_READER_DATABASE_URL" in env
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "metrics": 9100}
    multiproc = env["PROMETHEUS_MULTIPROC_DIR"]["value"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == multiproc)
    assert "emptyDir" in next(v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"])
    service = render.named("Service", "-api")
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 8000, "http"), ("metrics", 9100, "metrics")]
    monitor = render.named("ServiceMonitor", "-api")
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    # The metrics port must differ from the HTTP port.
    cmd = [str(k8s_tools.helm), "template", "uf", str(CHART), "--kube-version", tools.KUBE_VERSION,
           "--set", "api.metricsPort=8000"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "api.metricsPort must not be the HTTP port" in done.stderr


def test_query_api_and_mcp_server_when_enabled(renders: dict[str, Render], k8s_tools: tools.Tools,
                                               tmp_path: Path) -> None:
    """With both on (`everything`; the MCP server is off by default) each is a Deployment
    running its subcommand, a Service, a PDB (two replicas) and a NetworkPolicy, and NOTES
    says how to reach it."""
    render = renders["everything"]
    notes = render_notes(k8s_tools, "everything", tmp_path)
    for component, port, probe in (("api", 8000, "httpGet"), ("mcp", 8001, "httpGet")):
        deployment = render.named("Deployment", f"-{component}")
        assert deployment is not None, component
        (container,) = pod_spec(deployment)["containers"]
        assert container["args"][0] == component
        assert container["args"][container["args"].index("--port") + 1] == str(port)
        assert container["livenessProbe"][probe] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"][probe] == {"path": "/readyz", "port": "http"}
        service = render.named("Service", f"-{component}")
        assert service["spec"]["ports"][0]["port"] == port
        assert render.named("PodDisruptionBudget", f"-{component}") is not None
        assert render.named("NetworkPolicy", f"-{component}") is not None
        assert f"svc/{service['metadata']['name']} {port}:{port}" in notes
    assert pod_spec(render.named("Deployment", "-mcp"))["containers"][0]["args"][:3] == ["mcp", "--transport", "http"]


def test_consumer_metrics_ports_follow_processes(renders: dict[str, Render]) -> None:
    for name in ("defaults", "everything"):
        render = renders[name]
        consumer = render.named("Deployment", "-consumer")
        (container,) = pod_spec(consumer)["containers"]
        processes = int(container["args"][container["args"].index("--processes") + 1])
        base = int(env_of(container)["UF_CONSUMER_METRICS_PORT"]["value"])
        assert [p["containerPort"] for p in container["ports"]] == list(range(base, base + processes))
        (monitor,) = render.kind("PodMonitor")
        assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == [p["name"] for p in container["ports"]]


def test_keda_scaled_object(renders: dict[str, Render]) -> None:
    render = renders["keda"]
    consumer = render.named("Deployment", "-consumer")
    (scaled,) = render.kind("ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == consumer["metadata"]["name"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == "userflow-consumer"
    assert trigger["metadata"]["bootstrapServers"] == env_of(pod_spec(consumer)["containers"][0])[
        "UF_KAFKA_BOOTSTRAP"]["value"]
    assert trigger["metadata"]["lagThreshold"] == "10000"
    hpa_targets = {h["spec"]["scaleTargetRef"]["name"] for h in render.kind("HorizontalPodAutoscaler")}
    assert consumer["metadata"]["name"] not in hpa_targets


def test_keda_needs_its_api(k8s_tools: tools.Tools, render_dir: Path) -> None:
    """KEDA chosen but keda.sh/v1alpha1 not served: no ScaledObject, no HPA, fixed replicas."""
    values = VALUES_DIR / "keda.yaml"
    apis = [a for a in api_versions_of(values) if not a.startswith("keda.sh/")]
    render = do_render(k8s_tools, render_dir, "keda-without-api", [values], apis)
    assert not render.kind("ScaledObject")
    consumer = render.named("Deployment", "-consumer")
    assert consumer["spec"]["replicas"] == 1
    assert consumer["metadata"]["name"] not in {
        h["spec"]["scaleTargetRef"]["name"] for h in render.kind("HorizontalPodAutoscaler")}


def test_monitors_need_the_prometheus_operator(renders: dict[str, Render]) -> None:
    for name, render in renders.items():
        served = "monitoring.coreos.com/v1" in render.api_versions
        monitors = render.kind("ServiceMonitor") + render.kind("PodMonitor")
        if not served:
            assert not monitors, f"{name}: monitors without the monitoring.coreos.com/v1 API"
    assert renders["defaults"].kind("ServiceMonitor")
    assert not renders["no-prometheus-operator"].kind("ServiceMonitor")
    assert not renders["no-prometheus-operator"].kind("PodMonitor")
    # The dashboards need no operator: the Grafana sidecar reads ConfigMaps.
    assert renders["no-prometheus-operator"].kind("ConfigMap")


def test_gateway_api_route(renders: dict[str, Render]) -> None:
    render = renders["gateway-api"]
    assert not render.kind("Ingress")
    (route,) = render.kind("HTTPRoute")
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateways", "sectionName": "https"}]
    assert route["spec"]["hostnames"] == ["events.example.com"]
    service = render.named("Service", "-ingest")
    backends = [b for rule in route["spec"]["rules"] for b in rule["backendRefs"]]
    assert backends == [{"name": service["metadata"]["name"], "port": service["spec"]["ports"][0]["port"]}]


def test_strimzi_kafka(renders: dict[str, Render]) -> None:
    """KRaft through Strimzi's v1 API: one dual-role node pool for kind, the shared and dead-letter topics."""
    render = renders["defaults"]
    (kafka,) = render.kind("Kafka")
    (pool,) = render.kind("KafkaNodePool")
    assert kafka["apiVersion"] == pool["apiVersion"] == "kafka.strimzi.io/v1"
    assert not kafka["metadata"].get("annotations")  # no node-pools/kraft annotations in v1
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert pool["spec"]["replicas"] == 1 and sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert kafka["spec"]["kafka"]["config"]["default.replication.factor"] == 1
    topics = {t["spec"]["topicName"]: t for t in render.kind("KafkaTopic")}
    assert set(topics) == {"userflow.events.shared", "userflow.events.dlq"}
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert topic["spec"]["replicas"] == 1
    bootstrap = env_of(pod_spec(render.named("Deployment", "-ingest"))["containers"][0])["UF_KAFKA_BOOTSTRAP"]
    assert bootstrap["value"] == f"{kafka['metadata']['name']}-kafka-bootstrap.userflow.svc:9092"
    # another namespace, three nodes, ephemeral storage
    render = renders["everything"]
    (kafka,) = render.kind("Kafka")
    (pool,) = render.kind("KafkaNodePool")
    assert kafka["metadata"]["namespace"] == pool["metadata"]["namespace"] == "kafka"
    assert pool["spec"]["storage"] == {"type": "ephemeral", "sizeLimit": "4Gi"}
    assert {t["spec"]["replicas"] for t in render.kind("KafkaTopic")} == {3}


@pytest.mark.parametrize("name", ["minimal", "external"])
def test_external_kafka_and_postgresql(name: str, renders: dict[str, Render]) -> None:
    render = renders[name]
    assert not [d for d in render.docs if d["apiVersion"].startswith(("kafka.strimzi.io", "postgresql.cnpg.io"))]
    assert not render.kind("StatefulSet") and not render.kind("Secret")
    values = yaml.safe_load((VALUES_DIR / f"{name}.yaml").read_text())
    for obj in render.kind("Deployment"):
        env = env_of(pod_spec(obj)["containers"][0])
        assert env["UF_KAFKA_BOOTSTRAP"]["value"] == values["kafka"]["bootstrap"]
        # no role has a Secret of its own in these value sets: each falls back to the one URL
        component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
        assert env[ROLE_URL_ENV[component]]["valueFrom"]["secretKeyRef"] == {
            "name": values["postgresql"]["external"]["existingSecret"],
            "key": values["postgresql"]["external"]["key"]}


def test_postgresql_statefulset_with_pg_cron(renders: dict[str, Render]) -> None:
    render = renders["defaults"]
    (sts,) = render.kind("StatefulSet")
    (container,) = pod_spec(sts)["containers"]
    args = container["args"]
    settings = dict(a.split("=", 1) for a in args[1::2])
    assert args[0::2] == ["-c"] * len(settings)
    assert settings["shared_preload_libraries"] == "pg_cron"
    assert settings["cron.database_name"] == "userflow"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert env_of(container)["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": sts["metadata"]["name"], "key": "password"}
    secret = render.named("Secret", "-postgresql")
    assert set(secret["stringData"]) == {"password", "url"}
    assert secret["stringData"]["url"].startswith("postgresql://userflow:")
    assert secret["stringData"]["url"].endswith(f"@{sts['metadata']['name']}:5432/userflow")
    roles = render.named("Secret", "-postgresql-roles")
    # the superuser's, the roles', and Grafana's copy of the dashboards role's password
    assert len(render.kind("Secret")) == 3 and render.named("Secret", "-grafana-datasource")
    ingest = render.named("Deployment", "-ingest")
    assert env_of(pod_spec(ingest)["containers"][0])["UF_INGEST_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": roles["metadata"]["name"], "key": "ingest-url"}
    dockerfile = (CHART / "images" / "postgres" / "Dockerfile").read_text()
    assert "FROM ${BASE}" in dockerfile and "postgresql-${PG_MAJOR}-cron" in dockerfile


def test_postgresql_cloudnativepg(renders: dict[str, Render]) -> None:
    render = renders["cloudnativepg"]
    assert not render.kind("StatefulSet")
    # only the managed roles' passwords (and Grafana's copy of one): CNPG makes the owner's
    # (`-app`) itself
    assert {s["type"] for s in render.kind("Secret")
            if not s["metadata"]["name"].endswith("-grafana-datasource")} == {"kubernetes.io/basic-auth"}
    (cluster,) = render.kind("Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["postgresql"]["shared_preload_libraries"] == ["pg_cron"]
    assert cluster["spec"]["postgresql"]["parameters"]["cron.database_name"] == "userflow"
    assert cluster["spec"]["bootstrap"]["initdb"]["database"] == "userflow"
    (job,) = render.kind("Job")
    ref = env_of(pod_spec(job)["containers"][0])["UF_MIGRATE_DATABASE_URL"]
    assert ref["valueFrom"]["secretKeyRef"] == {"name": f"{cluster['metadata']['name']}-app", "key": "uri"}


def test_network_policies(renders: dict[str, Render]) -> None:
    """Off by default; when on, every pod is selected, the ingest takes HTTP only from the
    ingress controller and scrapes only from Prometheus, and every app pod may resolve names."""
    assert not renders["defaults"].kind("NetworkPolicy")
    for name in ("everything", "external"):
        render = renders[name]
        policies = render.kind("NetworkPolicy")
        for obj in (d for d in render.docs if d["kind"] in WORKLOAD_KINDS):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            (policy,) = [p for p in policies if selector_matches(p["spec"]["podSelector"], labels)]
            assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            if obj["kind"] != "StatefulSet":
                ports = [p for rule in policy["spec"]["egress"] for p in rule.get("ports", [])]
                assert {"port": 53, "protocol": "UDP"} in ports, obj["metadata"]["name"]
        ingest = next(p for p in policies if p["metadata"]["name"].endswith("-ingest"))
        http, scrape = ingest["spec"]["ingress"]
        for rule, namespace in ((http, "ingress-nginx"), (scrape, "monitoring")):
            (peer,) = rule["from"]
            assert peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == namespace
        assert http["ports"] == [{"port": 8080, "protocol": "TCP"}]
        assert scrape["ports"] == [{"port": 9200 if name == "everything" else 9100, "protocol": "TCP"}]
    external = renders["external"].named("NetworkPolicy", "-consumer")
    cidrs = {b["ipBlock"]["cidr"] for rule in external["spec"]["egress"] for b in rule["to"] if "ipBlock" in b}
    assert cidrs == {"10.20.0.0/16", "10.30.1.0/24"}


# --- values and their schema ---------------------------------------------------------------

def _walk(values: Any, schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    """Paths in values.yaml that the schema does not describe."""
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if not isinstance(values, dict):
        return [] if schema else [path]
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    missing = []
    for key, value in values.items():
        if key in props:
            missing += _walk(value, props[key], defs, f"{path}.{key}")
        elif isinstance(extra, dict):
            missing += _walk(value, extra, defs, f"{path}.{key}")
        elif extra is not True or schema.get("type") != "object" or "properties" in schema:
            missing.append(f"{path}.{key}")
    return missing


def test_values_schema_covers_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    assert _walk(values, schema, schema["definitions"], "") == []
    assert set(schema["properties"]) - {"global"} == set(values)


@pytest.mark.parametrize("override", [
    "ingest.replica=3",                       # a misspelt key
    "consumer.autoscaling.mode=sometimes",    # not an enum value
    "kafka.mode=external",                    # external without a bootstrap address
    "postgresql.mode=external",               # external without a Secret
    "operator.healthPort=0",                  # out of range
    "containerSecurityContext.readOnlyRootFilesystem=false",
    "ingest.trustedProxies={ingress.example.com}",  # not an IP or CIDR
    "ingest.docs=maybe",
])
def test_values_schema_rejects(override: str, k8s_tools: tools.Tools) -> None:
    cmd = [str(k8s_tools.helm), "template", "uf", str(CHART), "--kube-version", tools.KUBE_VERSION,
           "--set", override]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, f"{override} was accepted"
    assert "schema" in done.stderr or "required" in done.stderr, done.stderr


# --- the image ------------------------------------------------------------------------------

def test_dockerfile() -> None:
    """Multi-stage, slim base, the venv and sql/ only, non-root, `userflow` as the entrypoint."""
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2 and "AS builder" in stages[0]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    final = stages[1]
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    assert "COPY sql/ /app/sql/" in final and "UF_SQL_DIR=/app/sql" in final
    assert re.search(r"^USER 10001", final, flags=re.M)
    assert 'ENTRYPOINT ["userflow"]' in final and 'CMD ["--help"]' in final
    assert not re.search(r"apt-get|gcc|build-essential|pip install", final)
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1:][:3] == ["!pyproject.toml", "!src/", "!sql/"]


def test_notes_without_the_operator(k8s_tools: tools.Tools, tmp_path: Path) -> None:
    """With no operator (`minimal`) NOTES does not send users to Company resources."""
    notes = render_notes(k8s_tools, "minimal", tmp_path)
    assert "Company" not in notes
    assert "userflow tenant create --name NAME" in notes
