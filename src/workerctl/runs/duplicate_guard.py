"""The duplicate guard: no start repeats a write, or a failure, on an unchanged record.

Every start (plain, detached, remote, a rerun, one record of a batch) asks
``check`` before its run is created, under the history lock, so that of several
simultaneous starts on one record exactly one runs. A start tied to a record is
refused when, for that worker on that record:

- another run is executing now (``in_progress``): it may be writing right now, and
  two overlapping cron jobs must not both run it;
- the ledger holds an ``unknown`` effect (``unknown``): its process died between
  intending a write and confirming it; a person settles it first
  (``workerctl ledger settle``), ``--allow-repeat`` does not override this. Unless the
  record answers for it: a comment the record holds under the write's key was written,
  and one that a source whose writes end on this machine does not hold was not (its
  process is gone, so nothing of it is in flight); the guard settles those itself
  (``_settle_from_record``), as a person reading the record would;
- the newest finished run failed, with a kind that is not transient
  (``states.TRANSIENT_KINDS``), and neither the record, the worker's configuration
  nor the plugins changed since (``repeat_failure``): it would fail the same way;
- the ledger holds a committed effect and neither the record's content nor the
  worker's configuration changed since (``repeat``). The record's content is
  what its source reads now (a tracker: the server's state), compared with the
  state the last write left it in.

``--allow-repeat`` passes ``in_progress``, ``repeat_failure`` and ``repeat``.
Workers that cannot write (an output mode that writes nothing and no tool that
writes) are guarded only against the first and the third; runs tied to no record
are not guarded. A paused worker, or a draft on a record not safe for testing, is
refused the same way before that (``paused``, ``draft``: ``Engine.prepare``): a
refusal is not a run, so nothing is recorded and nothing is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workerctl.errors import EXIT_DUPLICATE, NotFoundError, WorkerctlError
from workerctl.history.ledger import HELD, INTENDED, UNKNOWN, Effect, Ledger
from workerctl.runs.states import FINISHED

if TYPE_CHECKING:
    from workerctl.history.store import History
    from workerctl.runs.model import Run

RUN, NOT_GUARDED, REPEAT_ALLOWED = "run", "not_guarded", "repeat_allowed"
REPEAT, UNKNOWN_EFFECT, IN_PROGRESS = "repeat", "unknown", "in_progress"
REPEAT_FAILURE, PAUSED, DRAFT = "repeat_failure", "paused", "draft"
ALLOWED = (RUN, NOT_GUARDED, REPEAT_ALLOWED)
#: every reason a start can be refused (``--json``: ``refused.verdict``; a batch's
#: skipped rows: ``reason``)
REFUSALS = (REPEAT, REPEAT_FAILURE, IN_PROGRESS, UNKNOWN_EFFECT, PAUSED, DRAFT)
#: kinds the engine decides from the record before the first step; the same kind
#: raised later, by a record source's server, is its answer, not the record's content
DECIDED_BEFORE_STEPS = ("record_access_denied", "record_missing")


@dataclass(frozen=True)
class RecordWrites:
    """What the record itself says a worker wrote on it, read before the history lock
    (a record source may be a server): the runs its comments name, those comments'
    keys, and whether its source's writes end on this machine (``local_writes``).
    ``keys`` None: the record could not be read, so it answers for nothing."""

    runs: tuple[str, ...] = ()
    keys: frozenset[str] | None = None
    local: bool = False
    #: the executors that hand runs to a queue: a run of one executed elsewhere
    remote_executors: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GuardDecision:
    """What the guard decided for one start, and what it found."""

    verdict: str  # run | not_guarded | repeat_allowed, or one of REFUSALS
    worker: str
    record_id: str | None
    message: str = ""
    effects: tuple[Effect, ...] = ()  # the earlier effects that decided it
    running: tuple[str, ...] = ()  # ids of runs of this worker on this record executing now
    changed: tuple[str, ...] = field(default=())  # "record", "worker" when they changed
    failed_run: str | None = None  # repeat_failure: the run that failed
    restricted_to: tuple[str, ...] = ()  # draft: the record is restricted to other workers

    @property
    def allowed(self) -> bool:
        return self.verdict in ALLOWED

    @property
    def overridable(self) -> bool:
        return self.verdict in (REPEAT, REPEAT_FAILURE, IN_PROGRESS)

    @property
    def fix(self) -> str:
        """What lets the start through: the line a person (or a script) acts on."""
        if self.verdict == UNKNOWN_EFFECT:
            first = self.effects[0]
            return (
                f"see what is known with 'workerctl ledger list --record "
                f"{self.record_id} --state unknown', check the record, then "
                f"'workerctl ledger settle {first.run_id} --written' (or --not-written)"
            )
        if self.verdict == PAUSED:
            return f"activate it with 'workerctl worker activate {self.worker}'"
        if self.verdict == DRAFT and self.restricted_to:
            return (
                f"{self.record_id} is restricted to {', '.join(self.restricted_to)}: use a worker "
                "that may access it, or change restricted_to on the record (--test would not lift it)"
            )
        if self.verdict == DRAFT:
            return (
                "run it with --test, use a record marked safe_for_testing, or activate it "
                f"with 'workerctl worker activate {self.worker}'"
            )
        if self.verdict == REPEAT_FAILURE:
            return (
                "fix the cause (the worker, the record or a plugin), or pass --allow-repeat to run it anyway"
            )
        if self.overridable:
            return "pass --allow-repeat to run it anyway"
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "allowed": self.allowed,
            "worker": self.worker,
            "record_id": self.record_id,
            "message": self.message,
            "effects": [e.to_dict() for e in self.effects],
            "running": list(self.running),
            "changed": list(self.changed),
            "failed_run": self.failed_run,
            "fix": self.fix,
        }


class DuplicateRefused(WorkerctlError):
    """A start refused before anything ran (by the guard, or because the worker is
    paused or a draft); nothing was recorded. Exit 5."""

    exit_code = EXIT_DUPLICATE

    def __init__(self, decision: GuardDecision) -> None:
        super().__init__(decision.message, hint=decision.fix or None)
        self.decision = decision


#: the name that says what it is: every refusal of a start is one of these
StartRefused = DuplicateRefused


def refuse_status(
    worker: str,
    status: str,
    record_id: str | None,
    *,
    test: bool,
    safe: bool,
    restricted_to: tuple[str, ...] = (),
) -> None:
    """Refuse a paused worker, or a draft on a record not marked safe for testing
    without ``--test``: before a run exists, so nothing is recorded (exit 5). When the
    record is also restricted to other workers (``restricted_to``), the fix says so
    and does not advise ``--test``, which would fail on the restriction."""
    if status == "paused":
        raise DuplicateRefused(
            GuardDecision(
                PAUSED,
                worker,
                record_id,
                message=f"worker {worker!r} is paused; nothing ran, nothing recorded",
            )
        )
    if status == "draft" and not test and not safe:
        where = f"{record_id} is not marked safe for testing" if record_id else "the run has no record"
        raise DuplicateRefused(
            GuardDecision(
                DRAFT,
                worker,
                record_id,
                message=f"worker {worker!r} is a draft and {where}; nothing ran, nothing recorded",
                restricted_to=restricted_to,
            )
        )


def check(
    history: History,
    *,
    worker: str,
    record_id: str | None,
    config_hash: str,
    record_fingerprint: str | None,
    may_write: bool,
    allow_repeat: bool = False,
    ledger: Ledger | None = None,
    plugins: dict[str, str] | None = None,
    writers: RecordWrites = RecordWrites(),
) -> GuardDecision:
    """Decide whether a run of ``worker`` on ``record_id`` may start now.

    Call it from ``history.create``'s ``admit``, under the lock the creation holds (the engine
    does), or the answer can be stale by the time the run exists. ``writers``: the runs of
    ``worker`` that the record itself names as having written on it (its comments'
    run ids and keys), checked against the ledger with the history's newest runs, and
    asked about the writes whose end the ledger does not know.
    """
    if not record_id:
        return GuardDecision(NOT_GUARDED, worker, record_id)
    running = tuple(_running_on(history, worker, record_id))
    if not may_write:
        if running and not allow_repeat:
            return _in_progress(worker, record_id, running)
        failed = (
            None
            if allow_repeat
            else unchanged_failure(history, worker, record_id, config_hash, record_fingerprint, plugins)
        )
        if failed is not None:
            return _repeat_failure(worker, record_id, failed)
        return GuardDecision(REPEAT_ALLOWED if running else NOT_GUARDED, worker, record_id, running=running)
    ledger = ledger or history.ledger
    effects = ledger.effects(record_id, worker)
    if not allow_repeat:  # a lost or rolled-back file is damage, unless a repeat is wanted
        ledger.confirm(worker, record_id, len(effects))
    recent = _recent(history, worker, record_id)
    running += tuple(_running_unmarked(history, recent, running))
    unheld, lost = _unheld_writers(history, worker, recent, writers.runs, effects)
    ledger.confirm_runs(record_id, effects, unheld)
    unknown = _unknown(history, effects)
    if unknown and _settle_from_record(history, ledger, unknown, writers, running):
        effects = ledger.effects(record_id, worker)
        unknown = _unknown(history, effects)
    if unknown:
        first = unknown[0]
        return GuardDecision(
            UNKNOWN_EFFECT,
            worker,
            record_id,
            effects=unknown,
            running=running,
            message=(
                f"{worker} on {record_id}: {len(unknown)} side effect(s) of an earlier run "
                f"are unknown ({first.describe()}): its process died between intending "
                "the write and confirming it. Settle it before running again"
            ),
        )
    if running:
        if allow_repeat:
            return GuardDecision(REPEAT_ALLOWED, worker, record_id, running=running)
        return _in_progress(worker, record_id, running)
    if not allow_repeat:
        failed = unchanged_failure(
            history, worker, record_id, config_hash, record_fingerprint, plugins, recent=recent
        )
        if failed is not None:
            return _repeat_failure(worker, record_id, failed)
    if lost and not allow_repeat:
        return GuardDecision(
            REPEAT,
            worker,
            record_id,
            message=(
                f"{worker} already wrote to {record_id}: it holds the write of run {lost[0]}, which neither "
                "the history nor the ledger holds any more (its run file and ledger entry were removed "
                "or lost, not forgotten by 'runs prune --forget-side-effects'). Not started; pass "
                "--allow-repeat to write again"
            ),
        )
    written = [e for e in effects if e.written]
    if not written:
        return GuardDecision(RUN, worker, record_id)
    last = written[-1]
    changed = tuple(
        what
        for what, now, then in (
            ("record", record_fingerprint, _record_then(last)),
            ("worker", config_hash, last.config_hash),
        )
        if then is not None and now != then
    )
    if changed:
        return GuardDecision(RUN, worker, record_id, effects=(last,), changed=changed)
    if allow_repeat:
        return GuardDecision(REPEAT_ALLOWED, worker, record_id, effects=(last,))
    return GuardDecision(
        REPEAT,
        worker,
        record_id,
        effects=tuple(written),
        message=(
            (
                f"{worker} holds a write to {record_id} for a person: {last.describe()} "
                f"('workerctl run approve {last.run_id}' or 'run reject'); neither the record nor "
                "the worker's configuration changed since, so a new run would ask for the same "
                "write again. Not started"
            )
            if last.state == HELD
            else (
                f"{worker} already wrote to {record_id}: {last.describe()}; neither the "
                "record nor the worker's configuration changed since, so a new run would "
                "write the same output again. Not started"
            )
        ),
    )


def _in_progress(worker: str, record_id: str, running: tuple[str, ...]) -> GuardDecision:
    return GuardDecision(
        IN_PROGRESS,
        worker,
        record_id,
        running=running,
        message=(
            f"{worker} on {record_id}: run {running[0]} is executing now and may "
            "write the same output; not started"
        ),
    )


def _repeat_failure(worker: str, record_id: str, failed: dict[str, Any]) -> GuardDecision:
    return GuardDecision(
        REPEAT_FAILURE,
        worker,
        record_id,
        failed_run=failed["id"],
        message=(
            f"{worker} on {record_id}: run {failed['id']} failed ({failed.get('error_kind')}: "
            f"{failed.get('error_message') or ''}) and neither the record, the worker's "
            "configuration nor the plugins changed since, so a new run would fail the same "
            "way. Not started"
        ),
    )


def unchanged_failure(
    history: History,
    worker: str,
    record_id: str,
    config_hash: str,
    record_fingerprint: str | None,
    plugins: dict[str, str] | None,
    *,
    recent: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """The summary of the newest finished run of ``worker`` on ``record_id`` when it
    failed with a kind that is not transient and nothing it ran with changed since
    (configuration, record content, plugins); else None. ``recent``: ``_recent``'s
    answer, when the caller has it."""
    from workerctl.runs.states import FAILED, TRANSIENT_KINDS

    found = _recent(history, worker, record_id) if recent is None else recent
    newest = next((d for d in found if d["status"] in FINISHED), None)
    if newest is None or newest["status"] != FAILED or newest.get("error_kind") in TRANSIENT_KINDS:
        return None
    if newest.get("error_kind") in DECIDED_BEFORE_STEPS and newest.get("iterations"):
        # not workerctl's check before the first step (restricted_to is in the record's
        # content) but a source's answer during a write: a server's permissions are not
        # in what the guard compares, so they may have changed unseen
        return None
    if newest.get("config_hash") != config_hash:
        return None
    try:
        run = history.get(newest["id"])
    except WorkerctlError:
        return None
    if run.record_fingerprint != record_fingerprint:
        return None
    if plugins is not None and run.plugins and run.plugins != plugins:
        return None
    return newest


RECENT = 8  # the newest runs of a worker on a record the guard looks at


def _recent(history: History, worker: str, record_id: str) -> list[dict[str, Any]]:
    """Summaries of the newest runs of ``worker`` on ``record_id``, newest first."""
    from workerctl.history.store import RunFilter

    flt = RunFilter(workers=(worker,), record_id=record_id)
    # the cross-run indexes answer it from the record's refs (built with the history's
    # first run, Indexes.start_if_empty); a start never builds them for a history that
    # holds runs already (an older one, not yet listed): it reads the summaries then
    return history.indexes.list(flt, RECENT, repair=False)


def _unknown(history: History, effects: list[Effect]) -> tuple[Effect, ...]:
    """The effects whose end nobody knows: ``unknown``, or intended by a run whose marker
    is gone."""
    return tuple(
        e for e in effects if e.state == UNKNOWN or (e.state == INTENDED and not history.has_marker(e.run_id))
    )


def _settle_from_record(
    history: History,
    ledger: Ledger,
    unknown: tuple[Effect, ...],
    writes: RecordWrites,
    running: tuple[str, ...],
) -> bool:
    """Settle the unknown comments the record answers for, as ``ledger settle`` would
    (``by`` workerctl, the reason in the note): one it holds under its key was written;
    one it does not hold was not, if its source's writes end on this machine, no comment
    of the record names that run under another key (a person decides then), and the run
    executed here (``_ran_here``: a remote worker's comment may still travel back).
    A full disk left a write ``unknown`` though the process lived and the comment was
    on the record (a fresh-brief attack): the record blocked until someone settled what
    it showed. Writes of other kinds, a record that could not be read, and runs still
    executing stay for a person. True when one was settled."""
    if writes.keys is None:
        return False
    settled = False
    for effect in unknown:
        if effect.kind != "comment" or effect.run_id in running:
            continue
        if effect.step in writes.keys:
            written, note = True, "the record holds this comment under its key"
        elif writes.local and effect.run_id not in writes.runs and _ran_here(history, effect.run_id, writes):
            written = False
            note = "the record holds no comment under its key, and its source's writes end on this machine"
        else:
            continue
        settled = bool(ledger.settle(effect.key, written=written, by="workerctl", note=note)) or settled
    return settled


def _ran_here(history: History, run_id: str, writes: RecordWrites) -> bool:
    """Whether ``run_id`` was executed by a process of this machine, as its run file
    says: not handed to a task queue (its owner or its executor remote), and its owner
    this host, in this PID namespace (another host, or another container sharing the
    workspace, may still be writing). False when that cannot be read (pruned, damaged)."""
    from workerctl.history.sweep import same_machine

    try:
        run = history.get(run_id)
    except WorkerctlError:
        return False
    owner = run.owner or {}
    return not owner.get("remote") and run.executor not in writes.remote_executors and same_machine(owner)


def _unheld_writers(
    history: History,
    worker: str,
    recent: list[dict[str, Any]],
    writers: tuple[str, ...],
    effects: list[Effect],
) -> tuple[list[Run], list[str]]:
    """The finished runs of ``worker`` of which the ledger holds no effect on this record:
    among ``recent`` (the history's indexes) those that recorded side effects, and the
    ``writers`` the record names (so that the indexes, derived data, lost with the ledger
    lose nothing). Read from their run files only then: a run whose effects are all
    elsewhere is one read per start; a run no longer in the history (pruned, its effects
    forgotten on purpose) is left to the ledger, which keeps a tombstone of what a prune
    forgot. Returns (those runs, the writers the record names that neither holds)."""
    held = {e.run_id for e in effects}
    named = [s["id"] for s in recent if s["status"] in FINISHED and s.get("side_effects")]
    unheld: list[Run] = []
    lost: list[str] = []
    for run_id in dict.fromkeys([*named, *writers]):
        if run_id in held:
            continue
        try:
            run = history.get(run_id)
        except NotFoundError:
            if run_id in writers:
                lost.append(run_id)
            continue
        except WorkerctlError:
            continue
        if run.worker == worker and run.status in FINISHED:
            unheld.append(run)
    return unheld, lost


def _running_unmarked(history: History, recent: list[dict[str, Any]], running: tuple[str, ...]) -> list[str]:
    """Runs among ``recent`` still executing whose marker is gone (deleted by hand, or a
    folder restored from a backup): their run file names their process, and while it
    lives the run is in progress. Read only for an unfinished run without a marker."""
    from workerctl.history.sweep import owner_alive

    out = []
    for summary in recent:
        if summary["status"] in FINISHED or summary["id"] in running:
            continue
        try:
            run = history.get(summary["id"])
        except WorkerctlError:
            continue
        if run.status not in FINISHED and run.owner and owner_alive(history, run.id, run.owner):
            out.append(run.id)
    return out


def _record_then(effect: Effect) -> str | None:
    """The record as the last write left it: the fingerprint the source read back
    after writing (``record_after`` in the effect, for a server that changes the
    record itself when a message arrives), else the one the run started from."""
    after = (effect.detail or {}).get("record_after")
    return after if isinstance(after, str) else effect.record_fingerprint


def _running_on(history: History, worker: str, record_id: str) -> list[str]:
    """Unfinished runs of ``worker`` on ``record_id``, from the markers alone."""
    out = []
    for run_id, info in history.unfinished_identities().items():
        if "worker" not in info:  # a marker written before markers named them
            try:
                run = history.get(run_id)
            except WorkerctlError:
                continue
            info = {"worker": run.worker, "record_id": run.record_id}
        if info.get("worker") == worker and info.get("record_id") == record_id:
            out.append(run_id)
    return out
