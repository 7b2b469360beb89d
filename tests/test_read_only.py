"""Reading never needs to write: on a read-only mount or a full disk, ``runs list``,
``run inspect`` and ``runs stats`` answer from what is on disk (exit 0), a run whose
process is gone shows as crashed from the reader's own liveness check, and the next
command that can write records it. ``runs prune`` frees space on a full disk.

Real file systems: a small tmpfs mounted for the test (root only; skipped with the
reason otherwise), remounted read-only or filled to the last byte.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from helpers import make_worker, run_workerctl
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.history.store import History
from workerctl.history.sweep import proc_start
from workerctl.plugins.manager import get_registry
from workerctl.workspace import init_workspace

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0, reason="mounting a tmpfs needs root on Linux"
)


@pytest.fixture
def small_fs(tmp_path):
    """A 6 MB tmpfs of its own, unmounted afterwards."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _remount(mnt, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mnt)], check=True, capture_output=True)


def _dead_run(workspace) -> str:
    """A run stored as running whose owner (a real process) is then killed."""
    owner = subprocess.Popen(["sleep", "120"])
    engine = Engine(workspace, get_registry())
    _, run = engine.prepare("plain", StartOptions(record_id="T-1042"))
    for step in ("queued", "running"):
        run.move(step)
    run.owner = {"pid": owner.pid, "host": os.uname().nodename, "proc_start": proc_start(owner.pid)}
    run_id = History(workspace).create(run).id
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    return run_id


@pytest.fixture
def history_with_a_dead_run(small_fs):
    workspace = init_workspace(small_fs / "ws", get_registry())
    make_worker(workspace, "plain")
    done = run_workerctl("run", "start", "plain", "--task", "T-1043", workspace=workspace)
    assert done.returncode == 0, done.stderr
    assert run_workerctl("workers", "list", workspace=workspace).returncode == 0  # indexes built
    return workspace, _dead_run(workspace)


def _reads_answer(workspace, dead: str) -> None:
    """Every read command answers from disk, the dead run shown as crashed."""
    listed = run_workerctl("runs", "list", "--json", workspace=workspace)
    assert listed.returncode == 0, listed.stderr
    by_id = {r["id"]: r for r in json.loads(listed.stdout)}
    assert len(by_id) == 2
    assert by_id[dead]["status"] == "failed" and by_id[dead]["error_kind"] == "crashed"
    assert "not recorded yet" in listed.stderr  # says why the history is not repaired
    for flt in (("--worker", "plain"), ("--status", "failed"), ("--task", "T-1042")):
        only = run_workerctl("runs", "list", *flt, "--json", workspace=workspace)
        assert only.returncode == 0, (flt, only.stderr)
        assert dead in [r["id"] for r in json.loads(only.stdout)], flt
    card = run_workerctl("run", "inspect", dead, "--json", workspace=workspace)
    assert card.returncode == 0, card.stderr
    shown = json.loads(card.stdout)
    assert shown["status"] == "failed" and shown["error"]["kind"] == "crashed"
    stats = run_workerctl("runs", "stats", "--json", workspace=workspace)
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)["plain"]["counts"]
    assert counts["failed"] == 1 and counts["completed"] == 1 and counts["running"] == 0
    text = run_workerctl("runs", "list", workspace=workspace)
    assert text.returncode == 0 and dead in text.stdout
    # a worker file added by hand is a new version nobody recorded yet: listed anyway
    # (workers list exited 4 trying to record it: the adversarial report)
    workers = run_workerctl("workers", "list", "--json", workspace=workspace)
    assert workers.returncode == 0, workers.stderr
    assert "hand-made" in [w["name"] for w in json.loads(workers.stdout)]
    assert run_workerctl("worker", "show", "hand-made", workspace=workspace).returncode == 0


def _hand_made_worker(workspace) -> None:
    source = workspace.workers_dir / "plain.yaml"
    text = source.read_text(encoding="utf-8").replace("name: plain", "name: hand-made", 1)
    (workspace.workers_dir / "hand-made.yaml").write_text(text, encoding="utf-8")


def _recorded_once_writable(workspace, dead: str) -> None:
    again = run_workerctl("runs", "list", "--json", workspace=workspace)
    assert again.returncode == 0 and again.stderr == "", again.stderr
    stored = History(workspace).get(dead)  # no sweep here: what the run file now says
    assert stored.status == "failed" and stored.error is not None and stored.error.kind == "crashed"
    assert History(workspace).unfinished() == {}


def test_a_read_only_mount_is_read(history_with_a_dead_run, small_fs):
    workspace, dead = history_with_a_dead_run
    _hand_made_worker(workspace)
    _remount(small_fs, "ro")
    _reads_answer(workspace, dead)
    assert History(workspace).get(dead).status == "running"  # nothing was written
    _remount(small_fs, "rw")
    _recorded_once_writable(workspace, dead)


def _fill(mnt) -> None:
    """Fill the file system to its last byte."""
    for name, size in (("filler", 65536), ("filler2", 512), ("filler3", 1)):
        fd = os.open(mnt / name, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * size)
        except OSError:
            pass
        finally:
            os.close(fd)


def _plain_with_tasks(root, tasks: list[str]):
    """A workspace at ``root`` with the ``plain`` worker and ``tasks``, and a file of
    their ids beside it (for ``--records-from``)."""
    from workerctl.records.builtin_store import BuiltinRecordStore

    workspace = init_workspace(root, get_registry())
    make_worker(workspace, "plain")
    BuiltinRecordStore(workspace).import_records(
        [{"id": t, "type": "task", "title": t, "status": "todo", "due": "2026-01-01"} for t in tasks], "t"
    )
    ids = root.parent / f"{root.name}.ids"
    ids.write_text("\n".join(tasks) + "\n")
    return workspace, ids


def test_a_full_disk_is_read_and_prune_frees_space(history_with_a_dead_run, small_fs):
    workspace, dead = history_with_a_dead_run
    _hand_made_worker(workspace)
    _fill(small_fs)
    _reads_answer(workspace, dead)
    start = run_workerctl("run", "start", "plain", "--task", "T-2001", workspace=workspace)
    assert start.returncode == 4 and "No space left on device" in start.stderr
    before = os.statvfs(small_fs).f_bfree
    pruned = run_workerctl("runs", "prune", "--older-than", "0s", workspace=workspace)
    assert pruned.returncode == 0, pruned.stderr
    assert os.statvfs(small_fs).f_bfree > before
    # the finished run went; the dead one, unfinished on disk, stays, and is recorded
    # as crashed by the first command that can write (this one: there is room now)
    left = run_workerctl("runs", "list", "--json", workspace=workspace)
    assert left.returncode == 0 and left.stderr == "", left.stderr
    assert [(r["id"], r["error_kind"]) for r in json.loads(left.stdout)] == [(dead, "crashed")]
    assert sorted(p.stem for p in (workspace.history_dir / "runs").glob("*/*.json")) == [dead]
    assert History(workspace).get(dead).status == "failed"


@pytest.mark.slow
def test_prune_frees_space_whatever_room_is_left(small_fs):
    """However little room a nearly full disk has left, ``runs prune`` frees space: with
    room for its journal but not for the shards it rewrites after it, the prune
    exited 4 and freed nothing (its fallback, the run files removed first, came only
    when the journal itself did not fit). Each room size in 4 KB steps, on a fresh
    copy of one history."""
    import shutil

    from workerctl.workspace import load_workspace

    template, ids = _plain_with_tasks(small_fs / "template", [f"T-{n}" for n in range(40001, 40031)])
    made = run_workerctl(
        "run", "start", "plain", "--records-from", str(ids), "--jobs", "2", workspace=template
    )
    assert made.returncode == 0, made.stderr
    for room in range(0, 48 << 10, 4 << 10):
        root = small_fs / "ws"
        shutil.rmtree(root, ignore_errors=True)
        for name in ("filler", "filler2", "filler3"):
            (small_fs / name).unlink(missing_ok=True)
        shutil.copytree(template.root, root)
        workspace = load_workspace(root)
        _fill(small_fs)
        os.truncate(small_fs / "filler", max(0, os.path.getsize(small_fs / "filler") - room))
        before = os.statvfs(small_fs).f_bfree
        pruned = run_workerctl("runs", "prune", "--older-than", "0s", workspace=workspace)
        assert pruned.returncode == 0, (room, pruned.stderr)
        assert os.statvfs(small_fs).f_bfree > before, room
        assert not list((workspace.history_dir / "runs").glob("*/*.json")), room


@pytest.mark.slow
@pytest.mark.parametrize("room_kb", [60, 200, 420])
def test_a_batch_that_fills_the_disk_reports_what_the_history_holds(small_fs, room_kb):
    """A real disk filling under a ``--jobs 4`` batch (a fresh-brief case): each record
    is reported as the history holds it once space is back, error kind included. The
    runs whose end met the full disk were reported failed, ``state_unusable``, while
    their run files still said running, so the sweep recorded a death (``crashed``)
    and their comments ``unknown``; their ends now go into space set aside for them
    (``atomic._Reserve``), and a run is made only when that space is there."""
    workspace, ids = _plain_with_tasks(small_fs / "ws", [f"T-{n}" for n in range(41001, 41041)])
    assert run_workerctl("runs", "list", workspace=workspace).returncode == 0
    _fill(small_fs)
    os.truncate(small_fs / "filler", max(0, os.path.getsize(small_fs / "filler") - room_kb * 1024))
    batch = run_workerctl(
        "run", "start", "plain", "--records-from", str(ids), "--jobs", "4", "--json", workspace=workspace
    )
    assert batch.returncode in (0, 1, 4) and "Traceback" not in batch.stderr, batch.stderr
    report = json.loads(batch.stdout)["runs"]
    for name in ("filler", "filler2", "filler3"):
        (small_fs / name).unlink()
    listed = run_workerctl("runs", "list", "--limit", "0", "--json", workspace=workspace)
    assert listed.returncode == 0, listed.stderr
    held = {r["record_id"]: r for r in json.loads(listed.stdout)}
    assert len(held) == sum(item["status"] != "not_started" for item in report)
    for item in report:
        stored = held.get(item["record_id"])
        if item["status"] == "not_started":
            assert stored is None, item
        else:
            assert stored is not None and stored["id"] == item["run_id"], item
            assert (stored["status"], stored["error_kind"]) == (item["status"], item["error_kind"]), item
    unknown = run_workerctl("ledger", "list", "--state", "unknown", "--json", workspace=workspace)
    assert unknown.returncode == 0 and json.loads(unknown.stdout) == [], unknown.stdout


@pytest.mark.slow
def test_a_start_that_meets_a_full_disk_says_what_the_history_holds(small_fs):
    """A single start whose run ends as the disk fills (a fresh-brief case: 48 to 80 KB
    left): it said "cannot write …; nothing was half-written; run the command again"
    while its run had completed and its comment was posted. Now the run is printed as
    its run file says and the one-line error says the run ended; a start refused for
    want of space leaves no run. Each room in 16 KB steps, on a fresh workspace."""
    import shutil

    for room in range(32 << 10, 112 << 10, 16 << 10):
        for done in small_fs.glob("ws-*"):
            shutil.rmtree(done, ignore_errors=True)
        root = small_fs / f"ws-{room}"  # a new path: this process keeps a folder it opened
        for name in ("filler", "filler2", "filler3"):
            (small_fs / name).unlink(missing_ok=True)
        workspace, _ = _plain_with_tasks(root, ["T-42001"])
        assert run_workerctl("runs", "list", workspace=workspace).returncode == 0
        _fill(small_fs)
        os.truncate(small_fs / "filler", max(0, os.path.getsize(small_fs / "filler") - room))
        start = run_workerctl("run", "start", "plain", "--task", "T-42001", "--json", workspace=workspace)
        assert "Traceback" not in start.stderr and start.returncode in (0, 1, 4), (room, start.stderr)
        for name in ("filler", "filler2", "filler3"):
            (small_fs / name).unlink()
        listed = run_workerctl("runs", "list", "--limit", "0", "--json", workspace=workspace)
        held = [(r["id"], r["status"], r["error_kind"]) for r in json.loads(listed.stdout)]
        if start.returncode == 4 and not start.stdout:  # refused: nothing made
            assert held == [], (room, start.stderr, held)
            continue
        shown = json.loads(start.stdout)
        assert held == [(shown["id"], shown["status"], (shown["error"] or {}).get("kind"))], (room, held)
        if start.returncode == 4:
            assert len(start.stderr.strip().splitlines()) == 1, start.stderr
            assert f"run {shown['id']} ended {shown['status']}" in start.stderr, start.stderr
