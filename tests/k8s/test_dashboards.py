"""The Grafana dashboards in the chart: the same files as dashboards/, one ConfigMap each for the
dashboard sidecar, and the PostgreSQL data source they read, for the datasource sidecar.

dashboards/ is the one source; the chart cannot read outside itself, so it keeps a copy in
files/dashboards/ (`make dashboards` makes it equal). What the panels' SQL computes is
tests/integration/test_dashboards.py's business.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import tools
from .conftest import VALUE_SETS, VALUES_DIR, Render
from .test_chart import selector_matches

SOURCE = tools.ROOT / "dashboards"
COPY = tools.CHART / "files" / "dashboards"
SYNC = tools.ROOT / "scripts" / "sync-dashboards.sh"
POSTGRES = "grafana-postgresql-datasource"


def dashboard_maps(render: Render) -> list[dict[str, Any]]:
    return [c for c in render.kind("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]


def datasource_of(render: Render) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The data source ConfigMap and the data source it provisions."""
    found = [c for c in render.kind("ConfigMap") if c["metadata"]["labels"].get("grafana_datasource") == "1"]
    if not found:
        return None
    (cm,) = found
    (text,) = cm["data"].values()
    (source,) = yaml.safe_load(text)["datasources"]
    return cm, source


def datasource_uids(dashboard: dict[str, Any]) -> set[str]:
    found = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == POSTGRES and "uid" in node:
                found.add(node["uid"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dashboard)
    return found


def test_the_chart_s_copy_is_dashboards_byte_for_byte() -> None:
    """Run `make dashboards` (scripts/sync-dashboards.sh) when this fails."""
    source = {p.name: p.read_bytes() for p in SOURCE.glob("*.json")}
    copy = {p.name: p.read_bytes() for p in COPY.glob("*.json")}
    assert set(source) == set(copy), "run `make dashboards`"
    different = sorted(name for name in source if source[name] != copy[name])
    assert not different, f"{different} differ from dashboards/: run `make dashboards`"
    assert {"userflow-pipeline.json", "userflow-product-overview.json", "userflow-ux-deep-dive.json"} <= set(source)


def test_the_sync_makes_a_stale_copy_equal(tmp_path: Path) -> None:
    """The script copies what changed and removes what dashboards/ no longer has."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "sync-dashboards.sh").write_bytes(SYNC.read_bytes())
    (tmp_path / "dashboards").mkdir()
    copy = tmp_path / "deploy" / "helm" / "userflow" / "files" / "dashboards"
    copy.mkdir(parents=True)
    (tmp_path / "dashboards" / "a.json").write_text('{"uid": "a", "v": 2}\n')
    (tmp_path / "dashboards" / "b.json").write_text('{"uid": "b"}\n')
    (copy / "a.json").write_text('{"uid": "a", "v": 1}\n')
    (copy / "gone.json").write_text("{}\n")
    done = subprocess.run(["bash", str(tmp_path / "scripts" / "sync-dashboards.sh")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in copy.iterdir()) == ["a.json", "b.json"]
    assert (copy / "a.json").read_text() == '{"uid": "a", "v": 2}\n'
    assert "removed" in done.stdout and "copied" in done.stdout


def test_dashboards_are_valid_and_name_their_data_sources() -> None:
    """Unique uids; the pipeline's Prometheus metrics are ones the code exports; the product
    dashboards read the chart's PostgreSQL data source (uid userflow-postgres) only."""
    source = "\n".join(p.read_text() for p in (tools.ROOT / "src" / "userflow").rglob("*.py"))
    uids = []
    for path in sorted(SOURCE.glob("*.json")):
        dashboard = json.loads(path.read_text())
        uids.append(dashboard["uid"])
        assert dashboard["title"].startswith("UserFlow / ") and dashboard["panels"], path.name
        targets = [t for p in dashboard["panels"] for t in p.get("targets", [])]
        assert targets, path.name
        exprs = [t["expr"] for t in targets if "expr" in t]
        for metric in set(re.findall(r"userflow_[a-z_]+", " ".join(exprs))):
            base = re.sub(r"_(total|bucket|sum|count)$", "", metric)
            assert f'"{base}' in source, f"{path.name}: {metric} is not exported by src/userflow"
        sql = [t for t in targets if "rawSql" in t]
        assert bool(exprs) != bool(sql), f"{path.name}: one kind of data source per dashboard"
        if sql:
            assert datasource_uids(dashboard) == {"userflow-postgres"}, path.name
            names = {v["name"] for v in dashboard["templating"]["list"]}
            assert "tenant" in names, f"{path.name}: no tenant variable"
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("name", VALUE_SETS)
def test_one_configmap_per_dashboard(name: str, renders: dict[str, Render]) -> None:
    render = renders[name]
    maps = dashboard_maps(render)
    values = yaml.safe_load((VALUES_DIR / f"{name}.yaml").read_text()) or {}
    enabled = (values.get("metrics") or {}).get("dashboards", {}).get("enabled", True)
    if not enabled:
        assert not maps and datasource_of(render) is None
        return
    files = {p.name: p.read_text() for p in COPY.glob("*.json")}
    got = {k: v for cm in maps for k, v in cm["data"].items()}
    assert set(got) == set(files)
    for file, text in got.items():
        assert json.loads(text) == json.loads(files[file]), file
    namespace = "monitoring" if name == "everything" else "userflow"
    assert {cm["metadata"].get("namespace") for cm in maps} == {namespace}


def test_the_data_source_logs_in_as_the_dashboards_role(renders: dict[str, Render]) -> None:
    """statefulset: the chart's server by its Service's name, no TLS; the password is Grafana's
    environment variable, from a Secret in Grafana's namespace holding the very password the
    bootstrap sets for userflow_dashboards."""
    for name, namespace in (("defaults", "userflow"), ("everything", "monitoring")):
        render = renders[name]
        found = datasource_of(render)
        assert found is not None, name
        cm, source = found
        assert cm["metadata"]["namespace"] == namespace
        assert "grafana_dashboard" not in cm["metadata"]["labels"]  # not a dashboard
        postgres = render.named("Service", "-postgresql")
        assert source == {
            "name": "UserFlow PostgreSQL", "uid": "userflow-postgres", "type": POSTGRES,
            "access": "proxy", "url": f"{postgres['metadata']['name']}.userflow.svc:5432",
            "user": "userflow_dashboards", "editable": False,
            "jsonData": {"database": "userflow", "sslmode": "disable", "postgresVersion": 1500,
                         "timescaledb": False, "maxOpenConns": 5, "maxIdleConns": 2,
                         "connMaxLifetime": 14400},
            "secureJsonData": {"password": "$USERFLOW_DASHBOARDS_PASSWORD"}}
        secret = render.named("Secret", "-grafana-datasource")
        assert secret["metadata"]["namespace"] == namespace
        roles = render.named("Secret", "-postgresql-roles")["stringData"]
        assert secret["stringData"] == {"USERFLOW_DASHBOARDS_PASSWORD": roles["dashboards-password"]}
        # The role's URL exists for completeness; no component reads it.
        assert roles["dashboards-url"].startswith("postgresql://userflow_dashboards:")


def test_the_data_source_elsewhere(renders: dict[str, Render]) -> None:
    """cloudnativepg: the Cluster's read-write Service, TLS; external: your host and your
    Secret, the chart makes none."""
    _, source = datasource_of(renders["cloudnativepg"])  # type: ignore[misc]
    (cluster,) = renders["cloudnativepg"].kind("Cluster")
    assert source["url"] == f"{cluster['metadata']['name']}-rw.userflow.svc:5432"
    assert source["jsonData"]["sslmode"] == "require"
    _, source = datasource_of(renders["external"])  # type: ignore[misc]
    assert source["url"] == "db.internal.example:6432" and source["jsonData"]["sslmode"] == "require"
    assert renders["external"].named("Secret", "-grafana-datasource") is None


@pytest.mark.parametrize(("sets", "message"), [
    (["postgresql.mode=external", "postgresql.external.existingSecret=db"],
     "metrics.dashboards.datasource.url"),
    (["postgresql.mode=external", "postgresql.external.existingSecret=db",
      "metrics.dashboards.datasource.url=db.example:5432"], "metrics.dashboards.datasource.existingSecret"),
])
def test_the_data_source_needs_what_the_chart_cannot_know(k8s_tools: tools.Tools, sets: list[str],
                                                          message: str) -> None:
    cmd = [str(k8s_tools.helm), "template", "uf", str(tools.CHART), "--kube-version", tools.KUBE_VERSION]
    for s in sets:
        cmd += ["--set", s]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    done = subprocess.run([*cmd, "--set", "metrics.dashboards.datasource.enabled=false"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_grafana_may_reach_postgresql_and_prometheus_the_api_s_metrics(renders: dict[str, Render]) -> None:
    render = renders["everything"]
    policy = render.named("NetworkPolicy", "-postgresql")
    (rule,) = policy["spec"]["ingress"]
    grafana = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
               "podSelector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}}
    assert grafana in rule["from"] and rule["ports"] == [{"port": 5432, "protocol": "TCP"}]
    api = render.named("NetworkPolicy", "-api")
    deployment = render.named("Deployment", "-api")
    assert selector_matches(api["spec"]["podSelector"], deployment["spec"]["template"]["metadata"]["labels"])
    scrape = [r for r in api["spec"]["ingress"]
              if r["from"][0].get("namespaceSelector", {}).get("matchLabels", {}).get(
                  "kubernetes.io/metadata.name") == "monitoring"]
    assert [r["ports"] for r in scrape] == [[{"port": 9100, "protocol": "TCP"}]]
