"""SIGTERM to any command ends it in one line and exit 143, never silently and never with
a traceback, and what it was writing is left whole.

The rule is enforced once, as the first thing a ``workerctl`` process does (``cli.main``,
``cli.failures.raise_on_sigterm``): SIGTERM raises ``errors.Terminated`` as Ctrl-C raises
``KeyboardInterrupt``, so every ``finally`` on the way up runs (the history lock released,
temp files removed), and once the command has ended it is ignored. Before, ``runs
reindex`` and ``runs prune`` vanished with the shell's 143 and no word.

Each maintenance command is stopped (``WORKERCTL_TEST_FAULT=stop:N``) at every one of its
write points in turn, sent a real SIGTERM and continued; the history must then read the
same through its indexes as a scan of its run files, and the command must finish when
run again.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from helpers import run_workerctl, signalled_at_write_point
from workerctl.history.store import History
from workerctl.storage.faults import FAULT_ENV
from workerctl.workspace import load_workspace

LINE = "error: stopped by SIGTERM before the command finished"
COMMANDS = {
    "reindex": ("runs", "reindex"),
    "prune": ("runs", "prune", "--older-than", "0s"),
}


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory) -> Path:
    """A workspace with three completed runs on the sample's three tasks, made once by a
    real batch."""
    from workerctl.plugins.manager import get_registry
    from workerctl.workspace import init_workspace

    ws = init_workspace(tmp_path_factory.mktemp("three") / "ws", get_registry())
    ids = ws.root.parent / "ids.txt"
    ids.write_text("T-1042\nT-1043\nT-1044\n")
    done = run_workerctl(
        "run", "start", "overdue-task-review", "--records-from", str(ids), "--json=counts", workspace=ws
    )
    assert json.loads(done.stdout)["counts"] == {"completed": 3}, done.stdout + done.stderr
    return ws.root


def _points(root: Path, tmp: Path, command: tuple[str, ...]) -> int:
    probe = tmp / "probe"
    shutil.copytree(root, probe, symlinks=True)
    trace = tmp / "points"
    done = run_workerctl("-w", str(probe), *command, env={FAULT_ENV: f"trace:{trace}"})
    assert done.returncode == 0, done.stderr
    return len(trace.read_text().splitlines())


def _listed(root: Path) -> list[str]:
    """The ids the history lists, after checking each has its run file; runs an
    interrupted prune has begun to remove are no longer listed though their files may
    remain until a prune finishes (its journal rolls forward)."""
    history = History(load_workspace(root))
    listed = sorted(s["id"] for s in history.list(None, limit=None))
    assert set(listed) <= set(_on_disk(root))
    return listed


def _on_disk(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / ".workerctl" / "history" / "runs").glob("*/*.json"))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_sigterm_at_any_write_point_is_one_line_143_and_leaves_the_history_whole(three_runs, tmp_path, name):
    command = COMMANDS[name]
    points = _points(three_runs, tmp_path, command)
    assert points >= 3
    for point in range(1, points + 1):
        root = tmp_path / f"at-{point}" / "ws"
        shutil.copytree(three_runs, root, symlinks=True)
        ended = signalled_at_write_point(root, list(command), point, signal.SIGTERM)
        assert ended.returncode == 143, (point, ended.returncode, ended.stderr)
        assert ended.stderr.splitlines() == [LINE], (point, ended.stderr)
        left = _listed(root)
        if name == "reindex":
            assert left == _on_disk(root) and len(left) == 3, (point, left)
        again = run_workerctl(*command, workspace=load_workspace(root))
        assert again.returncode == 0, (point, again.stderr)
        assert _listed(root) == _on_disk(root) == (left if name == "reindex" else []), point


def _trace(root: Path, tmp: Path, argv: list[str]) -> list[str]:
    probe = tmp / "probe"
    shutil.copytree(root, probe, symlinks=True)
    trace = tmp / "points"
    done = run_workerctl("-w", str(probe), *argv, env={FAULT_ENV: f"trace:{trace}"})
    assert done.returncode in (0, 5), done.stderr
    return [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]


BATCH = ["run", "start", "overdue-task-review", "--records-from", "IDS", "--jobs", "1", "--allow-repeat"]


@pytest.mark.slow
def test_sigterm_to_a_batch_as_a_run_just_finished_stops_the_batch(three_runs, tmp_path):
    """The batch told a SIGTERM to itself from a 'run cancel' of one of its runs by
    looking for a run of its own that read finished: one that had just completed did,
    and the batch went on to run every record and exit 0. It now looks for one that reads
    cancelled (what 'run cancel' stores before it signals)."""
    ids = tmp_path / "ids.txt"
    ids.write_text("T-1042\nT-1043\nT-1044\n")
    argv = [str(ids) if a == "IDS" else a for a in BATCH]
    points = _trace(three_runs, tmp_path, argv)
    # the removal of a run's marker: that run has just been saved finished
    finished = [n for n, path in enumerate(points, 1) if "/active/" in path][1::2][:2]
    assert finished
    for point in finished:
        root = tmp_path / f"at-{point}" / "ws"
        shutil.copytree(three_runs, root, symlinks=True)
        ended = signalled_at_write_point(root, argv, point, signal.SIGTERM)
        assert ended.returncode == 130, (point, ended.returncode, ended.stdout, ended.stderr)
        history = History(load_workspace(root))
        new = [s for s in history.list(None, limit=None) if s["id"] not in _on_disk(three_runs)]
        assert len([s for s in new if s["status"] == "completed"]) < 3, (point, new)


def test_sigterm_while_a_run_is_stored_before_its_loop_cancels_it(three_runs, tmp_path):
    """Between storing the run as running and the run loop's handler, a SIGTERM ended the
    process and left the run for the sweep to settle as crashed (a failure in the stats).
    It now waits, as Ctrl-C does, and cancels the run: recorded, exit 1."""
    argv = ["run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat"]
    points = _trace(three_runs, tmp_path, argv)
    body = [n for n, path in enumerate(points, 1) if "/history/runs/" in path]
    creation = range(body[0], body[1])  # the run file, then the index writes of its creation
    for point in creation:
        root = tmp_path / f"at-{point}" / "ws"
        shutil.copytree(three_runs, root, symlinks=True)
        ended = signalled_at_write_point(root, argv, point, signal.SIGTERM)
        assert ended.returncode == 1, (point, ended.returncode, ended.stderr)
        history = History(load_workspace(root))
        (new,) = [s for s in history.list(None, limit=None) if s["id"] not in _on_disk(three_runs)]
        assert new["status"] == "cancelled", (point, new)


def test_a_sigterm_the_parent_left_blocked_still_stops_the_command(three_runs, tmp_path):
    """A blocked signal mask survives exec: a workerctl started by a parent that blocks
    SIGTERM never heard one, so 'run cancel' could not stop its run. It unblocks it."""
    root = tmp_path / "ws"
    shutil.copytree(three_runs, root, symlinks=True)

    def block_sigterm() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})

    ended = signalled_at_write_point(
        root, list(COMMANDS["reindex"]), 2, signal.SIGTERM, preexec_fn=block_sigterm
    )
    assert ended.returncode == 143, (ended.returncode, ended.stderr)
    assert ended.stderr.splitlines() == [LINE]


def test_sighup_ends_a_command_and_a_batch_as_sigterm_does(three_runs, tmp_path):
    """Found by a fresh-brief attack: SIGHUP (the terminal closed) killed a command or a
    batch with the shell's 129 and no word; a reindex now ends in one line, exit 129,
    and finishes when run again; a batch stops as for SIGTERM (130)."""
    command = COMMANDS["reindex"]
    root = tmp_path / "cmd" / "ws"
    shutil.copytree(three_runs, root, symlinks=True)
    ended = signalled_at_write_point(root, list(command), 2, signal.SIGHUP)
    assert ended.returncode == 129, ended.stderr
    assert ended.stderr.splitlines() == [LINE.replace("SIGTERM", "SIGHUP")]
    assert run_workerctl(*command, workspace=load_workspace(root)).returncode == 0
    ids = tmp_path / "ids.txt"
    ids.write_text("T-1042\nT-1043\nT-1044\n")
    argv = [str(ids) if a == "IDS" else a for a in BATCH]
    batch = tmp_path / "batch" / "ws"
    shutil.copytree(three_runs, batch, symlinks=True)
    ended = signalled_at_write_point(batch, argv, 3, signal.SIGHUP)
    assert ended.returncode == 130, (ended.stdout, ended.stderr)
    statuses = [s["status"] for s in History(load_workspace(batch)).list(None, limit=None)]
    assert "running" not in statuses and "Traceback" not in ended.stderr


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_a_stop_signal_during_start_up_ends_without_a_traceback(three_runs, signum):
    """Found by the same attack: a SIGHUP during start-up killed the process with no
    word. (Ctrl-C there is caught from ``cli.main``'s first line on; one in the first
    milliseconds, while CPython starts and runpy imports the package, still ends in
    Python's own traceback: no workerctl code runs yet to catch it.)"""
    import random
    import subprocess
    import sys
    import time

    argv = [sys.executable, "-m", "workerctl", "-w", str(three_runs), "runs", "list", "--json"]
    rng = random.Random(signum)
    reached = 0
    for _ in range(8):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.0, 0.12))
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        if "Fatal Python error: init" in err:
            continue  # CPython's own start-up, before any line of workerctl ran
        reached += 1
        assert "Traceback" not in err, err
        assert proc.returncode in (0, 128 + signum, -signum), (proc.returncode, err)
    assert reached >= 4, "most signals reached workerctl's own start-up"


@pytest.mark.parametrize(
    "argv",
    [
        ("run", "start", "overdue-task-review", "--where", "[range(1e9)] | length > 0"),
        ("runs", "list", "--jq", "[range(1e9)] | length"),
    ],
)
def test_a_stop_signal_ends_a_jq_program_at_once(workspace, argv):
    """libjq runs a program in C and gives the interpreter nothing back: a SIGTERM waited
    for the program's end (one ran on for minutes: the fourth fresh-brief attack). While
    a program runs the stop signals take their default action (``workerctl.jqrun``): the
    process ends at once, by the signal (143 to a shell), with nothing written."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "workerctl", "-w", str(workspace.root), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)  # well inside the program (seconds of work)
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert proc.returncode in (-signal.SIGTERM, 143)
    assert History(workspace).list(None, limit=5) == []
