"""converge() without a cluster: the Kubernetes API is a dict-backed stand-in, the
database is the real PostgreSQL (a scratch database), reached through the operator's
own connection pool."""

from __future__ import annotations

import copy
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import kopf
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from integration.stack import ROLE_OF, as_role, free_port
from operator_fixtures import database_url, eventually  # noqa: F401  (database_url: a fixture, used by name)
from userflow.config import Settings
from userflow.operator.converge import Deps, converge, finalize, open_pool
from userflow.operator.errors import Unavailable
from userflow.operator.handlers import apply_outcome, backoff
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


def config(url: str, **settings: Any) -> Settings:
    """The operator's settings; it logs in as its own role, as in production."""
    return Settings(database_url=url, operator_database_url=as_role(url, ROLE_OF["operator"]),
                    topic_prefix="t.events", strimzi_namespace="kafka", **settings)


@pytest.fixture(scope="module")
def pool(database_url: str) -> Iterator[ConnectionPool]:  # noqa: F811
    opened = open_pool(config(database_url))
    opened.wait(10)
    try:
        yield opened
    finally:
        opened.close()


def deps(pool: ConnectionPool, kube: FakeKube) -> Deps:
    return Deps(config(pool.conninfo), kube, pool)  # type: ignore[arg-type]


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_a_second_pass_changes_nothing(database_url: str, pool: ConnectionPool) -> None:  # noqa: F811
    kube = FakeKube()
    first = converge(resource("calm"), deps(pool, kube))
    assert first.error is None
    assert conditions(first.status)["Ready"] == ("True", "Reconciled")
    assert sorted(kube.writes) == [("KafkaTopic", "t-events-calm"), ("Secret", "calm-userflow-keys")]
    with psycopg.connect(database_url) as conn:
        before = conn.execute("SELECT updated_at FROM company WHERE slug = 'calm'").fetchone()
    kube.writes.clear()
    second = converge(resource("calm", first.status), deps(pool, kube))
    assert second.status == first.status and not kube.writes
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT updated_at FROM company WHERE slug = 'calm'").fetchone() == before
        assert conn.execute("SELECT count(*) FROM api_key k JOIN company USING (company_id)"
                            " WHERE slug = 'calm'").fetchone()[0] == 2


def test_database_down_is_temporary_and_reported() -> None:
    kube = FakeKube()
    nowhere = open_pool(config("postgresql://nobody@127.0.0.1:1/none", operator_db_wait_seconds=1))
    try:
        outcome = converge(resource("offline"), Deps(config(nowhere.conninfo), kube, nowhere))  # type: ignore[arg-type]
    finally:
        nowhere.close()
    assert isinstance(outcome.error, Unavailable)
    assert conditions(outcome.status) == {
        "Ready": ("False", "DatabaseUnavailable"), "DatabaseReady": ("False", "DatabaseUnavailable"),
        "TopicReady": ("Unknown", "Waiting"), "KeysReady": ("Unknown", "Waiting")}
    assert not kube.writes


def test_api_down_is_temporary_and_the_row_is_kept(pool: ConnectionPool) -> None:
    outcome = converge(resource("unplugged"), deps(pool, FakeKube(down=True)))
    assert isinstance(outcome.error, Unavailable)
    assert conditions(outcome.status)["DatabaseReady"] == ("True", "RowInPlace")
    assert conditions(outcome.status)["TopicReady"] == ("False", "ApiUnreachable")
    assert outcome.status["companyId"]
    # Once the API is back, the same row is used.
    healed = converge(resource("unplugged", outcome.status), deps(pool, FakeKube()))
    assert healed.error is None and healed.status["companyId"] == outcome.status["companyId"]


def test_an_invalid_name_touches_nothing(pool: ConnectionPool) -> None:
    kube = FakeKube()
    outcome = converge(resource("dlq"), deps(pool, kube))
    assert outcome.error is not None and outcome.error.reason == "InvalidSpec"
    assert conditions(outcome.status)["DatabaseReady"][1] == "InvalidSpec"
    assert not kube.writes
    assert finalize(resource("dlq"), deps(pool, kube)) == "nothing to clean up"


def test_finalize_purge_removes_what_converge_made(database_url: str, pool: ConnectionPool) -> None:  # noqa: F811
    kube = FakeKube()
    made = converge(resource("gone", deletionPolicy="Purge"), deps(pool, kube))
    done = finalize(resource("gone", made.status, deletionPolicy="Purge"), deps(pool, kube))
    assert "revoked 2 key(s)" in done and "purged 0 event(s)" in done
    assert not kube.objects
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM company WHERE slug = 'gone'").fetchone()[0] == 0


# --- the connection pool ----------------------------------------------------------------

class Outage:
    """A TCP forwarder in front of PostgreSQL that can play a server restart for the
    clients behind it (and only them): down() drops every connection through it and
    refuses new ones, up() accepts again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self.lock:
            listener, self.listener = self.listener, None
            sockets, self.sockets = self.sockets, []
        for s in [listener, *sockets]:
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept/recv
                except OSError:
                    pass
                s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                return
            server.settimeout(None)
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_ticks_share_the_pools_connections(pool: ConnectionPool) -> None:
    """A drift tick borrows a connection instead of opening one: twenty passes over two
    Companies open no new connection."""
    kube = FakeKube()
    statuses = {name: converge(resource(name), deps(pool, kube)).status for name in ("tick", "tock")}
    opened = pool.get_stats()["connections_num"]
    for _ in range(10):
        for name, status in statuses.items():
            assert converge(resource(name, status), deps(pool, kube)).error is None
    assert pool.get_stats()["connections_num"] == opened
    assert pool.get_stats()["pool_size"] <= 4


def test_the_pool_rides_out_a_database_restart(database_url: str) -> None:  # noqa: F811
    """PostgreSQL goes away (connections dropped, new ones refused) and comes back: while
    it is away converge reports DatabaseUnavailable, which the handler raises as kopf's
    TemporaryError with a delay; once it is back the same pool serves again."""
    info = conninfo_to_dict(database_url)
    outage = Outage(str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))
    url = make_conninfo(database_url, host="127.0.0.1", port=str(outage.port))
    restartable = open_pool(config(url, operator_db_wait_seconds=2))
    try:
        restartable.wait(10)
        kube = FakeKube()
        d = Deps(config(url), kube, restartable)  # type: ignore[arg-type]
        first = converge(resource("phoenix"), d)
        assert first.error is None

        outage.down()
        during = converge(resource("phoenix", first.status), d)
        assert isinstance(during.error, Unavailable)
        assert conditions(during.status)["DatabaseReady"] == ("False", "DatabaseUnavailable")
        with pytest.raises(kopf.TemporaryError) as raised:
            apply_outcome(during, {}, first.status, kopf.Patch(), 3, logging.getLogger("test"),  # type: ignore[arg-type]
                          permanent=False)
        assert raised.value.delay == backoff(3) == 8

        outage.up()
        after = eventually(lambda: (o := converge(resource("phoenix", during.status), d)).error is None and o,
                           30, "converge through the pool after the restart", every=0.5)
        assert conditions(after.status)["Ready"] == ("True", "Reconciled")
        assert after.status["companyId"] == first.status["companyId"]
    finally:
        restartable.close()
        outage.down()
