"""Reruns guarded against duplicates: a new run of the same worker on the same record.

Repeating a failed run without changing its cause only repeats the failure, and
repeating a run that wrote comments writes them again. So a rerun is refused
when nothing changed since a failed run, or when the earlier run already wrote
side effects, unless the person says ``--force`` after reading what was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workerctl.errors import UsageError
from workerctl.runs.model import COMPLETED, FINISHED, Run
from workerctl.runs.troubleshoot import changes_since, earlier_side_effects


class RerunRefused(UsageError):
    def __init__(self, message: str, plan: RerunPlan) -> None:
        super().__init__(message, hint="fix the cause (e.g. 'workerctl worker edit "
                                       f"{plan.run.worker}'), or pass --force to rerun anyway")
        self.plan = plan


@dataclass
class RerunPlan:
    run: Run
    changes: dict[str, Any]
    side_effects: list[dict[str, Any]] = field(default_factory=list)
    refusal: str | None = None

    @property
    def written(self) -> list[dict[str, Any]]:
        return [e for e in self.side_effects if e.get("created", True)]


def plan_rerun(app, run: Run) -> RerunPlan:
    if run.status not in FINISHED:
        raise UsageError(f"run {run.id} is still {run.status}; wait for it or cancel it first")
    plan = RerunPlan(run, changes_since(app, run), earlier_side_effects(app, run))
    if run.status != COMPLETED and not plan.changes["anything"]:
        plan.refusal = (f"run {run.id} {run.status} ({run.error.kind if run.error else '?'}) "
                        "and nothing changed since: same worker configuration, same record, "
                        "same plugins; a rerun would fail the same way")
    elif plan.written:
        plan.refusal = (f"earlier runs of {run.worker} on {run.record_id or 'no record'} already "
                        f"wrote {len(plan.written)} side effect(s); a rerun may write them again")
    return plan


def rerun(app, plan: RerunPlan, *, force: bool, detach: bool = False) -> Run:
    """Start the run ``plan_rerun`` planned (the plan is shown to the person first)."""
    from workerctl.engine.loop import StartOptions

    run = plan.run
    if plan.refusal and not force:
        raise RerunRefused(plan.refusal, plan)
    options = StartOptions(record_id=run.record_id, trigger="rerun",
                           reason=f"rerun of {run.id}" + (" (forced)" if force else ""),
                           test=run.test, rerun_of=run.id)
    if detach:
        return app.engine.start_detached(run.worker, options)
    return app.engine.start(run.worker, options)
