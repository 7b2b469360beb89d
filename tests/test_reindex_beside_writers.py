"""``runs reindex`` never holds the history lock long: writers and a prune go on beside it.

A history of a few thousand runs is reindexed by a real ``workerctl runs reindex``
while ``run start`` processes (cron-style, one after another) and a ``runs prune``
run beside it, with ``lock_timeout`` at 2 s in the workspace settings: before, the
reindex held the lock for its whole run and they exited 4. Afterwards every query
equals a brute-force scan of the run files: the runs created meanwhile come after
every run the reindex kept, in the order they were created, and no pruned run
comes back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import run_workerctl, wait_for
from workerctl.history.reindex import FreshSlots
from workerctl.history.store import History, RunFilter
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.runs.model import Run, new_run_id
from workerctl.runs.stats import compute, stats_from_counts
from workerctl.storage.atomic import encode_json
from workerctl.workspace import load_workspace


def _copies(history: History, template: dict, count: int) -> None:
    """``count`` finished runs written as run files (the oldest tenth from 2025, the rest
    from September 2026), in the sequence ``FreshSlots`` gives, as a long-lived history
    would hold them."""
    slots = FreshSlots(1)
    for n in range(count):
        data = json.loads(json.dumps(template))
        data["id"] = new_run_id()
        year, day = (2025, 1 + n * 280 // count) if n < count // 10 else (2026, 1 + n * 28 // count)
        data["created"] = f"{year}-09-{min(day, 28):02d}T10:{n % 60:02d}:{n % 47:02d}.000Z"
        data["worker"] = ("alpha", "beta", "overdue-task-review")[n % 3]
        data["status"] = ("completed", "failed")[n % 7 == 0]
        data["record_id"] = f"OLD-{n % 40}"
        data["side_effects"] = []
        run = Run.from_dict(data)
        data["_shard"], data["_doc"] = slots.next(run.summary())
        path = history.body_path(data["id"])
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(encode_json(data))


def _scan_compare(history: History) -> None:
    """Every query equals a scan of the run files."""
    bodies = {}
    for path in (history.root / "runs").glob("*/*.json"):
        data = json.loads(path.read_text())
        bodies[data["id"]] = data
    order = sorted(bodies, key=lambda i: (bodies[i]["_shard"], bodies[i]["_doc"]))
    slots = [(bodies[i]["_shard"], bodies[i]["_doc"]) for i in order]
    assert len(set(slots)) == len(slots), "one run per slot"
    summaries = {i: Run.from_dict(d).summary() for i, d in bodies.items()}
    newest_first = order[::-1]
    for flt in (
        None,
        RunFilter(workers=("overdue-task-review",)),
        RunFilter(statuses=("failed",)),
        RunFilter(record_id="OLD-3"),
        RunFilter(since="2026-01-01T00:00:00.000Z"),
        RunFilter(until="2026-01-01T00:00:00.000Z"),
    ):
        want = [i for i in newest_first if flt is None or flt.match(summaries[i])]
        got = [d["id"] for d in history.list(flt, limit=None)]
        assert got == want, flt
    listed = history.list(None, limit=None)
    assert {d["id"]: d for d in listed} == summaries, "each summary is its run file's"
    for by in ("worker", "model"):
        want_counts = compute(list(summaries.values()), by=by)
        got_counts = stats_from_counts(history.indexes.counts(by=by))
        assert {k: v["counts"] for k, v in got_counts.items()} == {
            k: v["counts"] for k, v in want_counts.items()
        }


@pytest.mark.slow
def test_reindex_beside_starts_and_a_prune_with_a_two_second_lock_timeout(one_run):
    workspace, first = one_run
    text = workspace.settings_file.read_text()
    assert "lock_timeout: 10" in text
    workspace.settings_file.write_text(text.replace("lock_timeout: 10", "lock_timeout: 2"))
    workspace = load_workspace(workspace.root)
    history = History(workspace)
    template = json.loads(history.body_path(first).read_text())
    _copies(history, template, 5000)
    assert run_workerctl("runs", "reindex", workspace=workspace, timeout=600).returncode == 0
    tasks = [f"T-{n}" for n in range(30000, 30060)]
    BuiltinRecordStore(workspace).import_records(
        [{"id": t, "type": "task", "title": t, "status": "todo", "due": "2026-01-01"} for t in tasks], "t"
    )
    before = {d["id"] for d in history.list(None, limit=None)}
    env = {**os.environ, "NO_COLOR": "1", "WORKERCTL_TEST_SPILL_CHUNK": "200"}
    reindex = subprocess.Popen(
        [sys.executable, "-m", "workerctl", "-w", str(workspace.root), "runs", "reindex"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    failures: list[tuple[str, int, str]] = []
    started: list[tuple[float, str]] = []
    meanwhile = []

    def writer(mine: list[str]) -> None:
        for task in mine:
            running = reindex.poll() is None
            result = run_workerctl(
                "run", "start", "overdue-task-review", "--task", task, "--json", workspace=workspace
            )
            if result.returncode:
                failures.append((task, result.returncode, result.stderr))
            else:
                started.append((time.monotonic(), json.loads(result.stdout)["id"]))
            meanwhile.append(running)
            if not running:
                return

    threads = [threading.Thread(target=writer, args=(tasks[n::4],)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        wait_for(lambda: len(started) >= 2 or reindex.poll() is not None, timeout=300)
        prune_meanwhile = reindex.poll() is None
        pruned = run_workerctl("runs", "prune", "--older-than", "400d", workspace=workspace)
        for thread in threads:
            thread.join(timeout=600)
        _out, err = reindex.communicate(timeout=600)
    finally:
        if reindex.poll() is None:
            reindex.kill()
            reindex.wait()
    assert reindex.returncode == 0, err
    assert failures == [], "\n".join(f[2] for f in failures)
    assert pruned.returncode == 0, pruned.stderr
    assert sum(meanwhile) >= 4 and prune_meanwhile, "the reindex ended too soon: give it more runs"
    history = History(load_workspace(workspace.root))
    _scan_compare(history)
    listed = [d["id"] for d in history.list(None, limit=None)]
    gone = before - set(listed)
    assert gone, "the prune removed the old runs"
    assert not any((history.root / "runs" / i[:2] / f"{i}.json").exists() for i in gone)
    made = [run_id for _, run_id in sorted(started)]
    assert set(listed[: len(made)]) == set(made), "runs created meanwhile: after every run kept"
    assert not (history.root / "reindexing").exists()
    assert not (history.root / "reindex.stage").exists()


def test_a_change_that_cannot_be_noted_stops_the_reindex(one_run, monkeypatch):
    """A full disk at a writer's note (``History.note_change``): the writer removes the
    journal and goes on; the reindex stops with a one-line error (exit 4) and swaps
    nothing in, so the run written meanwhile is never lost; the next reindex is whole."""
    import workerctl.history.reindex as rx
    import workerctl.storage.faults as faults
    from workerctl.errors import HistoryError

    workspace, first = one_run
    history = History(workspace)
    _copies(history, json.loads(history.body_path(first).read_text()), 30)
    history.reindex()
    original_note = History.note_change

    def full_disk_note(self, run_id, slot=None):
        monkeypatch.setattr(faults, "_spec", "enospc:1")
        monkeypatch.setattr(faults, "_count", 0)
        try:
            original_note(self, run_id, slot)
        finally:
            monkeypatch.setattr(faults, "_spec", "")

    made = []
    original_build = rx._Rebuild._build_indexes

    def build_beside_a_write(this):
        writer = History(workspace)
        monkeypatch.setattr(History, "note_change", full_disk_note)
        run = Run.from_dict({**json.loads(writer.body_path(first).read_text()), "id": new_run_id()})
        run.side_effects = []
        made.append(writer.create(run).id)
        monkeypatch.setattr(History, "note_change", original_note)
        return original_build(this)

    monkeypatch.setattr(rx._Rebuild, "_build_indexes", build_beside_a_write)
    with pytest.raises(HistoryError, match="could not be noted") as stopped:
        History(workspace).reindex()
    assert stopped.value.exit_code == 4
    assert not (history.root / "reindexing").exists() and not (history.root / "reindex.stage").exists()
    monkeypatch.setattr(rx._Rebuild, "_build_indexes", original_build)
    listed = [d["id"] for d in History(workspace).list(None, limit=None)]
    assert listed[0] == made[0], "the run written meanwhile is in the (old) index"
    History(workspace).reindex()
    _scan_compare(History(workspace))


def test_a_reindex_that_cannot_start_its_journal_leaves_none(workspace):
    """A full disk at the journal's first write: exit 4, and no journal is left for
    every later commit to write notes into (found by trying it: it stayed)."""
    from workerctl.storage.faults import FAULT_ENV

    result = run_workerctl("runs", "reindex", workspace=workspace, env={FAULT_ENV: "enospc:1"})
    assert result.returncode == 4 and "No space left" in result.stderr
    assert not (workspace.history_dir / "reindexing").exists()
    assert run_workerctl("runs", "reindex", workspace=workspace).returncode == 0


def _journal_of(workspace, owner: bytes | None) -> Path:
    journal = workspace.history_dir / "reindexing"
    journal.mkdir(mode=0o700)
    if owner is not None:
        (journal / ".owner").write_bytes(owner)
    return journal


def _gone_process() -> dict:
    from workerctl.history.sweep import proc_start

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    start = proc_start(child.pid)
    child.wait()
    return {"pid": child.pid, "start": start}


@pytest.mark.parametrize(
    "owner",
    [b"{not json", b"", b"[1, 2]", b'{"pid": "12"}', None],
    ids=["damaged", "empty", "a-list", "pid-not-a-number", "missing"],
)
def test_a_journal_whose_owner_cannot_be_read_does_not_block_reindex(one_run, owner):
    """Under the lock an owner file is never half-made (it is written whole, under the
    lock, right after its folder), so one that cannot be read is a dead or damaged one:
    reindex removes it and runs, instead of saying forever that another is running. A
    live reindex whose journal is removed stops before swapping anything in."""
    workspace, _ = one_run
    _journal_of(workspace, owner)
    result = run_workerctl("runs", "reindex", workspace=workspace)
    assert result.returncode == 0, result.stderr
    assert not (workspace.history_dir / "reindexing").exists()


def test_a_dead_reindexs_journal_is_removed_by_the_next_writer_not_filled(one_run):
    """A reindex killed mid-way leaves its journal; each later change of a run used to
    add a note to it for nobody, until the next reindex or prune. The next writer now
    sees its owner is gone and removes it."""
    workspace, _ = one_run
    journal = _journal_of(workspace, json.dumps(_gone_process()).encode())
    started = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1043", workspace=workspace)
    assert started.returncode == 0, started.stderr
    assert not journal.exists()


def test_a_journal_of_another_host_is_kept_and_noted(one_run):
    """A history shared by two hosts: a reindex on the other one is not judged by this
    host's process table; its journal stays and this host's changes are noted in it."""
    workspace, _ = one_run
    owner = {**_gone_process(), "host": "another-host.example"}
    journal = _journal_of(workspace, json.dumps(owner).encode())
    started = run_workerctl(
        "run", "start", "overdue-task-review", "--task", "T-1043", "--json", workspace=workspace
    )
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["id"] in os.listdir(journal)
    refused = run_workerctl("runs", "reindex", workspace=workspace)
    assert refused.returncode == 4 and "another 'workerctl runs reindex' is running" in refused.stderr
