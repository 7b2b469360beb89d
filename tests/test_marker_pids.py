"""A dead run whose marker names no process id (none, 0, -1, one past what a kernel gives
out: a marker edited or damaged) is settled as crashed by the next command, and its
record is free again (a pid of another type is a damaged marker: exit 4, as for any
state file of the wrong shape). pid 0 made the owner check treat the marker as another host's, judged by a
heartbeat that never came, so the run stayed "running" and every start on its record
was refused as "executing now" (the fresh-brief round's C22)."""

from __future__ import annotations

import json
import shutil

import pytest

from helpers import run_workerctl
from workerctl.storage.faults import FAULT_ENV
from workerctl.workspace import load_workspace


@pytest.fixture(scope="module")
def dead_run(tmp_path_factory):
    from workerctl.plugins.manager import get_registry
    from workerctl.workspace import init_workspace

    ws = init_workspace(tmp_path_factory.mktemp("dead") / "ws", get_registry())
    killed = run_workerctl(
        "run", "start", "overdue-task-review", "--task", "T-1042", workspace=ws, env={FAULT_ENV: "kill:4"}
    )
    assert killed.returncode < 0 or killed.returncode == 137, killed.stderr
    (marker,) = (ws.history_dir / "active").glob("*.json")
    return ws.root, marker.relative_to(ws.root)


@pytest.mark.parametrize("pid", [0, -1, -(2**40), 2**31, None])
def test_a_marker_naming_no_process_is_settled_as_crashed(dead_run, tmp_path, pid):
    root, marker_path = dead_run
    copy = tmp_path / "ws"
    shutil.copytree(root, copy, symlinks=True)
    marker = copy / marker_path
    data = json.loads(marker.read_text())
    data["pid"] = pid
    marker.write_text(json.dumps(data))
    ws = load_workspace(copy)
    listed = run_workerctl("runs", "list", "--json", "id,status,error_kind", workspace=ws)
    assert listed.returncode == 0, listed.stderr
    assert [(r["status"], r["error_kind"]) for r in json.loads(listed.stdout)] == [("failed", "crashed")]
    again = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", workspace=ws)
    assert again.returncode in (0, 5), again.stderr
    assert "executing now" not in again.stderr


def test_a_pid_out_of_every_range_is_a_damaged_marker_that_says_so(dead_run, tmp_path):
    root, marker_path = dead_run
    copy = tmp_path / "ws"
    shutil.copytree(root, copy, symlinks=True)
    marker = copy / marker_path
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "pid": 10**20}))
    listed = run_workerctl("runs", "list", workspace=load_workspace(copy))
    assert listed.returncode == 4 and "field 'pid' is a number out of range (1e+20)" in listed.stderr
