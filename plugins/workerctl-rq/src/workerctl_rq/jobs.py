"""The job RQ workers execute: one run, through workerctl's own engine.

The remote's own report of a run lives beside RQ's job, in a hash of its own
(``report_key``): the run as it is now (JSON), where it executes, and a heartbeat
**counter**. It is written by the work horse at each save and beat, so that it
comes back by itself when Redis loses its data mid-run (the next beat writes it
again), and it holds the finished run before the job returns: a run that finished
while Redis was flushed is still reported. The starting machine compares the
counter only with the value it saw before, on its own clock (a remote clock that
runs behind or ahead does not matter), see ``RQExecutor.refresh``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Any

from workerctl.api import Run, RunFinishedElsewhere, execute_remote, find_workspace, read_json

REPORT_PREFIX = "workerctl:run:"
REPORT_TTL = 7 * 86400  # seconds a report is kept when the job does not say (RQ's result_ttl)
FINAL_REPORT_SECONDS = 25.0  # how long a finished run's report waits for a Redis that is away


def report_key(run_id: str) -> str:
    return f"{REPORT_PREFIX}{run_id}"


def read_report(connection: Any, run_id: str) -> dict[str, Any]:
    """The remote's report of ``run_id``: ``run`` (a dict, or None), ``beat`` (the
    counter, or None before the first), ``where``, ``pid``, ``host``; {} when there is none."""
    raw = connection.hgetall(report_key(run_id)) or {}
    data = {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}
    if not data:
        return {}
    text = {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v for k, v in data.items()}
    try:
        run = read_json(text["run"]) if text.get("run") else None
    except ValueError:
        run = None
    pid = text.get("pid")
    return {
        "run": run if isinstance(run, dict) else None,
        "beat": text.get("beat"),
        "where": text.get("where") or "?",
        "pid": int(pid) if isinstance(pid, str) and pid.isascii() and pid.isdigit() else None,  # not "²"
        "host": text.get("host"),
    }


def ask_to_stop(connection: Any, run_id: str) -> None:
    """Tell the horse executing ``run_id`` to stop at its next save, through the report
    (RQ's own stop reaches it only while RQ still knows the job)."""
    with connection.pipeline() as pipe:
        pipe.hset(report_key(run_id), "cancel", "1")
        pipe.expire(report_key(run_id), REPORT_TTL)
        pipe.execute()


class JobSink:
    """Where the engine's progress goes on a worker: the run's report (and the RQ
    job's meta), not a history.

    Redis that is down or has lost the job does not stop the run: the engine goes on
    (every side effect is keyed by the run id), the report is written again at the
    next save or beat, and the starting machine judges the run by whether its beats
    arrive. Only a job RQ says was cancelled or stopped stops it.
    """

    def __init__(self, job: Any) -> None:
        self.job = job
        self.beats = 0
        self.last: str | None = None  # the run as last reported (JSON)
        self.ttl = int(getattr(job, "result_ttl", None) or REPORT_TTL) if job is not None else REPORT_TTL
        self.where = {"pid": str(os.getpid()), "host": socket.gethostname()}
        self.where["where"] = f"pid {self.where['pid']} on {self.where['host']}"

    def save(self, run: Run, *, executing: bool = False) -> Run:
        if self.job is not None:
            if self._status() in ("canceled", "stopped"):
                raise RunFinishedElsewhere(run)
            self.report(run)
        return run

    def heartbeat(self, run_id: str) -> None:
        if self.job is not None:
            self.report(None)

    def report(self, run: Run | None) -> bool:
        """One beat, with the run when it changed; a lost connection skips it (the
        next one writes the report whole again). Whether it reached Redis."""
        from redis.exceptions import RedisError

        self.beats += 1
        fields = {**self.where, "beat": f"{os.getpid()}.{self.beats}"}
        if run is not None:
            self.last = json.dumps(run.to_dict())
        if self.last:
            fields["run"] = self.last
        try:
            with self.job.connection.pipeline() as pipe:
                pipe.hset(report_key(self.job.id), mapping=fields)
                pipe.expire(report_key(self.job.id), self.ttl)
                pipe.execute()
        except RedisError:
            return False
        return True

    def deliver(self, run: Run, within: float = FINAL_REPORT_SECONDS) -> bool:
        """The finished run's report, tried again while Redis is away (restarting) for
        up to ``within`` seconds: the run's outcome is the report the starting
        machine reads, and RQ cannot store its result while Redis is away either."""
        import time

        deadline = time.monotonic() + within
        delay = 0.25
        while not self.report(run):
            if time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 4.0)
        return True

    def _status(self) -> str | None:
        from redis.exceptions import RedisError
        from rq.exceptions import InvalidJobOperation, NoSuchJobError

        try:
            if self.job.connection.hget(report_key(self.job.id), "cancel"):
                return "canceled"
            status = self.job.get_status()
        except (RedisError, InvalidJobOperation, NoSuchJobError):
            return None  # Redis down, or it lost the job: not a cancel
        return str(getattr(status, "value", status)) if status is not None else None


def execute_run(run_data: dict) -> dict:
    """Execute the run in this worker's workspace; the finished run is the job's result
    (and the report's last word, which outlives a Redis that lost the job)."""
    from redis.exceptions import RedisError
    from rq import get_current_job

    workspace = find_workspace(os.environ.get("WORKERCTL_WORKSPACE"))
    job = get_current_job()
    sink = JobSink(job)
    if job is not None:
        job.meta["deliveries"] = int(job.meta.get("deliveries", 0)) + 1
        job.meta.update({k: sink.where[k] for k in ("host", "where")} | {"pid": os.getpid()})
        with contextlib.suppress(RedisError):  # the report below is what the starter reads
            job.save_meta()
        sink.report(None)
    done = execute_remote(Run.from_dict(run_data), sink, workspace)
    if job is not None:
        sink.deliver(done)
    return done.to_dict()
