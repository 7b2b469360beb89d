"""The lock-timeout error names the real holder, on one line: real holder processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import run_workerctl
from workerctl.storage.lock import _one_line
from workerctl.testing import wait_for

needs_flock = pytest.mark.skipif(
    shutil.which("flock") is None or not os.path.exists("/proc/locks"),
    reason="needs util-linux flock and Linux's /proc/locks",
)


def _start(workspace) -> subprocess.CompletedProcess:
    return run_workerctl(
        "run",
        "start",
        "overdue-task-review",
        "--task",
        "T-1043",
        workspace=workspace,
        env={"WORKERCTL_LOCK_TIMEOUT": "0.3"},
    )


def _error_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 4, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


@needs_flock
def test_a_holder_whose_command_has_line_breaks_is_named_on_one_line(workspace):
    lock = workspace.history_dir / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    script = "echo locked; sleep 30\n# a second line\n\x1b[2Jerror: forged"
    holder = subprocess.Popen(["flock", str(lock), "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        lines = _error_lines(_start(workspace))
        assert len(lines) == 2, lines  # the error and its hint, nothing the holder wrote
        assert lines[0].startswith("error: ") and lines[1].lstrip().startswith("hint: ")
        assert f"held by pid {holder.pid} " in lines[0]
        assert "sleep 30\\n# a second line\\n\\x1b[2Jerror: forged" in lines[0]
    finally:
        holder.kill()
        holder.wait()


def test_a_workerctl_holder_note_with_a_line_break_is_one_line(workspace, tmp_path):
    """The note a workerctl holder writes (its pid and command) is one line too: here
    its command line holds a line break, as a workspace path may."""
    lock = workspace.history_dir / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    hold = (
        "import sys\n"
        "from pathlib import Path\n"
        "from workerctl.storage.lock import lock_for\n"
        "sys.argv = ['workerctl', '-w', '/tmp/a\\nerror: forged', 'run']\n"
        "with lock_for(Path(sys.stdin.readline().strip())):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        holder.stdin.write(f"{lock}\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "held"
        lines = _error_lines(_start(workspace))
        assert len(lines) == 2, lines
        assert f"held by pid {holder.pid} " in lines[0] and "/tmp/a\\nerror: forged" in lines[0]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def _inherited(lock: Path) -> tuple[subprocess.Popen, int]:
    """``flock LOCK sleep 30`` with the flock process killed once it holds the lock: its
    child ``sleep`` keeps the open file, so the lock. The (killed) locker and the child."""
    locker = subprocess.Popen(["flock", str(lock), "sleep", "30"], start_new_session=True)
    children = Path(f"/proc/{locker.pid}/task/{locker.pid}/children")
    wait_for(lambda: children.exists() and children.read_text().split(), 10)
    child = int(children.read_text().split()[0])
    wait_for(lambda: f" {locker.pid} " in Path("/proc/locks").read_text(), 10)
    locker.kill()
    locker.wait()
    return locker, child


@needs_flock
def test_a_lock_inherited_from_an_exited_locker_names_the_process_that_keeps_it(workspace):
    """``flock FILE sleep`` killed: /proc/locks still names the flock process, but its
    child keeps the open file and so the lock; the error names the child."""
    lock = workspace.history_dir / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    locker, child = _inherited(lock)
    try:
        lines = _error_lines(_start(workspace))
        assert f"inherited it from pid {locker.pid}, which has exited: pid {child} (sleep 30)" in lines[0]
        assert "a process that has exited" not in lines[0]
    finally:
        os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
            time.sleep(0.01)


@given(st.text())
def test_one_line_leaves_no_control_character_and_changes_nothing_else(text):
    shown = _one_line(text)
    assert not any(ord(c) < 32 or ord(c) == 127 for c in shown)
    if not any(ord(c) < 32 or ord(c) == 127 for c in text):
        assert shown == text
    assert shown.count("\\n") >= text.count("\n")  # each line break shown as its escape


ZOMBIE_PARENT = """
import fcntl, os, sys, time
if os.fork() == 0:
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {os.uname().nodename} (workerctl run start x)".encode())
    if os.fork() == 0:
        print("held", flush=True)
        time.sleep(30)
        os._exit(0)
    os._exit(0)  # the locker exits; this parent never reaps it: a zombie
time.sleep(30)
"""


def test_a_lock_left_by_a_zombie_names_the_live_holder_not_the_zombie_s_note(workspace):
    """The locker exited and its parent has not reaped it: its /proc entry stays, so the
    error believed its note; the holder is the child that inherited the lock."""
    lock = workspace.history_dir / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    parent = subprocess.Popen(
        [sys.executable, "-c", ZOMBIE_PARENT, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "held"
        lines = _error_lines(_start(workspace))
        assert "held by a process that inherited it from pid" in lines[0]  # not the zombie's note
    finally:
        subprocess.run(["pkill", "-f", "time.sleep\\(30\\)"], check=False)
        parent.kill()
        parent.wait()


@needs_flock
def test_a_writer_waiting_beside_is_not_named_as_a_holder(workspace):
    lock = workspace.state_dir / "lock"
    _locker, child = _inherited(lock)
    try:
        env = {"WORKERCTL_LOCK_TIMEOUT": "3"}
        argv = ("worker", "pause", "overdue-task-review")
        waiter = subprocess.Popen(
            [sys.executable, "-m", "workerctl", "-w", str(workspace.root), *argv],
            env={**os.environ, **env},
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # waiting in the kernel's queue now
        second = run_workerctl(*argv, workspace=workspace, env={"WORKERCTL_LOCK_TIMEOUT": "1"})
        assert second.returncode == 4, second.stderr
        assert f"pid {child} (sleep 30)" in second.stderr and f"pid {waiter.pid}" not in second.stderr
        waiter.wait(timeout=30)
    finally:
        os.kill(child, signal.SIGKILL)
