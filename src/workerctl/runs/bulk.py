"""Acting on many runs at once: rerun the failed ones, cancel the unfinished ones.

Both choose runs with the same filter as ``runs list``. A bulk rerun reruns a
worker on a record only when that pair's newest run failed (a later run that
completed already fixed it), and it applies the rerun guard to each run exactly as
``run rerun`` does: what the duplicate guard refuses is reported, not started,
unless ``allow_repeat``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workerctl.errors import WorkerctlError
from workerctl.runs.model import FAILED, UNFINISHED
from workerctl.runs.rerun_guard import RerunPlan, plan_rerun, rerun

if TYPE_CHECKING:
    from workerctl.engine.launcher import Engine
    from workerctl.history.store import History, RunFilter
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.workspace import Workspace


@dataclass
class BulkRerun:
    """One failed run and what a bulk rerun does with it."""

    plan: RerunPlan
    action: str  # "rerun" | "refused" | "superseded"
    reason: str = ""
    new_run_id: str | None = None
    new_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        run = self.plan.run
        return {
            "run_id": run.id,
            "worker": run.worker,
            "record_id": run.record_id,
            "error_kind": run.error.kind if run.error else None,
            "action": self.action,
            "reason": self.reason,
            "new_run_id": self.new_run_id,
            "new_status": self.new_status,
        }


def plan_failed_reruns(
    history: History,
    flt: RunFilter,
    *,
    records: RecordBook,
    registry: Registry,
    workspace: Workspace,
    allow_repeat: bool = False,
) -> list[BulkRerun]:
    """The failed runs matching ``flt`` whose worker and record have no newer run,
    each with the rerun guard's decision."""
    newest: dict[tuple[str, str | None], str] = {}
    for doc in history.iter_summaries():  # newest first: the first seen per pair wins
        newest.setdefault((doc["worker"], doc.get("record_id")), doc["id"])
    out = []
    seen: set[tuple[str, str | None]] = set()
    for doc in history.iter_summaries(flt):
        if doc["status"] != FAILED:
            continue
        pair = (doc["worker"], doc.get("record_id"))
        run = history.get(doc["id"])
        if newest.get(pair) != doc["id"] or pair in seen:
            out.append(
                BulkRerun(
                    RerunPlan(run, {}),
                    "superseded",
                    f"a newer run of {run.worker} on "
                    f"{run.record_id or 'no record'} exists "
                    f"({newest.get(pair)})",
                )
            )
            continue
        seen.add(pair)
        plan = plan_rerun(run, history=history, records=records, registry=registry, workspace=workspace)
        if plan.refusal and not allow_repeat:
            out.append(BulkRerun(plan, "refused", plan.refusal))
        else:
            out.append(BulkRerun(plan, "rerun", "repeat allowed: " + plan.refusal if plan.refusal else ""))
    return out


def execute_reruns(engine: Engine, items: list[BulkRerun], *, allow_repeat: bool = False) -> None:
    """Start each planned rerun in this process, one after the other; a start the
    duplicate guard refuses is reported as refused."""
    for item in items:
        if item.action != "rerun":
            continue
        try:
            new = rerun(engine, item.plan, allow_repeat=allow_repeat)
        except WorkerctlError as exc:  # e.g. the worker was deleted since
            item.action, item.reason = "refused", exc.message
            continue
        item.new_run_id, item.new_status = new.id, new.status


def unfinished_matching(history: History, flt: RunFilter) -> list[dict]:
    """Summaries of the pending, queued or running runs matching ``flt``."""
    ids = set(history.unfinished())
    return [doc for doc in history.iter_summaries(flt) if doc["id"] in ids or doc["status"] in UNFINISHED]


def cancel_many(
    history: History, run_ids: list[str], by: str, *, registry: Callable[[], Registry]
) -> list[dict[str, Any]]:
    """Cancel each run; one that finished meanwhile is reported, not an error."""
    from workerctl.runs.cancel import cancel_run

    out = []
    for run_id in run_ids:
        try:
            run = cancel_run(history, run_id, by=by, registry=registry)
            out.append({"run_id": run_id, "cancelled": True, "status": run.status, "message": ""})
        except WorkerctlError as exc:
            out.append(
                {
                    "run_id": run_id,
                    "cancelled": False,
                    "status": history.get(run_id).status,
                    "message": exc.message,
                }
            )
    return out
