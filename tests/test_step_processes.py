"""No process a step started outlives its run: when `run start` returns, when it is
SIGKILLed, when it loses its terminal (SIGHUP). Real programs, real signals, a real
pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time

import pytest

from helpers import make_worker, wait_for
from workerctl.history.store import History

# A step program that leaves a family behind: a child, and a grandchild started by
# the child, all in the program's process group. Each writes its pid to PIDS.
FAMILY = """
import json, os, subprocess, sys, time
request = json.load(sys.stdin)
pids = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pids")
child = subprocess.Popen([sys.executable, "-c", '''
import os, subprocess, sys, time
grandchild = subprocess.Popen(["sleep", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
with open(sys.argv[1], "a") as f:
    f.write(f"{grandchild.pid}\\\\n")
time.sleep(300)
''', pids], stdout=subprocess.DEVNULL if MODE != "holds-stdout" else None,
   stderr=subprocess.DEVNULL)
with open(pids, "a") as f:
    f.write(f"{os.getpid()}\\n{child.pid}\\n")
while len(open(pids).read().split()) < 3:
    time.sleep(0.01)
if MODE == "hang":
    time.sleep(300)
print(json.dumps({"text": "done, children left behind"}))
"""


def family_worker(workspace, name: str, mode: str, timeout: float = 60):
    program = workspace.root / "family.py"
    program.write_text(f"MODE = {mode!r}\n" + FAMILY)
    make_worker(
        workspace,
        name,
        output_mode="review_note",
        timeout=timeout,
        executor=json.dumps({"name": "command", "argv": [sys.executable, str(program)]}),
    )
    return workspace.root / "pids"


def pids_in(path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a parent (PID 1 in a container may never
    reap it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def assert_all_gone(pids: list[int], within: float = 5.0) -> None:
    assert len(pids) == 3, pids
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if alive(p)], "step processes outlived the run"


def workerctl_argv(workspace, *args: str) -> list[str]:
    return [sys.executable, "-m", "workerctl", "-w", str(workspace.root), *args]


def test_background_children_die_when_run_start_returns(workspace):
    pids = family_worker(workspace, "leaver", "finish")
    began = time.monotonic()
    done = subprocess.run(
        workerctl_argv(workspace, "run", "start", "leaver"), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout
    assert_all_gone(pids_in(pids), within=0.5)  # swept before run start returned
    assert time.monotonic() - began < 20


def test_a_child_holding_stdout_does_not_keep_the_step_waiting(workspace):
    pids = family_worker(workspace, "holder", "holds-stdout", timeout=120)
    began = time.monotonic()
    done = subprocess.run(
        workerctl_argv(workspace, "run", "start", "holder"), capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - began < 30  # not the 120 s step timeout
    assert_all_gone(pids_in(pids), within=0.5)


def test_nothing_survives_a_sigkill_of_run_start(workspace):
    pids = family_worker(workspace, "victim", "hang")
    proc = subprocess.Popen(
        workerctl_argv(workspace, "run", "start", "victim"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(pids_in(pids)) == 3, timeout=30)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_all_gone(pids_in(pids))
    history = History(workspace)
    wait_for(lambda: history.sweep() or history.list()[0]["status"] == "failed")
    assert history.get(history.list()[0]["id"]).error.kind == "crashed"


def test_nothing_survives_losing_the_terminal(workspace):
    """run start on a real controlling terminal; the terminal goes away (SIGHUP)."""
    pids = family_worker(workspace, "hangup", "hang")
    main, replica = pty.openpty()

    def controlling_terminal() -> None:
        import fcntl
        import termios

        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        workerctl_argv(workspace, "run", "start", "hangup"),
        stdin=replica,
        stdout=replica,
        stderr=replica,
        start_new_session=True,
        preexec_fn=controlling_terminal,
        env={**os.environ, "NO_COLOR": "1"},
    )
    os.close(replica)
    try:
        wait_for(lambda: len(pids_in(pids)) == 3, timeout=30)
        os.close(main)  # the terminal is gone: the kernel sends SIGHUP
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_all_gone(pids_in(pids))
    run = History(workspace).get(History(workspace).list()[0]["id"])
    assert run.status == "cancelled"
    assert "lost its terminal (SIGHUP)" in run.error.message


@pytest.mark.slow
def test_a_timed_out_step_takes_its_family_with_it(workspace):
    pids = family_worker(workspace, "slow", "hang", timeout=3)
    done = subprocess.run(
        workerctl_argv(workspace, "run", "start", "slow"), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "timeout" in done.stdout
    assert_all_gone(pids_in(pids), within=0.5)
