"""Remote executors: runs handed to another process or machine (a task queue).

A remote executor does not do steps here. ``submit`` hands the run over (it is
then ``queued``), ``refresh`` brings the local history up to date with what
happened remotely, and ``cancel`` asks the remote side to stop. On the remote
side, ``engine.launcher.execute_remote`` runs the same engine (checks, gate, limits)
and reports progress to a ``ProgressSink`` instead of a local history. This module
holds only the protocols and the local side's refresh: the engine imports it, never
the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

if TYPE_CHECKING:
    from workerctl.history.store import History
    from workerctl.plugins.manager import Registry
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


class RemoteRuns:
    """The run history as a remote executor's ``refresh`` sees it: ``get`` and
    ``update``, plus the two judgements an executor must not make for itself.

    - ``alive(run_id, beat)``: whether the remote's heartbeat is arriving, judged on
      this reader's clock (``history.sweep.beats_arriving``): ``beat`` is only compared
      with the value seen before, never with this clock, so a remote whose clock is
      off is judged by whether its beats change.
    - ``lost(run_id, message, hint)``: the broker no longer knows the run (its data
      flushed, or restarted empty) and no beat came for ``stale_after``: the outcome
      is what the ledger proves, or unknown (``outcome_unknown``), never "failed with
      no side effects".
    """

    def __init__(self, history: History, may_write: Callable[[Run], bool]) -> None:
        self.history, self.may_write = history, may_write
        self.workspace = history.workspace

    def get(self, run_id: str) -> Run:
        return self.history.get(run_id)

    def update(self, run_id: str, change: Callable[[Run], Any]) -> Run:
        return self.history.update(run_id, change)

    def alive(self, run_id: str, beat: Any) -> bool:
        from workerctl.history.sweep import beats_arriving

        return beats_arriving(self.history, run_id, beat)

    def lost(self, run_id: str, message: str, hint: str = "") -> Run:
        return self.history.update(
            run_id, lambda run: outcome_unknown(run, message, hint, self.may_write(run))
        )


#: the step key of the write a run whose report was lost may have made (``outcome_unknown``)
LOST_WRITE = "remote"


def outcome_unknown(run: Run, message: str, hint: str, may_write: bool) -> None:
    """Finish ``run`` (executed remotely) whose remote report was lost: failed with kind
    ``outcome_unknown``. What it reported before stays: committed effects stand (the
    ledger proves them), intended ones become ``unknown``. When the run may write and
    nothing it reported already stands for a write to its record (committed, held, or
    intended and so now unknown), one possible write to that record is added as
    unknown: the duplicate guard then refuses a repeat (exit 5, even with
    ``--allow-repeat``) until a person settles it (``workerctl ledger settle``). Never
    two unknowns for one write: a report read while the comment was intended, before
    the broker lost the rest, used to leave both."""
    from workerctl.runs.model import FAILED, RunError, now_iso

    if run.finished:
        return
    wrote = any(
        e.get("record_id") == run.record_id
        and e.get("state", "committed") in ("committed", "held", "intended")
        for e in run.side_effects
    )
    if may_write and run.record_id and not wrote:
        run.side_effects.append(
            {
                "kind": "write",
                "key": f"{run.id}:{LOST_WRITE}",
                "record_id": run.record_id,
                "state": "intended",  # never confirmed: the ledger reads it as unknown
                "by": "the remote worker (its report was lost)",
                "at": now_iso(),
            }
        )
    run.error = RunError("outcome_unknown", message, hint)
    run.move(FAILED)


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
    """The executor as a ``RemoteExecutor``, or None when it does its steps here. The
    answer is kept per executor object (a registry's executors live as long as the
    process): a protocol's ``isinstance`` looks up each of its members, and every start
    asked it of every executor installed."""
    kept = _REMOTE.get(id(executor))
    if kept is None or kept[0] is not executor:
        if len(_REMOTE) >= 256:
            _REMOTE.clear()
        kept = _REMOTE[id(executor)] = (executor, isinstance(executor, RemoteExecutor))
    return cast("RemoteExecutor", executor) if kept[1] else None


_REMOTE: dict[int, tuple[object, bool]] = {}


def refresh_remote(history: History, registry: Callable[[], Registry], warn: Callable[[str], None]) -> None:
    """Ask each remote executor (a task queue) about its unfinished runs, then copy
    the comments they wrote elsewhere into this machine's records.

    ``registry`` is called only when a remote executor has unfinished runs, so
    reading a history of local runs loads no plugins. Here, above the history, not
    in its crash sweep (``history.sweep.catch_up``): the history never calls up
    into the engine."""
    remote = history.remote_unfinished()
    if not remote:
        return
    loaded = registry()
    executors = loaded.executors
    store = RemoteRuns(history, lambda run: _may_write(loaded, run))
    received: list[str] = []
    for name, run_ids in remote.items():
        executor = as_remote(executors.get(name))
        if executor is None:
            warn(
                f"{len(run_ids)} unfinished run(s) belong to executor {name!r}, which is "
                "not installed; they cannot be brought up to date"
            )
            continue
        try:
            executor.refresh(store, run_ids, history.workspace)
        except Exception as exc:  # a queue that is down must not break reading
            warn(f"could not bring {name} runs up to date: {exc}")
        received.extend(run_ids)
    _receive_comments(history, registry(), received)


def _may_write(registry: Registry, run: Run) -> bool:
    """Whether ``run`` could write, from the configuration it started with (as the
    engine's ``may_write`` judges a worker)."""
    config = run.config or {}
    mode = registry.output_modes.get(str(config.get("output_mode") or ""))
    if mode is None or mode.apply is not None:
        return True  # a mode this install does not know may write: assume it does
    categories = config.get("tool_categories") or []
    return any(t.writes and t.category in categories for t in registry.tools.values())


def _receive_comments(history: History, registry: Registry, run_ids: list[str]) -> None:
    """Comments remote runs wrote on another machine's copy of the records land in
    this machine's built-in store too (keyed: once each, however often refreshed)."""
    from workerctl.records.book import open_records

    runs = [history.get(run_id) for run_id in run_ids]
    runs = [r for r in runs if any(e.get("kind") == "comment" for e in r.side_effects)]
    if runs:
        records = open_records(history.workspace, registry)
        for run in runs:
            receive_comments(run, records)


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
