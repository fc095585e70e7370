"""The kopf side: settings at start-up, and short handlers that call converge().

Start-up also opens the one database pool every handler and timer tick borrows
from (converge.open_pool); clean-up closes it.

Create, update, resume and a drift timer all run the same level-based
converge(); the delete handler (kopf's finalizer) runs finalize(). Errors are
turned into kopf's here and only here: InvalidSpec -> PermanentError (the
status says why; the next change of the resource tries again), Unavailable ->
TemporaryError with a growing delay.

The registry is built by a function rather than at import, so the drift
interval is a setting (the tests make it short) and a test can run several.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kopf

from userflow.config import Settings
from userflow.operator import kube
from userflow.operator.converge import Deps, Outcome, converge, finalize, open_pool
from userflow.operator.errors import InvalidSpec, Unavailable
from userflow.operator.spec import GROUP, PLURAL, VERSION, Company
from userflow.operator.status import changes

COMPANIES = (GROUP, VERSION, PLURAL)
# kopf ignores annotations under its own storage prefix when it looks for changes,
# so it must not be userflow.io: userflow.io/rotate-keys has to count as a change.
KOPF_PREFIX = "operator.userflow.io"


class ObjectLocks:
    """A timer tick and a change handler of the same Company must not converge at once."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def hold(self, uid: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(uid, threading.Lock())
        with lock:
            yield

    def forget(self, uid: str) -> None:
        with self._guard:
            self._locks.pop(uid, None)


def backoff(retry: int) -> float:
    return float(min(2 ** retry, 60))


def apply_outcome(outcome: Outcome, body: kopf.Body, status: Any, patch: kopf.Patch, retry: int,
                  logger: kopf.Logger, permanent: bool = True) -> None:
    for line in outcome.done:
        logger.info(line)
        # An Event for each real change; kopf's own (a timer's "succeeded" every few
        # seconds) only from warnings up, see configure().
        kopf.event(body, type="Normal", reason="Converged", message=line)
    patch.status.update(changes(dict(status or {}), outcome.status))
    if isinstance(outcome.error, Unavailable):
        raise kopf.TemporaryError(str(outcome.error), delay=backoff(retry))
    if isinstance(outcome.error, InvalidSpec) and permanent:
        raise kopf.PermanentError(str(outcome.error))


def build_registry(config: Settings) -> kopf.OperatorRegistry:
    # Named config, not settings: kopf hands the start-up handler its own settings by that name.
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        settings.persistence.finalizer = "userflow.io/finalizer"
        settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=KOPF_PREFIX, key="last-handled-configuration")
        # One replica (the chart's Deployment is Recreate): no peering objects needed.
        settings.peering.standalone = True
        settings.posting.level = logging.WARNING
        # The client logs response bodies at DEBUG, and a Secret's body holds the keys.
        logging.getLogger("kubernetes.client.rest").setLevel(logging.INFO)
        # The pool logs every connection it lends at INFO; its warnings (a failed
        # reconnection, a dropped connection) are what matters.
        logging.getLogger("psycopg.pool").setLevel(logging.WARNING)
        # A watch that silently died must not go unnoticed for ever.
        settings.watching.connect_timeout = 10
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        # A Company deleted while its drift timer runs is finalized once the timer has
        # exited; kopf looks again after this many seconds (its default is 60).
        settings.background.cancellation_polling = 1
        api = kube.Kube(kube.connect())
        # Last, so a failed start-up (kopf retries it) leaves no pool behind.
        memo.deps = Deps(config, api, open_pool(config))
        memo.locks = ObjectLocks()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kube.connection_info(kube.configuration())

    @kopf.on.cleanup(registry=registry)
    def close(memo: kopf.Memo, **_: Any) -> None:
        if deps := getattr(memo, "deps", None):
            deps.pool.close()
            deps.kube.api.close()

    @kopf.on.create(*COMPANIES, registry=registry, id="converge")
    @kopf.on.update(*COMPANIES, registry=registry, id="converge")
    @kopf.on.resume(*COMPANIES, registry=registry, id="converge")
    def reconcile(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo,
                  retry: int, logger: kopf.Logger, **_: Any) -> None:
        company = Company.from_body(body)
        with memo.locks.hold(str(company.uid)):
            outcome = converge(company, memo.deps)
        apply_outcome(outcome, body, status, patch, retry, logger)

    @kopf.timer(*COMPANIES, registry=registry, id="drift", interval=config.operator_drift_seconds,
                initial_delay=config.operator_drift_seconds)
    def drift(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo,
              retry: int, logger: kopf.Logger, **_: Any) -> None:
        company = Company.from_body(body)
        with memo.locks.hold(str(company.uid)):
            outcome = converge(company, memo.deps)
        # An invalid spec was reported by the change handler already; the status says it.
        apply_outcome(outcome, body, status, patch, retry, logger, permanent=False)

    @kopf.on.delete(*COMPANIES, registry=registry, id="finalize")
    def cleanup(body: kopf.Body, memo: kopf.Memo, retry: int, logger: kopf.Logger,
                **_: Any) -> None:
        company = Company.from_body(body)
        with memo.locks.hold(str(company.uid)):
            try:
                logger.info(finalize(company, memo.deps))
            except Unavailable as exc:
                raise kopf.TemporaryError(str(exc), delay=backoff(retry)) from exc
        memo.locks.forget(str(company.uid))

    return registry
