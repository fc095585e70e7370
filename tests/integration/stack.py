"""Real processes for integration tests: a scratch database, the ingest and the consumer.

Each test session gets its own database and its own topic prefix, so runs do
not see each other's data, and the processes are started the way a user
starts them: through the `userflow` command.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

from confluent_kafka import Consumer, TopicPartition

from userflow import topics
from userflow.store import bootstrap, migrate

ROOT = Path(__file__).resolve().parents[2]
USERFLOW = [sys.executable, "-m", "userflow.cli"]
# The address the test stack's ingest trusts as a proxy (loopback takes any 127.x source).
TRUSTED_PROXY = "127.0.0.2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")


@contextmanager
def scratch_database(admin_url: str, name: str) -> Iterator[str]:
    """A fresh database, dropped afterwards; yields its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def as_role(url: str, role: str) -> str:
    """The same database, logged in as another role (trust authentication locally)."""
    return make_conninfo(url, user=role)


# Each process's role, by the Settings name of its URL (userflow.config.Role).
ROLE_OF = {"migrate": "userflow_migrator", "ingest": "userflow_ingest",
           "consumer": "userflow_consumer", "operator": "userflow_operator",
           "reader": "userflow_reader"}


@contextmanager
def prepared_database(admin_url: str, name: str) -> Iterator[str]:
    """A scratch database made as production makes one: roles bootstrapped by a
    superuser, the schema migrated by userflow_migrator. Yields the superuser's URL to it
    (the tests' own reads and writes); the processes get their roles' (`role_env`)."""
    with scratch_database(admin_url, name) as url:
        bootstrap.apply(url, migrate.REPOSITORY_SQL, {})
        migrate.apply(as_role(url, ROLE_OF["migrate"]), migrate.REPOSITORY_SQL)
        yield url


def role_env(url: str) -> dict[str, str]:
    """Every process's UF_*_DATABASE_URL for the database of `url`, each its own role;
    UF_DATABASE_URL, the fallback, the read-only one. All set, so none is inherited."""
    env = {f"UF_{kind.upper()}_DATABASE_URL": as_role(url, role) for kind, role in ROLE_OF.items()}
    env["UF_DATABASE_URL"] = env["UF_READER_DATABASE_URL"]
    return env


@dataclass
class Process:
    """A `userflow` subcommand running as a child process, its output in a log file."""

    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([*USERFLOW, *self.args], env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def kill9(self) -> None:
        """kill -9 the whole process group (gunicorn master and workers alike)."""
        self.signal(signal.SIGKILL)
        self.proc.wait(10)  # type: ignore[union-attr]

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return -9

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    env: dict[str, str]
    database_url: str
    logs: Path
    port: int = field(default_factory=free_port)
    ingest: Process | None = None
    consumer: Process | None = None
    api: Process | None = None
    api_port: int = 0
    # The ingest's worker processes; each keeps its own rate-limit buckets.
    workers: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_ingest(self, workers: int = 2) -> None:
        self.workers = workers
        self.ingest = Process(["ingest", "--port", str(self.port), "--workers", str(workers)],
                              self.env, self.logs / "ingest.log")
        self.ingest.start()

        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 60, f"the ingest to be ready\n{self.ingest.tail()}")

    def start_api(self, workers: int = 1) -> str:
        """The query API on its own port; its base URL."""
        self.api_port = free_port()
        self.api = Process(["api", "--port", str(self.api_port), "--workers", str(workers)],
                           self.env, self.logs / "api.log")
        self.api.start()
        base = f"http://127.0.0.1:{self.api_port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 60, f"the query API to be ready\n{self.api.tail()}")
        return base

    def start_consumer(self, processes: int = 1) -> None:
        self.consumer = Process(["consume", "--processes", str(processes)], self.env,
                                self.logs / "consumer.log")
        self.consumer.start()

    def stop(self) -> None:
        for p in (self.ingest, self.consumer, self.api):
            if p is not None:
                p.stop()

    def rows(self, company_id: uuid.UUID | str | None = None) -> int:
        with psycopg.connect(self.database_url) as conn:
            if company_id is None:
                return conn.execute("SELECT count(*) FROM user_events").fetchone()[0]
            return conn.execute("SELECT count(*) FROM user_events WHERE company_id = %s",
                                (company_id,)).fetchone()[0]

    def dead_letters(self) -> int:
        """Messages in this stack's dead-letter topic (none if it was never made)."""
        consumer = Consumer({"bootstrap.servers": self.env["UF_KAFKA_BOOTSTRAP"],
                             "group.id": f"dlq-count-{uuid.uuid4().hex[:6]}"})
        try:
            topic = topics.dlq_topic(self.env["UF_TOPIC_PREFIX"])
            found = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if found is None or found.error is not None:
                return 0
            total = 0
            for partition in found.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                           timeout=10)
                total += high - low
            return total
        finally:
            consumer.close()

    def wait_rows(self, expected: int, company_id: uuid.UUID | str, timeout: float = 90) -> int:
        """Wait until the company has `expected` rows, then a moment more to catch extras."""
        wait_for(lambda: self.rows(company_id) >= expected, timeout,
                 f"{expected} rows (have {self.rows(company_id)})", every=0.5)
        time.sleep(1.0)
        return self.rows(company_id)


def stack_env(base: dict[str, str], database_url: str, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UF_")}
    env.update(base)
    env.update(role_env(database_url))
    env.update({
        "UF_TOPIC_PREFIX": prefix,
        "UF_CONSUMER_GROUP": f"{prefix}-consumer",
        "UF_BATCH_MAX_SECONDS": "0.2",
        # A client on 127.0.0.2 is a proxy of ours; one on 127.0.0.1 is not (test_hardening).
        "UF_TRUSTED_PROXIES": TRUSTED_PROXY + "/32",
        "UF_BODY_READ_TIMEOUT_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("UF_ADMIN_DATABASE_URL", None)  # the bootstrap's alone
    return env
