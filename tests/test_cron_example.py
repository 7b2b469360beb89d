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


def wcli_runs(workspace) -> list[dict]:
    import json

    from helpers import run_workerctl

    return json.loads(run_workerctl("runs", "list", "--json", workspace=workspace).stdout)


def test_sweep_runs_every_overdue_task_and_reports_failures(workspace, wcli):
    result = sweep(workspace)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    # cron mails what a job prints: one line per failure, nothing else
    assert len(out.splitlines()) == 1
    assert "FAILED" in out and "record_access_denied" in out
    assert "fix: use a worker that may access it" in out
    import json

    runs = json.loads(wcli("runs", "list", "--json").output)
    assert sorted(r["record_id"] for r in runs) == ["T-1042", "T-1043", "T-2001", "T-3001", "T-9001"]
    assert {r["trigger"] for r in runs} == {"cron"}


def test_sweep_exits_zero_when_all_complete(workspace):
    BuiltinRecordStore(workspace).delete("T-3001")
    result = sweep(workspace)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""  # silent on success
    assert len(wcli_runs(workspace)) == 4


def test_sweep_with_nothing_overdue(workspace):
    store = BuiltinRecordStore(workspace)
    for task in store.list("task"):
        store.delete(task.id)
    result = sweep(workspace)
    assert result.returncode == 0 and result.stdout == ""


def test_a_second_sweep_skips_the_tasks_already_handled(workspace):
    first = sweep(workspace)
    assert first.returncode == 1 and "T-3001" in first.stdout
    second = sweep(workspace)
    # every task skipped: four already commented, unchanged; T-3001's failure unchanged
    assert second.returncode == 0 and second.stdout == "", second.stdout + second.stderr
    assert len(wcli_runs(workspace)) == 5
    comments = [
        c
        for t in ("T-1042", "T-1043", "T-2001", "T-9001")
        for c in BuiltinRecordStore(workspace).comments(t)
        if c.run_id
    ]
    assert len(comments) == 4  # one summary per task, not one per sweep
