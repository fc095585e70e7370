"""converge() without a cluster: the Kubernetes API is a dict-backed stand-in, the
database is the real PostgreSQL (a scratch database)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import psycopg
import pytest

from operator_fixtures import database_url  # noqa: F401  (a fixture, used by name)
from userflow.operator.config import OperatorConfig
from userflow.operator.converge import Deps, converge, finalize
from userflow.operator.errors import Unavailable
from userflow.operator.spec import Company

pytestmark = pytest.mark.services


class FakeKube:
    """The calls converge() makes, on dicts; `writes` records each change."""

    def __init__(self, down: bool = False) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []
        self.down = down

    def _get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if self.down:
            raise Unavailable("connection refused", "ApiUnreachable")
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found else None

    def _put(self, kind: str, namespace: str, body: dict[str, Any]) -> None:
        self.objects[(kind, namespace, body["metadata"]["name"])] = copy.deepcopy(body)
        self.writes.append((kind, body["metadata"]["name"]))

    def _delete(self, kind: str, namespace: str, name: str) -> bool:
        self.writes.append((f"-{kind}", name))
        return self.objects.pop((kind, namespace, name), None) is not None

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get("Secret", namespace, name)

    def put_secret(self, namespace: str, body: dict[str, Any], exists: bool) -> None:
        self._put("Secret", namespace, body)

    def delete_secret(self, namespace: str, name: str) -> bool:
        return self._delete("Secret", namespace, name)

    def get_topic(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get("KafkaTopic", namespace, name)

    def create_topic(self, namespace: str, body: dict[str, Any]) -> None:
        self._put("KafkaTopic", namespace, body)

    patch_topic = create_topic

    def delete_topic(self, namespace: str, name: str) -> bool:
        return self._delete("KafkaTopic", namespace, name)


def resource(name: str, status: dict[str, Any] | None = None, **spec: Any) -> Company:
    return Company.from_body({
        "apiVersion": "userflow.io/v1alpha1", "kind": "Company",
        "metadata": {"name": name, "namespace": "shop", "uid": str(uuid.UUID(int=hash(name) & (2**128 - 1))),
                     "generation": 1},
        "spec": {"displayName": name.title(), "tier": "pro", **spec}, "status": status or {}})


def deps(url: str, kube: FakeKube) -> Deps:
    config = OperatorConfig(database_url=url, topic_prefix="t.events", shared_topic="t.events.shared",
                            strimzi_namespace="kafka")
    return Deps(config, kube)  # type: ignore[arg-type]


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_a_second_pass_changes_nothing(database_url: str) -> None:  # noqa: F811
    kube = FakeKube()
    first = converge(resource("calm"), deps(database_url, kube))
    assert first.error is None
    assert conditions(first.status)["Ready"] == ("True", "Reconciled")
    assert sorted(kube.writes) == [("KafkaTopic", "t-events-calm"), ("Secret", "calm-userflow-keys")]
    with psycopg.connect(database_url) as conn:
        before = conn.execute("SELECT updated_at FROM company WHERE slug = 'calm'").fetchone()
    kube.writes.clear()
    second = converge(resource("calm", first.status), deps(database_url, kube))
    assert second.status == first.status and not kube.writes
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT updated_at FROM company WHERE slug = 'calm'").fetchone() == before
        assert conn.execute("SELECT count(*) FROM api_key k JOIN company USING (company_id)"
                            " WHERE slug = 'calm'").fetchone()[0] == 2


def test_database_down_is_temporary_and_reported(database_url: str) -> None:  # noqa: F811
    kube = FakeKube()
    down = deps(database_url, kube)
    down.connect = lambda: psycopg.connect("postgresql://nobody@127.0.0.1:1/none", connect_timeout=1)
    outcome = converge(resource("offline"), down)
    assert isinstance(outcome.error, Unavailable)
    assert conditions(outcome.status) == {
        "Ready": ("False", "DatabaseUnavailable"), "DatabaseReady": ("False", "DatabaseUnavailable"),
        "TopicReady": ("Unknown", "Waiting"), "KeysReady": ("Unknown", "Waiting")}
    assert not kube.writes


def test_api_down_is_temporary_and_the_row_is_kept(database_url: str) -> None:  # noqa: F811
    outcome = converge(resource("unplugged"), deps(database_url, FakeKube(down=True)))
    assert isinstance(outcome.error, Unavailable)
    assert conditions(outcome.status)["DatabaseReady"] == ("True", "RowInPlace")
    assert conditions(outcome.status)["TopicReady"] == ("False", "ApiUnreachable")
    assert outcome.status["companyId"]
    # Once the API is back, the same row is used.
    healed = converge(resource("unplugged", outcome.status), deps(database_url, FakeKube()))
    assert healed.error is None and healed.status["companyId"] == outcome.status["companyId"]


def test_an_invalid_name_touches_nothing(database_url: str) -> None:  # noqa: F811
    kube = FakeKube()
    outcome = converge(resource("dlq"), deps(database_url, kube))
    assert outcome.error is not None and outcome.error.reason == "InvalidSpec"
    assert conditions(outcome.status)["DatabaseReady"][1] == "InvalidSpec"
    assert not kube.writes
    assert finalize(resource("dlq"), deps(database_url, kube)) == "nothing to clean up"


def test_finalize_purge_removes_what_converge_made(database_url: str) -> None:  # noqa: F811
    kube = FakeKube()
    made = converge(resource("gone", deletionPolicy="Purge"), deps(database_url, kube))
    done = finalize(resource("gone", made.status, deletionPolicy="Purge"), deps(database_url, kube))
    assert "revoked 2 key(s)" in done and "purged 0 event(s)" in done
    assert not kube.objects
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM company WHERE slug = 'gone'").fetchone()[0] == 0
