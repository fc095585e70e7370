"""Session fixtures of the operator tests: the API server, a scratch database, the
real ingest (and consumer), and the operator itself under kopf.testing.KopfRunner;
plus the helpers the tests read the world with."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from kopf.testing import KopfRunner

from integration.stack import ROLE_OF, Stack, as_role, prepared_database, stack_env
from kubeharness import Cluster, HarnessError, build_binaries, install, operator_rbac, running_cluster
from userflow.config import Settings
from userflow.operator.handlers import build_registry

# Companies live in TENANTS and OTHER; KafkaTopics in KAFKA; the chart's release (the
# operator's ServiceAccount) in RELEASE.
TENANTS, OTHER, KAFKA, RELEASE = "tenants", "tenants-other", "kafka", "userflow"
STRIMZI_CLUSTER = "test-kafka"
DRIFT_SECONDS = 1.0
GRACE_SECONDS = 3.0
T = TypeVar("T")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    error = None
    try:
        bins = build_binaries()
    except HarnessError as exc:
        error = f"could not build kube-apiserver and kubectl:\n{exc}"
    if error:
        pytest.fail(error, pytrace=False)
    rbac = operator_rbac(RELEASE, KAFKA)
    with running_cluster(bins, tmp_path_factory.mktemp("kube"), rbac.service_account) as running:
        install(running, rbac, [TENANTS, OTHER, KAFKA, RELEASE])
        yield running


@pytest.fixture(scope="session")
def prefix() -> str:
    return f"ufo{uuid.uuid4().hex[:8]}.events"


@pytest.fixture(scope="session")
def database_url(service_env: dict[str, str]) -> Iterator[str]:
    with prepared_database(service_env["UF_ADMIN_DATABASE_URL"],
                           f"uf_op_{uuid.uuid4().hex[:8]}") as url:
        yield url


@pytest.fixture(scope="session")
def stack(service_env: dict[str, str], database_url: str, prefix: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real ingest and consumer, on the operator's database and topic prefix."""
    s = Stack(stack_env(service_env, database_url, prefix), database_url,
              tmp_path_factory.mktemp("stack"))
    try:
        s.start_ingest(workers=1)
        s.start_consumer()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def operator(cluster: Cluster, database_url: str, prefix: str) -> Iterator[KopfRunner]:
    config = Settings(
        database_url=database_url, operator_database_url=as_role(database_url, ROLE_OF["operator"]),
        topic_prefix=prefix, strimzi_namespace=KAFKA,
        strimzi_cluster=STRIMZI_CLUSTER, strimzi_topic_replicas=1,
        operator_drift_seconds=DRIFT_SECONDS, operator_key_grace_seconds=GRACE_SECONDS)
    log = cluster.workdir / "logs" / "operator.log"
    with pytest.MonkeyPatch.context() as env:
        # The operator has only the chart's RBAC, as in a cluster.
        env.setenv("KUBECONFIG", str(cluster.operator_kubeconfig))
        runner = KopfRunner(["run", "--standalone", "--verbose", "--namespace", TENANTS,
                             "--namespace", OTHER], registry=build_registry(config), timeout=60)
        try:
            with runner:
                yield runner
        finally:
            try:
                log.write_text(runner.output)  # kopf's log, for a failed run's post-mortem
            except Exception:  # noqa: BLE001  (the operator's own failure is re-raised above)
                pass


# --- reading the world -------------------------------------------------------------------

def eventually(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.1) -> T:
    """The first truthy value of check() within timeout seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"not within {timeout} s: {what} (last seen: {last!r})")


def company(name: str, namespace: str = TENANTS, annotations: dict[str, str] | None = None,
            **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "userflow.io/v1alpha1", "kind": "Company", "metadata": meta,
            "spec": {"displayName": name.title(), "tier": "pro", **spec}}


def condition(body: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for cond in ((body or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return cond
    return {}


def ready(cluster: Cluster, name: str, namespace: str = TENANTS) -> dict[str, Any] | None:
    """The Company once its status is Ready and describes its current generation."""
    body = cluster.get("company", name, namespace)
    if body and condition(body, "Ready").get("status") == "True" and \
            body["status"].get("observedGeneration") == body["metadata"]["generation"]:
        return body
    return None


def secret_keys(cluster: Cluster, name: str, namespace: str = TENANTS) -> tuple[str, str] | None:
    secret = cluster.get("secret", f"{name}-userflow-keys", namespace)
    if not secret:
        return None
    data = secret["data"]
    return base64.b64decode(data["writeKey"]).decode(), base64.b64decode(data["readKey"]).decode()


def topic_object(cluster: Cluster, prefix: str, slug: str) -> dict[str, Any] | None:
    return cluster.get("kafkatopic", f"{prefix.replace('.', '-')}-{slug}", KAFKA)


def company_row(database_url: str, slug: str) -> dict[str, Any] | None:
    with psycopg.connect(database_url) as conn:
        cur = conn.execute("SELECT * FROM company WHERE slug = %s", (slug,))
        row = cur.fetchone()
        return dict(zip([c.name for c in cur.description], row, strict=True)) if row else None


def live_key_count(database_url: str, company_id: Any) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM api_key WHERE company_id = %s"
                            " AND revoked_at IS NULL", (company_id,)).fetchone()[0]


def send(stack: Stack, key: str, user: str = "42") -> int:
    """One track call with this write key; the HTTP status."""
    body = {"userId": user, "event": "click", "messageId": str(uuid.uuid4()),
            "properties": {"selector": "#buy", "x": 10, "y": 20},
            "context": {"sessionId": "s-1", "page": {"url": "https://shop.example/"}}}
    return httpx.post(f"{stack.url}/v1/track", json=body, headers={"X-UserFlow-Key": key},
                      timeout=15).status_code


def log_path(cluster: Cluster) -> Path:
    return cluster.workdir / "logs"
