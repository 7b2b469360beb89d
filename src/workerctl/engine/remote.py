"""Remote executors: runs handed to another process or machine (a task queue).

A remote executor does not do steps here. ``submit`` hands the run over (it is
then ``queued``), ``refresh`` brings the local history up to date with what
happened remotely, and ``cancel`` asks the remote side to stop. On the remote
side, ``execute_remote`` runs the same engine (checks, gate, limits) and
reports progress to a ``ProgressSink`` instead of a local history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from workerctl.runs.model import Run
    from workerctl.workers.model import Worker
    from workerctl.workspace import Workspace


class RunStore(Protocol):
    """The part of the run history a remote executor's ``refresh`` may use."""

    def get(self, run_id: str) -> Run:
        """The stored run (``NotFoundError`` when there is none)."""
        ...

    def update(self, run_id: str, change: Callable[[Run], Any]) -> Run:
        """Apply ``change`` to the stored run under the history lock and save it."""
        ...


class ProgressSink(Protocol):
    """Where the engine reports a remotely executed run's progress."""

    def save(self, run: Run, *, executing: bool = False) -> Run:
        """Keep the run as it is now; raise ``RunFinishedElsewhere`` when it was
        cancelled meanwhile, so the engine stops."""
        ...

    def heartbeat(self, run_id: str) -> None:
        """Say that the run's executing process is alive."""
        ...


@runtime_checkable
class RemoteExecutor(Protocol):
    """An executor that hands runs to somewhere else instead of doing steps here."""

    name: str
    description: str

    def submit(self, run: Run, worker: Worker, workspace: Workspace) -> None:
        """Hand the run over; raise ``ProviderUnavailable`` when it cannot be taken."""
        ...

    def refresh(self, history: RunStore, run_ids: list[str], workspace: Workspace) -> None:
        """Bring these unfinished runs up to date in the local history."""
        ...

    def cancel(self, run: Run, workspace: Workspace) -> None:
        """Ask the remote side to stop the run (or drop it while it waits)."""
        ...


def as_remote(executor: object) -> RemoteExecutor | None:
    """The executor as a ``RemoteExecutor``, or None when it does its steps here."""
    return executor if isinstance(executor, RemoteExecutor) else None


def execute_remote(run: Run, sink: ProgressSink, workspace: Workspace | None = None) -> Run:
    """Execute a run handed over by a remote executor, in this machine's workspace.

    ``run`` arrives queued, with the configuration it was started with; its
    executor's ``inner`` settings name the executor that does the steps here.
    Returns the finished run for the queue to carry back.
    """
    from workerctl.engine.loop import Engine
    from workerctl.plugins.manager import get_registry
    from workerctl.workspace import find_workspace

    workspace = workspace or find_workspace(None)
    engine = Engine(workspace, get_registry(), history=sink)  # type: ignore[arg-type]
    return engine.execute_remote(run, sink)


def receive_comments(run: Run, records: Any) -> int:
    """Copy the comments a remotely executed run wrote into this machine's built-in
    record store, keyed as they were written, so each lands here exactly once
    however often the run is refreshed (the ledger receives the effects through the
    history write that carries them back). Returns how many were new here."""
    from workerctl.errors import NotFoundError

    try:
        store = records.builtin()
    except NotFoundError:
        return 0
    new = 0
    for effect in run.side_effects:
        if effect.get("kind") != "comment" or effect.get("state", "committed") != "committed":
            continue
        target = effect.get("record_id")
        text = effect.get("text") if effect.get("by") != "output_mode" else run.output
        if not target or not text or store.get(target) is None:
            continue
        _, created = store.add_comment(
            target, text, author=f"worker:{run.worker}", run_id=run.id, key=effect.get("key")
        )
        new += created
    return new
