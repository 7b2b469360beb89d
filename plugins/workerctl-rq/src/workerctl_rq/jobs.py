"""The job RQ workers execute: one run, through workerctl's own engine."""

from __future__ import annotations

import os
import socket
import time

from workerctl.api import Run, RunFinishedElsewhere, execute_remote, find_workspace


class JobSink:
    """Where the engine's progress goes on a worker: the RQ job's meta, not a history.

    A retried or redelivered job starts again from the run it was given; every
    side effect is keyed by the run id, so it is not written twice.
    """

    def __init__(self, job) -> None:
        self.job = job

    def save(self, run: Run, *, executing: bool = False) -> Run:
        if self.job is not None:
            if self.job.get_status() in ("canceled", "stopped"):
                raise RunFinishedElsewhere(run)
            self.job.meta["run"] = run.to_dict()
            self.job.meta["heartbeat"] = time.time()
            self.job.save_meta()
        return run

    def heartbeat(self, run_id: str) -> None:
        if self.job is not None:
            self.job.meta["heartbeat"] = time.time()
            self.job.save_meta()


def execute_run(run_data: dict) -> dict:
    """Execute the run in this worker's workspace; the finished run is the job's result."""
    from rq import get_current_job

    workspace = find_workspace(os.environ.get("WORKERCTL_WORKSPACE"))
    job = get_current_job()
    if job is not None:
        job.meta["deliveries"] = int(job.meta.get("deliveries", 0)) + 1
        job.meta.update(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "where": f"pid {os.getpid()} on {socket.gethostname()}",
                "heartbeat": time.time(),
            }
        )
        job.save_meta()
    done = execute_remote(Run.from_dict(run_data), JobSink(job), workspace)
    return done.to_dict()
