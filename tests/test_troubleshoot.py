"""Troubleshooting walks for a real failed run of every error kind."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from helpers import drive_terminal, make_worker, run_workerctl, wait_for
from workerctl.app import App
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.history.store import History
from workerctl.plugins.manager import get_registry
from workerctl.runs.states import TRANSIENT_KINDS
from workerctl.runs.troubleshoot import troubleshoot


def walk(app, run):
    return troubleshoot(
        run, history=app.history, records=app.records, registry=app.registry, workspace=app.workspace
    )


P, F, U = "pass", "fail", "cannot_tell"


def start(workspace, worker, record="T-1042", **kw):
    return Engine(workspace, get_registry()).start(worker, StartOptions(record_id=record, **kw))


def echo(*steps) -> str:
    return json.dumps({"name": "echo", "script": list(steps)})


def detached_running(workspace, name):
    make_worker(workspace, name, timeout=120, executor=echo({"sleep": 60, "output": "late"}))
    run_id = run_workerctl(
        "run", "start", name, "--task", "T-1042", "--detach", workspace=workspace
    ).stdout.strip()
    history = History(workspace)
    wait_for(lambda: history.get(run_id).status == "running")
    return history, run_id


def make_failed_run(workspace, kind):
    """A real failed run of each kind (the scenario a user would hit)."""
    if kind == "record_missing":
        from helpers import record_missing_run

        return record_missing_run(workspace).id
    if kind == "record_access_denied":
        return start(workspace, "overdue-task-review", "T-3001").id
    if kind == "missing_context":
        make_worker(workspace, "w", sources=("projects",))
    elif kind == "tool_not_allowed":
        make_worker(
            workspace, "w", executor=echo({"tool": "read_invoice", "arguments": {"invoice_id": "INV-2031"}})
        )
    elif kind == "max_iterations":
        make_worker(
            workspace,
            "w",
            max_iterations=2,
            executor=echo({"tool": "read_task", "arguments": {"task_id": "T-1042"}}, {"repeat": True}),
        )
    elif kind == "provider_unavailable":
        make_worker(workspace, "w", executor=json.dumps({"name": "command", "argv": ["/nonexistent/llm"]}))
    elif kind == "executor_error":
        make_worker(workspace, "w", executor=echo({"error": "kaput"}))
    elif kind == "timeout":
        make_worker(workspace, "w", timeout=1, executor=echo({"sleep": 3}))
    elif kind == "invalid_output":
        make_worker(workspace, "w", executor=echo({"output": " "}))
    elif kind == "cancelled":
        history, run_id = detached_running(workspace, "w")
        assert run_workerctl("run", "cancel", "--id", run_id, workspace=workspace).returncode == 0
        return run_id
    elif kind == "crashed":
        history, run_id = detached_running(workspace, "w")
        os.kill(history.get(run_id).owner["pid"], signal.SIGKILL)
        wait_for(lambda: history.sweep() or history.get(run_id).status == "failed")
        return run_id
    return start(workspace, "w").id


# kind -> verdicts of the six steps (fail: this step found the cause), then of the six
# causes (permissions, tool access, connected data, provider availability, instructions
# scope, executor or program). Step 1 finds the cause itself only for kinds no later step
# examines; the echo executor calls no provider, so its timeout and errors are never put
# down to provider availability.
EXPECTED = {
    "record_missing": ([P, F, F, U, U, P], [P, P, F, P, P, P]),
    "record_access_denied": ([P, P, F, U, U, P], [F, P, P, P, P, P]),
    "missing_context": ([P, P, P, F, U, U], [P, P, F, P, P, P]),
    "tool_not_allowed": ([P, P, P, P, F, U], [P, F, P, P, P, P]),
    "max_iterations": ([P, P, P, P, P, F], [P, P, P, P, F, P]),
    "provider_unavailable": ([F, P, P, P, P, U], [P, P, P, F, P, P]),
    "executor_error": ([F, P, P, P, P, U], [P, P, P, P, P, F]),
    "timeout": ([F, P, P, P, P, U], [P, P, P, P, P, F]),
    "invalid_output": ([F, P, P, P, P, U], [P, P, P, P, P, F]),
    "cancelled": ([F, P, P, P, U, U], [P, P, P, P, P, P]),
    "crashed": ([F, P, P, P, U, U], [P, P, P, P, P, U]),
}


@pytest.mark.parametrize(
    "kind",
    # a timeout waits out the shortest a worker may declare, 1 s: slow
    [pytest.param(k, marks=pytest.mark.slow) if k == "timeout" else k for k in sorted(EXPECTED)],
)
def test_walk_for_each_error_kind(workspace, kind):
    run_id = make_failed_run(workspace, kind)
    app = App(str(workspace.root))
    run = app.history.get(run_id)
    assert run.error.kind == kind
    report = walk(app, run)
    steps, causes = EXPECTED[kind]
    assert [s.verdict for s in report.steps] == steps, [(s.key, s.evidence) for s in report.steps]
    assert [c.verdict for c in report.causes] == causes
    assert report.steps[0].evidence[0].startswith(f"kind: {kind} — ")
    for step in report.steps:
        if step.verdict == F:
            assert step.action, step.key  # every failed step says what to do
    # a record_missing run's record was deleted after it was asked for: that is a change;
    # a transient failure may rerun unchanged once its cause is gone
    if kind == "record_missing":
        expected = "record changed since"
    elif kind in TRANSIENT_KINDS:
        expected = f"{kind} is transient"
    else:
        expected = "nothing changed since"
    assert expected in report.rerun["advice"]


def test_walk_through_the_cli_and_json(workspace, wcli):
    run_id = make_failed_run(workspace, "tool_not_allowed")
    out = wcli("run", "troubleshoot", "--id", run_id).output
    assert (
        out.index("1. Read the error message")
        < out.index("2. Open the linked task")
        < out.index("3. Confirm the record still exists")
        < out.index("4. Check that the worker has the needed context source")
        < out.index("5. Check that the allowed tool categories")
        < out.index("6. Edit the worker instructions")
    )
    assert "refused: read_invoice (category finance)" in out
    # nothing in the instructions asks for read_invoice: never advise allowing it
    assert "possible prompt injection" in out and "allow finance" not in out
    assert "Causes to rule out" in out and "Before rerunning" in out
    data = json.loads(wcli("run", "troubleshoot", "--id", run_id, "--json").output)
    assert [s["key"] for s in data["steps"]] == [
        "error",
        "record_link",
        "record_access",
        "context",
        "tools",
        "instructions",
    ]


def test_instructions_naming_a_forbidden_tool(workspace):
    path = make_worker(workspace, "asker", executor=echo({"error": "gave up"}))
    path.write_text(
        path.read_text().replace(
            "Summarise the task and suggest a next step.",
            "Read the invoice with read_invoice and do not stop until it is paid.",
        )
    )
    run = start(workspace, "asker")
    report = walk(App(str(workspace.root)), run)
    tools, instructions = report.steps[4], report.steps[5]
    assert tools.verdict == F and "the instructions name read_invoice" in tools.evidence[1]
    assert instructions.verdict == F and "asks for read_invoice" in instructions.evidence[0]


def test_rerun_advice_sees_changes_and_earlier_side_effects(workspace):
    ok = start(workspace, "overdue-task-review")
    make_worker(workspace, "overdue-task-review", executor=echo({"error": "down"}))
    (workspace.workers_dir / "overdue-task-review.yaml").write_text(
        (workspace.workers_dir / "overdue-task-review.yaml").read_text()
    )
    failed = start(workspace, "overdue-task-review")
    app = App(str(workspace.root))
    report = walk(app, app.history.get(failed.id))
    effects = report.rerun["side_effects"]
    assert [e["run_id"] for e in effects] == [ok.id]
    assert "already wrote 1 side effect(s)" in report.rerun["advice"]
    path = workspace.workers_dir / "overdue-task-review.yaml"
    path.write_text(path.read_text().replace("timeout: 60", "timeout: 90"))
    app = App(str(workspace.root))
    again = walk(app, app.history.get(failed.id))
    assert again.rerun["changes"]["worker"]["changed"] is True
    assert "worker changed since the run failed" in again.rerun["advice"]


def test_a_run_that_did_not_fail_points_at_review(workspace, wcli):
    run = start(workspace, "overdue-task-review")
    out = wcli("run", "troubleshoot", "--id", run.id).output
    assert "did not fail" in out and f"run review --id {run.id}" in out


@pytest.mark.slow
def test_interactive_walk_steps_one_check_at_a_time(workspace):
    run_id = make_failed_run(workspace, "record_missing")
    code, screen = drive_terminal(
        ["run", "troubleshoot", "--id", run_id, "--interactive"],
        [(b"Enter for the next step", b"\n"), (b"2. Open the linked task", b"q\n")],
        workspace=workspace,
    )
    assert code == 0, screen
    assert "1. Read the error message" in screen and "2. Open the linked task" in screen
    assert "3. Confirm the record" not in screen  # it stopped where the person said q
    code, screen = drive_terminal(
        ["run", "troubleshoot", "--id", run_id, "--interactive"],
        [(b"Enter for the next step", b"q\n")],
        workspace=workspace,
    )
    assert code == 0 and "2. Open the linked task" not in screen
    result = run_workerctl(
        "run", "troubleshoot", "--id", run_id, "--interactive", workspace=workspace, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 2 and "--interactive needs a terminal" in result.stderr


# -- verdicts that say whether the step found the cause; causes by executor ------


def causes_of(report) -> dict[str, str]:
    return {c.key: c.verdict for c in report.causes}


def test_step_one_passes_when_a_later_step_finds_the_cause(workspace, wcli):
    run_id = start(workspace, "overdue-task-review", "T-3001").id
    text = wcli("run", "troubleshoot", "--id", run_id).output
    lines = [line for line in text.splitlines() if line[:2] in ("1.", "3.")]
    assert "[✓ pass: not the cause]" in lines[0]
    assert "[✗ fail: the cause is here]" in lines[1]
    assert "looked for in step 3" in text


@pytest.mark.slow
def test_an_echo_timeout_is_not_put_down_to_the_provider(workspace, wcli):
    make_worker(workspace, "sleepy", timeout=1, executor=echo({"sleep": 3}))
    run = start(workspace, "sleepy")
    report = walk(App(str(workspace.root)), run)
    causes = causes_of(report)
    assert causes["provider availability"] == P
    assert causes["executor or program"] == F
    assert "calls no model provider" in " ".join(report.steps[0].evidence)
    assert "provider" not in report.steps[0].action
    text = wcli("run", "troubleshoot", "--id", run.id).output
    assert "provider availability" in text and "✓ ruled out" in text


@pytest.mark.slow
def test_a_command_timeout_cannot_tell_about_the_provider(workspace):
    program = workspace.root / "slow.py"
    program.write_text("import time\ntime.sleep(5)\n")
    make_worker(
        workspace,
        "slowcmd",
        timeout=1,
        executor=json.dumps({"name": "command", "argv": ["python3", str(program)]}),
    )
    run = start(workspace, "slowcmd")
    assert run.error.kind == "timeout"
    causes = causes_of(walk(App(str(workspace.root)), run))
    assert causes["provider availability"] == U and causes["executor or program"] == F


@pytest.mark.slow
def test_a_model_timeout_points_at_the_provider(workspace, tmp_path, monkeypatch):
    pytest.importorskip("workerctl_llm")
    from helpers import ChatServer

    serve = ChatServer.factory(tmp_path, monkeypatch)
    with serve([{"content": "late"}], delay=3):
        make_worker(
            workspace, "slowmodel", timeout=1, executor=json.dumps({"name": "llm", "model": "local-model"})
        )
        run = start(workspace, "slowmodel")
    assert run.error.kind == "timeout"
    report = walk(App(str(workspace.root)), run)
    causes = causes_of(report)
    assert causes["provider availability"] == U and causes["executor or program"] == P
    assert "model provider" in " ".join(report.steps[0].evidence)
