"""Recovery after a crash inside a batch's staged writes, a prune or a reindex repairs
what the crash touched, never rebuilding every cross-run index under the lock.

Real processes are SIGKILLed at write points (``WORKERCTL_TEST_FAULT``); the next
reader then recovers with ``Indexes.rebuild`` forbidden, and every query it answers
equals a brute-force scan of the run files.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
from pathlib import Path

import pytest

import workerctl.history.store as store_module
from helpers import run_workerctl
from workerctl.history.indexes import Indexes
from workerctl.history.store import History, RunFilter
from workerctl.history.sweep import catch_up
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.runs.model import Run, RunError, new_run_id
from workerctl.runs.stats import compute, stats_from_counts
from workerctl.storage.faults import FAULT_ENV
from workerctl.workspace import load_workspace

BASE = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bodies(history: History) -> dict[str, dict]:
    out = {}
    for path in (history.root / "runs").glob("*/*.json"):
        data = json.loads(path.read_text())
        out[data["id"]] = data
    return out


def _recovered_equals_a_scan(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next command's recovery (the sweep, an unfinished prune, the pending notes),
    with a full rebuild forbidden; then every query against a scan of the run files."""

    def no_rebuild(self: Indexes, *args: object) -> None:
        raise AssertionError(f"a full rebuild of the cross-run indexes: {sorted(self._pending())}")

    monkeypatch.setattr(Indexes, "rebuild", no_rebuild)
    monkeypatch.setattr(Indexes, "_pending", _pending, raising=False)
    history = History(load_workspace(root))
    catch_up(history)
    assert history.indexes.ensure()
    assert not list((history.root / "indexes" / "pending").glob("*")), "recovery leaves no note"
    monkeypatch.undo()
    bodies = _bodies(history)
    by_slot = sorted(bodies, key=lambda i: (bodies[i]["_shard"], bodies[i]["_doc"]), reverse=True)
    summaries = [Run.from_dict(bodies[i]).summary() for i in by_slot]
    workers = sorted({s["worker"] for s in summaries})
    for flt in [
        None,
        *(RunFilter(workers=(w,)) for w in workers),
        RunFilter(statuses=("failed",)),
        RunFilter(statuses=("completed",)),
    ]:
        want = [s["id"] for s in summaries if flt is None or flt.match(s)]
        assert [d["id"] for d in history.list(flt, limit=None)] == want, flt
    for by in ("worker", "model"):
        want_counts = {k: v["counts"] for k, v in compute(summaries, by=by).items()}
        got = stats_from_counts(history.indexes.counts(by=by))
        assert {k: v["counts"] for k, v in got.items()} == want_counts, by
    stats = history.indexes.worker_stats()
    for worker in workers:
        mine = [s for s in summaries if s["worker"] == worker]
        counts: dict[str, int] = {}
        kinds: dict[str, int] = {}
        for s in mine:
            counts[s["status"]] = counts.get(s["status"], 0) + 1
            if s.get("error_kind") and s["status"] in ("failed", "cancelled", "completed", "refused"):
                kinds[s["error_kind"]] = kinds.get(s["error_kind"], 0) + 1
        assert {k: v for k, v in stats[worker]["counts"].items() if v} == counts, worker
        assert {k: v for k, v in stats[worker]["error_kinds"].items() if v} == kinds, worker
        assert stats[worker]["last"]["id"] == mine[0]["id"], worker
    for worker in set(stats) - set(workers):
        assert not any(stats[worker]["counts"].values()), worker


def _pending(self: Indexes) -> list[str]:
    try:
        return [p.name for p in (self.root / "pending").iterdir()]
    except FileNotFoundError:
        return []


def _points(root: Path, argv: list[str], env: dict[str, str], tmp: Path) -> list[tuple[int, str]]:
    """The write points of one run of ``argv`` on a copy of ``root``: (number, path)."""
    copy = tmp / "trace-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root, copy, symlinks=True)
    trace = tmp / "points.txt"
    trace.unlink(missing_ok=True)
    done = run_workerctl("-w", str(copy), *argv, env={**env, FAULT_ENV: f"trace:{trace}"}, timeout=240)
    assert done.returncode in (0, 1), done.stderr
    shutil.rmtree(copy)
    return [(int(n), p) for n, p in (line.split(" ", 1) for line in trace.read_text().splitlines())]


def _history_with_past_runs(root: Path, count: int) -> Path:
    """A workspace of ``count`` runs over 10 days (two workers, a mix of ends, one
    unfinished), its cross-run indexes built, spread over many small index shards."""
    from workerctl.plugins.manager import get_registry
    from workerctl.workspace import init_workspace

    workspace = init_workspace(root / "ws", get_registry())
    history = History(workspace)
    history.indexes.ensure()
    original, small = store_module.now_iso, store_module.SHARD_BYTES
    store_module.SHARD_BYTES = 1500  # a few runs a shard: the prune goes shard by shard
    try:
        for n in range(count):
            stamp = _iso(BASE + dt.timedelta(hours=6 * n))
            store_module.now_iso = lambda stamp=stamp: stamp
            run = Run(
                id=new_run_id(),
                worker=("alpha", "beta")[n % 2],
                config_hash="h",
                config={},
                executor="echo",
                created=stamp,
                status="running",
                record_id=f"T-{n % 4}",
            )
            history.create(run)
            if n == 3:
                continue  # stays running: never pruned
            if n % 3 == 0:
                run.error = RunError("tool_not_allowed", "x")
                run.move("failed")
            else:
                run.move("completed")
            history.save(run)
    finally:
        store_module.now_iso, store_module.SHARD_BYTES = original, small
    return workspace.root


@pytest.mark.slow
def test_a_prune_killed_at_any_write_point_is_repaired_not_rebuilt(tmp_path, monkeypatch):
    """``runs prune`` in batches of a shard or so (``WORKERCTL_TEST_PRUNE_BATCH``),
    SIGKILLed at each of its write points: the next command finishes the batch from
    its journal and recounts what it touched; every query equals a scan."""
    template = _history_with_past_runs(tmp_path / "template", 24)
    argv = ["runs", "prune", "--older-than", f"{(dt.datetime.now(dt.UTC) - BASE).days - 3}d"]
    env = {"WORKERCTL_TEST_PRUNE_BATCH": "3"}
    points = _points(template, argv, env, tmp_path)
    assert any("pruning.json" in p for _, p in points) and any("/indexes/" in p for _, p in points)
    assert sum("pruning.json" in p for _, p in points) >= 4, "several batches, a journal each"
    for number, path in points:
        root = tmp_path / f"at-{number}"
        shutil.copytree(template, root, symlinks=True)
        killed = run_workerctl("-w", str(root), *argv, env={**env, FAULT_ENV: f"kill:{number}"})
        assert killed.returncode == -signal.SIGKILL, (number, path, killed.stderr)
        _recovered_equals_a_scan(root, monkeypatch)
        shutil.rmtree(root)


def _tasks(root: Path, count: int) -> Path:
    from workerctl.plugins.manager import get_registry
    from workerctl.workspace import init_workspace

    workspace = init_workspace(root / "ws", get_registry())
    tasks = [f"T-{n}" for n in range(30000, 30000 + count)]
    BuiltinRecordStore(workspace).import_records(
        [
            {"id": t, "type": "task", "title": f"Task {t}", "status": "todo", "due": "2026-01-01"}
            for t in tasks
        ],
        "recovery-test",
    )
    (root / "ids.txt").write_text("\n".join(tasks) + "\n")
    History(workspace).indexes.ensure()  # the cross-run indexes built: a batch keeps them
    return workspace.root


@pytest.mark.slow
def test_a_batch_killed_inside_its_staged_writes_is_repaired_run_by_run(tmp_path, monkeypatch):
    """A ``--jobs 4`` batch, whose commits stage the shard and cross-run index writes of
    a hand-over chain, SIGKILLed at write points among those staged writes (and at a
    note): the notes name each run of the chain, and the repair is run by run."""
    root = _tasks(tmp_path, 12)
    argv = [
        "run",
        "start",
        "overdue-task-review",
        "--records-from",
        str(tmp_path / "ids.txt"),
        "--jobs",
        "4",
        "--allow-repeat",
    ]
    points = [p for _, p in _points(root, argv, {}, tmp_path) if "/history/indexes/" in p]
    assert len(points) >= 8, "the batch writes the cross-run indexes"
    chains = 0
    for nth in range(2, len(points), max(1, len(points) // 12)):
        copy = tmp_path / f"at-{nth}"
        shutil.copytree(root, copy, symlinks=True)
        env = {FAULT_ENV: f"kill-at:{nth}:/history/indexes/"}
        killed = run_workerctl("-w", str(copy), *argv, env=env, timeout=240)
        if killed.returncode == 0:  # a run with fewer writes (more of them staged together)
            shutil.rmtree(copy)
            continue
        assert killed.returncode == -signal.SIGKILL, (nth, killed.stderr)
        notes = [p.name for p in (copy / ".workerctl" / "history" / "indexes" / "pending").iterdir()]
        # killed amid a chain's staged writes: several runs noted (a chain's one note, before)
        chains += len(notes) >= 2 or any(n.startswith("staged-") for n in notes)
        _recovered_equals_a_scan(copy, monkeypatch)
        shutil.rmtree(copy)
    assert chains >= 1, "no kill fell amid a staged chain"


@pytest.mark.slow
@pytest.mark.parametrize("then", ["reader", "start"])
def test_a_reindex_killed_at_its_swap_needs_no_rebuild(tmp_path, monkeypatch, then):
    """``runs reindex`` SIGKILLed at each write point of its final hold (the note, the
    markers, the swap): the next command settles the swap or drops the note. ``start``:
    the next command is a cron job's ``run start`` (no reader before it), whose run must
    be in the indexes that stay: killed between its two renames, the reindex had put the
    new index in place and not yet its cross-run indexes, the start wrote into the old
    ones, and the next reader's settling of the swap put in the reindex's, without it."""
    template = _history_with_past_runs(tmp_path / "template", 12)
    points = _points(template, ["runs", "reindex"], {}, tmp_path)
    # the last writes: the stage marked complete, then the two renames of the swap
    chosen = [
        n for n, p in points if "reindex.stage" in p or p.endswith(("/history/index", "/history/indexes"))
    ]
    chosen = chosen[-4:]
    assert len(chosen) == 4
    for number in chosen:
        root = tmp_path / f"at-{number}"
        shutil.copytree(template, root, symlinks=True)
        killed = run_workerctl("-w", str(root), "runs", "reindex", env={FAULT_ENV: f"kill:{number}"})
        assert killed.returncode == -signal.SIGKILL, (number, killed.stderr)
        if then == "start":
            started = run_workerctl(
                "-w", str(root), "run", "start", "overdue-task-review", "--task", "T-1042"
            )
            assert started.returncode == 0, (number, started.stderr)
            pending = root / ".workerctl" / "history" / "indexes" / "pending"
            assert not list(pending.glob("*")), (number, "the start left a note: its guard scanned")
        _recovered_equals_a_scan(root, monkeypatch)
        shutil.rmtree(root)


@pytest.mark.slow
def test_a_prune_in_batches_beside_writers_and_a_reindex(tmp_path, monkeypatch):
    """``runs prune`` in batches of a shard or so (the lock let go between them), as a
    real process, while this process creates and finishes runs and a ``runs reindex``
    process runs: exactly the old finished runs go, every new run stays, and every
    query equals a scan of the run files."""
    import subprocess
    import sys
    import threading

    root = _history_with_past_runs(tmp_path, 60)
    history = History(load_workspace(root))
    old = {i for i, d in _bodies(history).items() if d["status"] != "running"}
    days = (dt.datetime.now(dt.UTC) - BASE).days - 20  # every run made above is older
    env = {**__import__("os").environ, "WORKERCTL_TEST_PRUNE_BATCH": "2", "NO_COLOR": "1"}
    made: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        own = History(load_workspace(root))
        while not stop.is_set() or len(made) < 5:
            run = Run(
                id=new_run_id(), worker="gamma", config_hash="h", config={}, executor="echo", created=""
            )
            run.status = "running"
            own.create(run)
            run.move("completed")
            own.save(run)
            made.append(run.id)

    thread = threading.Thread(target=writer)
    thread.start()
    cli = [sys.executable, "-m", "workerctl", "-w", str(root)]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    try:
        reindex = subprocess.Popen([*cli, "runs", "reindex"], env=env, **pipes)
        prune = [*cli, "runs", "prune", "--older-than", f"{days}d"]
        pruned = subprocess.run(prune, env=env, timeout=240, **pipes)
        err = reindex.communicate(timeout=240)[1]
    finally:
        stop.set()
        thread.join(timeout=120)
    assert pruned.returncode == 0, pruned.stderr
    assert reindex.returncode == 0, err
    left = _bodies(history)
    assert not old & set(left), "every old finished run pruned"
    assert set(made) <= set(left), "no run made meanwhile lost"
    assert f"removed {len(old)}" in pruned.stdout or str(len(old)) in pruned.stdout, pruned.stdout
    _recovered_equals_a_scan(root, monkeypatch)


def test_a_note_of_this_process_s_staged_writes_leaves_the_indexes_ready(workspace):
    """A batch's chain of commits notes each run's write until its staged files are
    written: those notes are this process's writes in flight, read from what it staged,
    so the indexes stay ready for it (the next run's duplicate guard asks them rather
    than every summary). A note it did not write is a crash's: not ready."""
    from workerctl.engine.launcher import Engine, StartOptions
    from workerctl.plugins.manager import get_registry

    Engine(workspace, get_registry()).start("overdue-task-review", StartOptions(record_id="T-1043"))
    history = History(workspace)
    assert history.indexes.ready()
    pending = history.root / "indexes" / "pending"
    ours = pending / new_run_id()
    with history.lock:
        ours.touch()
        assert not history.indexes.ready()  # on disk and not known: a crash's, as far as it can tell
        history.after_flush(ours)
        assert history.indexes.ready()
        theirs = pending / new_run_id()
        theirs.touch()
        assert not history.indexes.ready()
        theirs.unlink()
    assert not ours.exists() and history.indexes.ready()  # written and let go: the note went


@pytest.mark.parametrize("point", ["by-record", "hours"])
def test_a_start_killed_inside_its_commit_is_repaired_by_the_next_start(workspace, monkeypatch, point):
    """A ``run start`` SIGKILLed while it updates the cross-run indexes leaves a note in
    ``indexes/pending/``. The next start (a writer, no reader in between: a cron job)
    settles the dead run and repairs the indexes run by run, never by a rebuild, and
    the note goes: it was left for a reader before, for good in a history only ever
    started, and every later start's duplicate guard read the runs' summaries instead
    of the indexes. Then every query equals a scan of the run files."""
    killed = run_workerctl(
        "run", "start", "overdue-task-review", "--task", "T-1042",
        workspace=workspace, env={FAULT_ENV: f"kill-at:1:indexes/{point}"},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    pending = workspace.history_dir / "indexes" / "pending"
    assert [p.name for p in pending.iterdir()], "the kill landed inside the commit"
    monkeypatch.setattr(Indexes, "rebuild", lambda self, *a: pytest.fail("a full rebuild"))
    scans: list[str] = []
    real_scan = History.iter_summaries

    def scanned(self, flt=None):
        scans.append(repr(flt))
        return real_scan(self, flt)

    monkeypatch.setattr(History, "iter_summaries", scanned)
    from workerctl.engine.launcher import Engine, StartOptions
    from workerctl.plugins.manager import get_registry

    for task in ("T-1043", "T-2001"):  # the next start, in this process, then one more
        history = History(workspace)
        catch_up(history)  # what every command does first (``App.history``)
        Engine(workspace, get_registry(), history=history).start(
            "overdue-task-review", StartOptions(record_id=task)
        )
        assert not list(pending.iterdir()), "the note went with the repair"
    assert scans == [], "the duplicate guard asked the indexes, not every summary"
    monkeypatch.undo()
    _recovered_equals_a_scan(workspace.root, monkeypatch)
    statuses = {
        r["record_id"]: (r["status"], r["error_kind"]) for r in History(workspace).list(None, limit=None)
    }
    assert statuses["T-1042"] == ("failed", "crashed")
