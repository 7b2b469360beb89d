"""Cancelling a run: mark it, and stop the process executing it when it runs here.

Kept apart from the engine so that ``run cancel`` touches only the history: a
cold ``workerctl run cancel`` loads no plugins (the registry is asked for only
when the run belongs to a remote executor).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from workerctl.engine import halts
from workerctl.engine.remote import as_remote
from workerctl.errors import UsageError
from workerctl.history.store import History
from workerctl.history.sweep import verified
from workerctl.runs.model import CANCELLED, QUEUED, RUNNING, Run, RunError

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry


def cancel_run(history: History, run_id: str, by: str, *, registry: Callable[[], Registry]) -> Run:
    """A pending run's owner is only the process that asked for it, so it is not
    signalled; a queued or running run's owner is the process executing it, and
    it gets SIGTERM (the engine then stops between steps, killing any program), or,
    when that process is this one (a batch cancelling its own runs), a halt
    (``engine.halts``) that wakes the thread waiting for the run's step."""
    before: list[str] = []

    def mark(run: Run) -> None:
        if run.finished:
            raise UsageError(
                f"run {run.id} is already {run.status}; only pending, queued or running runs can be cancelled"
            )
        before.append(run.status)
        run.error = RunError("cancelled", f"cancelled by {by}", f"it was {run.status} when cancelled")
        run.move(CANCELLED)

    stored = history.get(run_id)
    remote = (stored.owner or {}).get("remote")
    if remote and not stored.finished:
        _cancel_remote(history, stored, remote, registry)
    run = history.update(run_id, mark)
    owner = run.owner or {}
    if before[0] in (QUEUED, RUNNING) and owner.get("pid") == os.getpid():
        halts.halt(run_id)  # a thread of this process executes it (a batch): no signal reaches it
    if (
        before[0] in (QUEUED, RUNNING)
        and not owner.get("remote")
        and owner.get("pid") not in (None, os.getpid())
        and verified(owner)  # never a process not verified as the run's own (liveness.py)
    ):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(owner["pid"]), signal.SIGTERM)
    return run


def _cancel_remote(history: History, run: Run, executor_name: str, registry: Callable[[], Registry]) -> None:
    """Ask the remote executor (the task queue) to cancel its job first."""
    executor = as_remote(registry().executors.get(executor_name))
    if executor is None:
        raise UsageError(
            f"run {run.id} runs on executor {executor_name!r}, which is not "
            "installed here; it cannot be cancelled from this machine"
        )
    executor.cancel(run, history.workspace)
