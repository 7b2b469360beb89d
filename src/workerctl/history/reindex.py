"""``runs reindex``: the index shards, markers, ledger and cross-run indexes rebuilt from
the run files, in memory that does not grow with the history.

The run files are read once, one at a time. What the rebuild needs of each run (its
summary, the slot its file names, its owner if unfinished) goes to scratch files
sorted on disk (``history.spill``): by slot, to meet the current index's shards in
their own order and learn which runs keep their slot; by creation time, for the
runs that get a new one. Each side effect goes to one of the ledger's partitions
(its target's bucket), rebuilt one partition at a time. The new shards are written
one at a time as the sorted runs stream past. Peak memory is one chunk of the sort
(``spill.CHUNK`` runs), one index shard, one ledger partition.

Slots follow one rule: a run the current
index holds at the slot its run file names keeps it; runs it does not hold are
merged in by creation time, and from the first of them on every run gets a fresh
slot after the last kept one. With no index at all, the first (oldest) run to claim
a valid slot keeps it and the others get fresh slots, oldest first. A run file is
rewritten only when its slot changes.

The whole rebuild holds the history lock (it swaps the index, the markers and the
indexes in); nothing in place changes until the new index is complete in
``index.new``, so a crash leaves the old index, and the scratch files for the next
reindex to remove.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workerctl.errors import DamagedFile, StorageError
from workerctl.history.layout import COMPLETE, SHARD_BYTES, TABLE, any_damaged, marker_doc
from workerctl.history.ledger import target_hash
from workerctl.history.spill import WORK, Partitions, SortedSpill
from workerctl.runs.states import UNFINISHED, now_iso
from workerctl.storage import fs
from workerctl.storage.atomic import private_dirs, write_json

if TYPE_CHECKING:
    from workerctl.history.store import History

# a run as the rebuild carries it: [created, id, shard, doc, summary, owner or None]
_Item = list[Any]
_PARTS_PER_BUCKET_RUNS = 200_000  # ledger partitions: 64 more per this many run files


def reindex(history: History) -> dict[str, Any]:
    """Rebuild the index shards and the markers from the run files (see the module).

    Never stops at a bad file: a run file that cannot be read as a run is moved
    aside (``*.damaged``) and reported, everything else is rebuilt. The new index is
    built complete in ``index.new`` and then swapped in, so readers see the old
    index or the new one, never part of one."""
    root = history.root
    with history.lock:
        history._settle_swap()
        history._sweep_ahead()
        work = root / WORK
        fs.rmtree(work, ignore_errors=True)
        try:
            private_dirs(work)
            total = _count_files(root / "runs")
            parts = Partitions(work, "ledger", 64 * max(1, -(-total // _PARTS_PER_BUCKET_RUNS)))
            claims, moved = _scan(history, work, parts)
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")
            new_index, new_active = root / "index.new", root / "active.new"
            for folder in (new_index, new_active):
                fs.rmtree(folder, ignore_errors=True)
            private_dirs(new_index)
            private_dirs(new_active)
            placed = _write_index(history, work, claims, new_index, new_active)
            for folder in (new_index, new_active):  # only a complete folder is swapped in
                write_json(folder / COMPLETE, {"built": now_iso()}, sync_data=False)
            # the ledger keeps the effects of pruned runs; the run files add theirs
            history.ledger.rebuild_from(items for _, items in parts)
            history.indexes.begin("reindex")  # readers wait for the rebuild below
            kept = []
            for name, new in (("index", new_index), ("active", new_active)):
                current = root / name
                old = root / f"{name}.old-{stamp}"
                if fs.exists(current):
                    fs.replace(current, old)
                fs.replace(new, current)
                if name == "index" and fs.is_dir(old) and any_damaged(old):
                    kept.append(str(old))  # a damaged shard stays for the person to look at
                else:
                    fs.rmtree(old, ignore_errors=True)
            kept_indexes = history.indexes.rebuild()
            if kept_indexes:
                kept.append(kept_indexes)
        finally:
            fs.rmtree(work, ignore_errors=True)
    return {"runs": placed, "damaged": len(moved), "moved": moved, "kept": kept}


def _count_files(base: Path) -> int:
    if not fs.is_dir(base):
        return 0
    return sum(len(fs.listdir(folder)) for folder in fs.glob(base, "*") if fs.is_dir(folder))


def _scan(history: History, work: Path, parts: Partitions) -> tuple[SortedSpill, list[str]]:
    """Every readable run file, read once: its item into a spill sorted by the slot it
    names (then creation time, then id), its side effects into the ledger's
    partitions; the unreadable ones moved aside. Temp files left by a killed writer
    are removed: under the lock no writer is mid-write in these folders (files
    written ahead of the lock live in ``ahead/``, whose folders go only with their
    process: ``History._sweep_ahead``)."""
    base = history.root / "runs"
    claims = SortedSpill(work, "slots", key=lambda item: (item[2], item[3], item[0], item[1]))
    moved: list[str] = []
    if not fs.is_dir(base):
        return claims, moved
    for folder in (base, history.root / "index", history.root / "active"):
        for tmp in fs.walk_files(folder, ".*.tmp"):
            fs.unlink(tmp, missing_ok=True)
    ledger = history.ledger
    for folder in sorted(fs.glob(base, "*")):
        if not fs.is_dir(folder):
            continue
        dir_fd = fs.open_dir(folder)
        try:
            names = sorted(n for n in fs.listdir(folder) if n.endswith(".json"))
            for name in names:
                path = folder / name
                if name[:2] != folder.name:  # a run's file is runs/PREFIX/ID.json: said, not read
                    where = base / name[:2]
                    moved.append(f"{path} (left where it is: run {name[:-5]}'s file belongs in {where})")
                    continue
                try:
                    data = history.reader.run_file(name[:-5], dir_fd)
                    if data is None:
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
                for entry in ledger.entries_of(run):
                    parts.add(target_hash(entry[0]) % parts.count, entry)
        finally:
            os.close(dir_fd)
    return claims, moved


def _indexed(history: History) -> Iterator[tuple[tuple[int, int], str]]:
    """The slots the current index gives its runs, in slot order, one shard in memory
    at a time (an unreadable shard gives none)."""
    for shard in history.shards():
        try:
            docs = history.reader.shard(shard)
        except DamagedFile:
            continue
        for key in sorted(docs, key=int):
            yield (shard, int(key)), docs[key]["id"]
        history.tables.forget(history.shard_path(shard))  # read once: not kept in memory


def _placed(history: History, work: Path, claims: SortedSpill) -> Iterator[tuple[_Item, bool]]:
    """Each run with whether it keeps the slot its file names, in the order of the new
    sequence: the runs that keep theirs, by slot, then the others, each then given
    the next fresh slot (``_write_index``)."""
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
                yield item, True
                continue
            homeless.add(item)
        for item in homeless:
            yield item, False
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
        else:
            newcomers.add(item)
    merged = heapq.merge(
        ((item[0], 0, n, item) for n, item in enumerate(ours)),
        ((item[0], 1, n, item) for n, item in enumerate(newcomers)),
    )
    cut = False
    for _, kind, _, item in merged:
        cut = cut or kind == 1
        yield item, not cut


def _write_index(history: History, work: Path, claims: SortedSpill, new_index: Path, new_active: Path) -> int:
    """The new shards and markers written as the runs stream past in sequence order;
    run files whose slot changed rewritten. Returns the number of runs placed."""
    shard_docs: dict[str, dict] = {}
    current = 0  # the shard being filled
    top = 0  # the highest shard a run kept
    fresh: FreshSlots | None = None
    placed = 0

    def flush() -> None:
        nonlocal shard_docs
        if shard_docs:
            write_json(new_index / f"{current:06d}.json", {TABLE: shard_docs})
        shard_docs = {}

    for item, keeps in _placed(history, work, claims):
        _, run_id, shard, doc_id, summary, owner = item
        if keeps:
            top = max(top, shard)
        else:
            if fresh is None:
                fresh = FreshSlots(top + 1)
            shard, doc_id = fresh.next(summary)
            data = history.reader.run_file(run_id)
            if data is not None:  # its slot changed: before the swap (the old index never held it)
                history._write_body(history._run_from(run_id, data), shard, doc_id)
        if shard != current:
            flush()
            current = shard
        shard_docs[str(doc_id)] = summary
        placed += 1
        if owner is not None:
            previous = _old_marker(history, run_id)
            mine = previous if previous and previous.get("pid") else owner
            write_json(
                new_active / f"{run_id}.json",
                sync_data=False,
                data=marker_doc(
                    run_id,
                    summary["status"],
                    summary["worker"],
                    summary["record_id"],
                    (shard, doc_id),
                    mine or {},
                ),
            )
    flush()
    return placed


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
