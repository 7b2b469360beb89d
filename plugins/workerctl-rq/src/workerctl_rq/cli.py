"""``workerctl rq worker``: RQ's own worker, executing workerctl runs.

It outlives its Redis: when the connection is lost (Redis restarted, a network cut)
RQ's worker loop ends, often with a long traceback in its log; here that is one line,
the work horse of the job in progress is waited for (its run goes on and reports
when Redis is back, see ``jobs``), and a new RQ worker starts once Redis answers again,
retrying with a growing delay (``BACKOFF``).

Test seam: ``WORKERCTL_TEST_CLOCK_OFFSET=SECONDS`` shifts this process's wall clock
(``time.time``) by that many seconds, for tests of a remote machine whose clock is
off (libfaketime hangs or breaks ``time.sleep`` in Python 3.11 here). Nothing but the
tests sets it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import time
from typing import Any

import click

CLOCK_OFFSET_ENV = "WORKERCTL_TEST_CLOCK_OFFSET"
BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0)  # seconds between attempts to reach a lost Redis; then the last


@click.group()
def rq() -> None:
    """Run workers on a pool of machines through RQ (Redis Queue)."""


@rq.command("worker")
@click.option("--queue", "queues", multiple=True, required=True, help="Queue to take runs from (repeatable).")
@click.option("--redis-url", help="Redis URL (default: $WORKERCTL_REDIS_URL, else redis://127.0.0.1:6379/0).")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--name", help="Worker name (default: RQ's).")
@click.pass_context
def worker(
    ctx: click.Context, queues: tuple[str, ...], redis_url: str | None, burst: bool, name: str | None
) -> None:
    """Execute queued runs with this machine's workspace (-w or WORKERCTL_WORKSPACE).

    When Redis goes away it says so in one line, waits for the job in progress, and
    reconnects with a growing delay (1 s up to 15 s), then takes the next job."""
    from redis.exceptions import RedisError

    from workerctl.api import HistoryError, UsageError, find_workspace
    from workerctl_rq.connection import connect, safe_url
    from workerctl_rq.connection import redis_url as default_url

    _shift_clock()
    workspace = find_workspace(ctx.find_root().params.get("workspace"))
    os.environ["WORKERCTL_WORKSPACE"] = str(workspace.root)  # for the work horses
    url = redis_url or default_url({})
    if not queues:
        raise UsageError("name at least one --queue")
    connection = connect(url)
    try:
        connection.ping()
    except RedisError as exc:
        raise HistoryError(
            f"cannot reach Redis at {safe_url(url)}: {exc}", hint="start Redis or pass --redis-url"
        ) from None
    click.echo(f"rq worker for {', '.join(queues)} at {safe_url(url)}, workspace {workspace.root}", err=True)
    lost = _LostConnection(safe_url(url))
    for logger in ("rq.worker", "rq.worker.base", "rq.worker.worker_classes"):
        logging.getLogger(logger).addFilter(lost)
    while True:
        rq_worker = _work(connection, queues, name, burst, lost)
        # RQ's signal handlers end with its loop: Ctrl-C or SIGTERM while reconnecting
        # stops the command as any other (130), not with RQ's StopRequested
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if lost.error is None:
            return  # the queues are empty (--burst), or a stop was asked for
        lost.say(lost.error)
        _wait_for_horse(rq_worker)
        connection = _reconnect(url, connect)
        with contextlib.suppress(RedisError):  # a Redis that kept its data still lists it as alive
            rq_worker.connection = connection
            rq_worker.register_death()
        lost.back()
        lost.error = None


def _work(
    connection: Any, queues: tuple[str, ...], name: str | None, burst: bool, lost: _LostConnection
) -> Any:
    """One RQ worker's life: until it stops, or its connection to Redis is lost
    (``lost.error`` says why)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from rq import Queue, Worker

    class _Worker(Worker):
        stopping = False  # a person or a supervisor asked it to stop (SIGINT, SIGTERM)

        def request_stop(self, signum: Any, frame: Any) -> None:
            self.stopping = True
            super().request_stop(signum, frame)

        def dequeue_job_and_maintain_ttl(self, *args: Any, **kwargs: Any) -> Any:
            found = super().dequeue_job_and_maintain_ttl(*args, **kwargs)
            lost.back()  # RQ's own retries reached Redis again (said only after an outage)
            return found

    rq_worker = _Worker([Queue(q, connection=connection) for q in queues], connection=connection, name=name)
    try:
        rq_worker.work(burst=burst, logging_level="WARNING")
    except (RedisConnectionError, RedisTimeoutError) as exc:  # its teardown, or its start
        lost.error = lost.error or exc
    if rq_worker.stopping:
        lost.error = None  # asked to stop while Redis was away: stop, do not reconnect
    return rq_worker


class _LostConnection(logging.Filter):
    """Turns RQ's log of a lost Redis (a traceback of a hundred lines, or a line every
    few seconds while it retries) into one line when it is lost and one when it is back.
    Other records pass unchanged."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.error: BaseException | None = None  # what ended an RQ worker's loop
        self.said = False

    def say(self, error: BaseException | str) -> None:
        if not self.said:
            self.said = True
            click.echo(
                f"lost Redis at {self.url} ({_one_line(error)}); reconnecting with a growing delay, "
                "then taking the next job",
                err=True,
            )

    def back(self) -> None:
        if self.said:
            self.said = False
            click.echo(f"reconnected to Redis at {self.url}", err=True)

    def filter(self, record: logging.LogRecord) -> bool:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, RedisConnectionError | RedisTimeoutError):
            self.error = self.error or exc
            return False
        message = str(record.msg)
        if "Redis connection timeout" in message:
            self.error = self.error or RedisTimeoutError("Redis did not answer in time")
            return False
        if "could not connect to Redis instance" in message:
            args = record.args if isinstance(record.args, tuple) else ()
            self.say(str(args[1]) if len(args) > 1 else "connection refused")
            return False
        return True


def _wait_for_horse(rq_worker: Any) -> None:
    """The job in progress goes on in its work horse (a child of this process) and
    reports when Redis is back: wait for it, so that one job at a time runs here."""
    pid = getattr(rq_worker, "horse_pid", 0)
    if pid:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _reconnect(url: str, connect: Any) -> Any:
    """A connection to Redis once it answers again: attempts spaced by ``BACKOFF``."""
    from redis.exceptions import RedisError

    for attempt in itertools.count():
        time.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
        connection = connect(url)
        try:
            connection.ping()
        except RedisError:
            continue
        return connection
    raise AssertionError("itertools.count() does not end")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _shift_clock() -> None:
    """The test seam of the module docstring."""
    offset = os.environ.get(CLOCK_OFFSET_ENV)
    if not offset:
        return
    try:
        seconds = float(offset)
    except ValueError:
        from workerctl.api import UsageError

        raise UsageError(f"{CLOCK_OFFSET_ENV}={offset!r} is not a number of seconds (a test seam)") from None
    real_time, real_time_ns = time.time, time.time_ns
    time.time = lambda: real_time() + seconds  # type: ignore[assignment]
    time.time_ns = lambda: real_time_ns() + int(seconds * 1e9)  # type: ignore[assignment]
