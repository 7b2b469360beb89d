"""``runs reindex``: the index shards and cross-run indexes rebuilt from the run files,
in memory that does not grow with the history, never holding the history lock long.

The run files are read once, one at a time, for the history and the search index both
(each run's row goes into the search index's build, ``search_index.Build``, as it is
read); only a run given a new slot (copied in from elsewhere) is read again, to rewrite
its file and to index it at its new slot. What the rebuild needs of each run (its
summary, the slot its file names, its owner if unfinished) goes to scratch files
sorted on disk (``history.spill``): by slot, to meet the current index's shards in
their own order and learn which runs keep their slot; by creation time, for the
runs that get a new one. Each side effect goes to one of the ledger's partitions
(its target's bucket), rebuilt one partition at a time. The new shards are written
one at a time as the sorted runs stream past. Peak memory is one chunk of the sort
(``spill.CHUNK`` runs), one index shard, one ledger partition.

Slots follow one rule: a run the current index holds at the slot its run file names
keeps it; runs it does not hold are merged in by creation time, and from the first
of them on every run gets a fresh slot after the last kept one. With no index at
all, the first (oldest) run to claim a valid slot keeps it and the others get fresh
slots, oldest first. A run file is rewritten only when its slot changes. A run
created while the reindex runs comes after every run the reindex placed.

The lock, and how a writer meanwhile stays correct. The rebuild reads and writes
without the history lock, into ``reindex.stage/`` (``index/`` and ``indexes/``),
which nothing else reads. Before it starts it makes the journal ``reindexing/``
under the lock; from then on every change of a run (``History._commit``, the one
commit path, and ``History.finish_prune`` for the runs a prune removes) leaves a
note there naming the run, under the lock, before it changes anything. The
rebuild catches up off the lock on what the notes name (it takes them under the
lock, a bounded number at a time, and reads those runs' files again: the run file
is the truth), until few are left; then it takes the lock once, applies the rest,
rewrites the run files whose slot changed (and their markers' slots), writes the
markers its scan found missing, and swaps the stage in: two renames. The journal
stays open after the swap until the search index's build has caught up the same way
(it reads again what the history's catch-up took and every run file the reindex
rewrote) and is renamed in; then it goes (``history.journal``). So a writer
never waits for more than one such hold; what it wrote meanwhile is in the result;
a run pruned meanwhile is not resurrected (its note says where the stage holds it).
Each ledger partition is merged off the lock into files written and fsynced ahead in
``reindex.stage/ledger/``, skipping the runs noted (their writers updated the ledger
themselves); one short hold renames them in, merging again only a file a writer
changed meanwhile (``Ledger.merge_ahead``, ``Ledger.put_in``): the hold is a rename
per file, not an fsync per file, whatever the history's size. If a
note cannot be written (a full disk), the writer removes the journal instead, and
the reindex stops without swapping anything in ("run it again").

Markers stay where writers keep them (``active/``): the reindex only adds the
missing ones of unfinished runs and corrects the slot of a moved run's.

A crash at any point before the swap leaves the old index, the scratch files and the
stage for the next reindex to remove (and a journal whose owner is dead, removed by
the next maintenance command). A crash between the two renames is finished by the
next command that takes the lock (``History.settle_swap``). A crash after the swap,
while the search index is built, leaves the old search index in place (writers kept it
up to date all along), the build file for the next rebuild to remove, and the journal,
removed as a dead process's by the next writer or maintenance command.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from workerctl.digits import whole_number
from workerctl.errors import DamagedFile, HistoryError, StorageError
from workerctl.history.change import Change
from workerctl.history.journal import close_journal, open_journal
from workerctl.history.layout import (
    COMPLETE,
    JOURNAL,
    JOURNAL_OWNER,
    SHARD_BYTES,
    STAGE,
    TABLE,
    any_damaged,
    marker_doc,
    numbered,
    write_top_note,
)
from workerctl.history.ledger import target_hash
from workerctl.history.spill import WORK, Partitions, SortedSpill
from workerctl.runs.states import UNFINISHED, now_iso
from workerctl.storage import fs
from workerctl.storage.atomic import private_dirs, write_json
from workerctl.storage.faults import write_point

if TYPE_CHECKING:
    from workerctl.history.indexes import Indexes
    from workerctl.history.search_index import Build
    from workerctl.history.store import History

# a run as the rebuild carries it: [created, id, shard, doc, summary, owner or None]
_Item = list[Any]
_Slot = tuple[int, int]
_PARTS_PER_BUCKET_RUNS = 200_000  # ledger partitions: 64 more per this many run files
#: longest the reindex means to hold the lock at a time (a hold ends after the step that
#: passes it); the lock timeout writers wait is 10 s by default
HOLD_SECONDS = 0.3
#: notes taken per hold while catching up; the final hold takes what is left once
#: at most FINAL_NOTES remain
BATCH_NOTES = 2000
FINAL_NOTES = 200
_ROUNDS = 50  # catch-up rounds before the final hold takes whatever is left


class ReindexStopped(HistoryError):
    """The journal of changes made meanwhile went (a writer could not write a note)."""


def reindex(history: History) -> dict[str, Any]:
    """Rebuild the index shards and the cross-run indexes from the run files (see the
    module), and the search index from the same scan. Never stops at a
    bad file: a run file that cannot be read as a run is moved aside (``*.damaged``)
    and reported, everything else is rebuilt."""
    return _Rebuild(history).run()


class _Stage:
    """The new index and cross-run indexes as the rebuild builds them (``reindex.stage/``):
    what ``Indexes`` needs of a history, over the stage's own shards."""

    def __init__(self, root: Path) -> None:
        from workerctl.history.reader import Reader
        from workerctl.history.tables import KnownTables

        self.root = root
        self.tables = KnownTables()
        self.reader = Reader(root, self.tables)
        self.unsettled: dict[str, dict] = {}
        self.unwritable = None

    def shards(self) -> list[int]:
        try:
            names = fs.listdir(self.root / "index")
        except FileNotFoundError:
            return []
        return numbered(names)

    def shard_path(self, shard: int) -> Path:
        return self.reader.shard_path(shard)

    def write_shared(
        self, path: Path, table: str, docs: dict[str, dict], *, durable: bool = True, may_stage: bool = True
    ) -> None:
        self.tables.write(path, table, docs, durable=durable)

    def staged_in(self, folder: Path) -> list[Path]:
        return []

    def staging(self) -> bool:
        return False

    def unfinished(self) -> dict[str, dict]:
        return {}

    def settle_swap(self) -> bool:
        return False  # the stage is what a swap puts in place: it has none of its own


class _Rebuild:
    def __init__(self, history: History) -> None:
        self.history = history
        self.root = history.root
        self.work = self.root / WORK
        self.journal = self.root / JOURNAL
        self.stage = _Stage(self.root / STAGE)
        self.indexes: Indexes | None = None
        #: runs whose slot the reindex changes: id -> new slot (run files rewritten at the swap)
        self.moves: dict[str, _Slot] = {}
        #: the moved runs the current index does not hold (copied in): their run files are
        #: rewritten before the final hold, a few per hold (no writer knows their slot)
        self.early: set[str] = set()
        #: runs placed by the catch-up (created meanwhile): id -> slot
        self.placed: dict[str, _Slot] = {}
        #: runs the scan found unfinished: id -> (slot, summary, owner)
        self.unfinished: dict[str, tuple[_Slot, dict, dict]] = {}
        #: every run noted so far (their writers keep the ledger and markers themselves)
        self.noted: set[str] = set()
        #: moved runs whose new run file was written ahead (``_prepare_moves``)
        self.ahead: set[str] = set()
        self.last: _Slot = (0, 0)  # the highest slot in the stage
        self.fresh: FreshSlots | None = None
        self.count = 0

    # -- the lock, held briefly --

    def _hold(self) -> Any:
        """The history lock for one short hold; the journal must still be there."""
        history = self.history

        class _Held:
            def __enter__(inner) -> None:
                history.lock.__enter__()
                if not fs.exists(self.journal / JOURNAL_OWNER):
                    history.lock.__exit__(None, None, None)
                    raise ReindexStopped(
                        f"{self.journal}: runs reindex stopped: a change made meanwhile could not be "
                        "noted (a full disk?); nothing was swapped in",
                        hint="free some space if need be, then run 'workerctl runs reindex' again",
                    )

            def __exit__(inner, *exc: object) -> None:
                history.lock.__exit__(*exc)

        return _Held()

    def run(self) -> dict[str, Any]:
        history = self.history
        with history.lock:
            history.settle_swap()
            history._sweep_ahead()  # and the journal of a reindex that died
            if fs.exists(self.journal):
                raise HistoryError(
                    f"{self.journal}: another 'workerctl runs reindex' is running",
                    hint="wait for it to finish; it holds the history lock only briefly",
                )
            for folder in (self.work, self.stage.root, self.root / "index.new", self.root / "active.new"):
                fs.rmtree(folder, ignore_errors=True)
            open_journal(history)
            # stale temp files of killed writers: under the lock no writer is mid-write
            # in these folders (files written ahead live in ``ahead/``); those of
            # ``runs/`` are found by the scan and removed in a hold after it
            for folder in (self.root / "index", self.root / "active"):
                if fs.is_dir(folder):
                    for tmp in fs.walk_files(folder, ".*.tmp"):
                        fs.unlink(tmp, missing_ok=True)
        search = None
        try:
            from workerctl.history.search_index import Build

            search = Build(history)
            private_dirs(self.work)
            private_dirs(self.stage.root / "index")
            total = _count_files(self.root / "runs")
            parts = Partitions(self.work, "ledger", 64 * max(1, -(-total // _PARTS_PER_BUCKET_RUNS)))
            claims, moved, stale = _scan(history, self.work, parts, search)
            with self._hold():
                for tmp in stale:
                    fs.unlink(tmp, missing_ok=True)
            search.seal()
            self._write_index(claims)
            del claims
            self._build_indexes()
            self._merge_ledger(parts)
            self._move_early()
            self._prepare_moves()
            olds = self._catch_up_and_swap()
            # every run changed since the scan read it: noted (and taken by the history's
            # catch-up), rewritten here (a new slot), or noted from now on
            changed = self.noted | self.moves.keys() | self.early
            searchable = search.finish(noting=True, changed=changed)
        except sqlite3.Error as exc:  # the search index's build refused (a full disk): one line, exit 4
            from workerctl.errors import StorageError
            from workerctl.history.search_index import as_os_error, index_path

            raise StorageError(index_path(history), as_os_error(exc)) from None
        finally:
            close_journal(history)  # writers stop noting
            if search is not None:
                search.abort()  # what is left of it, if it did not finish
            fs.rmtree(self.work, ignore_errors=True)
            fs.rmtree(self.stage.root, ignore_errors=True)
        kept = []
        from workerctl.history.indexes import _any_damaged

        # the old folders, without the lock: this reindex's, and those a reindex killed
        # after its swap left (a later reindex is the first to know they are old)
        left = [p for pattern in ("index.old-*", "indexes.old-*") for p in fs.glob(self.root, pattern)]
        for old in [*olds, *(p for p in left if p not in olds and fs.is_dir(p))]:
            if any_damaged(old) if old.name.startswith("index.") else _any_damaged(old):
                kept.append(str(old))  # a damaged file stays for the person to look at
            else:
                fs.rmtree(old, ignore_errors=True)
        return {
            "runs": self.count,
            "damaged": len(moved),
            "moved": moved,
            "kept": kept,
            "searchable": searchable,
        }

    # -- building the stage, off the lock --

    def _write_index(self, claims: SortedSpill) -> None:
        """The new shards, in sequence order; which runs move, and the unfinished ones."""
        shard_docs: dict[str, dict] = {}
        current = 0  # the shard being filled
        top = 0  # the highest shard a run kept
        fresh: FreshSlots | None = None

        def flush() -> None:
            nonlocal shard_docs
            if shard_docs:
                write_json(self.stage.shard_path(current), {TABLE: shard_docs})
            shard_docs = {}

        for item, keeps, indexed in _placed(self.history, self.work, claims):
            _, run_id, shard, doc_id, summary, owner = item
            if keeps:
                top = max(top, shard)
            else:
                if fresh is None:
                    fresh = FreshSlots(top + 1)
                shard, doc_id = fresh.next(summary)
                self.moves[run_id] = (shard, doc_id)
                if not indexed:
                    self.early.add(run_id)
            if shard != current:
                flush()
                current = shard
            shard_docs[str(doc_id)] = summary
            self.last = (shard, doc_id)
            self.count += 1
            if owner is not None:
                self.unfinished[run_id] = ((shard, doc_id), summary, owner)
        flush()

    def _build_indexes(self) -> None:
        from workerctl.history.indexes import VERSION, Indexes
        from workerctl.history.tables import write_table

        self.indexes = Indexes(cast("History", self.stage))
        self.indexes._rebuild_from_shards()
        write_table(self.indexes.root / "meta.json", "meta", {"1": {"version": VERSION}}, durable=False)

    def _merge_ledger(self, parts: Partitions) -> None:
        """The ledger's partitions merged into the live ledger: each partition merged off
        the lock, its changed files written and fsynced ahead into the stage
        (``Ledger.merge_ahead``), then renamed into place under one short hold
        (``Ledger.put_in``), which merges again only a file changed meanwhile. The
        effects of runs noted meanwhile are left as their writers wrote them."""
        ledger = self.history.ledger
        folder = self.stage.root / "ledger"
        private_dirs(folder)
        for _, entries in parts:
            skip = self.noted | set(self._note_names())
            merged = ledger.merge_ahead(entries, skip, folder)
            del entries
            with self._hold():
                self.noted.update(self._note_names())
                ledger.put_in(merged, self.noted)

    def _move(self, run_id: str, slot: _Slot) -> None:
        """The run file (and marker) of a run whose slot changed, rewritten (under the lock)."""
        history = self.history
        data = history.reader.run_file(run_id)
        if data is None:
            return
        if (data["_shard"], data["_doc"]) != slot:
            history._write_body(history._run_from(run_id, data), *slot)
        self._move_marker(run_id, slot)

    def _move_marker(self, run_id: str, slot: _Slot) -> None:
        """A moved run's marker (an unfinished run's) given its new slot."""
        history = self.history
        marker = _old_marker(history, run_id)
        if marker and (marker.get("shard"), marker.get("doc")) != slot:
            write_json(
                history.marker_path(run_id), {**marker, "shard": slot[0], "doc": slot[1]}, sync_data=False
            )

    def _move_early(self) -> None:
        """The run files of moved runs copied in (no index holds them yet), rewritten a
        few per hold; one noted meanwhile is checked again in the final hold."""
        todo = sorted(self.early)
        while todo:
            with self._hold():
                started = time.monotonic()
                while todo and time.monotonic() - started < HOLD_SECONDS:
                    run_id = todo.pop()
                    slot = self.moves.get(run_id)
                    if slot is not None:
                        self._move(run_id, slot)

    def _prepare_moves(self) -> None:
        """The run files the final hold rewrites (runs the current index holds whose slot
        changes, e.g. every run after one copied in from elsewhere), written with their
        new slot and fsynced ahead into ``reindex.stage/runs/``, off the lock: the final
        hold then renames each in (``_final``) instead of writing and fsyncing it there.
        A run noted meanwhile is rewritten there from its file as it is then."""
        history = self.history
        folder = self.stage.root / "runs"
        private_dirs(folder)
        seen = self.noted | set(self._note_names())
        for run_id, slot in self.moves.items():
            if run_id in self.early or run_id in seen:
                continue
            try:
                data = history.reader.run_file(run_id)
            except (DamagedFile, StorageError):
                continue
            if data is None or (data["_shard"], data["_doc"]) == slot:
                continue
            data["_shard"], data["_doc"] = slot
            write_json(folder / f"{run_id}.json", data)  # fsynced; found by its name in _final
            self.ahead.add(run_id)

    # -- the journal --

    def _note_names(self) -> list[str]:
        try:
            return [n for n in fs.listdir(self.journal) if not n.startswith(".")]
        except FileNotFoundError:
            return []

    def _oldest(self, names: list[str]) -> list[str]:
        """``names`` in the order their runs were first noted: the runs created meanwhile
        are placed in that order (their sequence), whichever round takes them."""

        def noted_at(name: str) -> tuple[int, str]:
            try:
                return fs.lstat(self.journal / name).st_mtime_ns, name
            except FileNotFoundError:
                return 0, name

        return sorted(names, key=noted_at)

    def _take(self, names: list[str]) -> list[tuple[str, _Slot | None]]:
        """The notes ``names`` read and removed (under the lock)."""
        out: list[tuple[str, _Slot | None]] = []
        for name in names:
            path = self.journal / name
            slot: _Slot | None = None
            try:
                text = fs.read_text(path).split()
                numbers = [whole_number(t) for t in text]
                if len(numbers) == 2 and numbers[0] is not None and numbers[1] is not None:
                    slot = (numbers[0], numbers[1])
            except (OSError, UnicodeDecodeError):
                pass
            fs.unlink(path, missing_ok=True)
            out.append((name, slot))
        self.noted.update(name for name, _ in out)
        return out

    def _catch_up_and_swap(self) -> list[Path]:
        for _ in range(_ROUNDS):
            with self._hold():
                names = self._note_names()
                if len(names) <= FINAL_NOTES:
                    return self._final(names)
                notes = self._take(self._oldest(names)[:BATCH_NOTES])
            self._apply(notes)
        with self._hold():  # writers outpaced the catch-up: the rest in one hold
            return self._final(self._note_names())

    def _final(self, names: list[str]) -> list[Path]:
        """Under the lock: the last notes, the run files whose slot changed, the
        missing markers, and the swap."""
        self._apply(self._take(self._oldest(names)))
        history = self.history
        ahead = self.stage.root / "runs"
        for run_id, slot in sorted(self.moves.items(), key=lambda kv: kv[1]):
            if run_id in self.ahead and run_id not in self.noted:
                # unchanged since it was written ahead (a change is noted): renamed in
                write_point(history.body_path(run_id))
                fs.replace(ahead / f"{run_id}.json", history.body_path(run_id))
                if run_id in self.unfinished:  # only an unfinished run has a marker
                    self._move_marker(run_id, slot)
            elif run_id not in self.early or run_id in self.noted:
                self._move(run_id, slot)
        for run_id, (slot, summary, owner) in self.unfinished.items():
            if run_id in self.noted or history.has_marker(run_id):
                continue
            slot = self.moves.get(run_id, slot)
            write_json(
                history.marker_path(run_id),
                sync_data=False,
                data=marker_doc(
                    run_id, summary["status"], summary["worker"], summary["record_id"], slot, owner
                ),
            )
        assert self.indexes is not None
        private_dirs(self.indexes.root)
        placed = self.stage.shards()
        if placed:  # the new folder's newest shard, noted as a writer notes one
            write_top_note(self.stage.root / "index", placed[-1])
        for folder in (self.stage.root / "index", self.indexes.root):
            write_json(folder / COMPLETE, {"built": now_iso()}, sync_data=False)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")
        history.indexes.begin("reindex")  # readers between the two renames wait for the lock
        olds = []
        for name in ("index", "indexes"):
            current, old = self.root / name, self.root / f"{name}.old-{stamp}"
            write_point(current)  # the swap's renames: points of the fault-injection tests
            if fs.exists(current):
                fs.replace(current, old)
                olds.append(old)
            try:
                write_point(self.stage.root / name)  # between the two: the folder is missing
            finally:
                # whatever is raised between them (SIGTERM's Terminated), the new folder
                # goes in: the abort that follows removes the stage, and with it the
                # only complete index there was
                fs.replace(self.stage.root / name, current)
        return olds  # the journal stays: the search index's build goes on taking its notes

    # -- catching up on a run changed meanwhile --

    def _find(
        self, run_id: str, slots: list[_Slot | None], shards: dict[int, dict[str, dict]]
    ) -> _Slot | None:
        """Where the stage holds ``run_id``, among ``slots``."""
        for slot in slots:
            if slot is None or type(slot[0]) is not int or type(slot[1]) is not int:
                continue
            docs = self._shard(slot[0], shards)
            held = docs.get(str(slot[1]))
            if held is not None and held["id"] == run_id:
                return slot
        return None

    def _shard(self, shard: int, shards: dict[int, dict[str, dict]]) -> dict[str, dict]:
        docs = shards.get(shard)
        if docs is None:
            docs = shards[shard] = self.stage.reader.shard(shard)
        return docs

    def _next_fresh(self, summary: dict) -> _Slot:
        if self.fresh is None or (self.fresh.shard, self.fresh.doc + 1) <= self.last:
            self.fresh = FreshSlots(self.last[0] + 1)
        return self.fresh.next(summary)

    def _apply(self, notes: list[tuple[str, _Slot | None]]) -> None:
        """The runs ``notes`` name brought into the stage from their run files (or taken
        out of it: a run pruned meanwhile): its shards, then its cross-run indexes,
        from one change record each, as a commit hands them over."""
        if not notes:
            return
        history = self.history
        assert self.indexes is not None
        shards: dict[int, dict[str, dict]] = {}
        dirty: set[int] = set()
        changes: list[Change] = []
        gone: list[tuple[dict, int]] = []
        new: list[tuple[_Slot, Any, dict]] = []
        for run_id, noted_slot in notes:
            try:
                data = history.reader.run_file(run_id)
            except (DamagedFile, StorageError):
                continue  # left as the stage has it; the next reindex moves it aside
            known = [self.moves.get(run_id), self.placed.get(run_id)]
            if data is None:
                where = self._find(run_id, [*known, noted_slot], shards)
                if where is not None:
                    docs = shards[where[0]]
                    gone.append((docs.pop(str(where[1])), where[0]))
                    dirty.add(where[0])
                self.moves.pop(run_id, None)
                self.placed.pop(run_id, None)
                self.unfinished.pop(run_id, None)
                continue
            run = history._run_from(run_id, data)
            file_slot = (data["_shard"], data["_doc"])
            where = self._find(run_id, [*known, file_slot], shards)
            if where is None:
                new.append((file_slot, run, data))
                continue
            old = shards[where[0]][str(where[1])]
            summary = run.summary()
            if old != summary:
                shards[where[0]][str(where[1])] = summary
                dirty.add(where[0])
                stored = {"status": old["status"], "model": old.get("model")}
                changes.append(Change(run, stored, where[0], where[1], summary))
        for file_slot, run, _ in sorted(new, key=lambda n: (_sortable(n[0]), n[1].created, n[1].id)):
            summary = run.summary()
            if (
                _valid(file_slot)
                and file_slot > self.last
                and str(file_slot[1]) not in self._shard(file_slot[0], shards)
            ):
                slot = file_slot
            else:
                slot = self._next_fresh(summary)
                self.moves[run.id] = slot
            self._shard(slot[0], shards)[str(slot[1])] = summary
            dirty.add(slot[0])
            self.placed[run.id] = slot
            self.last = max(self.last, slot)
            self.count += 1
            changes.append(Change(run, None, slot[0], slot[1], summary))
        for shard in sorted(dirty):
            self.stage.tables.write(self.stage.shard_path(shard), TABLE, shards[shard])
        self.count -= len(gone)
        if gone:
            self.indexes.on_prune(gone)
        for change in changes:
            self.indexes.apply(change)


def _valid(slot: tuple[Any, Any]) -> bool:
    return type(slot[0]) is int and type(slot[1]) is int and slot[0] >= 1 and slot[1] >= 1


def _sortable(slot: tuple[Any, Any]) -> tuple[int, int, int]:
    """A slot as a sort key (a run file naming none sorts last)."""
    return (0, slot[0], slot[1]) if _valid(slot) else (1, 0, 0)


def _count_files(base: Path) -> int:
    if not fs.is_dir(base):
        return 0
    return sum(len(fs.listdir(folder)) for folder in fs.glob(base, "*") if fs.is_dir(folder))


def _scan(
    history: History, work: Path, parts: Partitions, search: Build
) -> tuple[SortedSpill, list[str], list[Path]]:
    """Every readable run file, read once: its item into a spill sorted by the slot it
    names (then creation time, then id), its side effects into the ledger's
    partitions, its row into the search index's build; the unreadable ones moved
    aside. Also the temp files seen (a killed writer's, or one being written now:
    removed under the lock if still there)."""
    base = history.root / "runs"
    claims = SortedSpill(work, "slots", key=lambda item: (item[2], item[3], item[0], item[1]))
    moved: list[str] = []
    stale: list[Path] = []
    if not fs.is_dir(base):
        return claims, moved, stale
    ledger = history.ledger
    for folder in sorted(fs.glob(base, "*")):
        if not fs.is_dir(folder):
            continue
        dir_fd = fs.open_dir(folder)
        try:
            listed = fs.listdir(folder)
            stale.extend(folder / n for n in listed if n.startswith(".") and n.endswith(".tmp"))
            names = sorted(n for n in listed if n.endswith(".json"))
            for name in names:
                path = folder / name
                if name[:2] != folder.name:  # a run's file is runs/PREFIX/ID.json: said, not read
                    where = base / name[:2]
                    moved.append(f"{path} (left where it is: run {name[:-5]}'s file belongs in {where})")
                    continue
                try:
                    data, st = history.reader.run_file_at(name[:-5], dir_fd)
                    if data is None or st is None:
                        continue
                    run = history._run_from(name[:-5], data)
                except DamagedFile as exc:
                    aside = path.with_name(path.name + ".damaged")
                    fs.replace(path, aside)
                    moved.append(f"{aside} ({exc.detail})")
                    continue
                except StorageError as exc:
                    moved.append(f"{path} (left where it is: {exc.message})")
                    continue
                owner = (run.owner or {}) if run.status in UNFINISHED else None
                claims.add([run.created, run.id, data["_shard"], data["_doc"], run.summary(), owner])
                search.add(run.id, data, st)
                for entry in ledger.entries_of(run):
                    parts.add(target_hash(entry[0]) % parts.count, entry)
        finally:
            os.close(dir_fd)
    return claims, moved, stale


def _indexed(history: History) -> Iterator[tuple[tuple[int, int], str]]:
    """The slots the current index gives its runs, in slot order, one shard in memory
    at a time (an unreadable shard gives none). Read without the lock: a shard is
    replaced whole, and a run added or removed meanwhile is noted in the journal."""
    for shard in history.shards():
        try:
            docs = history.reader.shard(shard)
        except DamagedFile:
            continue
        for key in sorted(docs, key=int):
            yield (shard, int(key)), docs[key]["id"]
        history.tables.forget(history.shard_path(shard))  # read once: not kept in memory


def _placed(history: History, work: Path, claims: SortedSpill) -> Iterator[tuple[_Item, bool, bool]]:
    """Each run with whether it keeps the slot its file names and whether the current
    index holds it, in the order of the new sequence: the runs that keep theirs, by
    slot, then the others, each then given the next fresh slot (``_write_index``)."""
    known = _indexed(history)
    held = next(known, None)
    if held is None:  # no index: the first (oldest) claim of a valid slot keeps it
        homeless = SortedSpill(work, "homeless", key=lambda item: (item[0], item[1]))
        last: tuple[int, int] | None = None
        for item in claims:
            slot = (item[2], item[3])
            valid = isinstance(slot[0], int) and isinstance(slot[1], int) and slot[0] >= 1 and slot[1] >= 1
            if valid and slot != last:
                last = slot
                yield item, True, False
                continue
            homeless.add(item)
        for item in homeless:
            yield item, False, False
        return
    # an index: a run it holds at the slot its file names is "ours" (in slot order);
    # the others, newcomers, are merged in by creation time (the sort on disk)
    ours = SortedSpill(work, "ours", key=lambda item: 0)  # kept in the order added: by slot
    newcomers = SortedSpill(work, "newcomers", key=lambda item: (item[0], item[1]))
    for item in claims:
        slot = (item[2], item[3])
        while held is not None and held[0] < slot:
            held = next(known, None)
        if held is not None and held[0] == slot and held[1] == item[1]:
            ours.add(item)
            held = next(known, None)  # one run per slot
        elif fs.exists(history.root / JOURNAL / item[1]):
            # changed meanwhile (the index was read after it was pruned, or before it was
            # created): not a run copied in; the catch-up brings it up to date
            ours.add(item)
        else:
            newcomers.add(item)
    merged = heapq.merge(
        ((item[0], 0, n, item) for n, item in enumerate(ours)),
        ((item[0], 1, n, item) for n, item in enumerate(newcomers)),
    )
    cut = False
    for _, kind, _, item in merged:
        cut = cut or kind == 1
        yield item, not cut, kind == 0


class FreshSlots:
    """The slots a reindex gives runs in sequence order from ``shard`` on: numbered from
    1 in each shard, a new shard once the summaries placed in one reach
    ``SHARD_BYTES`` (so a shard stays about that size)."""

    def __init__(self, shard: int) -> None:
        self.shard, self.doc, self.size = shard, 0, 0

    def next(self, summary: dict) -> tuple[int, int]:
        slot = (self.shard, self.doc + 1)
        self.doc += 1
        self.size += len(json.dumps(summary)) + 8
        if self.size >= SHARD_BYTES:
            self.shard, self.doc, self.size = self.shard + 1, 0, 0
        return slot


def _old_marker(history: History, run_id: str) -> dict | None:
    try:
        return history.marker(run_id)
    except DamagedFile:
        return None
