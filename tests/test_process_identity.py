"""Liveness you can trust: a run's process is identified by pid, start time, boot id
and PID namespace; a process this reader cannot see is judged by its heartbeats as they
arrive, on the reader's clock; nothing is signalled that is not verified as the run's
own. The namespace cases run under ``unshare --pid --fork`` (root only)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from helpers import run_workerctl
from workerctl.history.sweep import current_owner, verified, visible


def test_this_process_is_verified_and_a_look_alike_is_not():
    me = current_owner()
    assert me["boot_id"] and me["pid_ns"].startswith("pid:[")
    assert verified(me)
    assert not verified({**me, "pid_ns": "pid:[1]"})  # the same pid counted elsewhere
    assert not verified({**me, "boot_id": "another-boot"})
    assert not verified({**me, "proc_start": "1"})  # a reused pid
    assert not verified({**me, "host": "elsewhere"})
    assert visible({k: v for k, v in me.items() if k not in ("boot_id", "pid_ns")})  # an older marker


def _slow_worker(workspace, seconds: int) -> None:
    (workspace.workers_dir / "slow.yaml").write_text(
        "name: slow\nstatus: active\ninstructions: wait\noutput_mode: review_note\n"
        "context_sources: [tasks]\n"
        f"executor: {{name: echo, script: [{{sleep: {seconds}, output: done}}]}}\n",
        encoding="utf-8",
    )
    import re

    settings = workspace.root / "workerctl.yaml"
    text = re.sub(r"(?m)^stale_after:.*$", "stale_after: 3", settings.read_text(encoding="utf-8"))
    settings.write_text(text, encoding="utf-8")


def _status(workspace) -> dict:
    listed = run_workerctl("runs", "list", "--json", workspace=workspace)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)[0]


def _wait_running(workspace, proc) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = run_workerctl("runs", "list", "--json", workspace=workspace)
        runs = json.loads(listed.stdout or "[]") if listed.returncode == 0 else []
        if runs and runs[0]["status"] == "running":
            return runs[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError("the run never showed as running")


def _start_of(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[-1].split()[19]


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a PID namespace needs root and unshare(1)",
)


def _in_namespace(workspace, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            sys.executable,
            "-m",
            "workerctl",
            "-w",
            str(workspace.root),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
        start_new_session=True,
    )


@needs_root
@pytest.mark.slow
def test_a_live_run_in_a_pid_namespace_is_not_marked_crashed(workspace):
    _slow_worker(workspace, 8)
    proc = _in_namespace(workspace, "run", "start", "slow")
    try:
        run = _wait_running(workspace, proc)
        deadline = time.monotonic() + 5  # past the 2.5 s after which it used to be "crashed"
        while time.monotonic() < deadline:
            assert _status(workspace)["status"] == "running"
            time.sleep(0.5)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert _status(workspace)["status"] == "completed" and run["id"] in out.decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@needs_root
@pytest.mark.slow
def test_a_killed_namespace_is_marked_crashed_and_frees_the_record(workspace):
    _slow_worker(workspace, 600)
    proc = _in_namespace(workspace, "run", "start", "slow", "--task", "T-1042")
    run = _wait_running(workspace, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the namespace and everything in it
    proc.wait(timeout=30)
    deadline = time.monotonic() + 60
    while _status(workspace)["status"] == "running":  # judged by beats that stop arriving
        assert time.monotonic() < deadline, "the run stayed running"
        time.sleep(0.5)
    after = _status(workspace)
    assert after["id"] == run["id"] and after["status"] == "failed" and after["error_kind"] == "crashed"
    again = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace)
    assert again.returncode == 0, again.stderr  # not refused by a run that is not there


@needs_root
def test_run_cancel_never_signals_a_process_it_cannot_verify(workspace):
    """The marker of a run in a namespace names pid 1: cancel records the run cancelled
    and signals nothing here (it once sent SIGTERM to this host's pid 1)."""
    _slow_worker(workspace, 20)
    proc = _in_namespace(workspace, "run", "start", "slow")
    try:
        run = _wait_running(workspace, proc)
        marker = json.loads(
            next((workspace.history_dir / "active").glob(f"{run['id']}.json")).read_text(encoding="utf-8")
        )
        assert marker["pid"] == 1 and marker["pid_ns"] != current_owner()["pid_ns"]
        init_before = _start_of(1)
        cancelled = run_workerctl("run", "cancel", run["id"], workspace=workspace)
        assert cancelled.returncode == 0, cancelled.stderr
        assert _status(workspace)["status"] == "cancelled"
        assert _start_of(1) == init_before
        assert proc.poll() is None  # not signalled: it learns of the cancel when it next writes
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
