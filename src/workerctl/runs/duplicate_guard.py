"""The duplicate guard: no start writes the same output twice on an unchanged record.

Every start (plain, detached, remote, a rerun, one record of a batch) asks
``check`` before its run is created, under the history lock, so that of several
simultaneous starts on one record exactly one runs. A start is refused when,
for that worker on that record:

- another run is executing now (``in_progress``): it may be writing right now;
- the ledger holds an ``unknown`` effect (``unknown``): its process died between
  intending a write and confirming it; a person settles it first
  (``workerctl ledger settle``), ``--allow-repeat`` does not override this;
- the ledger holds a committed effect and neither the record's content nor the
  worker's configuration changed since (``repeat``). The record's content is
  what its source reads now (a tracker: the server's state), compared with the
  state the last write left it in.

Workers that cannot write (an output mode that writes nothing and no tool that
writes) and runs tied to no record are not guarded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workerctl.errors import EXIT_DUPLICATE, WorkerctlError
from workerctl.history.ledger import HELD, INTENDED, UNKNOWN, Effect, Ledger

if TYPE_CHECKING:
    from workerctl.history.store import History

RUN, NOT_GUARDED, REPEAT_ALLOWED = "run", "not_guarded", "repeat_allowed"
REPEAT, UNKNOWN_EFFECT, IN_PROGRESS = "repeat", "unknown", "in_progress"
ALLOWED = (RUN, NOT_GUARDED, REPEAT_ALLOWED)


@dataclass(frozen=True)
class GuardDecision:
    """What the guard decided for one start, and what it found."""

    verdict: str  # run | not_guarded | repeat_allowed | repeat | unknown | in_progress
    worker: str
    record_id: str | None
    message: str = ""
    effects: tuple[Effect, ...] = ()  # the earlier effects that decided it
    running: tuple[str, ...] = ()  # ids of runs of this worker on this record executing now
    changed: tuple[str, ...] = field(default=())  # "record", "worker" when they changed

    @property
    def allowed(self) -> bool:
        return self.verdict in ALLOWED

    @property
    def overridable(self) -> bool:
        return self.verdict in (REPEAT, IN_PROGRESS)

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
        }


class DuplicateRefused(WorkerctlError):
    """A start the guard refused; nothing was recorded. Exit 5."""

    exit_code = EXIT_DUPLICATE

    def __init__(self, decision: GuardDecision) -> None:
        if decision.verdict == UNKNOWN_EFFECT:
            first = decision.effects[0]
            hint = (
                f"see what is known with 'workerctl ledger list --record "
                f"{decision.record_id} --state unknown', check the record, then "
                f"'workerctl ledger settle {first.run_id} --written' (or --not-written)"
            )
        else:
            hint = "pass --allow-repeat to run it anyway"
        super().__init__(decision.message, hint=hint)
        self.decision = decision


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
) -> GuardDecision:
    """Decide whether a run of ``worker`` on ``record_id`` may start now.

    Call it from ``history.create``'s ``admit``, under the lock the creation holds (the engine
    does), or the answer can be stale by the time the run exists.
    """
    if not may_write or not record_id:
        return GuardDecision(NOT_GUARDED, worker, record_id)
    ledger = ledger or history.ledger
    running = tuple(_running_on(history, worker, record_id))
    effects = ledger.effects(record_id, worker)
    unknown = tuple(
        e for e in effects if e.state == UNKNOWN or (e.state == INTENDED and not history.has_marker(e.run_id))
    )
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


def _record_then(effect: Effect) -> str | None:
    """The record as the last write left it: the fingerprint the source read back
    after writing (``record_after`` in the effect, for a server that changes the
    record itself when a message arrives), else the one the run started from."""
    after = (effect.detail or {}).get("record_after")
    return after if isinstance(after, str) else effect.record_fingerprint


def _running_on(history: History, worker: str, record_id: str) -> list[str]:
    """Unfinished runs of ``worker`` on ``record_id``, from the markers alone."""
    out = []
    for run_id, info in history.unfinished().items():
        if "worker" not in info:  # a marker written before markers named them
            try:
                run = history.get(run_id)
            except WorkerctlError:
                continue
            info = {"worker": run.worker, "record_id": run.record_id}
        if info.get("worker") == worker and info.get("record_id") == record_id:
            out.append(run_id)
    return out
