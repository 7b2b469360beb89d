"""What changed since a run: its worker's configuration, its record, the plugins.

The run card, the troubleshooting walk and the rerun guard all ask this; the
answer is computed here once, from the stored run against the workspace now,
and handed to them as plain data (rendering reads no files).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workerctl.runs.model import COMPLETED, Run

if TYPE_CHECKING:
    from workerctl.history.store import History
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.workspace import Workspace


def worker_now(workspace: Workspace, registry: Registry, name: str) -> tuple[str | None, str]:
    """The worker's configuration hash now and its state: ``valid``, ``invalid`` or ``deleted``."""
    from workerctl.workers.files import find_path, load_file

    try:
        wf = load_file(find_path(workspace, name), registry)
    except Exception:  # the worker file was deleted or is unreadable
        return None, "deleted"
    if wf.worker is None:
        return None, "invalid"
    return wf.worker.config_hash, "valid"


def changes_since(
    run: Run, *, workspace: Workspace, registry: Registry, records: RecordBook
) -> dict[str, Any]:
    """Worker configuration, record and plugins now, against the run's."""
    now_hash, _ = worker_now(workspace, registry, run.worker)
    changes: dict[str, Any] = {
        "worker": {"then": run.config_hash, "now": now_hash, "changed": now_hash != run.config_hash}
    }
    if run.record_id:
        from workerctl.records.http import RecordSourceError

        try:
            record = records.peek(run.record_id)
        except RecordSourceError as exc:  # its server does not answer: cannot tell
            changes["record"] = {
                "then": run.record_fingerprint,
                "now": None,
                "changed": False,
                "error": str(exc),
            }
        else:
            now_fp = record.fingerprint() if record else None
            changes["record"] = {
                "then": run.record_fingerprint,
                "now": now_fp,
                "changed": now_fp != run.record_fingerprint,
            }
    else:
        changes["record"] = {"then": None, "now": None, "changed": False}
    now_plugins = registry.fingerprint()
    diff = sorted(
        k
        for k in set(now_plugins) | set(run.plugins or {})
        if now_plugins.get(k) != (run.plugins or {}).get(k)
    )
    changes["plugins"] = {"changed": bool(run.plugins) and bool(diff), "which": diff}
    changes["anything"] = any(c["changed"] for c in changes.values() if isinstance(c, dict))
    return changes


def earlier_side_effects(run: Run, history: History) -> list[dict[str, Any]]:
    """Side effects made by runs of this worker on this record (this one included),
    oldest first, from the side-effect ledger: one file read, and still complete
    after ``runs prune`` removed the run files."""
    from workerctl.history.ledger import effects_as_stated

    if not run.record_id:
        return [{"run_id": run.id, **e} for e in effects_as_stated(run)]
    out = []
    for effect in history.ledger.effects(run.record_id, run.worker):
        out.append(
            {
                **(effect.detail or {}),
                "run_id": effect.run_id,
                "state": effect.state,
                "kind": effect.kind,
                "record_id": effect.target,
                "key": effect.step,
                "at": effect.committed_at or effect.at,
                "settled": effect.settled,
            }
        )
    return out


#: ``run inspect --json`` beyond the stored run: the facts ``card_facts`` computes now
#: (and the run's duration), after ``runs.model.RUN_FIELDS`` in docs/json.md
CARD_FACT_FIELDS: dict[str, str] = {
    "duration": "as in `runs list`",
    "record_exists": "does the linked record exist now (null without a record)",
    "worker_now": (
        "`unchanged`, `changed`, `invalid now` or `deleted`: the worker's configuration now against the run's"
    ),
    "current_config_hash": "the worker's configuration hash now, or null",
    "review_pending": "true while a review is needed and missing",
    "refused_calls": (
        "every tool call the gate refused: `{iteration, name, category, reason, "
        "asked_by_instructions, source, quote, possible_injection, refused_record}` "
        "(`refused_record`: `{what: read or write, id, type}` when the records API refused the "
        "call's read or write, else null); `possible_injection` is "
        "true when the worker's instructions do not ask for the tool, and `source`/`quote` "
        "give the record text (or earlier tool result) that holds the request"
    ),
    "failed_checks": "as in `runs list`",
}


def card_facts(run: Run, *, workspace: Workspace, registry: Registry, records: RecordBook) -> dict[str, Any]:
    """What the card says beyond the stored run: does the record still exist, did the
    worker change since, is a review still owed, which refused tool calls look like
    prompt injection."""
    from workerctl.records.http import RecordSourceError
    from workerctl.runs.injection import refused_calls
    from workerctl.runs.model import failed_checks

    try:
        record_exists = records.peek(run.record_id) is not None if run.record_id else None
    except RecordSourceError:  # its server does not answer now: the card cannot tell
        record_exists = None
    current_hash, state = worker_now(workspace, registry, run.worker)
    if state == "valid":
        worker_state = "unchanged" if current_hash == run.config_hash else "changed"
    else:
        worker_state = "invalid now" if state == "invalid" else "deleted"
    return {
        "record_exists": record_exists,
        "worker_now": worker_state,
        "current_config_hash": current_hash,
        "review_pending": bool(run.needs_review and run.review is None and run.status == COMPLETED),
        "refused_calls": [c.to_dict() for c in refused_calls(run, records)],
        "failed_checks": failed_checks(run.checks),
    }
