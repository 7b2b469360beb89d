"""Crash consistency, proved by failing every write point for real.

Each scenario is first traced (``WORKERCTL_TEST_FAULT=trace:FILE``) to list its
write points; then, for every point N, a fresh workspace runs the same command
once with a real SIGKILL of the process at N and once with ``ENOSPC`` from N on
(a full disk stays full). After each, the next command (a real ``workerctl``
process) must see one consistent history: ``runs list`` lists exactly the run
files, ``run inspect`` agrees with it on every run, no run is unfinished without
a live owner, and no marker is left behind.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from helpers import make_worker, run_workerctl, wait_for
from workerctl.cli import cli
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.errors import DamagedFile, NotFoundError
from workerctl.history.store import History
from workerctl.history.sweep import owner_alive, proc_start
from workerctl.plugins.manager import get_registry
from workerctl.runs.model import UNFINISHED
from workerctl.storage.faults import FAULT_ENV
from workerctl.workspace import init_workspace

TOOLY = json.dumps(
    {
        "name": "echo",
        "script": [
            {"tool": "read_task", "arguments": {"task_id": "T-1042"}},
            {"output": "Blocker: waiting on the vendor"},
        ],
    }
)
SLOW = json.dumps({"name": "echo", "script": [{"sleep": 60, "output": "late"}]})


def fresh(tmp_path, n: int):
    workspace = init_workspace(tmp_path / f"ws{n}", get_registry())
    make_worker(workspace, "tooly", executor=TOOLY)
    make_worker(workspace, "slow", executor=SLOW)
    return workspace


def sleeper() -> subprocess.Popen:
    """A real process to stand as a run's owner, killed when the test says so."""
    return subprocess.Popen(["sleep", "120"])


@pytest.fixture
def owner():
    """``owner()`` starts a sleeper to own a run; any still alive at the end are killed."""
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        started.append(sleeper())
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            kill(proc)


def stored_run(workspace, status: str, owner_proc: subprocess.Popen) -> str:
    """A run stored as ``status``, owned by ``owner_proc``."""
    engine = Engine(workspace, get_registry())
    _, run = engine.prepare("tooly", StartOptions(record_id="T-1042"))
    for step in {"pending": (), "queued": ("queued",), "running": ("queued", "running")}[status]:
        run.move(step)
    run.owner = {"pid": owner_proc.pid, "host": os.uname().nodename, "proc_start": proc_start(owner_proc.pid)}
    return History(workspace).create(run).id


def no_live_owner(history: History) -> bool:
    """No unfinished run is still in a live process's hands: neither the owner its
    marker names nor the one its run file names (a detached child that took the run
    before the asking process died is named only in the run file)."""
    for run_id, info in history.unfinished().items():
        if owner_alive(history, run_id, info):
            return False
        try:
            owner = history.get(run_id).owner or {}
        except (NotFoundError, DamagedFile):
            continue
        if owner.get("pid") and owner_alive(history, run_id, owner):
            return False
    return True


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def in_process(workspace, *args: str):
    """The real CLI in this process (cheaper than a process per run inspected)."""
    result = CliRunner().invoke(cli, ["-w", str(workspace.root), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_consistent(workspace, live_owner: bool = False) -> list[dict]:
    """The next command's view: list, inspect, markers and run files agree. The first
    command after the fault is a real process (its sweep does any repair)."""
    listed = run_workerctl("runs", "list", "--limit", "0", "--json", workspace=workspace)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    history = workspace.history_dir
    bodies = sorted(p.stem for p in (history / "runs").glob("*/*.json"))
    assert sorted(r["id"] for r in runs) == bodies, "every run file listed, nothing else"
    for summary in runs:
        if not live_owner:
            assert summary["status"] not in UNFINISHED, f"{summary['id']} has no live owner"
        card = in_process(workspace, "run", "inspect", summary["id"], "--json")
        assert card["status"] == summary["status"]
        assert (card.get("error") or {}).get("kind") == summary["error_kind"]
    markers = {p.stem for p in (history / "active").glob("*.json")}
    assert markers == {r["id"] for r in runs if r["status"] in UNFINISHED}, (
        "a marker for each unfinished run, and none for a finished one"
    )
    assert not (history / "pruning.json").exists()
    again = in_process(workspace, "runs", "list", "--limit", "0", "--json")
    assert again == runs, "a second sweep finds nothing more to do"
    by_worker = in_process(
        workspace, "runs", "list", "--worker", "tooly", "--limit", "0", "--json"
    )  # answered from the cross-run indexes
    assert [r["id"] for r in by_worker] == [r["id"] for r in runs if r["worker"] == "tooly"]
    return runs


def trace(tmp_path, scenario) -> list[str]:
    workspace = fresh(tmp_path, 0)
    points = tmp_path / "points"
    scenario(workspace, {FAULT_ENV: f"trace:{points}"})
    lines = points.read_text().splitlines()
    assert lines, "the scenario writes something"
    return lines


def crash_everywhere(
    tmp_path,
    scenario,
    *,
    expect_runs: int | None = 1,
    live_owner: bool = False,
    reads: bool = False,
    modes: tuple[str, ...] = ("kill", "enospc"),
):
    """Run ``scenario`` with a SIGKILL, then with ENOSPC, at each of its write points.
    ``reads``: the scenario is a read command, which answers from disk (exit 0) and
    warns when its repairs cannot be written. ``modes``: one of the two, for a test
    split in two so that pytest-xdist runs the halves side by side."""
    points = trace(tmp_path, scenario)
    n = 0
    for mode in modes:
        for point in range(1, len(points) + 1):
            n += 1
            workspace = fresh(tmp_path, n)
            result = scenario(workspace, {FAULT_ENV: f"{mode}:{point}"})
            where = f"{mode} at point {point} ({points[point - 1]})"
            if mode == "kill":
                assert result.returncode == -signal.SIGKILL, where
            else:
                assert result.returncode == (0 if reads else 4), (where, result.stdout, result.stderr)
                lines = result.stderr.strip().splitlines()
                assert "Traceback" not in result.stderr, where
                assert lines and "No space left on device" in lines[-1], (where, lines)
                leftovers = list(workspace.state_dir.rglob(".*.tmp"))
                assert not leftovers, (where, leftovers)
            runs = assert_consistent(workspace, live_owner)
            if expect_runs is not None:
                assert len(runs) <= expect_runs, where
    return points


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["kill", "enospc"])  # the two halves run side by side
def test_run_start_survives_a_crash_or_full_disk_at_every_write(tmp_path, mode):
    """create (marker, run file, index), each iteration's save, the comment the
    output mode writes, and the final save (run file, index, marker removed)."""

    def scenario(workspace, env):
        return run_workerctl("run", "start", "tooly", "--task", "T-1042", workspace=workspace, env=env)

    points = crash_everywhere(tmp_path, scenario, modes=(mode,))
    kinds = [p.split("/.workerctl/")[-1].split("/")[:2] for p in points]
    assert ["history", "active"] in kinds and ["history", "index"] in kinds
    assert ["comments", "+t-1042.json"] in kinds and ["history", "runs"] in kinds


@pytest.mark.slow
def test_detached_start_survives_a_crash_or_full_disk_at_every_write(tmp_path):
    """The asking process: create (pending), hand-over to the child (queued). The
    child, when it was started, finishes the run by itself."""

    def scenario(workspace, env):
        result = run_workerctl(
            "run", "start", "tooly", "--task", "T-1042", "--detach", workspace=workspace, env=env
        )
        history = History(workspace)
        wait_for(lambda: no_live_owner(history), timeout=30)
        return result

    crash_everywhere(tmp_path, scenario)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["kill", "enospc"])  # the two halves run side by side
def test_execute_survives_a_crash_or_full_disk_at_every_write(tmp_path, owner, mode):
    """The executing process: queued → running, the iteration save, the comment,
    and the final save, with the asking process gone by the time it is checked."""

    def scenario(workspace, env):
        proc = owner()
        run_id = stored_run(workspace, "queued", proc)
        result = run_workerctl("run", "execute", run_id, workspace=workspace, env=env)
        kill(proc)
        return result

    crash_everywhere(tmp_path, scenario, modes=(mode,))


@pytest.mark.slow
def test_cancel_survives_a_crash_or_full_disk_at_every_write(tmp_path, owner):
    """Finishing another process's run: the marker first names the cancelling
    process, so its death mid-way is repaired from the run file."""

    def scenario(workspace, env):
        proc = owner()
        run_id = stored_run(workspace, "running", proc)
        result = run_workerctl("run", "cancel", "--id", run_id, workspace=workspace, env=env)
        kill(proc)
        return result

    crash_everywhere(tmp_path, scenario)


@pytest.mark.slow
def test_cancel_of_a_live_run_survives_a_crash_or_full_disk_at_every_write(tmp_path, owner):
    """The process executing the run lives on: only the cancelling process dies. The
    index must not keep saying 'running' once the run file says 'cancelled'."""

    def scenario(workspace, env):
        proc = owner()
        run_id = stored_run(workspace, "running", proc)
        return run_workerctl("run", "cancel", run_id, workspace=workspace, env=env)

    crash_everywhere(tmp_path, scenario, live_owner=True)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["kill", "enospc"])
def test_the_repair_of_a_crash_s_note_survives_a_crash_or_full_disk_at_every_write(tmp_path, mode):
    """A start killed while it updated the cross-run indexes leaves a note in
    ``indexes/pending/``; the next start (no reader between them: cron jobs) settles
    that run and repairs the indexes run by run (``sweep.repair_cut_writes``). Killed,
    or stopped by a full disk, at any write point of its own, the repair included, it
    leaves what the command after it makes consistent."""

    def scenario(workspace, env):
        cut = run_workerctl(
            "run", "start", "tooly", "--task", "T-1042",
            workspace=workspace, env={FAULT_ENV: "kill-at:1:indexes/hours"},
        )  # fmt: skip
        assert cut.returncode == -signal.SIGKILL
        assert list((workspace.history_dir / "indexes" / "pending").iterdir()), "a note to repair"
        return run_workerctl("run", "start", "tooly", "--task", "T-2001", workspace=workspace, env=env)

    points = crash_everywhere(tmp_path, scenario, expect_runs=2, modes=(mode,))
    after = [b for a, b in itertools.pairwise(points) if "/history/active/" in a]
    assert any("/indexes/hours/" in b for b in after), "the settled run's marker goes, then the repair"


@pytest.mark.slow
def test_the_crash_sweep_survives_a_crash_or_full_disk_at_every_write(tmp_path):
    """The sweep marking a dead run crashed is itself a multi-file write."""

    def scenario(workspace, env):
        owner = sleeper()
        stored_run(workspace, "running", owner)
        kill(owner)
        return run_workerctl("runs", "list", workspace=workspace, env=env)

    # a read command answers from disk when its sweep cannot be written (#21: it
    # exited 4 before), and the next command that can write records the crash
    crash_everywhere(tmp_path, scenario, reads=True)


def test_finished_run_file_ahead_of_its_index_is_repaired(workspace, wcli):
    """Issue 13, case 1: the run file says completed, the index still says running
    (the state a full disk or SIGKILL between the two writes left before): the
    next command repairs the index from the run file instead of dropping the
    marker and leaving the run 'running' for ever."""
    make_worker(workspace, "tooly", executor=TOOLY)
    owner = sleeper()
    run_id = stored_run(workspace, "running", owner)
    history = History(workspace)
    run = history.get(run_id)
    run.move("completed")
    data = run.to_dict()
    body = json.loads(history.body_path(run_id).read_text())
    data["_shard"], data["_doc"] = body["_shard"], body["_doc"]
    history.body_path(run_id).write_text(json.dumps(data))  # the run file only
    kill(owner)
    watch = run_workerctl("runs", "list", "--watch", "0.2", "--exit-status", workspace=workspace, timeout=20)
    assert watch.returncode == 0, watch.stderr
    listed = run_workerctl("runs", "list", "--json", workspace=workspace)
    assert json.loads(listed.stdout)[0]["status"] == "completed"
    assert not history.marker_path(run_id).exists()


def many_runs(workspace, count: int, per_shard: int = 100) -> None:
    """``count`` run files written directly (fast), then indexed by a real reindex."""
    make_worker(workspace, "tooly", executor=TOOLY)
    _, template = Engine(workspace, get_registry()).prepare("tooly", StartOptions(record_id="T-1042"))
    template.move("queued")
    template.move("running")
    template.move("completed")
    template.output = "done"
    base = workspace.history_dir / "runs"
    for n in range(count):
        run_id = f"{n:08d}"
        data = {
            **template.to_stored(),
            "id": run_id,
            "created": f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}.{n // 3600:03d}Z",
            "_shard": n // per_shard + 1,
            "_doc": n % per_shard + 1,
        }
        (base / run_id[:2]).mkdir(parents=True, exist_ok=True)
        (base / run_id[:2] / f"{run_id}.json").write_text(json.dumps(data))
    assert History(workspace).reindex()["runs"] == count


@pytest.mark.slow
def test_readers_during_a_reindex_see_the_whole_history(workspace):
    """Issue 13, case 4: 'runs list' while 'runs reindex' rebuilt 1,600 runs returned
    100, 300, 400 … runs. Readers now see the old index or the new one, whole."""
    many_runs(workspace, 1600)
    history = History(workspace)
    assert len(history.list(limit=None)) == 1600
    reindexer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys\n"
            "for _ in range(6):\n"
            "    subprocess.run([sys.executable, '-m', 'workerctl', '-w', sys.argv[1], 'runs',"
            " 'reindex'], check=True, capture_output=True)\n",
            str(workspace.root),
        ]
    )
    seen, during = [], 0
    while reindexer.poll() is None:
        seen.append(len(History(workspace).list(limit=None)))
        during += any(p.name.startswith("index.") for p in workspace.history_dir.iterdir())
    cli = run_workerctl("runs", "list", "--limit", "0", "--json", workspace=workspace)
    assert reindexer.returncode == 0
    assert during > 0, "some reads overlapped a reindex"
    assert set(seen) == {1600}, sorted(set(seen))
    assert len(json.loads(cli.stdout)) == 1600


@pytest.mark.slow
def test_prune_survives_a_crash_or_full_disk_at_every_write(tmp_path):
    """Pruning rewrites shards and deletes run files: a journal written first makes
    the next command finish a prune that died half-way."""

    def scenario(workspace, env):
        many_runs(workspace, 6, per_shard=2)  # three shards; the first two go whole
        return run_workerctl("runs", "prune", "--older-than", "30d", workspace=workspace, env=env)

    points = crash_everywhere(tmp_path, scenario, expect_runs=None)
    assert any(p.endswith("pruning.json") for p in points)


def test_a_pruned_history_lists_nothing_it_lost(workspace):
    many_runs(workspace, 120)
    result = run_workerctl("runs", "prune", "--older-than", "30d", workspace=workspace)
    assert result.returncode == 0 and "removed 120" in result.stdout
    assert assert_consistent(workspace) == []
