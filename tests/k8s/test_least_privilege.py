"""Least privilege in PostgreSQL (DESIGN.md invariant 5), as the chart wires it.

Six login roles, none a superuser: userflow_migrator (owns the schema; the migrate
Job), userflow_consumer, userflow_ingest, userflow_operator, userflow_reader (query
API and MCP server) and userflow_dashboards (Grafana's data source, no component's).
Each component gets exactly its own role's URL variable; the superuser's password
reaches only the PostgreSQL server and `userflow db bootstrap`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from . import tools
from .conftest import VALUE_SETS, VALUES_DIR, Render, api_versions_of, do_render
from .test_chart import (
    COMPONENT_ROLES,
    HOOK,
    ROLE_URL_ENV,
    ROLES,
    WORKLOAD_KINDS,
    containers,
    env_of,
    pod_spec,
)

COMPONENT_ROLE = {"migrate": "migrator", "ingest": "ingest", "consumer": "consumer",
                  "operator": "operator", "api": "reader", "mcp": "reader"}


# --- helpers -----------------------------------------------------------------------

def mode_of(name: str) -> str:
    values = yaml.safe_load((VALUES_DIR / f"{name}.yaml").read_text()) or {}
    return (values.get("postgresql") or {}).get("mode", "statefulset")


def component_of(obj: dict[str, Any]) -> str:
    return obj["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]


def is_bootstrap(container: dict[str, Any]) -> bool:
    return container.get("args", [])[:2] == ["db", "bootstrap"]


def app_containers(render: Render):
    """(workload, component, container) for every container running the UserFlow image."""
    for obj in (d for d in render.docs if d["kind"] in WORKLOAD_KINDS):
        for container in containers(obj):
            if container["image"].startswith("userflow:"):
                yield obj, component_of(obj), container


def secret_refs(obj: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(container or 'volume:<name>', Secret, key) for every way a pod can read a Secret."""
    found: list[tuple[str, str, str | None]] = []
    for container in containers(obj):
        for env in container.get("env", []):
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                found.append((container["name"], ref["name"], ref["key"]))
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                found.append((container["name"], source["secretRef"]["name"], None))
    for volume in pod_spec(obj).get("volumes", []):
        if "secret" in volume:
            found.append((f"volume:{volume['name']}", volume["secret"]["secretName"], None))
        for source in (volume.get("projected") or {}).get("sources", []):
            if "secret" in source:
                found.append((f"volume:{volume['name']}", source["secret"]["name"], None))
    return found


def superuser_secrets(render: Render) -> set[str]:
    """The Secrets that hold a superuser's password: the StatefulSet's POSTGRES_PASSWORD
    Secret (statefulset mode) and CNPG's `<cluster>-superuser`."""
    found = {f"{c['metadata']['name']}-superuser" for c in render.kind("Cluster")}
    for sts in render.kind("StatefulSet"):
        for container in pod_spec(sts)["containers"]:
            ref = env_of(container).get("POSTGRES_PASSWORD")
            if ref:
                found.add(ref["valueFrom"]["secretKeyRef"]["name"])
    return found


def secret_value(render: Render, name: str, key: str) -> str | None:
    """A rendered Secret's value, or None when the Secret is not the chart's."""
    for secret in render.kind("Secret"):
        if secret["metadata"]["name"] == name:
            assert key in secret.get("stringData", {}), f"{render.name}: Secret {name} has no key {key}"
            return secret["stringData"][key]
    return None


def render_with(k8s_tools: tools.Tools, render_dir: Path, base: str, tag: str, sets: list[str]) -> Render:
    values = VALUES_DIR / f"{base}.yaml"
    extra = [arg for s in sets for arg in ("--set", s)]
    return do_render(k8s_tools, render_dir, f"{base}-{tag}", [values], api_versions_of(values), extra=extra)


def bootstrap_of(render: Render) -> dict[str, Any] | None:
    found = [c for _, _, c in app_containers(render) if is_bootstrap(c)]
    assert len(found) <= 1, f"{render.name}: several bootstrap containers"
    return found[0] if found else None


# --- every value set ------------------------------------------------------------------

@pytest.mark.parametrize("name", VALUE_SETS)
def test_each_component_gets_exactly_its_roles_url(name: str, renders: dict[str, Render]) -> None:
    """No UF_DATABASE_URL, no other role's URL, no role password: one URL variable each,
    and (where the chart makes the Secret) that URL logs in as the component's role."""
    render = renders[name]
    seen = set()
    for obj, component, container in app_containers(render):
        if is_bootstrap(container):
            continue
        env = env_of(container)
        urls = {n for n in env if n.endswith("DATABASE_URL")}
        where = f"{name}: {obj['metadata']['name']}/{container['name']}"
        assert urls == {ROLE_URL_ENV[component]}, where
        assert not [n for n in env if n.startswith("UF_ROLE_PASSWORD_")], where
        ref = env[ROLE_URL_ENV[component]]["valueFrom"]["secretKeyRef"]
        url = secret_value(render, ref["name"], ref["key"])
        if url is not None:
            role = COMPONENT_ROLE[component]
            user = "userflow" if (role == "migrator" and mode_of(name) == "cloudnativepg") else f"userflow_{role}"
            assert urlsplit(url).username == user, where
        seen.add(component)
    assert seen or name == "minimal"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_superuser_password_reaches_only_the_bootstrap(name: str, renders: dict[str, Render]) -> None:
    """The superuser's Secret is read by the PostgreSQL server and by `userflow db bootstrap`
    (an init container of the migrate Job), by nothing else; nor are the roles' passwords."""
    render = renders[name]
    admin = superuser_secrets(render)
    for obj in (d for d in render.docs if d["kind"] in WORKLOAD_KINDS):
        bootstrap = {c["name"] for c in containers(obj) if is_bootstrap(c)}
        server = {"postgresql"} if obj["kind"] == "StatefulSet" else set()
        for reader, secret, key in secret_refs(obj):
            where = f"{name}: {obj['kind']} {obj['metadata']['name']} {reader} reads {secret}/{key}"
            if secret in admin:
                assert reader in bootstrap | server, where
            if key and key.endswith("-password") and secret not in admin:
                assert reader in bootstrap, where
        for container in containers(obj):
            env = env_of(container)
            if container["name"] not in bootstrap:
                assert "UF_ADMIN_DATABASE_URL" not in env, f"{name}: {obj['metadata']['name']}"
            if container["name"] not in server:
                assert "POSTGRES_PASSWORD" not in env, f"{name}: {obj['metadata']['name']}"
    for cluster in render.kind("Cluster"):
        assert cluster["spec"]["enableSuperuserAccess"] is False


@pytest.mark.parametrize("name", VALUE_SETS)
def test_bootstrap_runs_before_the_migrations_in_statefulset_mode(name: str, renders: dict[str, Render]) -> None:
    render = renders[name]
    bootstrap = bootstrap_of(render)
    jobs = render.kind("Job")
    if mode_of(name) != "statefulset" or not jobs:
        assert bootstrap is None, f"{name}: a bootstrap without a superuser of ours"
        return
    (job,) = jobs
    spec = pod_spec(job)
    assert [c["name"] for c in spec.get("initContainers", [])] == ["db-bootstrap"]
    assert spec["initContainers"][0] == bootstrap
    assert spec["containers"][0]["args"] == ["migrate"]
    env = env_of(bootstrap)
    (admin,) = superuser_secrets(render)
    assert env["UF_ADMIN_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": admin, "key": "url"}
    roles = render.named("Secret", "-postgresql-roles")
    for role in ROLES:
        ref = env[f"UF_ROLE_PASSWORD_{role.upper()}"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": roles["metadata"]["name"], "key": f"{role}-password"}
    assert not [n for n in env if n.endswith("DATABASE_URL") and n != "UF_ADMIN_DATABASE_URL"]
    # the superuser's URL logs in as POSTGRES_USER
    assert urlsplit(secret_value(render, admin, "url")).username == "userflow"


# --- statefulset mode -----------------------------------------------------------------

def test_role_passwords_secret(renders: dict[str, Render]) -> None:
    """One password per role, each role's URL built from it, created before the migrate Job
    (both are hooks; the Job is pre-upgrade, so the Secret must be too)."""
    render = renders["defaults"]
    (sts,) = render.kind("StatefulSet")
    roles = render.named("Secret", "-postgresql-roles")
    data = roles["stringData"]
    assert set(data) == {f"{r}-{k}" for r in ROLES for k in ("password", "url")}
    passwords = [data[f"{r}-password"] for r in ROLES]
    assert len(set(passwords)) == len(ROLES) and all(len(p) >= 32 for p in passwords)
    for role in ROLES:
        url = urlsplit(data[f"{role}-url"])
        assert (url.scheme, url.username, unquote(url.password)) == ("postgresql", f"userflow_{role}",
                                                                   data[f"{role}-password"])
        assert (url.hostname, url.port, url.path) == (sts["metadata"]["name"], 5432, "/userflow")
    annotations = roles["metadata"]["annotations"]
    assert set(annotations[HOOK].split(",")) == {"pre-install", "pre-upgrade"}
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    (job,) = render.kind("Job")
    assert int(annotations["helm.sh/hook-weight"]) < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])


def test_statefulset_existing_secrets(k8s_tools: tools.Tools, render_dir: Path) -> None:
    """existingSecret (superuser: password, url) and roles.existingSecret (<role>-password,
    <role>-url): nothing generated, every reference points at them."""
    render = render_with(k8s_tools, render_dir, "everything", "existing-secrets", [
        "postgresql.statefulset.existingSecret=pg-admin", "postgresql.statefulset.roles.existingSecret=pg-roles",
        "metrics.dashboards.datasource.existingSecret=grafana-pg"])
    assert not render.kind("Secret")
    (sts,) = render.kind("StatefulSet")
    assert env_of(pod_spec(sts)["containers"][0])["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "pg-admin", "key": "password"}
    env = env_of(bootstrap_of(render))
    assert env["UF_ADMIN_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "pg-admin", "key": "url"}
    assert env["UF_ROLE_PASSWORD_READER"]["valueFrom"]["secretKeyRef"] == {"name": "pg-roles", "key": "reader-password"}
    for obj, component, container in app_containers(render):
        if not is_bootstrap(container):
            ref = env_of(container)[ROLE_URL_ENV[component]]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "pg-roles", "key": f"{COMPONENT_ROLE[component]}-url"}, obj["metadata"]["name"]
    # the superuser's Secret alone given: the roles' Secret is still generated
    render = render_with(k8s_tools, render_dir, "defaults", "existing-admin",
                         ["postgresql.statefulset.existingSecret=pg-admin"])
    assert sorted(s["metadata"]["name"] for s in render.kind("Secret")) == [
        "uf-userflow-grafana-datasource", "uf-userflow-postgresql-roles"]
    # roles given but Grafana's copy of the password not: the chart cannot make one
    cmd = [str(k8s_tools.helm), "template", "uf", str(tools.CHART), "--kube-version", tools.KUBE_VERSION,
           "--set", "postgresql.statefulset.roles.existingSecret=pg-roles"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "metrics.dashboards.datasource.existingSecret" in done.stderr


# --- cloudnativepg mode ---------------------------------------------------------------

def test_cloudnativepg_managed_roles(renders: dict[str, Render]) -> None:
    """The owner (postgresql.username) is the migrator; the five others are managed roles:
    login, no superuser, no createrole/createdb, no RLS bypass, each with a basic-auth
    Secret the chart generates, whose `uri` its component reads."""
    render = renders["cloudnativepg"]
    (cluster,) = render.kind("Cluster")
    name = cluster["metadata"]["name"]
    assert cluster["spec"]["bootstrap"]["initdb"]["owner"] == "userflow"
    managed = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    assert set(managed) == {f"userflow_{r}" for r in ROLES if r != "migrator"}
    secrets = {s["metadata"]["name"]: s for s in render.kind("Secret")}
    for role_name, role in managed.items():
        assert role["ensure"] == "present" and role["login"] is True
        assert not any(role.get(k) for k in ("superuser", "createdb", "createrole", "replication", "bypassrls"))
        secret = secrets[role["passwordSecret"]["name"]]
        assert secret["type"] == "kubernetes.io/basic-auth"
        assert secret["metadata"]["labels"]["cnpg.io/reload"] == "true"
        data = secret["stringData"]
        assert data["username"] == role_name and len(data["password"]) >= 32
        url = urlsplit(data["uri"])
        assert (url.username, unquote(url.password)) == (role_name, data["password"])
        assert (url.hostname, url.port, url.path) == (f"{name}-rw", 5432, "/userflow")
    assert len(secrets) == len(managed) + 1  # and Grafana's copy of the dashboards role's password
    grafana = secrets.pop("uf-userflow-grafana-datasource")
    assert grafana["stringData"] == {"USERFLOW_DASHBOARDS_PASSWORD": secrets[
        managed["userflow_dashboards"]["passwordSecret"]["name"]]["stringData"]["password"]}
    for obj, component, container in app_containers(render):
        ref = env_of(container)[ROLE_URL_ENV[component]]["valueFrom"]["secretKeyRef"]
        role = COMPONENT_ROLE[component]
        expected = f"{name}-app" if role == "migrator" else managed[f"userflow_{role}"]["passwordSecret"]["name"]
        assert ref == {"name": expected, "key": "uri"}, obj["metadata"]["name"]


# --- external mode --------------------------------------------------------------------

def test_external_secret_per_role(k8s_tools: tools.Tools, render_dir: Path) -> None:
    """A role given its own Secret reads it; the others fall back to the one URL Secret."""
    render = render_with(k8s_tools, render_dir, "external", "per-role", [
        "api.enabled=true", "mcp.enabled=true",
        "postgresql.external.roles.consumer.existingSecret=uf-consumer",
        "postgresql.external.roles.consumer.key=DSN",
        "postgresql.external.roles.reader.existingSecret=uf-reader"])
    expected = {"consumer": {"name": "uf-consumer", "key": "DSN"}, "reader": {"name": "uf-reader", "key": "url"}}
    seen = set()
    for obj, component, container in app_containers(render):
        role = COMPONENT_ROLE[component]
        ref = env_of(container)[ROLE_URL_ENV[component]]["valueFrom"]["secretKeyRef"]
        assert ref == expected.get(role, {"name": "userflow-db", "key": "DATABASE_URL"}), obj["metadata"]["name"]
        seen.add(component)
    assert seen == set(COMPONENT_ROLE)
    assert bootstrap_of(render) is None


def test_external_needs_a_secret_for_every_role(k8s_tools: tools.Tools, render_dir: Path) -> None:
    """Without the shared Secret every role needs its own; with all five, none is needed."""
    all_five = [f"postgresql.external.roles.{r}.existingSecret=uf-{r}" for r in COMPONENT_ROLES]
    render = render_with(k8s_tools, render_dir, "external", "all-roles",
                         ["postgresql.external.existingSecret=", "api.enabled=true", *all_five])
    names = {env_of(c)[ROLE_URL_ENV[comp]]["valueFrom"]["secretKeyRef"]["name"]
             for _, comp, c in app_containers(render)}
    assert names == {f"uf-{r}" for r in COMPONENT_ROLES}
    cmd = [str(k8s_tools.helm), "template", "uf", str(tools.CHART), "--kube-version", tools.KUBE_VERSION,
           "--values", str(VALUES_DIR / "external.yaml"), "--set", "postgresql.external.existingSecret=",
           *[a for s in all_five[:-1] for a in ("--set", s)]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "schema" in done.stderr, done.stderr
