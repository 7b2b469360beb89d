"""workerctl run watch ID: follow one run to its end, as gh run watch does."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from helpers import make_worker, run_workerctl
from workerctl.history.store import History


def slow_worker(workspace, name="slowtools", pause=0.3, fail=False):
    last = (
        {"tool": "read_invoice", "arguments": {"invoice_id": "INV-1"}}
        if fail
        else {"sleep": pause, "output": "done"}
    )
    make_worker(
        workspace,
        name,
        output_mode="review_note",
        executor=json.dumps(
            {
                "name": "echo",
                "script": [
                    {"sleep": pause, "tool": "read_task", "arguments": {"task_id": "T-1042"}},
                    {"sleep": pause, "tool": "read_task", "arguments": {"task_id": "T-1043"}},
                    last,
                ],
            }
        ),
    )


def detach(workspace, worker):
    return run_workerctl(
        "run", "start", worker, "--task", "T-1042", "--detach", workspace=workspace
    ).stdout.strip()


@pytest.mark.slow
def test_watch_prints_each_step_as_it_is_recorded_then_the_card(workspace):
    slow_worker(workspace)
    run_id = detach(workspace, "slowtools")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workerctl",
            "-w",
            str(workspace.root),
            "run",
            "watch",
            run_id,
            "--exit-status",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    arrivals = []
    for line in proc.stdout:
        arrivals.append((time.monotonic(), line.rstrip("\n")))
    proc.wait(30)
    assert proc.returncode == 0, proc.stderr.read()
    lines = [line for _, line in arrivals]
    steps = [line.split("  ", 1)[1].strip() for line in lines[:9] if "  " in line]
    assert [s.split("(")[0].split(":")[0] for s in steps] == [
        "… pending",
        "◷ queued",
        "▶ running",
        "iteration 1",
        "tool read_task",
        "iteration 2",
        "tool read_task",
        "iteration 3",
        "✓ completed",
    ]
    assert 'tool read_task(task_id="T-1043")' in lines[6]
    assert any(line.startswith(f"✓ completed  run {run_id}") for line in lines)  # the card
    # steps arrived while the run went on, not all at the end
    first_tool = next(t for t, line in arrivals if "tool read_task" in line)
    done = next(t for t, line in arrivals if "✓ completed" in line)
    assert done - first_tool > 0.3


def test_exit_status_and_a_finished_run(workspace, wcli):
    slow_worker(workspace, "refused", pause=0.01, fail=True)
    failed = json.loads(wcli("run", "start", "refused", "--task", "T-1042", "--json").output)
    watched = wcli("run", "watch", failed["id"], "--exit-status")
    assert watched.exit_code == 1
    assert "REFUSED" in watched.output and "✗ failed  tool_not_allowed" in watched.output
    assert wcli("run", "watch", failed["id"]).exit_code == 0  # without --exit-status
    ok = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--json").output)
    assert wcli("run", "watch", "--id", ok["id"], "--exit-status").exit_code == 0
    doc = json.loads(wcli("run", "watch", ok["id"], "--json", "status,id").output)
    assert doc == {"status": "completed", "id": ok["id"]}


def test_ndjson_events(wcli):
    ok = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--json").output)
    events = [
        json.loads(line) for line in wcli("run", "watch", ok["id"], "--format", "ndjson").output.splitlines()
    ]
    assert [e["event"] for e in events] == [
        "transition",
        "transition",
        "transition",
        "iteration",
        "transition",
        "finished",
    ]
    assert [e["status"] for e in events if e["event"] == "transition"] == [
        "pending",
        "queued",
        "running",
        "completed",
    ]
    assert events[-1]["run"]["id"] == ok["id"]


@pytest.mark.slow
def test_ctrl_c_stops_watching_and_leaves_the_run_running(workspace):
    make_worker(
        workspace,
        "sleepy",
        output_mode="review_note",
        timeout=120,
        executor="{name: echo, script: [{sleep: 60, output: late}]}",
    )
    run_id = detach(workspace, "sleepy")
    proc = subprocess.Popen(
        [sys.executable, "-m", "workerctl", "-w", str(workspace.root), "run", "watch", run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    history = History(workspace)
    try:
        deadline = time.monotonic() + 20
        while history.get(run_id).status != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the watcher is in its loop
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        assert history.get(run_id).status == "running"
    finally:
        run_workerctl("run", "cancel", run_id, workspace=workspace)
