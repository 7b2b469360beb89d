"""runs rerun --failed and runs cancel: many runs at once, each through the same guard
as the one-run commands, confirmed on a terminal."""

from __future__ import annotations

import json

import pytest

from helpers import drive_terminal, make_worker, run_workerctl
from workerctl.history.store import History
from workerctl.records.builtin_store import BuiltinRecordStore


def start(wcli, worker, task, *more):
    return json.loads(wcli("run", "start", worker, "--task", task, "--json", *more).stdout)


def test_rerun_failed_applies_the_rerun_guard_to_each_run(workspace, wcli):
    old = start(wcli, "overdue-task-review", "T-3001")  # restricted: fails
    assert "refused" in start(wcli, "overdue-task-review", "T-3001")  # an unchanged failure
    newest = start(wcli, "overdue-task-review", "T-3001", "--allow-repeat")
    assert old["status"] == newest["status"] == "failed"
    dry = json.loads(wcli("runs", "rerun", "--failed", "--dry-run", "--json").output)
    actions = {r["run_id"]: r["action"] for r in dry["reruns"]}
    assert actions == {newest["id"]: "refused", old["id"]: "superseded"}
    assert "nothing changed since" in dry["reruns"][0]["reason"]
    assert len(History(workspace).list(None, limit=None)) == 2  # nothing started
    # fix the cause: the record now lets the worker in
    store = BuiltinRecordStore(workspace)
    record = store.get("T-3001")
    store.import_records([{**record.to_dict(), "restricted_to": None}], "fix")
    plan = wcli("runs", "rerun", "--failed", "--dry-run")
    assert "would rerun" in plan.output and "REFUSED" not in plan.output
    done = wcli("runs", "rerun", "--failed", "--worker", "overdue-task-review")
    assert done.exit_code == 0, done.output
    runs = History(workspace).list(None, limit=None)
    assert len(runs) == 3 and runs[0]["status"] == "completed"
    assert runs[0]["rerun_of"] == newest["id"] and runs[0]["trigger"] == "rerun"
    again = wcli("runs", "rerun", "--failed")  # the pair's newest run completed now
    assert "no failed runs match" in again.output or "superseded" in again.output
    assert len(History(workspace).list(None, limit=None)) == 3


def test_rerun_failed_needs_the_flag_and_a_known_worker(wcli):
    assert wcli("runs", "rerun").exit_code == 2
    assert wcli("runs", "rerun", "--failed", "--worker", "nosuch").exit_code == 3


def test_rerun_asks_on_a_terminal(workspace, wcli):
    start(wcli, "overdue-task-review", "T-3001")
    args = ["runs", "rerun", "--failed", "--allow-repeat"]
    code, screen = drive_terminal(args, [(b"Rerun 1 run(s)?", b"n\n")], workspace=workspace)
    assert code == 0 and "Nothing rerun." in screen
    assert len(History(workspace).list(None, limit=None)) == 1
    code, screen = drive_terminal(args, [(b"Rerun 1 run(s)?", b"y\n")], workspace=workspace)
    assert code == 1 and "rerun as" in screen  # the rerun ran and failed again (allowed)
    assert len(History(workspace).list(None, limit=None)) == 2


def _detached(workspace, worker):
    return run_workerctl(
        "run", "start", worker, "--task", "T-1042", "--detach", "--allow-repeat", workspace=workspace
    ).stdout.strip()


@pytest.mark.slow
def test_cancel_by_filter(workspace, wcli):
    for name in ("sleepy", "other"):
        make_worker(
            workspace,
            name,
            output_mode="review_note",
            timeout=120,
            executor="{name: echo, script: [{sleep: 60, output: late}]}",
        )
    mine = [_detached(workspace, "sleepy"), _detached(workspace, "sleepy")]
    theirs = _detached(workspace, "other")
    history = History(workspace)
    try:
        assert wcli("runs", "cancel").exit_code == 2  # no filter: refuse to cancel all
        dry = json.loads(wcli("runs", "cancel", "--worker", "sleepy", "--dry-run", "--json").output)
        assert sorted(r["run_id"] for r in dry["cancelled"]) == sorted(mine)
        assert {history.get(i).status for i in mine} <= {"pending", "queued", "running"}
        done = wcli("runs", "cancel", "--worker", "sleepy")
        assert done.exit_code == 0 and "cancelled 2 runs" in done.output
        assert {history.get(i).status for i in mine} == {"cancelled"}
        assert history.get(theirs).status in ("pending", "queued", "running")
        assert "no unfinished runs match" in wcli("runs", "cancel", "--worker", "sleepy").output
        code, screen = drive_terminal(
            ["runs", "cancel", "--all"], [(b"Cancel 1 run?", b"y\n")], workspace=workspace
        )
        assert code == 0 and "cancelled 1 run" in screen
        assert history.get(theirs).status == "cancelled"
    finally:
        run_workerctl("runs", "cancel", "--all", workspace=workspace)
