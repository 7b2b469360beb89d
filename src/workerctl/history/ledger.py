"""The side-effect ledger: every write a run makes, intended before and committed after.

A run that writes (a comment, a record created or updated, any write a tool
makes) first stores the write as ``intended``, then does it, then stores it as
``committed``. If the process dies between the two, the write may or may not
have happened: the effect reads as ``unknown`` and blocks further runs of that
worker on that record until a person settles it (``workerctl ledger settle``),
the way a payment whose result is unknown is reconciled before it is retried.

Each effect is keyed by run id, step and target (and its kind, for a step that
writes two things to one record), so a retried or re-delivered run that writes
again lands on the same entry: the ledger holds it once. The run files carry
the same effects (``Run.side_effects``); the ledger is their index by record
and by worker, kept when ``runs prune`` removes old run files.

Layout under ``.workerctl/history/ledger/`` (TinyDB databases, fsynced, written
under the history lock)::

    records/T-1042.json      table "effects": every side effect on that record
    workers/NAME/07.json     table "records": per record, that worker's effects, split by
                             a hash of the record id into 64 files, so one run rewrites a
                             bounded file however many records the worker wrote to
                             (a ``workers/NAME.json`` an older workerctl wrote is read too,
                             until ``runs reindex`` replaces it)

The worker files are derived from the record files: not fsynced, and in a batch's
hand-over chain staged with the index files (``History.write_shared``). A crash between
a record file and its worker file leaves the run's marker; settling the run writes the
worker file again from the record file (``sync``'s ``repair``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workerctl.errors import DamagedFile, NotFoundError, StorageError, UsageError, WorkerctlError
from workerctl.history.layout import RUN_ID
from workerctl.history.tables import next_id, read_table, safe_name, write_table
from workerctl.memo import Memo
from workerctl.names import RECORD_ID
from workerctl.runs.model import now_iso
from workerctl.runs.states import FINISHED
from workerctl.storage import fs
from workerctl.storage.atomic import encode_json, prepare_text
from workerctl.storage.filenames import LegacyFiles
from workerctl.storage.shapes import FieldSpec, Nested, object_with

if TYPE_CHECKING:
    from workerctl.history.change import Change
    from workerctl.history.store import History
    from workerctl.runs.model import Run
    from workerctl.storage.atomic import PreparedFile

INTENDED, COMMITTED, UNKNOWN, NOT_WRITTEN = "intended", "committed", "unknown", "not_written"
# a write a run that needs a person did not make: it waits for 'workerctl run approve'
# (runs/approval.py), and the duplicate guard counts it as written
HELD = "held"
# a write a run made whose run was pruned with --forget-side-effects: kept as a
# tombstone, so that the comment the record still holds is known to be forgotten on
# purpose (the duplicate guard lets it be written again), not lost with the ledger
FORGOTTEN = "forgotten"
STATES = (INTENDED, COMMITTED, UNKNOWN, NOT_WRITTEN, HELD, FORGOTTEN)
UNSETTLED = (INTENDED, UNKNOWN, HELD)  # a person decides these; no prune forgets them
NO_RECORD = "-"  # the target of a write tied to no record
EFFECT_FIELDS: dict[str, FieldSpec] = {
    "key": str,
    "run_id": RUN_ID,
    "step": str,
    "target": str,
    "kind": str,
    "worker": str,
    "state": frozenset(STATES),
    "at": str,
    "committed_at": (str, type(None)),
    "detail": (dict, type(None)),
    "settled": object_with({"by": str}, "who settled it and when, or null", nullable=True),
}
WORKER_BUCKETS = 64  # a worker's per-record summaries are split into this many files
#: a record id read from the ledger becomes a file name (``ledger/records/ID.json``): text of
#: the record-id rule's length (a source's own ids may hold other characters, which the
#: file-name mapping takes; a 3,000-character one it cannot)
_RECORD_ID = Nested(
    lambda v: type(v) is str and 0 < len(v) <= RECORD_ID.max_length, "a record id of 1 to 128 characters"
)
WORKER_FIELDS: dict[str, FieldSpec] = {
    "record_id": _RECORD_ID,
    "effects": int,
    "unknown": int,
    "last_at": str,
}


def effect_state(effect: dict[str, Any], run_finished: bool) -> str:
    """An effect's state as the ledger sees it: one still ``intended`` when its run has
    finished was never confirmed, so whether it was written is ``unknown``."""
    state = effect.get("state") or COMMITTED  # runs stored before the ledger: written
    return UNKNOWN if state == INTENDED and run_finished else state


def effects_as_stated(run: Run) -> list[dict[str, Any]]:
    """``run``'s side effects, each state as the ledger reads it (``effect_state``): the
    one view the card and ``run inspect --json`` give (the JSON said ``intended`` for a
    write its crashed run never confirmed, where the card said UNKNOWN)."""
    return [{**e, "state": effect_state(e, run.finished)} for e in run.side_effects]


def _settle_entry(entry: dict[str, Any], state: str, stamp: dict[str, Any]) -> None:
    """A run's effect or a ledger entry settled as ``state`` by ``stamp`` (in place): the
    one rule for both, so a pruned run's entry reads as a living run's does."""
    entry["state"] = state
    entry["settled"] = dict(stamp)
    if state == COMMITTED:
        entry["committed_at"] = entry.get("committed_at") or stamp["at"]


def entry_key(run_id: str, step: str, target: str, kind: str) -> str:
    return f"{run_id}|{step}|{target}|{kind}"


@dataclass(frozen=True)
class Effect:
    """One ledger entry, as the guard and ``ledger list`` read it."""

    key: str
    run_id: str
    step: str
    target: str
    kind: str
    worker: str
    state: str
    at: str
    committed_at: str | None = None
    config_hash: str | None = None
    record_fingerprint: str | None = None
    detail: dict[str, Any] | None = None
    settled: dict[str, Any] | None = None

    @property
    def written(self) -> bool:
        """On the target: a committed write ("created": false only means a retry of the
        same run found its own keyed write already there), or a held one (a person
        will make it: a second run must not write it again)."""
        return self.state in (COMMITTED, HELD)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Effect:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in doc.items() if k in names})

    def describe(self) -> str:
        """ "comment c-4 on T-1042 by run 3k9… (committed 2026-…)" for messages."""
        what = " ".join(x for x in (self.kind, str((self.detail or {}).get("comment_id") or "")) if x)
        where = "no record" if self.target == NO_RECORD else self.target
        when = self.committed_at or self.at
        return f"{what} on {where} by run {self.run_id} ({self.state} {when})"


class Ledger:
    def __init__(self, history: History) -> None:
        self.history = history
        self.root: Path = history.root / "ledger"
        self._paths: Memo[tuple[str, str], Path] = Memo(
            lambda key: self.root.joinpath(key[0], f"{safe_name(key[1])}.json")
        )
        self._worker_paths: Memo[tuple[str, str], Path] = Memo(
            lambda key: self.root / "workers" / safe_name(key[0]) / f"{key[1]}.json"
        )
        self._legacy = LegacyFiles(self.root / "records")

    # -- paths and files --

    def record_path(self, target: str) -> Path:
        return self._path("records", target)

    def worker_path(self, worker: str, target: str) -> Path:
        """The file of ``worker``'s summary of ``target`` (one of its 64 buckets)."""
        return self._worker_paths[worker, f"{target_hash(target) % WORKER_BUCKETS:02d}"]

    def _path(self, folder: str, key: str) -> Path:
        """Made once per key: each write of a run asks for the same few paths."""
        return self._paths[folder, key]

    def _hint(self, path: Path) -> str:
        return (
            f"move {path} aside, then run 'workerctl runs reindex': the ledger is rebuilt "
            "from the run files (effects of pruned runs kept only in that file are lost)"
        )

    def _effects(self, target: str) -> dict[str, dict]:
        """``target``'s record file as it is written back whole. In a workspace an
        earlier version wrote, its name may be another id's old file (``t:500``'s name
        is ``t_3a500``, the old name of the id ``t_3a500``): the other id's entries stay
        in it for that id, and every reader keeps ``target``'s only (``effects``,
        ``_summarise``). Until ``target`` has an entry there, its own old file is merged
        in, so the first write puts its entries under the new name."""
        path = self.record_path(target)
        docs = read_table(path, "effects", EFFECT_FIELDS, hint=self._hint(path), known=self.history.tables)
        if not docs:
            return docs if fs.exists(path) else self._legacy_effects(target)
        if not any(d["target"] == target for d in docs.values()):
            for doc in self._legacy_effects(target).values():
                docs[next_id(docs)] = doc
        return docs

    def _legacy_effects(self, target: str) -> dict[str, dict]:
        """A workspace written before the file names were injective (``storage.filenames``):
        ``target``'s entries from its old file, which two ids may share; the first write
        puts them under the new name (the old file stays for the other id)."""
        old = self._legacy.first(target)  # asked at about every commit
        if old is None:
            return {}
        docs = read_table(old, "effects", EFFECT_FIELDS, hint=self._hint(old))
        return {k: d for k, d in docs.items() if d["target"] == target}

    def _worker_docs(self, worker: str, target: str) -> dict[str, dict]:
        path = self.worker_path(worker, target)
        return read_table(path, "records", WORKER_FIELDS, hint=self._hint(path), known=self.history.tables)

    def _worker_records(self, worker: str) -> dict[str, dict]:
        """Record id -> ``worker``'s summary of it, from every bucket (and the single
        file an older workerctl wrote, where a bucket does not say otherwise)."""
        out: dict[str, dict] = {}
        legacy = self.root / "workers" / f"{safe_name(worker)}.json"
        for doc in read_table(legacy, "records", WORKER_FIELDS, hint=self._hint(legacy)).values():
            out[doc["record_id"]] = doc
        folder = self.root / "workers" / safe_name(worker)
        # a bucket this process has staged (a batch's chain) is read as it is to be written
        known = self.history.tables
        for path in sorted({*fs.glob(folder, "*.json"), *self.history.staged_in(folder)}):
            docs = read_table(path, "records", WORKER_FIELDS, hint=self._hint(path), known=known)
            for doc in docs.values():
                out[doc["record_id"]] = doc
        return out

    # -- writing (the history calls this under its lock) --

    def apply(self, change: Change, ahead: dict[Path, PreparedFile] | None = None) -> None:
        """A committed change of a run (``History._hand_over``, under the lock): the
        ledger brought in line with its side effects."""
        stored = None if change.repair else change.stored  # a repair: as if all were new
        before = stored.get("side_effects") if stored else None
        if change.run.side_effects or before:
            was_finished = stored is not None and stored.get("status") in FINISHED
            self.sync(change.run, before, was_finished=was_finished, ahead=ahead, repair=change.repair)

    def sync(
        self,
        run: Run,
        before: list[dict[str, Any]] | None,
        was_finished: bool = False,
        ahead: dict[Path, PreparedFile] | None = None,
        repair: bool = False,
    ) -> None:
        """Bring the ledger in line with ``run.side_effects`` after a history write.

        ``before`` is what the stored run held: placeholders that disappeared (a
        write the tool refused, so nothing was written) leave the ledger too.
        ``ahead``: record files ``prepare`` wrote ahead; one is put in place only if
        it holds exactly what is to be written now. ``repair``: a write a crash may
        have cut is made again (``Change.repair``): the worker's summary of each
        target is written from its record file even when that file is already as it
        should be, since the crash may have come between the two.
        """
        for target, changes in self._changes(run, before, was_finished).items():
            docs = self._after(run, target, changes)
            if docs is not None:
                path = self.record_path(target)
                write_table(path, "effects", docs, known=self.history.tables, ahead=(ahead or {}).get(path))
                self._summarise(run.worker, target, docs)
            elif repair:
                self._summarise(run.worker, target, self._effects(target))

    def prepare(
        self, run: Run, before: list[dict[str, Any]] | None, was_finished: bool = False
    ) -> dict[Path, PreparedFile]:
        """The record files ``sync`` would write, written and fsynced ahead, before the
        history lock is taken (``storage.atomic.PreparedFile``). Anything that goes
        wrong here is left for ``sync`` to meet in its turn."""
        out: dict[Path, PreparedFile] = {}
        try:
            for target, changes in self._changes(run, before, was_finished).items():
                docs = self._after(run, target, changes)
                if docs is not None:
                    path = self.record_path(target)
                    out[path] = self.history.tables.prepare(
                        path, "effects", docs, folder=self.history.ahead_dir()
                    )
        except WorkerctlError:
            pass
        return out

    def _changes(
        self, run: Run, before: list[dict[str, Any]] | None, was_finished: bool
    ) -> dict[str, list[tuple[str, dict | None]]]:
        """Per target, each entry key with its effect now (None: gone)."""
        if before == run.side_effects and was_finished == run.finished:
            return {}
        now = {self._key(run, e): e for e in run.side_effects}
        gone = {self._key(run, e) for e in before or []} - now.keys()
        by_target: dict[str, list[tuple[str, dict | None]]] = {}
        for key, effect in now.items():
            by_target.setdefault(_target(effect), []).append((key, effect))
        for key in gone:
            by_target.setdefault(key.split("|")[2], []).append((key, None))
        return by_target

    def _key(self, run: Run, effect: dict[str, Any]) -> str:
        return entry_key(
            run.id,
            str(effect.get("key") or f"{run.id}:?"),
            _target(effect),
            str(effect.get("kind") or "write"),
        )

    def _after(self, run: Run, target: str, changes: list[tuple[str, dict | None]]) -> dict[str, dict] | None:
        """The target's record file with ``changes`` applied; None if unchanged.

        An entry of this run still ``intended`` whose write the run file no longer
        holds goes too: the run file is written first, so that write was replaced
        by what it wrote (or refused), and only a crash between the two files (or
        a repair, which does not know what the run held before) left it behind."""
        docs = self._effects(target)
        by_key = {d["key"]: doc_id for doc_id, d in docs.items()}
        holds = {self._key(run, e) for e in run.side_effects}
        changed = False
        for stale, doc in list(docs.items()):
            if doc["run_id"] == run.id and doc["state"] == INTENDED and doc["key"] not in holds:
                del docs[stale]
                del by_key[doc["key"]]
                changed = True
        for key, effect in changes:
            doc_id = by_key.get(key)
            if effect is None:
                if doc_id is not None and docs[doc_id]["state"] == INTENDED:
                    del docs[doc_id]
                    changed = True
                continue
            old = docs.get(doc_id) if doc_id else None
            if old is not None and old.get("settled"):
                continue  # a person's settlement stands
            doc = self._doc(run, key, target, effect, old)
            if doc != old:
                if doc_id is None:
                    doc_id = next_id(docs)
                    by_key[key] = doc_id
                docs[doc_id] = doc
                changed = True
        return docs if changed else None

    def _doc(
        self, run: Run | RunFacts, key: str, target: str, effect: dict[str, Any], old: dict | None
    ) -> dict[str, Any]:
        state = effect_state(effect, run.finished)
        detail = {
            k: v
            for k, v in effect.items()
            if k not in ("kind", "key", "record_id", "state", "at", "committed_at", "text", "settled")
        }
        at = effect.get("at") or (old or {}).get("at") or run.finished_at or run.created
        committed_at = effect.get("committed_at") or (old or {}).get("committed_at")
        if state == COMMITTED and committed_at is None:
            committed_at = at
        return {
            "key": key,
            "run_id": run.id,
            "step": str(effect.get("key") or ""),
            "target": target,
            "kind": str(effect.get("kind") or "write"),
            "worker": run.worker,
            "state": state,
            "at": at,
            "committed_at": committed_at,
            "config_hash": run.config_hash,
            "record_fingerprint": run.record_fingerprint if run.record_id == target else None,
            "detail": detail,
            # a person's (or the guard's) settlement, kept on the run's effect (``settle``)
            "settled": effect.get("settled") if isinstance(effect.get("settled"), dict) else None,
        }

    def _summarise(self, worker: str, target: str, docs: dict[str, dict]) -> None:
        mine = [d for d in docs.values() if d["worker"] == worker and d["target"] == target]
        before = self._worker_docs(worker, target)
        summary = dict(before)
        doc_id = next((k for k, d in summary.items() if d["record_id"] == target), None)
        if not mine:
            if doc_id is None:
                return
            del summary[doc_id]
        else:
            summary[doc_id or next_id(summary)] = {
                "record_id": target,
                "effects": len(mine),
                "unknown": sum(d["state"] in (UNKNOWN, INTENDED) for d in mine),
                "last_at": max(d["at"] for d in mine),
            }
        # derived from the record files (reindex rebuilds it): not fsynced; in a batch's
        # hand-over chain staged with the index files (a crash before they are written
        # leaves the run's marker, and its settling writes the summary again: ``repair``)
        if summary != before:
            self.history.write_shared(self.worker_path(worker, target), "records", summary, durable=False)

    # -- reading --

    def effects(self, target: str, worker: str | None = None) -> list[Effect]:
        """Every effect on ``target`` (of one worker), oldest first."""
        docs = self._effects(target).values()
        out = [
            Effect.from_doc(d)
            for d in docs
            if d["target"] == target and (worker is None or d["worker"] == worker)
        ]
        return sorted(out, key=lambda e: e.at)

    def confirm(self, worker: str, target: str, held: int) -> None:
        """``target``'s record file holds ``held`` entries of ``worker``; the worker's
        summary must not count more: a record file deleted, emptied or rolled back to an
        older copy would otherwise let the duplicate guard run the write again (a second
        comment). Then ``DamagedFile`` naming the record file (``runs reindex`` rebuilds
        it from the run files)."""
        for doc in self._worker_docs(worker, target).values():
            if doc["record_id"] == target and doc["effects"] > held:
                path = self.record_path(target)
                raise DamagedFile(
                    path,
                    f"it holds {held} entries of {worker} on {target}, whose summary in the ledger "
                    f"counts {doc['effects']} (the file was deleted, emptied or rolled back)",
                    hint="run 'workerctl runs reindex': the ledger is rebuilt from the run files still in "
                    "the history; entries of runs already pruned come back only from a backup of the "
                    "file (or start with --allow-repeat to write again on purpose)",
                )

    def confirm_runs(self, target: str, effects: list[Effect], runs: Iterable[Run]) -> None:
        """Every effect on ``target`` that one of ``runs`` (run files in the history) holds
        must be among ``effects`` (what the ledger answers for ``target``): the run files
        are what the ledger indexes, written in the same commit. A ledger folder restored
        from an older backup, or a summary deleted with its record file emptied, holds
        fewer, and the duplicate guard would let the write run again (a second comment).
        Then ``DamagedFile`` naming the record file; ``runs reindex`` rebuilds it."""
        held = {e.key for e in effects}
        for run in runs:
            for entry_target, key, _effect, _facts in self.entries_of(run):
                if entry_target == target and key not in held:
                    raise DamagedFile(
                        self.record_path(target),
                        f"run {run.id} recorded a side effect on {target} ({key}) that the ledger "
                        "does not hold (the ledger was deleted, emptied or restored from an older backup)",
                        hint="run 'workerctl runs reindex': the ledger is rebuilt from the run files",
                    )

    def records_of(self, worker: str) -> list[dict[str, Any]]:
        """The records ``worker`` wrote to, newest first, with counts."""
        return sorted(self._worker_records(worker).values(), key=lambda d: d["last_at"], reverse=True)

    def workers(self) -> list[str]:
        """Every worker with effects in the ledger (worker names are slugs, so file names)."""
        folder = self.root / "workers"
        return sorted({p.stem if p.suffix == ".json" else p.name for p in fs.glob(folder, "*")})

    def query(
        self,
        *,
        worker: str | None = None,
        record_id: str | None = None,
        states: tuple[str, ...] = (),
        run_id: str | None = None,
        limit: int | None = None,
    ) -> list[Effect]:
        """Effects matching every filter given, newest first (a ``forgotten`` tombstone
        only when asked for by its state)."""
        if record_id is not None:
            targets = [record_id]
        else:
            workers = [worker] if worker else self.workers()
            seen: dict[str, str] = {}
            for name in workers:
                for doc in self.records_of(name):
                    if states and set(states) <= {UNKNOWN, INTENDED} and not doc["unknown"]:
                        continue
                    seen.setdefault(doc["record_id"], doc["last_at"])
            targets = sorted(seen, key=seen.__getitem__, reverse=True)
        out: list[Effect] = []
        for target in targets:
            for effect in reversed(self.effects(target, worker)):
                if (states and effect.state not in states) or (not states and effect.state == FORGOTTEN):
                    continue
                if run_id and effect.run_id != run_id:
                    continue
                out.append(effect)
            if limit and len(out) >= limit:
                break
        out.sort(key=lambda e: e.at, reverse=True)
        return out[:limit] if limit else out

    # -- settling --

    def settle(
        self, key_or_run: str, *, written: bool, by: str, note: str = "", target: str | None = None
    ) -> list[Effect]:
        """A person says whether unknown effects were written: ``committed`` (they were;
        the duplicate guard then treats them as any written effect) or ``not_written``.

        ``key_or_run`` is an entry key, or a run id (prefix) to settle every unknown
        effect of that run (on ``target`` only, when given).
        """
        with self.history.lock:
            candidates = self.find_unsettled(key_or_run, target)
            if not candidates:
                raise NotFoundError(
                    f"no unknown side effect matches {key_or_run!r}",
                    hint="'workerctl ledger list --state unknown' shows them",
                )
            state = COMMITTED if written else NOT_WRITTEN
            stamp = {"as": "written" if written else "not_written", "by": by, "at": now_iso(), "note": note}
            keys = {e.key for e in candidates}
            pruned: list[Effect] = []
            # the run file first, through the one commit path (which brings the ledger in
            # line): the card, 'run inspect' and a rebuild read the settled state from it
            for run_id in sorted({e.run_id for e in candidates}):
                try:
                    self.history.update(run_id, lambda run: self._mark(run, keys, state, stamp))
                except NotFoundError:  # pruned: its entries live on in the ledger alone
                    pruned.extend(e for e in candidates if e.run_id == run_id)
            for tgt in sorted({e.target for e in pruned}):
                self._settle_in_ledger(tgt, {e.key for e in pruned if e.target == tgt}, state, stamp)
            targets = sorted({e.target for e in candidates})
            return [e for tgt in targets for e in self.effects(tgt) if e.key in keys]

    def _mark(self, run: Run, keys: set[str], state: str, stamp: dict[str, Any]) -> None:
        """``run``'s effects among ``keys`` settled as ``state`` by ``stamp``."""
        for effect in run.side_effects:
            if self._key(run, effect) in keys:
                _settle_entry(effect, state, stamp)

    def _settle_in_ledger(self, target: str, keys: set[str], state: str, stamp: dict[str, Any]) -> None:
        """Entries whose run was pruned: settled in ``target``'s record file itself."""
        docs = self._effects(target)
        worker = None
        for doc_id, old in docs.items():
            if old["key"] in keys:  # a new document: read ones are shared
                doc = docs[doc_id] = dict(old)
                _settle_entry(doc, state, stamp)
                worker = doc["worker"]
        write_table(self.record_path(target), "effects", docs, known=self.history.tables)
        if worker:
            self._summarise(worker, target, docs)

    def find_unsettled(self, key_or_run: str, target: str | None = None) -> list[Effect]:
        """The unknown (or intended) effects ``settle`` would settle: those of one entry
        key, or of the one run ``key_or_run`` names (an empty or ambiguous prefix is a
        usage error: a person decides about one run's writes at a time)."""
        open_states = (UNKNOWN, INTENDED)
        if "|" in key_or_run:
            parts = key_or_run.split("|")
            if len(parts) != 4:
                raise UsageError(f"{key_or_run!r} is not a ledger key (RUN|STEP|TARGET|KIND)")
            return [
                e
                for e in self.effects(parts[2])
                if e.key == key_or_run and e.state in open_states and not self._running(e.run_id)
            ]
        prefix = key_or_run.strip().lower()
        if not prefix:
            raise UsageError("name the run whose effects to settle (its id or a prefix), or one ledger key")
        found = [e for e in self.query(record_id=target, states=open_states) if e.run_id.startswith(prefix)]
        runs = sorted({e.run_id for e in found})
        if len(runs) > 1:  # a person decides about one run's writes, never several by accident
            raise UsageError(
                f"{key_or_run!r} matches the unknown effects of {len(runs)} runs: {', '.join(runs[:10])}",
                hint="type more characters of the run id",
            )
        running = [e for e in found if self._running(e.run_id)]
        if running:
            raise UsageError(
                f"run {running[0].run_id} is still executing; its intended effects are not unknown yet",
                hint="wait for it to finish, or cancel it",
            )
        return found

    def find_settled(self, key_or_run: str, target: str | None = None) -> list[Effect]:
        """The effects of one entry key, or of the one run ``key_or_run`` names, that are
        settled already (by a person, or by a start from what the record holds): what a
        ``ledger settle`` made again finds where no unknown one is left, such as after a
        settle cut by a crash once its run file was written (the next command's sweep
        finishes it). Read from the key's record file, or the run's own record files;
        none when the prefix names no run or several."""
        if "|" in key_or_run:
            parts = key_or_run.split("|")
            found = [e for e in self.effects(parts[2]) if e.key == key_or_run] if len(parts) == 4 else []
        else:
            try:
                run = self.history.get(self.history.resolve(key_or_run))
            except (NotFoundError, UsageError):
                return []
            targets = {_target(e) for e in run.side_effects}
            if target:
                targets &= {target}
            found = [e for t in sorted(targets) for e in self.effects(t) if e.run_id == run.id]
        return [e for e in found if e.settled and e.state in (COMMITTED, NOT_WRITTEN)]

    def settled_already(self, key_or_run: str, target: str | None, written: bool | None) -> list[Effect]:
        """For a settle that finds no unknown effect left: the effects ``key_or_run``
        names when every one of them is settled already as ``written`` says (a settle
        made again after a crash cut it once its run file was written: done, nothing to
        change). Otherwise ``NotFoundError``, naming how the first of them were settled
        (by whom, when, which way), so a person who says the opposite learns that
        someone decided before."""
        done = self.find_settled(key_or_run, target)
        verdict = None if written is None else "written" if written else "not_written"
        if done and verdict and all((e.settled or {}).get("as") == verdict for e in done):
            return done
        raise NotFoundError(
            f"no unknown side effect matches {key_or_run!r}"
            + "".join(f"; {_settled_as(e)}" for e in done[:3]),
            hint="'workerctl ledger list --state unknown' shows them",
        )

    def _running(self, run_id: str) -> bool:
        return fs.exists(self.history.marker_path(run_id))

    def forget(self, run_id: str, targets: set[str]) -> int:
        """Forget a pruned run's entries (``runs prune --forget-side-effects``): each is kept
        as a ``forgotten`` tombstone (what the write was is dropped), so the record's copy
        of it is known to be forgotten on purpose, not lost. Never an unsettled one: an
        ``unknown`` (or ``intended``) write is cleared only by a person (``ledger settle``),
        and a ``held`` one only by ``run approve`` or ``run reject``; forgetting it let the
        next start write again."""
        dropped = 0
        for target in targets:
            docs = self._effects(target)
            keep = {
                k: {**d, "state": FORGOTTEN, "detail": {}}
                if d["run_id"] == run_id and d["state"] not in (*UNSETTLED, FORGOTTEN)
                else d
                for k, d in docs.items()
            }
            changed = [k for k in docs if keep[k] is not docs[k]]
            if changed:
                dropped += len(changed)
                write_table(self.record_path(target), "effects", keep, known=self.history.tables)
                for worker in {d["worker"] for d in docs.values() if d["run_id"] == run_id}:
                    self._summarise(worker, target, keep)
        return dropped

    # -- rebuilding --

    def entries_of(self, run: Run) -> list[list[Any]]:
        """What ``rebuild_from`` needs of each of ``run``'s effects, as JSON values (the
        reindex sorts them on disk): [target, key, effect, the run's facts]."""
        if not run.side_effects:
            return []
        facts = RunFacts.of(run).to_list()
        return [[_target(e), self._key(run, e), e, facts] for e in run.side_effects]

    def rebuild_from(self, partitions: Iterable[list[list[Any]]]) -> int:
        """Add every run's effects, under the caller's lock (one partition at a time);
        entries of pruned runs are kept. ``runs reindex`` uses ``merge_ahead`` and
        ``put_in`` instead, so that its holds of the lock do not grow with the history.

        ``partitions``: the entries of ``entries_of``, split so that all of a target's
        entries are in one partition (applied oldest run first), and a partition's targets
        share their worker bucket (``worker_path``); one partition is in memory at a
        time. One read and at most one write per record file and per worker file,
        however many runs wrote there."""
        count = 0
        for entries in partitions:
            merged = self.merge_ahead(entries, set(), None)
            self.put_in(merged, set())
            count += merged.count
        return count

    def merge_ahead(self, entries: list[list[Any]], skip: set[str], folder: Path | None) -> MergedPart:
        """One partition's entries merged into the ledger's files as they are now, each
        changed file's next content written and fsynced ahead (in ``folder``, on the
        history's file system), with the bytes it was merged into; nothing is put in
        place (``put_in`` does, under the lock). Without the lock (``runs reindex``):
        the entries of runs in ``skip`` (noted in the reindex's journal: their writers
        keep the ledger themselves) are left out. ``folder`` None: nothing is written
        ahead, ``put_in`` writes (under a lock held the whole time)."""
        by_target: dict[str, list[tuple[RunFacts, str, dict]]] = {}
        entries.sort(key=lambda entry: (entry[3][2], entry[3][0]))  # by creation time, then run
        for target, key, effect, facts in entries:
            if facts[0] not in skip:
                by_target.setdefault(target, []).append((RunFacts.from_list(facts), key, effect))
        merged = MergedPart(count=sum(len(items) for items in by_target.values()), skip=set(skip))
        for target, items in by_target.items():
            path = self.record_path(target)
            base = _raw(path)
            docs = self._effects(target)
            self.history.tables.forget(path)  # not kept: bounded memory
            changed = _merge_items(self, target, docs, items)
            prepared = None
            if changed and folder is not None:
                prepared = prepare_text(path, encode_json({"effects": docs}), folder=folder)
            merged.targets[target] = _TargetMerge(path, base, prepared, changed, items, docs)
        for target, item in merged.targets.items():
            for worker in {d["worker"] for d in item.docs.values()}:  # summaries rebuilt too
                path = self.worker_path(worker, target)
                bucket = merged.buckets.get(path)
                if bucket is None:
                    bucket = merged.buckets[path] = _BucketMerge(worker, _raw(path), None, [])
                bucket.targets.append(target)
        for path, bucket in merged.buckets.items():
            summary = self._summaries(bucket, merged)
            if folder is not None:  # derived (reindex rebuilds it): not fsynced
                bucket.prepared = prepare_text(
                    path, encode_json({"records": summary}), folder=folder, sync_data=False
                )
            self.history.tables.forget(path)
        return merged

    def put_in(self, merged: MergedPart, noted: set[str]) -> None:
        """Under the lock: the files ``merge_ahead`` wrote ahead renamed into place, each
        only if the file is still the one it was merged into and no run of its entries
        was noted since (``noted``); any other is merged again now, from the file as it
        is, without the entries of noted runs. So the work under the lock is a rename
        per file plus what changed meanwhile, however large the history."""
        late = noted - merged.skip
        again: set[str] = set()
        published = False
        for target, item in merged.targets.items():
            if _raw(item.path) == item.base and not any(run.id in late for run, _, _ in item.items):
                if item.prepared is not None:
                    item.prepared.publish()
                    published = True
                elif item.changed:
                    write_table(item.path, "effects", item.docs, known=self.history.tables)
                self.history.tables.forget(item.path)
                continue
            if item.prepared is not None:
                item.prepared.discard()
            again.add(target)
            docs = self._effects(target)
            items = [i for i in item.items if i[0].id not in noted]
            if _merge_items(self, target, docs, items):
                write_table(item.path, "effects", docs, known=self.history.tables)
            item.docs = docs
            self.history.tables.forget(item.path)
        if published:
            _sync_folder(self.root / "records")
        for path, bucket in merged.buckets.items():
            if bucket.prepared is not None and _raw(path) == bucket.base and not again & set(bucket.targets):
                bucket.prepared.publish()
            else:  # merged again, or nothing written ahead: the file as it is now, summarised
                if bucket.prepared is not None:
                    bucket.prepared.discard()
                summary = self._summaries(bucket, merged)
                write_table(path, "records", summary, durable=False, known=self.history.tables)
            self.history.tables.forget(path)

    def _summaries(self, bucket: _BucketMerge, merged: MergedPart) -> dict[str, dict]:
        """The worker bucket's file as it is, with the summaries of its merged targets."""
        path = self.worker_path(bucket.worker, bucket.targets[0])
        summary = self._worker_docs(bucket.worker, bucket.targets[0])
        self.history.tables.forget(path)
        where = {d["record_id"]: k for k, d in summary.items()}
        for target in bucket.targets:
            mine = [d for d in merged.targets[target].docs.values() if d["worker"] == bucket.worker]
            key = where.get(target)
            if not mine:
                if key is not None:
                    del summary[key]
                continue
            summary[key or next_id(summary)] = {
                "record_id": target,
                "effects": len(mine),
                "unknown": sum(d["state"] in (UNKNOWN, INTENDED) for d in mine),
                "last_at": max(d["at"] for d in mine),
            }
        return summary


def _merge_items(ledger: Ledger, target: str, docs: dict[str, dict], items: list) -> bool:
    """``items`` (run facts, key, effect) merged into ``docs`` (in place); whether any changed.
    A person's settlement stands."""
    by_key = {d["key"]: doc_id for doc_id, d in docs.items()}
    changed = False
    for run, key, effect in items:
        doc_id = by_key.get(key)
        old = docs.get(doc_id) if doc_id else None
        if old is not None and old.get("settled"):
            continue
        doc = ledger._doc(run, key, target, effect, old)
        if doc != old:
            if doc_id is None:
                doc_id = by_key[key] = next_id(docs)
            docs[doc_id] = doc
            changed = True
    return changed


def _raw(path: Path) -> bytes | None:
    """A file's bytes, None if there is none (what a merge ahead is checked against)."""
    try:
        return fs.read_bytes(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StorageError(path, exc, "read") from None


def _sync_folder(folder: Path) -> None:
    """The renames into ``folder`` made durable: one fsync of the folder, not one per file."""
    import os

    try:
        fd = fs.open_dir(folder)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to fsync a folder; the renames stand
    finally:
        os.close(fd)


@dataclass
class _TargetMerge:
    """One record file of a merged partition: the bytes merged into (None: no file),
    its next content written ahead (None: unchanged, or nothing written ahead),
    the entries merged, and its documents after the merge."""

    path: Path
    base: bytes | None
    prepared: PreparedFile | None
    changed: bool
    items: list[tuple[RunFacts, str, dict]]
    docs: dict[str, dict]


@dataclass
class _BucketMerge:
    """One worker bucket file of a merged partition, and the targets it summarises."""

    worker: str
    base: bytes | None
    prepared: PreparedFile | None
    targets: list[str]


@dataclass
class MergedPart:
    """A ledger partition merged without the lock (``Ledger.merge_ahead``), for
    ``Ledger.put_in`` to put in place under it."""

    count: int
    skip: set[str]
    targets: dict[str, _TargetMerge] = field(default_factory=dict)
    buckets: dict[Path, _BucketMerge] = field(default_factory=dict)


@dataclass
class RunFacts:
    """What a ledger entry takes from its run (``Ledger._doc``), carried without the run."""

    id: str
    worker: str
    created: str
    finished: bool
    finished_at: str | None
    config_hash: str
    record_id: str | None
    record_fingerprint: str | None

    @classmethod
    def of(cls, run: Run) -> RunFacts:
        return cls(
            run.id,
            run.worker,
            run.created,
            run.finished,
            run.finished_at,
            run.config_hash,
            run.record_id,
            run.record_fingerprint,
        )

    def to_list(self) -> list[Any]:
        return [
            self.id,
            self.worker,
            self.created,
            self.finished,
            self.finished_at,
            self.config_hash,
            self.record_id,
            self.record_fingerprint,
        ]

    @classmethod
    def from_list(cls, values: list[Any]) -> RunFacts:
        return cls(*values)


def target_hash(target: str) -> int:
    """A record id's hash, which picks its worker bucket (``worker_path``) and its
    partition in a reindex: any text, a lone surrogate (a record id read back from
    JSON) included."""
    import zlib

    return zlib.crc32(target.encode("utf-8", "surrogatepass"))


def _target(effect: dict[str, Any]) -> str:
    return str(effect.get("record_id") or NO_RECORD)


def what_is_known(effect: Effect, history: History, records: Any) -> list[str]:
    """The evidence a person weighs before settling an effect: the run's end, and
    whether the target record holds a comment written under the effect's key."""
    lines = []
    try:
        run = history.get(effect.run_id)
    except NotFoundError:
        lines.append(f"run {effect.run_id} was pruned; its ledger entry remains")
    else:
        end = f"{run.status}" + (f" ({run.error.kind}: {run.error.message})" if run.error else "")
        lines.append(f"run {run.id} of {run.worker}: {end}")
    lines.append(f"intended {effect.at} by {(effect.detail or {}).get('by') or 'the run'}")
    if effect.target != NO_RECORD:
        try:
            found = [
                c
                for c in records.comments(effect.target)
                if c.key == effect.step or (c.run_id == effect.run_id and effect.kind in ("write", "comment"))
            ]
        except Exception as exc:  # a source that cannot answer does not stop the report
            lines.append(f"could not read the comments on {effect.target}: {exc}")
        else:
            if found:
                lines.extend(
                    f"{effect.target} holds comment {c.id} written by run {c.run_id} under key {c.key}"
                    for c in found
                )
            else:
                lines.append(f"{effect.target} holds no comment from run {effect.run_id}")
    return lines


def _settled_as(effect: Effect) -> str:
    """How a settled effect was settled, for a settle that finds nothing left to settle."""
    settled = effect.settled or {}
    how = str(settled.get("as", "")).replace("_", " ")
    return f"{effect.describe()} was settled already as {how} by {settled.get('by')} at {settled.get('at')}"
