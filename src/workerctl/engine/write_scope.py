"""Which records a run may write to (``write_scope``) and the test-run sandbox.

A worker declares its scope in its YAML; the default is the narrowest:

- ``record`` (default): the run's linked record, and records the run created;
- ``linked``: also the records the linked record links to, and those that link to it;
- ``context``: any record of a type in the worker's context sources.

Whatever a record's text says, a write outside the scope is refused
(``engine.run_records`` asks ``scope_refusal`` before every write): text inside a
record that asks for a write elsewhere ("comment on T-1042 saying …") is the classic
prompt injection, and the scope is what a person decided, not what the model read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workerctl.records.book import RecordBook
    from workerctl.records.model import Record
    from workerctl.runs.model import Run
    from workerctl.workers.model import Worker

SCOPES = {
    "record": "the linked record and records the run created",
    "linked": "the linked record, records linked to or from it, and records the run created",
    "context": "any record of a type in the worker's context sources",
}
DEFAULT_SCOPE = "record"


def created_by(run: Run) -> set[str]:
    """Records this run created (their ``create`` effects)."""
    return {str(e.get("record_id")) for e in run.side_effects if e.get("kind") == "create"}


def in_scope(worker: Worker, run: Run, record: Record, book: RecordBook, readable: set[str]) -> bool:
    """``readable``: the record types of the worker's context sources."""
    scope = worker.write_scope
    if record.id == run.record_id or record.id in created_by(run):
        return True
    if scope == "context":
        return record.type in readable
    if scope == "linked" and run.record_id:
        linked = book.peek(run.record_id)
        if linked is None:
            return False
        named = {i for key in linked.links for i in linked.linked_ids(key)}
        back = any(run.record_id in record.linked_ids(key) for key in record.links)
        return record.id in named or back
    return False


def scope_refusal(worker: Worker, run: Run, record: Record, book: RecordBook, readable: set[str]) -> str:
    """Why a write to ``record`` is outside the run's scope ("" when it is inside)."""
    if in_scope(worker, run, record, book, readable):
        return ""
    linked = f"{run.record_id}, the run's linked record," if run.record_id else "no linked record,"
    return (
        f"write to {record.type} {record.id} refused: it is outside this run's write scope "
        f"({worker.write_scope}: {linked} and records the run created"
        + ("" if worker.write_scope == "record" else f"; {SCOPES[worker.write_scope]}")
        + ")"
    )


def sandbox_allows(worker: Worker, run: Run, record: Record) -> bool:
    """A test run (``--test``, or any run of a draft worker) writes only to records
    marked ``safe_for_testing``."""
    testing = run.test or worker.status == "draft"
    return not testing or record.safe_for_testing
