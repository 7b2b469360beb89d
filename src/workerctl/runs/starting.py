"""What ``run start`` does between parsing its options and printing: the request as a
typed record, the records of a batch, waiting for a remote run, the batch's summary.

The CLI (``cli.run``) only builds a ``StartRequest`` from its options, calls these and
prints what they return.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workerctl.engine.batch import BatchResult
    from workerctl.engine.launcher import StartOptions
    from workerctl.history.store import History
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.runs.model import Run
    from workerctl.workspace import Workspace


@dataclass(frozen=True)
class StartRequest:
    """``run start``'s options: one run, or a batch over several records."""

    worker: str
    record_ids: tuple[str, ...] = ()  # --task/--record, repeatable
    records_from: str | None = None  # --records-from FILE ("-": stdin)
    where: str | None = None  # --where JQ
    record_type: str | None = None  # --type
    jobs: int = 1
    quiet: bool = False
    detach: bool = False
    reason: str = ""
    test: bool = False
    trigger: str | None = None  # None: manual on a terminal, else script
    wait: bool = False  # a remote run: wait until it has finished
    allow_repeat: bool = False

    @property
    def is_batch(self) -> bool:
        """Several records, or records chosen by a file or a filter."""
        return (
            len(self.record_ids) > 1
            or self.records_from is not None
            or self.where is not None
            or self.record_type is not None
        )

    def options(self, default_trigger: str, record_id: str | None = None) -> StartOptions:
        """The engine's options for one run of this request (on ``record_id``)."""
        from workerctl.engine.launcher import StartOptions

        return StartOptions(
            record_id=record_id,
            trigger=self.trigger or default_trigger,
            reason=self.reason,
            test=self.test,
            allow_repeat=self.allow_repeat,
        )


def batch_record_ids(records: RecordBook, request: StartRequest) -> list[str]:
    """The record ids a batch runs over, in order: ``--task`` ids, then those of
    ``--records-from`` (``-``: ``read_stdin()``), then the records ``--where`` and
    ``--type`` select. (``engine.batch.check_records`` cleans and checks them.)"""

    from workerctl.errors import UsageError
    from workerctl.handed import IDS_LIMIT, read_handed
    from workerctl.records.select import ids_from_text, select

    ids = list(request.record_ids)
    if request.records_from is not None:
        origin = "<stdin>" if request.records_from == "-" else request.records_from
        try:
            text = read_handed(request.records_from, IDS_LIMIT, "record ids").decode("utf-8")
        except UnicodeDecodeError as bad:
            raise UsageError(
                f"{origin}: not UTF-8 text (byte 0x{bad.object[bad.start]:02x} at offset {bad.start})",
                hint="give record ids one per line, as JSON lines or as a JSON array, in UTF-8",
            ) from None
        ids += ids_from_text(text, origin)
    if request.where is not None or request.record_type is not None:
        ids += select(records, request.where, request.record_type)
    return ids


def with_record(options: StartOptions, record_id: str) -> StartOptions:
    return replace(options, record_id=record_id)


def wait_until_finished(history: History, run: Run, refresh: Callable[[], None], every: float = 0.5) -> Run:
    """A remote run (handed to a task queue) followed until it has finished: the
    history brought up to date (``refresh``) and read again every ``every`` seconds."""
    while not run.finished:
        time.sleep(every)
        refresh()
        run = history.get(run.id)
    return run


@dataclass(frozen=True)
class FailureNote:
    """A batch's run that did not complete, with the fix its troubleshooting found."""

    status: str
    run_id: str | None
    record_id: str | None
    error_kind: str | None
    message: str
    fix: str = ""


def add_fixes(
    result: BatchResult, history: History, records: RecordBook, registry: Registry, workspace: Workspace
) -> BatchResult:
    """Each failed or cancelled run's ``fix``: the action of the first step of its
    troubleshooting walk that found the cause, the line the summary prints and what
    ``--json`` gives a script (walked once per failure)."""
    from workerctl.errors import NotFoundError, WorkerctlError
    from workerctl.runs.troubleshoot import first_fix

    for item in result.items:
        if item.status in ("failed", "cancelled") and item.run_id and not item.fix:
            # the report of the whole batch never ends on one run: a run pruned by another
            # process meanwhile, or whose file is now damaged, says so in its own line
            try:
                run = history.get(item.run_id)
            except NotFoundError:
                item.fix = f"run {item.run_id} was removed meanwhile (runs prune?): start it again to see why"
                continue
            except WorkerctlError as exc:
                item.fix = f"run {item.run_id} cannot be read now: {exc.message}"
                continue
            try:
                fix = first_fix(run, history=history, records=records, registry=registry, workspace=workspace)
            except WorkerctlError as exc:  # its walk meets the same problem (the ledger refused)
                fix = f"its troubleshooting cannot be walked now: {exc.message}"
            item.fix = fix or None
    return result


def failure_notes(
    result: BatchResult, history: History, records: RecordBook, registry: Registry, workspace: Workspace
) -> list[FailureNote]:
    """Each failed or cancelled run of a batch with the first fix its troubleshooting
    walk found (the batch found it already: ``BatchItem.fix``), and each record that
    was never started."""
    add_fixes(result, history, records, registry, workspace)
    notes = []
    for item in result.items:
        if item.status in ("failed", "cancelled"):
            fix = item.fix or ""
            notes.append(
                FailureNote(item.status, item.run_id, item.record_id, item.error_kind, item.message, fix)
            )
        elif item.status == "not_started":
            notes.append(FailureNote(item.status, None, item.record_id, None, item.message, item.fix or ""))
    return notes


def failure_line(note: FailureNote) -> str:
    """A note as one line, its fix included: what ``--quiet`` prints (cron mails it)."""
    if note.status == "not_started":
        head = f"NOT STARTED {note.record_id}: "
    else:
        head = f"{note.status.upper()} {note.run_id} on {note.record_id}: {note.error_kind}: "
    text = " ".join(f"{head}{note.message}".split())
    return text + (f" (fix: {' '.join(note.fix.split())})" if note.fix else "")
