"""``runs reindex`` holds the history lock for work that does not grow with the history.

Its ledger merge writes each partition's files ahead, fsynced, without the lock
(``Ledger.merge_ahead``), and under one short hold only renames them in
(``Ledger.put_in``), merging again just a file a writer changed meanwhile. The search
index it rebuilds is brought up to date under the lock from the change journal's
notes alone (``search_index.rebuild``), not by comparing every run file's stamp.
Writes made meanwhile, in the generated cases below, end up exactly where a
brute-force account of the run files puts them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workerctl.history.search_index as search_index
from helpers import search_table
from workerctl.history.ledger import Ledger, effect_state, entry_key
from workerctl.history.store import History
from workerctl.plugins.manager import get_registry
from workerctl.runs.model import Run, new_run_id, now_iso
from workerctl.workspace import init_workspace

RECORDS = [f"T-{n}" for n in range(6)]


def _run(history: History, worker: str, record: str, state: str) -> Run:
    """A run that wrote a comment on ``record`` (``committed``), means to (``intended``:
    still running) or ended without confirming it (``unknown``)."""
    run = Run(id=new_run_id(), worker=worker, config_hash="h", config={}, executor="echo", created=now_iso())
    run.record_id = record
    history.create(run)
    run.side_effects = [
        {
            "kind": "comment",
            "key": f"{run.id}:output",
            "record_id": record,
            "state": "committed" if state == "committed" else "intended",
            "at": now_iso(),
        }
    ]
    if state != "intended":
        run.move("queued")
        run.move("running")
        run.move("completed")
    history.save(run)
    return run


def _ledger_by_scan(history: History) -> dict[str, str]:
    """Entry key -> state, from the run files alone (the brute force)."""
    want = {}
    for path in (history.root / "runs").glob("*/*.json"):
        run = Run.from_dict(json.loads(path.read_text()))
        for effect in run.side_effects:
            key = entry_key(run.id, effect["key"], effect["record_id"], effect["kind"])
            want[key] = effect_state(effect, run.finished)
    return want


def _ledger_as_kept(history: History) -> dict[str, str]:
    fresh = History(history.workspace)
    return {e.key: e.state for target in RECORDS for e in fresh.ledger.effects(target)}


def _summaries_as_kept(history: History) -> dict[tuple[str, str], int]:
    fresh = History(history.workspace)
    return {
        (worker, doc["record_id"]): doc["effects"]
        for worker in fresh.ledger.workers()
        for doc in fresh.ledger.records_of(worker)
    }


def _summaries_by_scan(history: History) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for path in (history.root / "runs").glob("*/*.json"):
        run = Run.from_dict(json.loads(path.read_text()))
        for effect in run.side_effects:
            out[run.worker, effect["record_id"]] = out.get((run.worker, effect["record_id"]), 0) + 1
    return out


WRITES = st.lists(
    st.tuples(
        st.sampled_from(["new", "confirm", "settle"]), st.sampled_from(["alpha", "beta"]), st.integers(0, 50)
    ),
    max_size=4,
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    runs=st.lists(
        st.tuples(
            st.sampled_from(["alpha", "beta"]),
            st.sampled_from(RECORDS),
            st.sampled_from(["committed", "intended", "unknown"]),
        ),
        min_size=1,
        max_size=10,
    ),
    writes=WRITES,
    from_scratch=st.booleans(),
)
def test_ledger_files_written_ahead_stay_right_beside_writers(monkeypatch, runs, writes, from_scratch):
    """A reindex (from the run files alone, or over an intact ledger) while another
    History writes between a partition's merge ahead and its hold: new runs writing
    to the same records, a write confirmed, a person's settlement. The ledger then
    holds each run file's effects in their state, and every worker summary counts
    them; a settlement stands."""
    tmp = Path(tempfile.mkdtemp(prefix="reindex-holds-"))
    try:
        history = History(init_workspace(tmp / "ws", get_registry()))
        made = [_run(history, worker, record, state) for worker, record, state in runs]
        if from_scratch:
            shutil.rmtree(history.ledger.root)
        writer = History(history.workspace)  # another process, as far as the files go
        pending = list(writes)
        settled: set[str] = set()
        original = Ledger.merge_ahead

        def merge_ahead(self, entries, skip, folder):
            merged = original(self, entries, skip, folder)
            assert not writer.lock.held and not self.history.lock.held
            while pending:  # off the lock, between the merge ahead and its hold
                kind, worker, n = pending.pop(0)
                open_ones = [r for r in made if not r.finished]
                if kind == "new":
                    made.append(_run(writer, worker, RECORDS[n % len(RECORDS)], "committed"))
                elif kind == "confirm" and open_ones:
                    run = writer.get(open_ones[n % len(open_ones)].id)
                    run.side_effects[0]["state"] = "committed"
                    run.side_effects[0]["committed_at"] = now_iso()
                    writer.save(run)
                    made[made.index(next(r for r in made if r.id == run.id))] = run
                elif kind == "settle":
                    unknown = [e for t in RECORDS for e in writer.ledger.effects(t) if e.state == "unknown"]
                    if unknown:
                        effect = unknown[n % len(unknown)]
                        writer.ledger.settle(effect.key, written=True, by="test")
                        settled.add(effect.key)
            return merged

        monkeypatch.setattr(Ledger, "merge_ahead", merge_ahead)
        History(history.workspace).reindex()
        monkeypatch.setattr(Ledger, "merge_ahead", original)
        kept = _ledger_as_kept(history)
        want = _ledger_by_scan(history)
        assert set(kept) == set(want)
        for key, state in want.items():
            if key not in settled:
                assert kept[key] == state, key
        assert _summaries_as_kept(history) == _summaries_by_scan(history)
        for key in settled:
            assert kept[key] == "committed", "a person's settlement stands"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_ledger_hold_renames_and_does_not_fsync_each_file(workspace, monkeypatch):
    """Under the lock a partition's record files are renamed in: one fsync of the
    folder, whatever the number of files (they were fsynced ahead, off the lock)."""
    history = History(workspace)
    for n in range(30):
        _run(history, "alpha", f"R-{n}", "committed")
    shutil.rmtree(history.ledger.root)
    synced: list[bool] = []
    real_fsync = os.fsync
    original = Ledger.put_in

    def counting(fd: int) -> None:
        synced.append(history.lock.held)
        real_fsync(fd)

    def put_in(self, merged, noted):
        assert self.history.lock.held
        monkeypatch.setattr(os, "fsync", counting)
        try:
            return original(self, merged, noted)
        finally:
            monkeypatch.setattr(os, "fsync", real_fsync)

    monkeypatch.setattr(Ledger, "put_in", put_in)
    History(workspace).reindex()
    assert 1 <= len(synced) <= 64  # at most one per partition's hold, not one per file
    assert len(_ledger_as_kept_all(history)) == 30


def _ledger_as_kept_all(history: History) -> list[str]:
    fresh = History(history.workspace)
    return [e.key for n in range(30) for e in fresh.ledger.effects(f"R-{n}")]


def _search_rows(history: History) -> dict[str, str]:
    import sqlite3

    con = sqlite3.connect(search_index.index_path(history))
    try:
        return dict(con.execute("SELECT id, stamp FROM runs").fetchall())
    finally:
        con.close()


def _stamps_by_scan(history: History) -> dict[str, str]:
    return {
        path.name[:-5]: search_index.stamp_of(os.stat(path))
        for path in (history.root / "runs").glob("*/*.json")
    }


@pytest.mark.parametrize("lost_journal", [False, True])
def test_the_search_index_catches_up_from_the_notes_alone(workspace, monkeypatch, lost_journal):
    """Runs created, finished and pruned while the search index is rebuilt (off the
    lock) are in it as their files are; the final hold reads only the noted runs (no
    comparison of every stamp), unless the journal was lost (a note that could not be
    written), when it compares every stamp as before."""
    history = History(workspace)
    made = [_run(history, "alpha", RECORDS[n % 6], "intended" if n < 2 else "committed") for n in range(8)]
    writer = History(workspace)
    original_fill = search_index._fill
    compared: list[bool] = []
    original_catch_up = search_index.catch_up

    def fill(con, hist, *args, **kwargs):
        original_fill(con, hist, *args, **kwargs)
        assert not hist.lock.held
        made.append(_run(writer, "beta", "T-9", "committed"))  # new
        run = writer.get(made[0].id)  # finished
        run.move("queued")
        run.move("running")
        run.move("failed")
        writer.save(run)
        with writer.lock:  # pruned: removed as finish_prune removes it, noted
            writer.note_change(made[1].id)
            writer.body_path(made[1].id).unlink()
        if lost_journal:
            shutil.rmtree(writer.root / "reindexing")

    def catch_up(con, hist):
        compared.append(True)
        return original_catch_up(con, hist)

    monkeypatch.setattr(search_index, "_fill", fill)
    monkeypatch.setattr(search_index, "catch_up", catch_up)
    search_index.rebuild(History(workspace), journal=True)
    assert _search_rows(history) == _stamps_by_scan(history)
    assert compared == ([True] if lost_journal else [])
    assert not (history.root / "reindexing").exists()


WHEN = st.lists(
    st.tuples(
        st.sampled_from(["after the scan", "after the swap"]),
        st.sampled_from(["new", "finish", "prune", "save again"]),
        st.integers(0, 50),
    ),
    max_size=6,
)


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(1, 8), copied=st.integers(0, 3), writes=WHEN)
def test_one_scan_feeds_the_search_index_and_misses_no_change(monkeypatch, count, copied, writes):
    """``runs reindex`` reads each run file once for the history and the search index.
    Runs created, finished, saved again or pruned while it works, before the history's
    swap (the history's catch-up takes their notes) or after it (the search index's
    build takes them), and copied-in runs whose file the reindex rewrites at a new
    slot: the search index it swaps in then equals one rebuilt from scratch over the
    quiet history (a brute force), row for row, stamps included."""
    from workerctl.history import reindex as reindex_module

    tmp = Path(tempfile.mkdtemp(prefix="reindex-search-"))
    try:
        history = History(init_workspace(tmp / "ws", get_registry()))
        made = [
            _run(history, "alpha", RECORDS[n % 6], "intended" if n % 3 == 0 else "committed")
            for n in range(count)
        ]
        for n in range(copied):  # a run copied in from elsewhere, claiming a slot already taken
            data = json.loads(history.body_path(made[n % len(made)].id).read_text())
            data["id"] = new_run_id()
            data["created"] = f"2020-01-0{n + 1}T00:00:00+00:00"
            history.body_path(data["id"]).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            history.body_path(data["id"]).write_text(json.dumps(data))
        files = len(list((history.root / "runs").glob("*/*.json")))
        writer = History(history.workspace)  # another process, as far as the files go
        pending = list(writes)
        reads: list[str] = []
        real_read = history.reader.run_file_at

        def write(when: str) -> None:
            assert not writer.lock.held
            for kind, _n, n in [w for w in pending if w[0] == when]:
                live = [r for r in made if writer.body_path(r.id).exists()]
                if kind == "new" or not live:
                    made.append(_run(writer, "beta", RECORDS[n % 6], "committed"))
                    continue
                run = writer.get(live[n % len(live)].id)
                if kind == "finish" and not run.finished:
                    run.move("queued")
                    run.move("running")
                    run.move("failed")
                    writer.save(run)
                elif kind == "prune":  # removed as finish_prune removes a run, noted
                    with writer.lock:
                        writer.note_change(run.id)
                        writer.body_path(run.id).unlink()
                else:
                    writer.save(run)

        original_write_index = reindex_module._Rebuild._write_index
        original_finish = search_index.Build.finish

        def write_index(self, claims):
            write("after the scan")
            return original_write_index(self, claims)

        def finish(self, **kwargs):
            write("after the swap")
            return original_finish(self, **kwargs)

        def counted(self, run_id, dir_fd):
            reads.append(run_id)
            return real_read(run_id, dir_fd)

        def no_fill(*args, **kwargs):
            raise AssertionError("the reindex read every run file a second time")

        monkeypatch.setattr(reindex_module._Rebuild, "_write_index", write_index)
        monkeypatch.setattr(search_index.Build, "finish", finish)
        monkeypatch.setattr(type(history.reader), "run_file_at", counted)
        monkeypatch.setattr(search_index, "_fill", no_fill)
        result = History(history.workspace).reindex()
        monkeypatch.undo()
        assert len(reads) == len(set(reads)) == files, "each run file read once by the scan"
        on_disk = len(list((history.root / "runs").glob("*/*.json")))
        assert result["searchable"] == on_disk
        assert not (history.root / "reindexing").exists()
        swapped_in = search_table(history)
        assert swapped_in.keys() - {"meta"} == set(_stamps_by_scan(history))
        search_index.rebuild(History(history.workspace))  # the brute force, nobody writing
        assert swapped_in == search_table(history)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_record_id_too_long_for_a_file_name_is_written_and_reindexed(workspace):
    """A 302-character record id (its file name is hashed): the run's write reaches the
    ledger (looking for a file an older workerctl named after it must not ask the file
    system for a name it refuses), and a reindex from the run files alone rebuilds it."""
    history = History(workspace)
    _run(history, "alpha", "T-1", "committed")  # the ledger's folders exist: the name is asked for
    long_id = "T-" + "L" * 300
    run = _run(history, "alpha", long_id, "committed")
    assert [e.key for e in History(workspace).ledger.effects(long_id)] == [
        entry_key(run.id, f"{run.id}:output", long_id, "comment")
    ]
    shutil.rmtree(history.ledger.root)
    History(workspace).reindex()
    assert [e.state for e in History(workspace).ledger.effects(long_id)] == ["committed"]
