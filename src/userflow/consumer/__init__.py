"""The Kafka → PostgreSQL loop (`userflow consume`).

`run` starts N consumer processes, each its own member of the consumer
group, and returns when they have all stopped; `run_one` is one of them.
SIGTERM or SIGINT makes each process finish (write and commit) its batch,
leave the group and exit 0.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import multiprocessing.synchronize
import signal
import threading
from types import FrameType

from userflow import tracing
from userflow.config import Settings
from userflow.consumer import logs, metrics
from userflow.consumer.runner import Runner, StopEvent

__all__ = ["ConsumerFailed", "run", "run_one"]

log = logging.getLogger(__name__)


class ConsumerFailed(RuntimeError):
    """A consumer process exited with an error; the others were stopped."""


def run_one(settings: Settings, stop_event: StopEvent, process_index: int = 0) -> None:
    """Consume until `stop_event` is set, then finish the batch in hand and leave the group."""
    port = metrics.serve(settings.consumer_metrics_port, process_index)
    if port:
        log.info("metrics served", extra={"port": port})
    tracing.configure("consumer")
    runner = Runner(settings, stop_event, process_index)
    # A batch keeps thousands of young containers alive at once; with the
    # default thresholds the collector rescans them many times per batch
    # (half the decode time, measured). Startup objects are frozen out of it.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        runner.run()
    finally:
        tracing.shutdown()


def run(settings: Settings, processes: int = 1) -> None:
    """Run `processes` consumers; return when all have stopped (after SIGTERM/SIGINT)."""
    if processes < 1:
        raise ValueError("processes must be at least 1")
    logs.configure(settings.log_level, "consumer" if processes == 1 else "consumer-main")
    if processes == 1:
        stop = threading.Event()
        _stop_on_signals(stop)
        run_one(settings, stop)
        return
    # spawn, not fork: a forked librdkafka or psycopg state is not safe to reuse.
    context = multiprocessing.get_context("spawn")
    stop_all = context.Event()
    _stop_on_signals(stop_all)
    children = [
        context.Process(target=_child, args=(settings, stop_all, i), name=f"consumer-{i}")
        for i in range(processes)
    ]
    for child in children:
        child.start()
    failed: list[str] = []
    while any(child.is_alive() for child in children):
        for child in children:
            child.join(timeout=0.5)
            if child.exitcode not in (None, 0) and child.name not in failed:
                failed.append(child.name)
                log.error(
                    "consumer process failed; stopping the others",
                    extra={"process": child.name, "exitcode": child.exitcode},
                )
                stop_all.set()
    if failed:
        raise ConsumerFailed(", ".join(failed))


def _child(settings: Settings, stop: multiprocessing.synchronize.Event, process_index: int) -> None:
    logs.configure(settings.log_level, f"consumer-{process_index}")
    # A terminal's Ctrl-C reaches every process of the group, not just the parent.
    _stop_on_signals(stop)
    run_one(settings, stop, process_index)


def _stop_on_signals(stop: threading.Event | multiprocessing.synchronize.Event) -> None:
    def handle(signum: int, _: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
