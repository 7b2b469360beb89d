"""examples/cron/overdue-sweep.sh against a real sample workspace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import ROOT
from workerctl.records.builtin_store import BuiltinRecordStore

SCRIPT = ROOT / "examples" / "cron" / "overdue-sweep.sh"


def sweep(workspace, *args: str) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "WORKERCTL_WORKSPACE": str(workspace.root),
        "WAIT_SECONDS": "0.2",
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "NO_COLOR": "1",
        "COLUMNS": "200",  # the summary's width must not depend on who runs the tests (xdist: none)
    }
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)


def test_sweep_runs_every_overdue_task_and_reports_failures(workspace, wcli):
    result = sweep(workspace)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "FAILED" in out and "record_access_denied" in out
    assert "fix: use a worker that may access it" in out
    # T-1042, 1043, 2001, 9001 and 3001 (restricted to another worker)
    assert "5 runs of overdue-task-review: 4 completed, 1 failed" in out
    import json

    runs = json.loads(wcli("runs", "list", "--json").output)
    assert sorted(r["record_id"] for r in runs) == ["T-1042", "T-1043", "T-2001", "T-3001", "T-9001"]
    assert {r["trigger"] for r in runs} == {"cron"}


def test_sweep_exits_zero_when_all_complete(workspace):
    BuiltinRecordStore(workspace).delete("T-3001")
    result = sweep(workspace)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 runs of overdue-task-review: 4 completed in" in result.stdout


def test_sweep_with_nothing_overdue(workspace):
    store = BuiltinRecordStore(workspace)
    for task in store.list("task"):
        store.delete(task.id)
    result = sweep(workspace)
    assert result.returncode == 0 and "no records match" in result.stdout


def test_a_second_sweep_skips_the_tasks_already_handled(workspace):
    first = sweep(workspace)
    assert "5 runs of overdue-task-review: 4 completed, 1 failed" in first.stdout
    second = sweep(workspace)
    out = second.stdout
    assert "5 runs of overdue-task-review: 1 failed, 4 skipped" in out, out + second.stderr
    assert "already wrote to T-1042" in out
    comments = [
        c
        for t in ("T-1042", "T-1043", "T-2001", "T-9001")
        for c in BuiltinRecordStore(workspace).comments(t)
        if c.run_id
    ]
    assert len(comments) == 4  # one summary per task, not one per sweep
