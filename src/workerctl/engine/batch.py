"""Running one worker over many records in one process (``run start W --task …``).

A cron job that starts one process per record pays the interpreter, click and the
plugins every time; here they are paid once and the runs share one engine. Each
run is an ordinary run in the history (created, executed and finished exactly as
``run start`` does it), so ``runs list``, ``run watch`` and ``run troubleshoot``
see nothing special.

Runs execute on ``jobs`` threads. The engine keeps no per-run state on itself
(each run's state lives in its own ``Run`` and the loop's locals), the history,
records and versions take a process-wide lock that is re-entrant per thread
(``storage.lock``), and the SIGTERM handler is installed only by a run on the main
thread, so worker threads never touch signals.

Every start passes the duplicate guard; a record it refuses (or every record, when
the worker is paused) is reported as skipped, not failed, with the refusal's
machine-readable ``reason`` and its ``fix`` (``_refusal`` is the one place that knows
the guard's error). A failed run's ``fix`` (the action of the first troubleshooting
step that found the cause) is added above the engine, by ``runs.starting.add_fixes``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from workerctl.engine import halts
from workerctl.errors import HistoryError, NotFoundError, Terminated, WorkerctlError
from workerctl.runs.model import CANCELLED, COMPLETED, FAILED
from workerctl.runs.states import STATE_UNUSABLE

if TYPE_CHECKING:
    from workerctl.engine.launcher import Engine, StartOptions
    from workerctl.engine.review_process import ReviewProcess
    from workerctl.runs.model import Run

SKIPPED = "skipped"
NOT_STARTED = "not_started"


@dataclass
class BatchItem:
    """What became of one record of a batch."""

    record_id: str | None
    status: str  # completed | failed | cancelled | skipped | not_started (queued: remote)
    run_id: str | None = None
    message: str = ""  # the whole output, the error, or why it was skipped
    error_kind: str | None = None
    duration: float | None = None
    reason: str | None = None  # skipped: why (a refusal's verdict, runs.duplicate_guard.REFUSALS)
    fix: str | None = None  # skipped or failed: what to do about it

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class BatchResult:
    worker: str
    items: list[BatchItem] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for item in self.items if item.status == status)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.items:
            out[item.status] = out.get(item.status, 0) + 1
        return out

    @property
    def ok(self) -> bool:
        """True when every record's run completed, was skipped by the duplicate guard
        or was handed to a remote executor."""
        return all(item.status not in (FAILED, CANCELLED, NOT_STARTED) for item in self.items)

    @property
    def state_problem(self) -> bool:
        """Whether a record ended on the history's problem (locked, damaged, refused by
        the system): the batch reports every record, then exits 4 as any command that
        meets it does, so that a script tells it from runs that failed."""
        return any(item.error_kind == STATE_UNUSABLE for item in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "runs": [i.to_dict() for i in self.items],
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "interrupted": self.interrupted,
        }


def _refusal(exc: BaseException) -> BatchItem | None:
    """A skipped item when ``exc`` is a refused start (the guard's decision), else None."""
    from workerctl.runs.duplicate_guard import DuplicateRefused

    if not isinstance(exc, DuplicateRefused):
        return None
    decision = exc.decision
    return BatchItem(
        decision.record_id,
        SKIPPED,
        message=decision.message or exc.message,
        reason=decision.verdict,
        fix=decision.fix or None,
    )


def _kind_of(exc: WorkerctlError, otherwise: str | None) -> str | None:
    """The kind a batch reports for a record its start left with ``exc``: the
    history's own problem (locked, damaged, refused) is ``state_unusable``, exit 4."""
    return STATE_UNUSABLE if isinstance(exc, HistoryError) else otherwise


def finished_item(engine: Engine, run: Run, record_id: str | None) -> BatchItem:
    """What became of a record whose run has finished (or was handed to a queue): the
    whole output or the error. (A failure's fix is the troubleshooting walk's, which
    sits above the engine: ``runs.starting.add_fixes``.)"""
    if run.status == COMPLETED:
        message = run.output or ""
    elif run.error:
        message = run.error.message
    else:
        message = f"{run.status} on executor {run.executor}"
    kind = run.error.kind if run.error else None
    return BatchItem(record_id, run.status, run.id, message, kind, run.duration)


def start_detached_each(
    engine: Engine, worker: str, record_ids: list[str], options: StartOptions
) -> list[BatchItem]:
    """Each record's run handed to a background process (``--detach``); a record the
    guard refuses is skipped with its reason and fix, and the others still start
    (a refusal in the middle once stopped the loop, and the ids already started were
    never printed)."""
    items = []
    for record_id in record_ids:
        try:
            run = engine.start_detached(worker, replace(options, record_id=record_id))
        except WorkerctlError as exc:
            skipped = _refusal(exc)
            if skipped is None:
                raise
            skipped.record_id = record_id
            items.append(skipped)
            continue
        items.append(BatchItem(record_id, run.status, run.id))
    return items


#: ``run start`` over several records ``--json``: the batch's fields (``BatchResult.to_dict``;
#: each of ``runs`` is a ``BatchItem``)
JSON_FIELDS = ("worker", "runs", "counts", "seconds", "ok", "interrupted")


def check_records(engine: Engine, record_ids: Iterable[str]) -> list[str]:
    """Every id cleaned, de-duplicated (order kept) and known: an unknown one is exit 3
    before anything runs, as for a single run."""
    from workerctl.engine.launcher import clean_record_id

    ids = list(dict.fromkeys(i for i in (clean_record_id(r) for r in record_ids) if i))
    missing = [i for i in ids if engine.records.peek(i) is None]
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        raise NotFoundError(
            f"no record with id {shown} ({len(missing)} of {len(ids)}); no run was started",
            hint="'workerctl records list' shows the ids",
        )
    return ids


#: how often the batch's main loop looks for a Ctrl-C or SIGTERM that came meanwhile
SIGNAL_POLL = 0.1
#: how often it looks for the first run stored while the review helper waits for one
REVIEWS_POLL = 0.005


class _Stop(Exception):
    """SIGTERM to the batch process: stop as for Ctrl-C."""


class BatchRunner:
    """Start ``worker`` on each record, ``jobs`` at a time, in this process."""

    def __init__(
        self,
        engine: Engine,
        jobs: int = 1,
        on_done: Callable[[BatchItem], None] | None = None,
        reviews: ReviewProcess | None = None,
    ) -> None:
        self.engine = engine
        self.jobs = max(1, jobs)
        self.on_done = on_done or (lambda item: None)
        self._stop = threading.Event()
        self._started: dict[str, str | None] = {}  # run id -> record id, runs executing now
        self._interrupt: BaseException | None = None  # what a Ctrl-C or SIGTERM asked for
        self._guard = threading.Lock()
        # the helper deciding review on another core: given (and closed) by the caller, or
        # started and closed by each ``run`` that wants one (``engine.review_process.wanted``)
        self.reviews = reviews
        self._own_reviews = reviews is None
        self._reviews_due = False  # one is wanted and not started yet (``_start_reviews``)
        self._created = threading.Event()  # a run of this batch is stored
        self._cancelling = False  # Ctrl-C (or SIGTERM) cancelled the runs noted so far

    def run(self, worker: str, record_ids: list[str], options: StartOptions) -> BatchResult:
        """Every record's run on the worker threads (even with one job, so that the
        main thread stays free to hear Ctrl-C and SIGTERM)."""
        Terminated.raise_unanswered()  # a SIGTERM whose exception was lost: nothing starts
        result = BatchResult(worker)
        began = time.monotonic()
        items: dict[int, BatchItem] = {}
        with self._signals(), self._review_process(len(record_ids)), self._turns():
            self._parallel(worker, record_ids, options, items, result)
        result.items = [
            items.get(i) or BatchItem(r, NOT_STARTED, message="interrupted") for i, r in enumerate(record_ids)
        ]
        result.seconds = time.monotonic() - began
        return result

    @contextlib.contextmanager
    def _review_process(self, runs: int) -> Iterator[None]:
        """Review decided on another core for the batch's length (``engine.review_process``
        says when, and why the verdicts are the same)."""
        from workerctl.engine import review_process

        if self._own_reviews:  # started with the first run stored (``_start_reviews``)
            self._reviews_due = review_process.wanted(self.jobs, runs, self.engine.records)
            self.reviews = None
        loop = self.engine.loop
        loop.reviews = self.reviews
        try:
            yield
        finally:
            self._reviews_due = False
            loop.reviews = None
            if self._own_reviews and self.reviews is not None:
                self.reviews.close()

    def _start_reviews(self) -> None:
        """The helper, started once the first run of the batch is stored: a batch whose
        every record is skipped (a cron job's rerun, nothing changed) never starts one.
        Started on the main thread: the helper's death signal follows the thread that
        started it, and the batch's worker threads end before the batch does."""
        from workerctl.engine import review_process

        if not self._reviews_due or not self._created.is_set():
            return
        self._reviews_due = False
        self.reviews = review_process.ReviewProcess(self.engine.workspace, self.engine.registry)
        self.engine.loop.reviews = self.reviews  # runs reaching review from now on ask it

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM to the batch process stops the batch like Ctrl-C; but 'run cancel' of
        one of its runs also sends SIGTERM (after marking that run cancelled), and then
        only that run ends: its thread is halted (``engine.halts``), whatever its step
        is doing."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        # a signal only leaves a word here; the main loop raises it where raising is
        # safe (between waits): raised at any bytecode, a Ctrl-C could land inside
        # concurrent.futures' own locking and leave a future's lock held, and a second
        # one inside the cancelling cut it short (the runs went on to write, no summary)
        def on_int(signum: int, frame: object) -> None:
            if self._interrupt is None:
                self._interrupt = KeyboardInterrupt()

        def on_term(signum: int, frame: object) -> None:
            if self._interrupt is not None:
                return
            with self._guard:
                running = list(self._started)
            # 'run cancel' stores the run cancelled, then signals: only a run that reads
            # cancelled tells a cancel apart from a SIGTERM to the batch (one that reads
            # finished may just have completed, its thread not yet back)
            cancelled = []
            for run_id in running:
                with contextlib.suppress(WorkerctlError):
                    if self.engine.history.get(run_id).status == CANCELLED:
                        cancelled.append(run_id)
            if not cancelled:
                self._interrupt = _Stop()
            for run_id in cancelled:  # the batch goes on; the thread in that step is woken
                halts.halt(run_id)

        def on_hup(signum: int, frame: object) -> None:  # the terminal closed: never a cancel
            if self._interrupt is None:
                self._interrupt = _Stop()

        handlers = {signal.SIGTERM: on_term, signal.SIGHUP: on_hup, signal.SIGINT: on_int}
        previous = {signum: signal.getsignal(signum) for signum in handlers}
        for signum, handler in handlers.items():
            # a signal the batch was started with ignored (nohup, a background job, Ctrl-C
            # ignored) stays so
            if previous[signum] is not signal.SIG_IGN:
                signal.signal(signum, handler)
        try:
            yield
        finally:
            for signum, was in previous.items():
                signal.signal(signum, was)

    def _turns(self) -> contextlib.AbstractContextManager[None]:
        """The threads commit in turns (``History.taking_turns``); one thread alone has
        no one to wait for."""
        return self.engine.history.taking_turns() if self.jobs > 1 else contextlib.nullcontext()

    def _parallel(
        self,
        worker: str,
        record_ids: list[str],
        options: StartOptions,
        items: dict[int, BatchItem],
        result: BatchResult,
    ) -> None:
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="batch")
        pending: dict[Future, int] = {}
        queue = list(enumerate(record_ids))
        try:
            while queue or pending:
                while queue and len(pending) < self.jobs and not self._stop.is_set():
                    index, record_id = queue.pop(0)
                    pending[pool.submit(self._one, worker, record_id, options)] = index
                if not pending:
                    break
                # while the helper is due, the loop looks often for the first run stored
                poll = REVIEWS_POLL if self._reviews_due else SIGNAL_POLL
                done, _ = wait(list(pending), timeout=poll, return_when=FIRST_COMPLETED)
                if self._interrupt is not None:
                    raise self._interrupt
                self._start_reviews()
                for future in done:
                    items[pending.pop(future)] = item = future.result()
                    self.on_done(item)
        except (KeyboardInterrupt, _Stop):
            result.interrupted = True
            self._stop.set()
            if self.reviews is not None:  # no thread waits on the review helper from here
                self.reviews.abandon()
            self._cancel_started()
            for future, index in pending.items():
                try:
                    items[index] = future.result(timeout=30)
                except Exception:
                    continue
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _cancel_started(self) -> None:
        """Ctrl-C: the runs executing on the threads are cancelled (recorded); each
        thread's engine then stops at its next step. A run stored meanwhile but noted
        only after this (its thread was between the creation and ``_note_started``) is
        cancelled by its own thread as it is noted: before, it was missed, and the batch
        waited for its whole step (a ten-minute one kept a Ctrl-C'd batch running)."""
        with self._guard:
            started = list(self._started)
            self._cancelling = True
        for run_id in started:
            self._cancel(run_id)

    def _cancel(self, run_id: str) -> None:
        import getpass

        from workerctl.runs.cancel import cancel_run

        with contextlib.suppress(WorkerctlError):
            cancel_run(
                self.engine.history,
                run_id,
                by=f"{getpass.getuser()} (the batch was interrupted)",
                registry=lambda: self.engine.registry,
            )

    def _one(self, worker: str, record_id: str | None, options: StartOptions) -> BatchItem:
        if self._stop.is_set():
            return BatchItem(record_id, NOT_STARTED, message="interrupted before it started")
        began = time.monotonic()
        created: list[Run] = []

        def on_created(run: Run) -> None:
            created.append(run)
            self._note_started(run)

        try:
            run = self.engine.start(worker, replace(options, record_id=record_id), on_created=on_created)
        except WorkerctlError as exc:
            skipped = _refusal(exc)
            if skipped is not None:
                skipped.record_id = record_id
                return skipped
            if created:  # the run exists: report what the history holds, never "not started"
                return self._stored(record_id, created[0], exc, time.monotonic() - began)
            kind = _kind_of(exc, None)
            return BatchItem(
                record_id,
                NOT_STARTED,
                message=exc.message,
                error_kind=kind,
                duration=time.monotonic() - began,
                fix=exc.hint,
            )
        finally:
            with self._guard:
                for run_id, rid in list(self._started.items()):
                    if rid == record_id:
                        del self._started[run_id]
        return finished_item(self.engine, run, record_id)

    def _stored(self, record_id: str | None, run: Run, exc: WorkerctlError, duration: float) -> BatchItem:
        """The item of a run that was created and then stopped by a state problem (a
        full disk, a damaged file): its status as stored (the engine records such a
        run as failed when it can), with the problem as the message."""
        status: str = FAILED
        kind = _kind_of(exc, "executor_error")
        try:
            stored = self.engine.history.get(run.id)
        except WorkerctlError:
            stored = None
        if stored is not None and stored.finished:
            status = stored.status
            kind = stored.error.kind if stored.error else None
        # an unfinished one was left by this process: the next reader marks it crashed
        return BatchItem(record_id, status, run.id, exc.message, kind, duration)

    def _note_started(self, run: Run) -> None:
        with self._guard:
            self._started[run.id] = run.record_id
            late = self._cancelling  # the batch's runs were cancelled before this one was noted
        self._created.set()
        if late:
            self._cancel(run.id)


def summary_line(result: BatchResult) -> str:
    from workerctl import render

    parts = [
        f"{result.count(s)} {s}"
        for s in (COMPLETED, FAILED, CANCELLED, SKIPPED, NOT_STARTED, "queued")
        if result.count(s)
    ]
    return (
        f"{render.plural(len(result.items), 'run')} of {result.worker}: "
        f"{', '.join(parts) or 'nothing to do'} in {render.duration(result.seconds)}"
        + (" (interrupted)" if result.interrupted else "")
    )
