"""Reruns guarded against duplicates: a new run of the same worker on the same record.

Repeating a failed run without changing its cause only repeats the failure, and
repeating a run that wrote comments writes them again. Both are refused where
every start is, by the duplicate guard (``runs.duplicate_guard``, exit 5), which
only ``--allow-repeat`` overrides, after the person has read what earlier runs
already wrote; a failure of a transient kind (``states.TRANSIENT_KINDS``: cancelled,
crashed, a provider down, a timeout) reruns as it is. The plan here only shows
the person what changed and what the guard will say (``refusal``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workerctl.errors import UsageError
from workerctl.runs.changes import changes_since, earlier_side_effects
from workerctl.runs.model import FAILED, FINISHED, Run
from workerctl.runs.states import TRANSIENT_KINDS

if TYPE_CHECKING:
    from workerctl.engine.launcher import Engine
    from workerctl.history.store import History
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.workspace import Workspace


@dataclass
class RerunPlan:
    run: Run
    changes: dict[str, Any]
    side_effects: list[dict[str, Any]] = field(default_factory=list)
    refusal: str | None = None

    @property
    def written(self) -> list[dict[str, Any]]:
        return [
            e
            for e in self.side_effects
            if e.get("created", True) and e.get("state", "committed") == "committed"
        ]


def repeats_failure(run: Run, changes: dict[str, Any]) -> bool:
    """Whether a rerun of ``run`` would fail the same way: it failed with a kind that
    is not transient and nothing changed since (the duplicate guard's own rule)."""
    kind = run.error.kind if run.error else None
    return run.status == FAILED and kind not in TRANSIENT_KINDS and not changes["anything"]


def plan_rerun(
    run: Run, *, history: History, records: RecordBook, registry: Registry, workspace: Workspace
) -> RerunPlan:
    """What a rerun would change and what was already written; ``refusal`` says why
    the duplicate guard will refuse it (without --allow-repeat)."""
    if run.status not in FINISHED:
        raise UsageError(f"run {run.id} is still {run.status}; wait for it or cancel it first")
    plan = RerunPlan(
        run,
        changes_since(run, workspace=workspace, registry=registry, records=records),
        earlier_side_effects(run, history),
    )
    if repeats_failure(run, plan.changes):
        plan.refusal = (
            f"run {run.id} {run.status} ({run.error.kind if run.error else '?'}) "
            "and nothing changed since: same worker configuration, same record, "
            "same plugins; a rerun would fail the same way"
        )
    return plan


FORCE_NOTE = (
    "note: --force overrides nothing: the duplicate guard decides every start; "
    "--allow-repeat repeats an unchanged failure or write"
)


def rerun(engine: Engine, plan: RerunPlan, *, detach: bool = False, allow_repeat: bool = False) -> Run:
    """Start the run ``plan_rerun`` planned (the plan is shown to the person first).

    Raises ``DuplicateRefused`` (exit 5) from the duplicate guard every start passes."""
    from workerctl.engine.launcher import StartOptions

    run = plan.run
    options = StartOptions(
        record_id=run.record_id,
        trigger="rerun",
        reason=f"rerun of {run.id}" + (" (repeat allowed)" if allow_repeat else ""),
        test=run.test,
        rerun_of=run.id,
        allow_repeat=allow_repeat,
    )
    if detach:
        return engine.start_detached(run.worker, options)
    return engine.start(run.worker, options)
