"""The operator against a real API server, PostgreSQL, Kafka and ingest.

Companies go in through `kubectl apply` (the kubectl built with the API server);
what the operator made is read back from the API, the database and the ingest,
which must accept the keys it wrote into the Secret.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from integration.stack import ROLE_OF, Process, Stack, as_role, free_port, wait_for
from kubeharness import Cluster
from operator_fixtures import (  # noqa: F401  (fixtures are used by name)
    GRACE_SECONDS,
    KAFKA,
    OTHER,
    STRIMZI_CLUSTER,
    TENANTS,
    cluster,
    company,
    company_row,
    condition,
    database_url,
    eventually,
    live_key_count,
    operator,
    prefix,
    ready,
    secret_keys,
    send,
    stack,
    topic_object,
)

# The first test also builds kube-apiserver and kubectl when they are not cached yet.
pytestmark = [pytest.mark.services, pytest.mark.usefixtures("operator"), pytest.mark.timeout(3600)]


def test_a_company_becomes_a_tenant_within_5_s_and_follows_its_tier(
        cluster: Cluster, stack: Stack, database_url: str, prefix: str) -> None:
    started = time.monotonic()
    cluster.apply(company("acme", displayName="Acme Shop", contactEmail="ops@acme.example",
                          region="eu-west-1", allowedOrigins=["https://shop.acme.example"]))

    def everything() -> tuple | None:
        row, topic = company_row(database_url, "acme"), topic_object(cluster, prefix, "acme")
        keys, body = secret_keys(cluster, "acme"), ready(cluster, "acme")
        return (row, topic, keys, body) if row and topic and keys and body else None

    row, topic, (write_key, read_key), body = eventually(everything, 5, "row, KafkaTopic, Secret, Ready")
    took = time.monotonic() - started
    assert took < 5
    assert (row["name"], row["subscription_tier"], row["topic_mode"]) == ("Acme Shop", "pro", "dedicated")
    assert (row["email"], row["region"], row["allowed_origins"]) == (
        "ops@acme.example", "eu-west-1", ["https://shop.acme.example"])
    assert (row["retention_days"], row["rate_limit_per_second"]) == (395, 2000)
    assert row["k8s_owner"] == f"{TENANTS}/acme" and str(row["k8s_uid"]) == body["metadata"]["uid"]
    assert topic["metadata"]["labels"]["strimzi.io/cluster"] == STRIMZI_CLUSTER
    assert topic["spec"]["topicName"] == f"{prefix}.acme"
    assert topic["spec"]["partitions"] == 3
    assert topic["spec"]["config"]["retention.ms"] == 7 * 86_400_000
    status = body["status"]
    assert status["companyId"] == str(row["company_id"])
    assert (status["topic"], status["secretName"]) == (f"{prefix}.acme", "acme-userflow-keys")
    for kind in ("Ready", "DatabaseReady", "TopicReady", "KeysReady"):
        assert condition(body, kind)["status"] == "True", body["status"]
    secret = cluster.get("secret", "acme-userflow-keys", TENANTS)
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("Company", body["metadata"]["uid"])
    assert write_key.startswith("ufw_") and read_key.startswith("ufr_")
    assert send(stack, write_key) == 200
    assert send(stack, read_key) == 401  # a read key cannot write
    events = eventually(lambda: cluster.kubectl(
        "get", "events", "-n", TENANTS, "--field-selector", "involvedObject.name=acme",
        "-o", "jsonpath={.items[*].message}").stdout, 5, "Events")
    assert "created KafkaTopic" in events and "KeysCreated" in events

    cluster.apply(company("acme", displayName="Acme Shop", contactEmail="ops@acme.example",
                          region="eu-west-1", allowedOrigins=["https://shop.acme.example"],
                          tier="enterprise"))
    eventually(lambda: (topic_object(cluster, prefix, "acme") or {}).get("spec", {}).get("partitions") == 6,
               10, "6 partitions")
    eventually(lambda: ready(cluster, "acme"), 10, "Ready at the new generation")
    row = company_row(database_url, "acme")
    assert (row["subscription_tier"], row["retention_days"], row["rate_limit_per_second"]) == (
        "enterprise", 730, 10_000)

    # Down to a shared tier: the dedicated topic goes, the tenant and its keys stay.
    cluster.apply(company("acme", displayName="Acme Shop", tier="basic"))
    eventually(lambda: topic_object(cluster, prefix, "acme") is None, 10, "KafkaTopic deleted")
    body = eventually(lambda: ready(cluster, "acme"), 10, "Ready as a shared tenant")
    assert body["status"]["topic"] == f"{prefix}.shared"
    assert company_row(database_url, "acme")["topic_mode"] == "shared"
    assert secret_keys(cluster, "acme") == (write_key, read_key)
    assert send(stack, write_key) == 200


def test_rotating_keys_keeps_the_old_ones_for_the_grace_period(
        cluster: Cluster, stack: Stack) -> None:
    cluster.apply(company("rotor", tier="basic"))
    old_write, old_read = eventually(lambda: ready(cluster, "rotor") and secret_keys(cluster, "rotor"),
                                     5, "keys")
    cluster.kubectl("annotate", "company", "rotor", "-n", TENANTS, "userflow.io/rotate-keys=first")
    rotated = time.monotonic()
    new_write, new_read = eventually(
        lambda: (k := secret_keys(cluster, "rotor")) and k[0] != old_write and k, 5, "new keys")
    assert new_read != old_read
    assert send(stack, new_write) == 200
    assert send(stack, old_write) == 200, "the old key must work during the grace period"
    assert time.monotonic() - rotated < GRACE_SECONDS
    eventually(lambda: send(stack, old_write) == 401, GRACE_SECONDS + 5, "the old key refused", every=0.3)
    assert send(stack, new_write) == 200
    body = eventually(lambda: ready(cluster, "rotor"), 5, "Ready")
    assert condition(body, "KeysReady")["reason"] == "KeysInPlace"
    # The same annotation again changes nothing.
    cluster.kubectl("annotate", "company", "rotor", "-n", TENANTS, "userflow.io/rotate-keys=first",
                    "--overwrite")
    time.sleep(1.5)
    assert secret_keys(cluster, "rotor") == (new_write, new_read)


def test_drift_is_repaired_by_the_timer(cluster: Cluster, stack: Stack, database_url: str,
                                        prefix: str) -> None:
    cluster.apply(company("mender"))
    write_key, _ = eventually(lambda: ready(cluster, "mender") and secret_keys(cluster, "mender"),
                              5, "keys")
    company_id = company_row(database_url, "mender")["company_id"]

    cluster.kubectl("delete", "secret", "mender-userflow-keys", "-n", TENANTS)
    fresh, _ = eventually(lambda: secret_keys(cluster, "mender"), 10, "the Secret made again")
    assert fresh != write_key
    assert send(stack, fresh) == 200
    assert send(stack, write_key) == 401, "the lost key must be revoked"
    assert live_key_count(database_url, company_id) == 2

    cluster.kubectl("delete", "kafkatopic", f"{prefix.replace('.', '-')}-mender", "-n", KAFKA)
    topic = eventually(lambda: topic_object(cluster, prefix, "mender"), 10, "the KafkaTopic made again")
    assert topic["spec"]["partitions"] == 3

    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM company WHERE slug = 'mender'")
    row = eventually(lambda: company_row(database_url, "mender"), 10, "the row made again")
    assert row["company_id"] == company_id, "the row comes back under its old id"
    again, _ = eventually(lambda: (k := secret_keys(cluster, "mender")) and k[0] != fresh and k,
                          10, "keys made again (the row's keys went with it)")
    assert send(stack, again) == 200
    eventually(lambda: ready(cluster, "mender"), 5, "Ready")


def test_delete_with_retain_keeps_the_row_and_revokes_the_keys(
        cluster: Cluster, stack: Stack, database_url: str, prefix: str) -> None:
    cluster.apply(company("keeper", deletionPolicy="Retain"))
    write_key, _ = eventually(lambda: ready(cluster, "keeper") and secret_keys(cluster, "keeper"),
                              5, "keys")
    assert send(stack, write_key) == 200
    cluster.kubectl("delete", "company", "keeper", "-n", TENANTS, "--timeout=30s")
    assert cluster.get("company", "keeper", TENANTS) is None
    row = company_row(database_url, "keeper")
    assert row is not None and live_key_count(database_url, row["company_id"]) == 0
    assert send(stack, write_key) == 401
    assert topic_object(cluster, prefix, "keeper") is None
    assert secret_keys(cluster, "keeper") is None


def test_delete_with_purge_drops_the_row_and_the_events(
        cluster: Cluster, stack: Stack, database_url: str, prefix: str) -> None:
    cluster.apply(company("purged", deletionPolicy="Purge"))
    write_key, _ = eventually(lambda: ready(cluster, "purged") and secret_keys(cluster, "purged"),
                              5, "keys")
    company_id = company_row(database_url, "purged")["company_id"]
    assert send(stack, write_key) == 200
    assert stack.wait_rows(1, company_id) == 1
    cluster.kubectl("delete", "company", "purged", "-n", TENANTS, "--timeout=30s")
    assert company_row(database_url, "purged") is None
    assert stack.rows(company_id) == 0
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_key WHERE company_id = %s",
                            (company_id,)).fetchone()[0] == 0
    assert topic_object(cluster, prefix, "purged") is None
    assert send(stack, write_key) == 401


def test_invalid_companies_are_refused_or_reported(cluster: Cluster, database_url: str) -> None:
    # What the CRD's schema can check, the API server refuses.
    bad = cluster.kubectl("apply", "-f", "-", check=False, stdin=_yaml(company("gold", tier="gold")))
    assert bad.returncode != 0 and "tier" in bad.stderr
    dotted = cluster.kubectl("apply", "-f", "-", check=False, stdin=_yaml(company("a.b")))
    assert dotted.returncode != 0 and "DNS label" in dotted.stderr
    cluster.apply(company("shrink", partitions=4))
    eventually(lambda: ready(cluster, "shrink"), 5, "Ready")
    shrink = cluster.kubectl("apply", "-f", "-", check=False, stdin=_yaml(company("shrink", partitions=2)))
    assert shrink.returncode != 0 and "never shrink" in shrink.stderr

    # What it cannot, the operator reports in status: a name another namespace holds.
    cluster.apply(company("twin"))
    eventually(lambda: ready(cluster, "twin"), 5, "the first twin Ready")
    cluster.apply(company("twin", namespace=OTHER))
    body = eventually(lambda: (b := cluster.get("company", "twin", OTHER)) and
                      condition(b, "DatabaseReady").get("status") == "False" and b, 5, "refused twin")
    assert condition(body, "DatabaseReady")["reason"] == "InvalidSpec"
    assert f"{TENANTS}/twin" in condition(body, "DatabaseReady")["message"]
    assert condition(body, "Ready")["status"] == "False"
    assert condition(body, "KeysReady")["status"] == "Unknown"
    assert secret_keys(cluster, "twin", OTHER) is None
    assert company_row(database_url, "twin")["k8s_owner"] == f"{TENANTS}/twin"
    # Deleting the refused one leaves the first one's tenant alone.
    cluster.kubectl("delete", "company", "twin", "-n", OTHER, "--timeout=30s")
    assert live_key_count(database_url, company_row(database_url, "twin")["company_id"]) == 2


def _yaml(doc: dict) -> str:
    import yaml

    return yaml.safe_dump(doc)


def test_the_operator_command_serves_its_health_endpoint(
        cluster: Cluster, database_url: str, tmp_path: Path) -> None:
    """`userflow operator` as the chart starts it (on a namespace of its own here)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UF_")}
    env.update(KUBECONFIG=str(cluster.operator_kubeconfig),
               UF_OPERATOR_DATABASE_URL=as_role(database_url, ROLE_OF["operator"]),
               UF_STRIMZI_NAMESPACE=KAFKA, UF_STRIMZI_CLUSTER=STRIMZI_CLUSTER)
    both = Process(["operator", "--all-namespaces", "--namespace", "x"], env, tmp_path / "usage.log")
    both.start()
    assert both.proc.wait(60) == 2
    command = Process(["operator", "--health-port", str(port), "--namespace", "idle"], env,
                      tmp_path / "operator.log")
    command.start()
    try:
        wait_for(lambda: _health(port), 60, f"/healthz of `userflow operator`\n{command.tail()}")
    finally:
        assert command.stop() == 0, command.tail()


def _health(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
