"""A command that reads never waits on a writer for the lock timeout: where it would
repair something under the history lock (record a dead run as crashed, finish a prune,
recover indexes a crash cut, bring the search index up to date), it waits at most
``storage.lock.REPAIR_WAIT`` (``FileLock.within``), then answers from what is on disk
(exit 0, a warning), and the next command that can write records what it found.

Before, a writer stopped with ``kill -STOP`` (or stuck) while holding the lock made
``runs list``, ``run inspect``, ``runs stats`` and ``ledger list`` exit 4 after the
10 s lock timeout whenever a run's process had died; ``runs stats`` and ``runs
search`` did so, or waited the whole timeout, whenever the stopped writer had a
commit under way.

The writer here is a real ``run start`` stopped at each of its write points in turn
(``WORKERCTL_TEST_FAULT=stop:N``), holding whatever it holds there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers import make_worker, process_gone, run_workerctl, wait_for
from workerctl.history.store import History
from workerctl.storage.faults import FAULT_ENV
from workerctl.workspace import load_workspace

START = ("run", "start", "overdue-task-review", "--task", "T-1044")


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "T"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, list[str]]:
    """Two completed runs and a worker that sleeps a minute: made once, copied per case."""
    from workerctl.plugins.manager import get_registry
    from workerctl.workspace import init_workspace

    ws = init_workspace(tmp_path_factory.mktemp("two") / "ws", get_registry())
    done = []
    for task in ("T-1042", "T-1043"):
        ran = run_workerctl("run", "start", "overdue-task-review", "--task", task, "--json=id", workspace=ws)
        assert ran.returncode == 0, ran.stderr
        done.append(json.loads(ran.stdout)["id"])
    make_worker(ws, "slow", executor="{name: echo, script: [{sleep: 60}]}", timeout=120)
    return ws.root, done


def _running(root: Path) -> tuple[str, int]:
    """A detached run of ``slow`` on T-1042, executing: its id and its process."""
    ws = load_workspace(root)
    started = run_workerctl("run", "start", "slow", "--task", "T-1042", "--detach", workspace=ws)
    run_id = started.stdout.strip()
    history = History(ws)
    wait_for(lambda: history.get(run_id).status == "running")
    return run_id, history.get(run_id).owner["pid"]


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: process_gone(pid))


def _beside_a_stopped_writer(root: Path, point: int) -> tuple[subprocess.Popen, str]:
    """A ``run start`` stopped at its write point ``point``, then a run's process killed
    (after the writer's own sweep, which would have recorded it): the writer and the
    dead run's id."""
    dead, pid = _running(root)
    writer = _stopped_writer(root, point)
    _kill(pid)
    return writer, dead


def _holder(root: Path, seconds: float, lock: str = "history/lock") -> subprocess.Popen:
    """A process holding the history lock (or ``lock`` under ``.workerctl``) for
    ``seconds`` (held when this returns)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n",
            str(root / ".workerctl" / lock),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _copy(root: Path, to: Path) -> Path:
    shutil.copytree(root, to, symlinks=True)
    return to


def _write_points(root: Path, tmp_path: Path, argv: tuple[str, ...] = START) -> list[str]:
    """The paths of the write points of ``workerctl ARGV`` on a copy of ``root``, in order
    (``trace``)."""
    where = Path(tempfile.mkdtemp(dir=tmp_path, prefix="traced-"))
    trace = where / "trace.txt"
    copy = _copy(root, where / "ws")
    env = {**os.environ, FAULT_ENV: f"trace:{trace}", "NO_COLOR": "1"}
    ran = subprocess.run(
        [sys.executable, "-m", "workerctl", "-w", str(copy), *argv], env=env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    return [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]


def _stopped_writer(root: Path, point: int, argv: tuple[str, ...] = START) -> subprocess.Popen:
    """``workerctl ARGV`` stopped (SIGSTOP) at its write point ``point``."""
    env = {**os.environ, FAULT_ENV: f"stop:{point}", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workerctl", "-w", str(root), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not _stopped(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    return proc


def _reads(root: Path, dead: str, done: list[str], lock_timeout: str) -> None:
    """Every read command answers (exit 0, no traceback) beside the stopped writer; the
    listing holds every finished run and the dead one as crashed."""
    ws = load_workspace(root)
    env = {"WORKERCTL_LOCK_TIMEOUT": lock_timeout}
    listed = run_workerctl(
        "runs", "list", "--json", "id,status,error_kind", workspace=ws, env=env, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert set(done) <= rows.keys()
    assert rows[dead]["status"] == "failed" and rows[dead]["error_kind"] == "crashed", rows[dead]
    for argv in (
        ("run", "inspect", "--id", dead),
        ("runs", "stats", "--json"),
        ("runs", "search", "blocker"),
        ("ledger", "list", "--json"),
        ("runs", "list", "--worker", "slow"),
    ):
        read = run_workerctl(*argv, workspace=ws, env=env, timeout=60)
        assert read.returncode == 0 and "Traceback" not in read.stderr, (argv, read.stderr)
    shown = run_workerctl("run", "inspect", "--id", dead, "--json", workspace=ws, env=env, timeout=60)
    assert json.loads(shown.stdout)["status"] == "failed"


@pytest.mark.slow
def test_reads_answer_beside_a_writer_stopped_at_each_write_point(two_runs, tmp_path):
    """At each write point of a ``run start`` (stopped there, holding the lock if it holds
    it): readers whose lock timeout is short answer all the same; before, any that
    needed the lock exited 4 ("could not get the lock")."""
    root, done = two_runs
    points = _write_points(root, tmp_path)
    assert len(points) >= 8
    for point in range(1, len(points) + 1):
        copy = _copy(root, tmp_path / f"p{point}")
        writer, dead = _beside_a_stopped_writer(copy, point)
        try:
            _reads(copy, dead, done, lock_timeout="0.3")
        finally:
            writer.send_signal(signal.SIGCONT)
            out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, (point, out, err)
        after = load_workspace(copy)
        # the next command that can write records the dead run; nothing is left running
        listed = run_workerctl("runs", "list", "--json", "id,status", workspace=after)
        assert listed.returncode == 0, listed.stderr
        assert {r["status"] for r in json.loads(listed.stdout)} <= {"completed", "failed"}, point
        assert History(after).get(dead).error.kind == "crashed"
        assert History(after).unfinished() == {}


def test_the_wait_is_the_repair_wait_not_the_lock_timeout(two_runs, tmp_path):
    """With a lock timeout of five minutes, every read still answers (each is given 60 s)
    while the writer stays stopped mid-commit."""
    root, done = two_runs
    points = _write_points(root, tmp_path)
    # the creation's commit, under the lock, its cross-run indexes' write under way
    point = next(n for n, path in enumerate(points, 1) if "/indexes/by-worker/" in path)
    copy = _copy(root, tmp_path / "mid")
    writer, dead = _beside_a_stopped_writer(copy, point)
    try:
        _reads(copy, dead, done, lock_timeout="300")
        warned = run_workerctl(
            "runs", "list", workspace=load_workspace(copy), env={"WORKERCTL_LOCK_TIMEOUT": "300"}, timeout=60
        )
        assert "showing the history as it is on disk" in warned.stderr
        assert "could not get the lock within 2s" in warned.stderr
    finally:
        writer.send_signal(signal.SIGCONT)
        writer.communicate(timeout=60)
    assert writer.returncode == 0


def test_a_start_records_the_dead_run_it_could_not_record_while_the_lock_was_held(two_runs, tmp_path):
    """The dead run is the same worker's on the same record: the duplicate guard would take
    its marker for a run executing now. The start's own sweep gives up while another
    process holds the lock; once the start holds it, it records the dead run as crashed
    first, and the guard lets it through (a crash is transient)."""
    root, _ = two_runs
    copy = _copy(root, tmp_path / "start")
    dead, pid = _running(copy)
    _kill(pid)
    holder = _holder(copy, seconds=6)
    started = run_workerctl(
        "run",
        "start",
        "slow",
        "--task",
        "T-1042",
        "--detach",
        workspace=load_workspace(copy),
        env={"WORKERCTL_LOCK_TIMEOUT": "60"},
    )
    holder.wait(timeout=60)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "showing the history as it is on disk" in started.stderr  # its sweep gave up first
    history = History(load_workspace(copy))
    assert history.get(dead).status == "failed" and history.get(dead).error.kind == "crashed"
    new = started.stdout.strip()
    assert new != dead and history.get(new).status in ("queued", "running")
    run_workerctl("run", "cancel", "--id", new, workspace=load_workspace(copy))


def test_a_batch_on_the_dead_run_s_record_starts_it(two_runs, tmp_path):
    """As above, in a ``--jobs 2`` batch: the thread that records the dead run stages its
    marker's removal with the batch's shared files, and the other thread, handed the
    lock before they are written, read the marker from disk and skipped the record as
    "executing now" (4 of 6 tries of a fresh-brief attack). ``History.unfinished`` now
    leaves out the runs this process finished. Three tries."""
    root, _ = two_runs
    for attempt in range(3):
        copy = _copy(root, tmp_path / f"batch{attempt}")
        dead, pid = _running(copy)
        make_worker(load_workspace(copy), "slow", timeout=120)  # its next runs end at once
        _kill(pid)
        holder = _holder(copy, seconds=4)
        started = run_workerctl(
            "run",
            "start",
            "slow",
            "--task",
            "T-1042",
            "--task",
            "T-1043",
            "--jobs",
            "2",
            "--json=counts",
            workspace=load_workspace(copy),
            env={"WORKERCTL_LOCK_TIMEOUT": "60"},
        )
        holder.wait(timeout=60)
        assert started.returncode == 0, started.stdout + started.stderr
        assert json.loads(started.stdout)["counts"] == {"completed": 2}, (attempt, started.stdout)
        assert History(load_workspace(copy)).get(dead).error.kind == "crashed"


def _reindex_point(root: Path, tmp_path: Path) -> int:
    """The write point of ``runs reindex`` between its two renames of ``index/`` (the
    old one moved aside, the new one not yet in place)."""
    paths = _write_points(root, tmp_path, ("runs", "reindex"))
    return next(n for n, path in enumerate(paths, 1) if path.endswith("/reindex.stage/index"))


def _listed(ws) -> dict[str, str]:
    listed = run_workerctl("runs", "list", "--json", "id,status", workspace=ws, timeout=60)
    assert listed.returncode == 0, listed.stderr
    return {r["id"]: r["status"] for r in json.loads(listed.stdout)}


def test_a_reindex_killed_between_its_renames_then_a_dead_run_recorded_loses_no_run(two_runs, tmp_path):
    """The next command records a dead run: its commit wrote the run's index shard into
    a new, empty ``index/`` before the interrupted swap was finished, and every other run
    was missing from the listings until a reindex. The swap is finished first now."""
    root, done = two_runs
    copy = _copy(root, tmp_path / "killed")
    dead, pid = _running(copy)
    _kill(pid)
    point = _reindex_point(copy, tmp_path)  # its dead run's marker copied too: the same points
    ws = load_workspace(copy)
    killed = run_workerctl("runs", "reindex", workspace=ws, env={FAULT_ENV: f"kill:{point}"})
    assert killed.returncode == -signal.SIGKILL
    assert not (copy / ".workerctl" / "history" / "index").exists()
    ws = load_workspace(copy)
    rows = _listed(ws)
    assert set(done) <= rows.keys() and rows[dead] == "failed", rows
    again = run_workerctl("runs", "reindex", workspace=ws)
    assert again.returncode == 0, again.stderr
    assert _listed(ws) == rows


def test_readers_beside_a_reindex_stopped_between_its_renames(two_runs, tmp_path):
    """``index/`` is missing and the stopped reindex holds the lock: listings, counts and
    search answer from the complete new index it was putting in place (before: exit 4
    after the lock timeout, and a search that found nothing)."""
    root, done = two_runs
    copy = _copy(root, tmp_path / "stopped")
    point = _reindex_point(copy, tmp_path)
    proc = _stopped_writer(copy, point, ("runs", "reindex"))
    try:
        ws = load_workspace(copy)
        env = {"WORKERCTL_LOCK_TIMEOUT": "300"}
        listed = run_workerctl("runs", "list", "--json", "id", workspace=ws, env=env, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert set(done) <= {r["id"] for r in json.loads(listed.stdout)}
        reads = (("runs", "stats"), ("workers", "list"), ("runs", "list", "--worker", "overdue-task-review"))
        for argv in reads:
            read = run_workerctl(*argv, workspace=ws, env=env, timeout=60)
            assert read.returncode == 0, (argv, read.stderr)
        found = run_workerctl("runs", "search", "blocker", "--json", "id", workspace=ws, env=env, timeout=60)
        assert found.returncode == 0, found.stderr
        assert set(done) <= {r["id"] for r in json.loads(found.stdout)}
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_a_new_workspace_beside_a_holder_lists_no_runs(workspace):
    """No index yet (its first run under way, or a plain holder): nothing to repair and
    nothing to list; before, ``runs list`` and ``runs stats`` waited out the timeout."""
    holder = _holder(workspace.root, seconds=30)
    try:
        env = {"WORKERCTL_LOCK_TIMEOUT": "300"}
        for argv in (("runs", "list", "--json", "id"), ("runs", "stats", "--json")):
            read = run_workerctl(*argv, workspace=workspace, env=env, timeout=60)
            assert read.returncode == 0, (argv, read.stderr)
        listed = run_workerctl("runs", "list", "--json", "id", workspace=workspace, env=env, timeout=60)
        assert json.loads(listed.stdout) == []
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_worker_reads_beside_a_holder_of_the_workspace_lock(workspace):
    """The workspace lock (a run posting its task comment holds it, or a worker edit):
    the worker commands that read keep a worker file changed by hand as a version on
    the way, and waited the whole timeout for it, then exited 4. They now answer from
    the files on disk and say the change is not kept yet; the next command keeps it."""
    workers = workspace.workers_dir
    text = (workers / "overdue-task-review.yaml").read_text(encoding="utf-8")
    (workers / "hand-made.yaml").write_text(text.replace("name: overdue-task-review", "name: hand-made", 1))
    (workers / "overdue-task-review.yaml").write_text(text + "# edited by hand\n", encoding="utf-8")
    holder = _holder(workspace.root, seconds=60, lock="lock")
    env = {"WORKERCTL_LOCK_TIMEOUT": "300"}
    try:
        for argv in (
            ("workers", "list", "--json"),
            ("worker", "show", "hand-made"),
            ("worker", "history", "overdue-task-review"),
            ("worker", "diff", "overdue-task-review"),
            ("worker", "validate"),
        ):
            began = time.monotonic()
            read = run_workerctl(*argv, workspace=workspace, env=env, timeout=60)
            assert read.returncode == 0, (argv, read.stderr)
            assert "not kept as versions yet" in read.stderr and "Traceback" not in read.stderr, argv
            assert time.monotonic() - began < 30, argv  # REPAIR_WAIT, not the 300 s timeout
            if argv[1] == "diff":
                assert "+# edited by hand" in read.stdout
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert holder.returncode is not None
    kept = run_workerctl("workers", "list", "--json", workspace=workspace, env=env, timeout=60)
    assert kept.returncode == 0 and kept.stderr == "", kept.stderr
    made = json.loads(run_workerctl("worker", "history", "hand-made", "--json", workspace=workspace).stdout)
    assert [v["action"] for v in made] == ["first seen"]
    edited = json.loads(
        run_workerctl("worker", "history", "overdue-task-review", "--json", workspace=workspace).stdout
    )
    assert edited[-1]["action"] == "found on disk" and edited[-1]["content"].endswith("# edited by hand\n")
