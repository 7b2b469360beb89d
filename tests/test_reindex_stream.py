"""``runs reindex`` in bounded memory (``history.reindex``, ``history.spill``).

The rebuild sorts its runs on disk in chunks; the tests make a chunk two or three
runs, so that every generated history goes through the merge of several chunk
files, and compare the result with the rule written out by brute force:

- with no index: the first (oldest) run to claim a valid slot keeps it, the others
  get fresh slots after the highest kept shard, oldest first;
- with an index: the runs it holds at the slot their file names keep it; runs
  copied in are merged by creation time, and from the first of them on every run
  gets a fresh slot, in that merged order.

A real ``workerctl runs reindex`` killed at each of its write points (the scratch
files among them) leaves a history that lists every run, and the next reindex
finishes it and leaves no scratch behind.
"""

from __future__ import annotations

import heapq
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workerctl.history.spill as spill
from helpers import run_workerctl
from workerctl.history.store import History
from workerctl.plugins.manager import get_registry
from workerctl.runs.model import Run, new_run_id
from workerctl.storage.faults import FAULT_ENV
from workerctl.workspace import init_workspace

SLOTS = st.one_of(
    st.just((0, 0)),  # a run file that names no slot (as the benchmark's, or a damaged one's)
    st.tuples(st.integers(1, 3), st.integers(1, 4)),
)
RUNS = st.lists(
    st.tuples(st.integers(0, 20), SLOTS, st.sampled_from(["alpha", "beta"]), st.booleans()), max_size=12
)


def _run(minute: int, worker: str, finished: bool) -> Run:
    run = Run(
        id=new_run_id(),
        worker=worker,
        config_hash="h",
        config={},
        executor="echo",
        created=f"2026-06-01T12:{minute:02d}:00.000Z",
        record_id=f"T-{minute % 3}",
        transitions=[{"status": "pending", "at": "2026-06-01T12:00:00.000Z"}],
    )
    if finished:
        run.move("queued")
        run.move("running")
        run.move("completed")
        run.side_effects = [
            {"kind": "comment", "record_id": run.record_id, "key": f"{run.id}:out", "created": True}
        ]
    return run


def _write(history: History, run: Run, slot: tuple[int, int]) -> None:
    data = run.to_stored()
    data["_shard"], data["_doc"] = slot
    path = history.body_path(run.id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(json.dumps(data))


def _no_index_order(runs: list[tuple[Run, tuple[int, int]]]) -> list[str]:
    """The sequence a reindex with no index gives, by brute force."""
    by_age = sorted(runs, key=lambda pair: (pair[0].created, pair[0].id))
    kept: dict[tuple[int, int], str] = {}
    homeless = []
    for run, slot in by_age:
        if slot[0] >= 1 and slot[1] >= 1 and slot not in kept:
            kept[slot] = run.id
        else:
            homeless.append(run.id)
    return [kept[slot] for slot in sorted(kept)] + homeless


def _sequence(history: History) -> list[str]:
    out = {}
    for path in (history.root / "runs").glob("*/*.json"):
        data = json.loads(path.read_text())
        out[data["id"]] = (data["_shard"], data["_doc"])
    return sorted(out, key=out.__getitem__)


@pytest.fixture()
def small_chunks(monkeypatch):
    monkeypatch.setattr(spill, "CHUNK", 2)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=RUNS, imported=RUNS)
def test_reindex_in_chunks_follows_the_slot_rule(small_chunks, runs, imported):
    tmp = Path(tempfile.mkdtemp(prefix="reindex-stream-"))
    try:
        history = History(init_workspace(tmp / "ws", get_registry()))
        made = [(_run(minute, worker, done), slot) for minute, slot, worker, done in runs]
        for run, slot in made:
            _write(history, run, slot)
        result = history.reindex()
        want = _no_index_order(made)
        assert result["runs"] == len(made)
        assert _sequence(history) == want, "each run file names its place in the sequence"
        assert [s["id"] for s in history.list(None, limit=None)] == want[::-1]
        # runs copied in from elsewhere: merged by creation time into the sequence
        created = {run.id: run.created for run, _ in made}
        more = [(_run(minute, worker, done), slot) for minute, slot, worker, done in imported]
        for run, slot in more:
            _write(history, run, slot)
            created[run.id] = run.created
        history.reindex()
        if want:
            ours = [(created[i], 0, n, i) for n, i in enumerate(want)]
            theirs = sorted((run.created, 1, run.id, run.id) for run, _ in more)
            merged = [item[3] for item in heapq.merge(ours, theirs)]
        else:  # into an empty history (no index): the rule with no index
            merged = _no_index_order(more)
        assert _sequence(history) == merged
        assert [s["id"] for s in history.list(None, limit=None)] == merged[::-1]
        for worker in ("alpha", "beta"):
            from workerctl.history.store import RunFilter

            got = [s["id"] for s in history.list(RunFilter(workers=(worker,)), limit=None)]
            assert got == [i for i in merged[::-1] if history.get(i).worker == worker]
        effects = sum(len(history.ledger.effects(f"T-{n}")) for n in range(3))
        assert effects == sum(1 for run, _ in [*made, *more] if run.side_effects)
        assert not (history.root / spill.WORK).exists(), "the scratch files go"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _points(workspace, env_extra: dict[str, str]) -> list[str]:
    trace = workspace.root / "points"
    trace.unlink(missing_ok=True)
    result = run_workerctl(
        "runs", "reindex", workspace=workspace, env={FAULT_ENV: f"trace:{trace}", **env_extra}
    )
    assert result.returncode == 0, result.stderr
    return trace.read_text().splitlines()


@pytest.mark.slow
def test_a_reindex_killed_at_any_write_point_loses_nothing(tmp_path):
    """From the same history (run files, no index: every kind of write a reindex makes),
    a reindex killed at write point N, for N spread over all of them."""
    from workerctl.workspace import load_workspace

    pristine = init_workspace(tmp_path / "pristine", get_registry())
    history = History(pristine)
    runs = [_run(n % 60, "alpha" if n % 3 else "beta", n % 4 != 0) for n in range(40)]
    for n, run in enumerate(runs):
        _write(history, run, (0, 0) if n % 5 == 0 else (n // 10 + 1, n % 10 + 1))
    env = {"WORKERCTL_TEST_SPILL_CHUNK": "7"}
    traced = tmp_path / "traced"
    shutil.copytree(pristine.root, traced, symlinks=True)
    points = _points(load_workspace(traced), env)
    assert any(f"/{spill.WORK}/" in p for p in points), "the scratch files are write points"
    want = sorted(run.id for run in runs)
    step = max(1, len(points) // 30)
    for number in sorted({*range(1, len(points) + 1, step), len(points)}):
        root = tmp_path / f"at-{number}"
        shutil.copytree(pristine.root, root, symlinks=True)
        workspace = load_workspace(root)
        killed = run_workerctl(
            "runs", "reindex", workspace=workspace, env={FAULT_ENV: f"kill:{number}", **env}
        )
        assert killed.returncode == -9, (number, points[number - 1], killed.stderr)
        if fs_exists(workspace.history_dir / "index"):  # before the first swap: no index yet
            listed = run_workerctl("runs", "list", "--limit", "0", "--json", workspace=workspace)
            assert listed.returncode == 0, (number, listed.stderr)
            assert sorted(r["id"] for r in json.loads(listed.stdout)) == want, number
        done = run_workerctl("runs", "reindex", workspace=workspace, env=env)
        assert done.returncode == 0, (number, done.stderr)
        assert not (workspace.history_dir / spill.WORK).exists()
        listed = run_workerctl("runs", "list", "--limit", "0", "--json", workspace=workspace)
        assert sorted(r["id"] for r in json.loads(listed.stdout)) == want, number
        shutil.rmtree(root)


def test_old_index_folders_a_killed_reindex_left_go_with_the_next(tmp_path):
    """A reindex killed between its two renames leaves ``index.old-*`` (and, once the
    next command finished the swap, nothing else of it); the next reindex removes such
    leftovers as it removes its own old folders (a fresh-brief attack found them kept
    for ever, a whole index each)."""
    workspace = init_workspace(tmp_path / "ws", get_registry())
    history = History(workspace)
    for n in range(12):
        _write(history, _run(n, "alpha", True), (1, n + 1))
    assert run_workerctl("runs", "reindex", workspace=workspace).returncode == 0
    killed = run_workerctl(
        "runs", "reindex", workspace=workspace, env={FAULT_ENV: "kill-at:1:/history/indexes"}
    )
    assert killed.returncode == -9
    assert list(workspace.history_dir.glob("index.old-*")), "the kill left the old index"
    assert run_workerctl("runs", "list", workspace=workspace).returncode == 0  # finishes the swap
    done = run_workerctl("runs", "reindex", workspace=workspace)
    assert done.returncode == 0, done.stderr
    assert not list(workspace.history_dir.glob("index*.old-*"))
    listed = run_workerctl("runs", "list", "--limit", "0", "--json", workspace=workspace)
    assert len(json.loads(listed.stdout)) == 12


def fs_exists(path: Path) -> bool:
    return path.is_dir() and bool(os.listdir(path))


def test_a_record_id_with_a_lone_surrogate_is_reindexed(tmp_path):
    """Found by attacking the reindex: a run file (copied in from elsewhere) whose record
    id holds a lone surrogate (JSON "\\udc80") made 'runs reindex' end in a traceback
    (UnicodeEncodeError) where it picked the record's ledger bucket."""
    workspace = init_workspace(tmp_path / "ws", get_registry())
    history = History(workspace)
    run = _run(1, "alpha", True)
    run.record_id = "T-\udc80"
    run.side_effects = [
        {"kind": "comment", "record_id": run.record_id, "key": f"{run.id}:out", "created": True}
    ]
    data = run.to_stored()
    data["_shard"], data["_doc"] = 0, 0
    path = history.body_path(run.id)
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_text(json.dumps(data))  # ASCII JSON: the surrogate as its escape
    done = run_workerctl("runs", "reindex", workspace=workspace)
    assert done.returncode == 0, done.stderr
    listed = run_workerctl("ledger", "list", "--json", workspace=workspace)
    assert listed.returncode == 0, listed.stderr
    assert [e["run_id"] for e in json.loads(listed.stdout)] == [run.id]


def test_a_full_disk_at_a_scratch_file_is_the_usual_one_line_error(tmp_path):
    """Found by attacking the reindex: a full disk at one of its scratch files ended with
    the bare OS message; now it is the one-line "cannot write" every file gives (exit
    4), and the history lists what it listed before."""
    workspace = init_workspace(tmp_path / "ws", get_registry())
    history = History(workspace)
    for n in range(6):
        _write(history, _run(n, "alpha", True), (1, n + 1))
    assert run_workerctl("runs", "reindex", workspace=workspace).returncode == 0
    points = _points(workspace, {})
    first = next(n for n, line in enumerate(points, 1) if f"/{spill.WORK}/" in line)
    full = run_workerctl("runs", "reindex", workspace=workspace, env={FAULT_ENV: f"enospc:{first}"})
    assert full.returncode == 4, full.stderr
    assert "cannot write" in full.stderr and "Traceback" not in full.stderr
    assert len(full.stderr.strip().splitlines()) == 1, full.stderr
    listed = run_workerctl("runs", "list", "--limit", "0", "--json", workspace=workspace)
    assert len(json.loads(listed.stdout)) == 6


def test_a_run_file_outside_its_folder_is_named_not_skipped_silently(tmp_path):
    """Found by attacking the reindex: a run file copied into the wrong runs/PREFIX/ folder
    was left out without a word; the reindex now names it and where it belongs."""
    workspace = init_workspace(tmp_path / "ws", get_registry())
    history = History(workspace)
    run = _run(1, "alpha", True)
    _write(history, run, (0, 0))
    wrong = history.root / "runs" / "zz" / f"{run.id}.json"
    wrong.parent.mkdir(mode=0o700)
    history.body_path(run.id).rename(wrong)
    done = run_workerctl("runs", "reindex", workspace=workspace)
    assert done.returncode == 0, done.stderr
    assert str(wrong) in done.stdout + done.stderr
    assert str(history.root / "runs" / run.id[:2]) in done.stdout + done.stderr
