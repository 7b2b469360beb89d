"""Held writes: a person approves them (each made exactly once) or rejects them.

A run that needs a person (``workers.influence.hold_reasons``) does not write: each
write is stored on the run, and in the ledger, as ``held`` (``engine.run_records``).
The run is finished (for cron: exit 0) and says it waits for a person
(``Run.approval == "waiting"``).

``approve`` makes the held writes one at a time. Each is first *claimed* under the
history lock (``held`` → ``intended``, with who and when): of several simultaneous
approvals exactly one claims it. Then the write is made with the key the run gave
it (a record source writes a key once), then it is stored ``committed``. A process
killed between claim and commit leaves that one effect ``intended`` on a finished
run, which the ledger reads as ``unknown`` (settled with ``ledger settle``); never
two writes. Before claiming, the record is compared with what the run saw when it
asked to write: if it changed, approve says what changed and refuses without
``anyway``. ``reject`` marks every held write ``not_written``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workerctl.errors import NotFoundError, UsageError
from workerctl.runs.model import now_iso

if TYPE_CHECKING:
    from workerctl.history.store import History
    from workerctl.records.book import RecordBook
    from workerctl.records.model import Record
    from workerctl.runs.model import Run

HELD, INTENDED, COMMITTED, NOT_WRITTEN = "held", "intended", "committed", "not_written"
WAITING, APPROVED, REJECTED = "waiting", "approved", "rejected"


@dataclass
class Outcome:
    """What ``approve`` or ``reject`` did to one run's held writes."""

    run_id: str
    verdict: str  # approved | rejected
    by: str
    at: str
    effects: list[dict[str, Any]] = field(default_factory=list)  # what this call did
    already: str = ""  # nothing was left: who decided before

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def held(run: Run) -> list[dict[str, Any]]:
    return [e for e in run.side_effects if e.get("state") == HELD]


def approval_word(run: Run) -> str | None:
    """``waiting`` while any write is held; then who decided (``approved``/``rejected``)."""
    if held(run):
        return WAITING
    decided = [e for e in run.side_effects if e.get("approved_by") or e.get("rejected_by")]
    if not decided:
        return None
    return APPROVED if any(e.get("approved_by") for e in decided) else REJECTED


def _already(run: Run) -> str:
    for e in run.side_effects:
        if e.get("approved_by") and e.get("state") == INTENDED:
            return (
                f"approved by {e['approved_by']} at {e.get('approved_at')}, but that approval was cut "
                f"off: whether {e.get('record_id')} got the write is unknown; check it, then "
                f"'workerctl ledger settle {run.id} --written' (or --not-written)"
            )
    for e in run.side_effects:
        if e.get("approved_by"):
            return f"approved by {e['approved_by']} at {e.get('approved_at')}"
        if e.get("rejected_by"):
            return f"rejected by {e['rejected_by']} at {e.get('rejected_at')}"
    return ""


def _no_held(run: Run, verdict: str, by: str) -> Outcome:
    """Nothing held any more: the same decision again stands (exit 0, "nothing left to
    decide"); the opposite one is refused (exit 2), as a cancel of a finished run is: an
    approve after a reject made no write, and a script (or one of two people deciding
    at once) must not read exit 0 as "written" (a fresh-brief attack)."""
    already = _already(run)
    if not already:
        raise UsageError(
            f"run {run.id} holds no writes waiting for a person",
            hint="'workerctl runs list --held' lists the runs that do",
        )
    earlier = approval_word(run)
    if earlier in (APPROVED, REJECTED) and earlier != verdict:
        raise UsageError(
            f"run {run.id} cannot be {verdict}: its held writes were {already}",
            hint=f"'workerctl run inspect {run.id}' shows what was decided",
        )
    return Outcome(run.id, verdict, by, now_iso(), already=already)


def _finished(run: Run) -> Run:
    """Held writes are decided once their run has finished (a running run still saves
    its own copy of them)."""
    if not run.finished:
        raise UsageError(
            f"run {run.id} is still {run.status}; its held writes can be decided once it has finished",
            hint=f"wait for it: workerctl run watch {run.id}",
        )
    return run


def changes(seen: dict[str, Any] | None, now: Record) -> list[str]:
    """What changed in a record since a run saw it ([] when nothing did)."""
    if not seen or seen.get("fingerprint") == now.fingerprint():
        return []
    before = seen.get("record")
    if not isinstance(before, dict):
        return ["its content (too large to say which part)"]
    out = []
    if before.get("title") != now.title:
        out.append(f"title: {before.get('title')!r} -> {now.title!r}")
    old_fields = before.get("fields") or {}
    for name in sorted(set(old_fields) | set(now.fields)):
        if old_fields.get(name) != now.fields.get(name):
            out.append(f"{name}: {_short(old_fields.get(name))} -> {_short(now.fields.get(name))}")
    if (before.get("links") or {}) != now.links:
        out.append("links")
    return out or ["its access or test markings"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def approve(history: History, book: RecordBook, run_id: str, *, by: str, anyway: bool = False) -> Outcome:
    """Make each held write of ``run_id`` once (see the module docstring)."""
    from workerctl.engine.run_records import apply_write
    from workerctl.records.http import RecordSourceError

    run = _finished(history.get(run_id))
    pending = held(run)
    if not pending:
        return _no_held(run, APPROVED, by)
    changed: list[str] = []
    for effect in pending:
        target = str(effect.get("record_id"))
        now = book.peek(target)
        if now is None:
            raise NotFoundError(
                f"run {run.id} holds a {effect.get('kind')} on {target}, which no longer exists",
                hint=f"reject it: workerctl run reject {run.id}",
            )
        changed += [f"{target} {c}" for c in changes(effect.get("seen"), now)]
    if changed and not anyway:
        raise UsageError(
            f"the record changed since run {run.id} read it: " + "; ".join(dict.fromkeys(changed)),
            hint=f"check that the held write still fits, then 'workerctl run approve {run.id} --anyway', "
            f"or 'workerctl run reject {run.id}'",
        )
    outcome = Outcome(run.id, APPROVED, by, now_iso())
    while True:
        claimed = _claim(history, run.id, by, outcome.at)
        if claimed is None:
            break
        stored, key = claimed
        effect = next(e for e in stored.side_effects if e.get("key") == key)
        try:
            done = apply_write(book, stored, effect)
        except RecordSourceError as refused:
            if refused.nothing_written:  # certainly not written: it waits again
                _unclaim(history, run.id, key)
            raise
        committed = _commit(history, run.id, key, done)
        outcome.effects.append(committed)
    if not outcome.effects:  # another approval claimed them all first
        return _no_held(history.get(run.id), APPROVED, by)
    return outcome


def _claim(history: History, run_id: str, by: str, at: str) -> tuple[Run, str] | None:
    """Move the first held write to ``intended`` under the lock; None when none is left."""
    box: list[str] = []

    def claim(run: Run) -> None:
        for effect in run.side_effects:
            if effect.get("state") == HELD:
                effect.update(state=INTENDED, approved_by=by, approved_at=at)
                box.append(str(effect.get("key")))
                return

    with history.lock:
        run = history.get(run_id)
        claim(run)
        if not box:
            return None
        return history.save(run), box[0]


def _unclaim(history: History, run_id: str, key: str) -> None:
    def back(run: Run) -> None:
        for effect in run.side_effects:
            if effect.get("key") == key and effect.get("state") == INTENDED:
                effect["state"] = HELD
                effect.pop("approved_by", None)
                effect.pop("approved_at", None)

    history.update(run_id, back)


def _commit(history: History, run_id: str, key: str, done: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def commit(run: Run) -> None:
        for effect in run.side_effects:
            if effect.get("key") == key and effect.get("state") == INTENDED:
                effect.update(done, state=COMMITTED, committed_at=now_iso())
                out.update(effect)
        run.approval = approval_word(run)

    history.update(run_id, commit)
    return {k: out.get(k) for k in ("kind", "record_id", "state", "comment_id", "approved_by", "approved_at")}


def reject(history: History, run_id: str, *, by: str) -> Outcome:
    """Discard every held write of ``run_id`` (each recorded ``not_written``, with who)."""
    outcome = Outcome(run_id, REJECTED, by, now_iso())

    def drop(run: Run) -> None:
        for effect in held(run):
            effect.update(state=NOT_WRITTEN, rejected_by=by, rejected_at=outcome.at)
            outcome.effects.append(
                {k: effect.get(k) for k in ("kind", "record_id", "state", "rejected_by", "rejected_at")}
            )
        run.approval = approval_word(run)

    with history.lock:
        run = _finished(history.get(run_id))
        if not held(run):
            return _no_held(run, REJECTED, by)
        history.update(run_id, drop)
    return outcome


def held_run_ids(history: History) -> list[str]:
    """Runs with a write waiting for a person, from the ledger (newest first)."""
    effects = history.ledger.query(states=(HELD,))
    return list(dict.fromkeys(e.run_id for e in effects))


def follow_review(history: History, book: RecordBook, run: Run, verdict: str, *, by: str) -> Outcome | None:
    """``run review --verdict approved|rejected`` decides a run's held writes as
    ``run approve`` / ``run reject`` do (None: nothing held, or another verdict)."""
    if not held(run) or verdict not in (APPROVED, REJECTED):
        return None
    if verdict == APPROVED:
        return approve(history, book, run.id, by=by)
    return reject(history, run.id, by=by)


def describe(outcome: Outcome) -> str:
    """One line per effect for a person."""
    if outcome.already:
        return f"Nothing left to decide on run {outcome.run_id}: {outcome.already}."
    lines = [f"{outcome.verdict.capitalize()} run {outcome.run_id}: {len(outcome.effects)} held write(s)."]
    for e in outcome.effects:
        what = " ".join(str(x) for x in (e.get("kind"), e.get("comment_id") or "") if x)
        lines.append(f"  {what} on {e.get('record_id')}: {e.get('state')}")
    return "\n".join(lines)
