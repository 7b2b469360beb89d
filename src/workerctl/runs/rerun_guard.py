"""Reruns guarded against duplicates: a new run of the same worker on the same record.

Repeating a failed run without changing its cause only repeats the failure, and
repeating a run that wrote comments writes them again. So a rerun is refused
(exit 2) when nothing changed since a failed run, unless ``--force``; and like
every start it passes the duplicate guard (``runs.duplicate_guard``, exit 5),
which ``--allow-repeat`` (or ``--force``) overrides, after the person has read
what earlier runs already wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workerctl.errors import UsageError
from workerctl.runs.changes import changes_since, earlier_side_effects
from workerctl.runs.model import COMPLETED, FINISHED, Run

if TYPE_CHECKING:
    from workerctl.engine.launcher import Engine
    from workerctl.history.store import History
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.workspace import Workspace


class RerunRefused(UsageError):
    def __init__(self, message: str, plan: RerunPlan) -> None:
        super().__init__(
            message,
            hint="fix the cause (e.g. 'workerctl worker edit "
            f"{plan.run.worker}'), or pass --force to rerun anyway",
        )
        self.plan = plan


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


def plan_rerun(
    run: Run, *, history: History, records: RecordBook, registry: Registry, workspace: Workspace
) -> RerunPlan:
    """What a rerun would change and what was already written; ``refusal`` says why not."""
    if run.status not in FINISHED:
        raise UsageError(f"run {run.id} is still {run.status}; wait for it or cancel it first")
    plan = RerunPlan(
        run,
        changes_since(run, workspace=workspace, registry=registry, records=records),
        earlier_side_effects(run, history),
    )
    if run.status != COMPLETED and not plan.changes["anything"]:
        plan.refusal = (
            f"run {run.id} {run.status} ({run.error.kind if run.error else '?'}) "
            "and nothing changed since: same worker configuration, same record, "
            "same plugins; a rerun would fail the same way"
        )
    return plan


def rerun(
    engine: Engine, plan: RerunPlan, *, force: bool, detach: bool = False, allow_repeat: bool = False
) -> Run:
    """Start the run ``plan_rerun`` planned (the plan is shown to the person first).

    Raises ``RerunRefused`` (exit 2) or ``DuplicateRefused`` (exit 5, from the
    duplicate guard every start passes)."""
    from workerctl.engine.launcher import StartOptions

    run = plan.run
    if plan.refusal and not force:
        raise RerunRefused(plan.refusal, plan)
    options = StartOptions(
        record_id=run.record_id,
        trigger="rerun",
        reason=f"rerun of {run.id}" + (" (forced)" if force else ""),
        test=run.test,
        rerun_of=run.id,
        allow_repeat=allow_repeat or force,
    )
    if detach:
        return engine.start_detached(run.worker, options)
    return engine.start(run.worker, options)
