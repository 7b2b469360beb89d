"""The engine: each execution error kind from a real scenario, the gate, context,
output mode side effects, and the command executor against real programs."""

from __future__ import annotations

import json
import os
import textwrap
import time

import pytest

from helpers import make_worker
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.history.store import History
from workerctl.plugins.manager import get_registry
from workerctl.records.builtin_store import BuiltinRecordStore


def engine_for(workspace):
    return Engine(workspace, get_registry())


def start(workspace, worker, record="T-1042", **kw):
    return engine_for(workspace).start(worker, StartOptions(record_id=record, **kw))


def script(*steps) -> str:
    return json.dumps({"name": "echo", "script": list(steps)})


def test_completed_run_writes_one_comment_and_records_everything(workspace):
    run = start(workspace, "overdue-task-review")
    assert run.status == "completed"
    assert [t["status"] for t in run.transitions] == ["pending", "queued", "running", "completed"]
    assert run.output and "T-1042" in run.output
    comments = BuiltinRecordStore(workspace).comments("T-1042")
    mine = [c for c in comments if c.run_id == run.id]
    assert len(mine) == 1 and mine[0].text == run.output
    [effect] = run.side_effects
    assert (
        effect.items()
        >= {
            "kind": "comment",
            "record_id": "T-1042",
            "comment_id": mine[0].id,
            "key": f"{run.id}:output",
            "created": True,
            "by": "output_mode",
            "state": "committed",
        }.items()
    )
    assert effect["at"] <= effect["committed_at"]
    assert {"type": "project", "id": "P-7"} in run.context["records"]


def test_output_mode_is_idempotent_for_the_same_run(workspace):
    from workerctl.engine.run_records import apply_write
    from workerctl.records.book import open_records

    run = start(workspace, "overdue-task-review")
    book = open_records(workspace, get_registry())
    (effect,) = run.side_effects
    assert effect["key"] == f"{run.id}:output" and effect["state"] == "committed"
    assert apply_write(book, run, effect)["created"] is False  # a retry of the same write
    assert len([c for c in book.comments("T-1042") if c.run_id == run.id]) == 1


def test_paused_worker_is_refused_before_a_run_exists(workspace):
    from workerctl.history.store import History
    from workerctl.runs.duplicate_guard import DuplicateRefused

    with pytest.raises(DuplicateRefused) as refused:
        start(workspace, "handoff-preparation")
    assert refused.value.decision.verdict == "paused" and refused.value.exit_code == 5
    assert History(workspace).list(None) == []  # a refusal is not a run


def test_draft_worker_needs_safe_record_or_test_flag(workspace):
    from workerctl.runs.duplicate_guard import DuplicateRefused

    make_worker(workspace, "drafty", status="draft")
    with pytest.raises(DuplicateRefused) as refused:
        start(workspace, "drafty", "T-1042")
    assert refused.value.decision.verdict == "draft"
    assert "safe for testing" in refused.value.message
    assert start(workspace, "drafty", "T-9001").status == "completed"
    assert start(workspace, "drafty", "T-1042", test=True).status == "completed"


def test_record_missing(workspace):
    from helpers import record_missing_run

    run = record_missing_run(workspace)
    assert run.error.kind == "record_missing" and "T-4040" in run.error.message


def test_unknown_record_is_refused_before_a_run_exists(workspace, wcli):
    from workerctl.errors import NotFoundError

    with pytest.raises(NotFoundError):
        start(workspace, "overdue-task-review", "T-NOPE")
    result = wcli("run", "start", "overdue-task-review", "--task", "T-NOPE")
    assert result.exit_code == 3 and "no record with id 'T-NOPE'" in result.output
    assert "NO LONGER EXISTS" not in result.output
    assert History(workspace).list(None, limit=None) == []


def test_empty_or_padded_task(workspace, wcli):
    for empty in ("", "   "):
        result = wcli("run", "start", "overdue-task-review", "--task", empty)
        assert result.exit_code == 2 and "--task is empty" in result.output
    assert History(workspace).list(None, limit=None) == []
    padded = wcli("run", "start", "overdue-task-review", "--task", " T-1042 ", "--json")
    assert padded.exit_code == 0
    assert json.loads(padded.output)["record_id"] == "T-1042"


def test_record_access_denied(workspace):
    run = start(workspace, "overdue-task-review", "T-3001")
    assert run.error.kind == "record_access_denied"
    assert "hr-assistant" in run.error.detail


def test_missing_context(workspace):
    make_worker(workspace, "no-tasks", sources=("projects",))
    run = start(workspace, "no-tasks")
    assert run.error.kind == "missing_context"
    assert "tasks" in run.error.message


def test_disabled_context_source_is_never_read(workspace):
    make_worker(workspace, "tasks-only", sources=("tasks",))
    engine = engine_for(workspace)
    run = engine.start("tasks-only", StartOptions(record_id="T-1042"))
    assert run.status == "completed"
    read_types = {t for t, _ in engine.records.reads}
    assert read_types == {"task"}
    assert run.context["records"] == [{"type": "task", "id": "T-1042"}]
    make_worker(workspace, "wide", sources=("tasks", "crm", "finance"))
    engine = engine_for(workspace)
    run = engine.start("wide", StartOptions(record_id="T-1042"))
    got = {(r["type"], r["id"]) for r in run.context["records"]}
    assert {("company", "CO-3"), ("contact", "C-12"), ("invoice", "INV-2031"), ("invoice", "INV-2044")} <= got
    assert not {t for t, _ in engine.records.reads} & {"project", "doc", "product"}


def test_gate_refuses_a_forbidden_category(workspace):
    make_worker(
        workspace,
        "sneaky",
        executor=script(
            {"tool": "read_task", "arguments": {"task_id": "T-1042"}},
            {"tool": "read_invoice", "arguments": {"invoice_id": "INV-2031"}},
            {"output": "done"},
        ),
    )
    engine = engine_for(workspace)
    run = engine.start("sneaky", StartOptions(record_id="T-1042"))
    assert run.status == "failed" and run.error.kind == "tool_not_allowed"
    first, second = run.iterations[0].tool_calls[0], run.iterations[1].tool_calls[0]
    assert first.allowed and first.ok and first.category == "productivity"
    assert not second.allowed and second.category == "finance"
    assert "finance" in second.reason and "productivity" in second.reason
    assert ("invoice", "INV-2031") not in engine.records.reads
    assert run.output is None


def test_bad_tool_arguments_come_back_as_an_error_result(workspace):
    make_worker(
        workspace,
        "clumsy",
        executor=script(
            {"tool": "read_task", "arguments": {"task": "T-1042"}}, {"output": "result was {last_result}"}
        ),
    )
    run = start(workspace, "clumsy")
    assert run.status == "completed"
    call = run.iterations[0].tool_calls[0]
    assert call.allowed and not call.ok
    assert "missing required argument 'task_id'" in call.result_summary
    assert "unknown argument 'task'" in run.output


def test_tool_write_is_recorded_as_side_effect(workspace):
    make_worker(
        workspace,
        "commenter",
        output_mode="review_note",
        executor=script(
            {"tool": "add_task_comment", "arguments": {"task_id": "T-1043", "text": "Ping"}},
            {"output": "I added a comment to T-1043."},
        ),
    )
    run = start(workspace, "commenter", "T-1043")
    assert run.status == "completed"
    assert run.side_effects[0]["kind"] == "comment" and run.side_effects[0]["by"] == "tool"
    texts = [c.text for c in BuiltinRecordStore(workspace).comments("T-1043")]
    assert texts.count("Ping") == 1


def test_max_iterations(workspace):
    make_worker(
        workspace,
        "loopy",
        max_iterations=3,
        executor=script({"tool": "read_task", "arguments": {"task_id": "T-1042"}}, {"repeat": True}),
    )
    run = start(workspace, "loopy")
    assert run.error.kind == "max_iterations"
    assert len(run.iterations) == 3


def test_executor_exception_becomes_executor_error(workspace):
    make_worker(workspace, "broken-exec", executor=script({"error": "model melted"}))
    run = start(workspace, "broken-exec")
    assert run.error.kind == "executor_error" and "model melted" in run.error.message


def test_empty_output_is_invalid(workspace):
    make_worker(workspace, "silent", executor=script({"output": "  "}))
    run = start(workspace, "silent")
    assert run.error.kind == "invalid_output"


@pytest.mark.slow
def test_timeout_from_a_slow_step(workspace):
    make_worker(workspace, "sleepy", timeout=1, executor=script({"sleep": 5}))
    began = time.monotonic()
    run = start(workspace, "sleepy")
    assert run.error.kind == "timeout"
    assert time.monotonic() - began < 4


def test_task_comment_without_task_is_a_usage_error(workspace, wcli):
    result = wcli("run", "start", "overdue-task-review")
    assert result.exit_code == 2
    assert "needs a linked task" in result.output


def test_run_tied_to_no_record_with_review_note(workspace):
    make_worker(
        workspace,
        "sweep",
        output_mode="review_note",
        executor=script(
            {"tool": "list_overdue_tasks", "arguments": {}}, {"output": "Overdue: {last_result}"}
        ),
    )
    run = engine_for(workspace).start("sweep", StartOptions())
    assert run.status == "completed" and run.record_id is None
    assert "T-1042" in run.output and run.side_effects == []


# -- the command executor against real programs --


def write_program(workspace, name: str, body: str) -> str:
    path = workspace.root / name
    path.write_text(textwrap.dedent(body))
    return name


def command_worker(workspace, name, program, **kw):
    make_worker(workspace, name, executor=json.dumps({"name": "command", "argv": ["python3", program]}), **kw)


def test_command_executor_runs_a_tool_loop(workspace):
    program = write_program(
        workspace,
        "step.py",
        """
        import json, sys
        req = json.load(sys.stdin)
        assert req["protocol"] == 1
        tools = [t["name"] for t in req["tools"]]
        if not req["messages"]:
            print(json.dumps({"tool_calls": [{"name": "read_task",
                                              "arguments": {"task_id": req["record_id"]}}]}))
        else:
            result = req["messages"][-1]["result"]
            print(json.dumps({"text": f"{result['title']} / tools={','.join(tools)}"}))
        print("a diagnostic line", file=sys.stderr)
    """,
    )
    command_worker(workspace, "cmd", program)
    run = start(workspace, "cmd")
    assert run.status == "completed", run.error
    assert run.output.startswith("Translate product catalogue into German / tools=")
    assert "read_invoice" not in run.output  # only allowed tools are offered
    assert "a diagnostic line" in run.iterations[0].stderr


def test_command_missing_program_is_provider_unavailable(workspace):
    make_worker(
        workspace, "ghost", executor=json.dumps({"name": "command", "argv": ["/nonexistent/model-server"]})
    )
    run = start(workspace, "ghost")
    assert run.error.kind == "provider_unavailable"
    assert "/nonexistent/model-server" in run.error.message


def test_command_nonzero_exit_is_executor_error_with_stderr(workspace):
    program = write_program(
        workspace,
        "fail.py",
        """
        import sys
        print("quota exceeded for project X", file=sys.stderr)
        sys.exit(3)
    """,
    )
    command_worker(workspace, "failing", program)
    run = start(workspace, "failing")
    assert run.error.kind == "executor_error" and "status 3" in run.error.message
    assert "quota exceeded" in run.error.detail


def test_command_invalid_json_is_invalid_output(workspace):
    program = write_program(workspace, "garbage.py", "print('certainly! here you go')\n")
    command_worker(workspace, "garbage", program)
    run = start(workspace, "garbage")
    assert run.error.kind == "invalid_output"
    assert "certainly" in run.error.detail


@pytest.mark.slow
def test_command_hang_is_killed_with_its_process_group(workspace, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    program = write_program(
        workspace,
        "hang.py",
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(120)
    """,
    )
    command_worker(workspace, "hanging", program, timeout=2)
    began = time.monotonic()
    run = start(workspace, "hanging")
    assert run.error.kind == "timeout"
    assert time.monotonic() - began < 10
    grandchild = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the grandchild process survived the timeout")


def test_command_gets_only_allow_listed_environment(workspace, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("PASSED_ON", "yes")
    program = write_program(
        workspace,
        "env.py",
        """
        import json, os, sys
        json.load(sys.stdin)
        print(json.dumps({"text": json.dumps(sorted(k for k in os.environ
                                                     if k in ("SECRET_TOKEN", "PASSED_ON")))}))
    """,
    )
    make_worker(
        workspace,
        "envy",
        executor=json.dumps({"name": "command", "argv": ["python3", program], "pass_env": ["PASSED_ON"]}),
    )
    run = start(workspace, "envy")
    assert json.loads(run.output) == ["PASSED_ON"]


def test_a_detached_run_whose_executor_disappeared_fails_clearly(workspace):
    from workerctl.history.store import History
    from workerctl.runs.model import Run, now_iso

    config = {
        "name": "gone",
        "status": "active",
        "instructions": "x",
        "output_mode": "review_note",
        "executor": {"name": "no-such-executor"},
    }
    run = Run(
        id="gone0001",
        worker="gone",
        config_hash="x",
        config=config,
        executor="no-such-executor",
        created=now_iso(),
        transitions=[{"status": "pending", "at": now_iso()}],
    )
    History(workspace).create(run)
    done = engine_for(workspace).execute("gone0001")
    assert done.status == "failed" and done.error.kind == "executor_error"
    assert "no-such-executor" in done.error.message
    assert History(workspace).unfinished() == {}


def test_one_thread_beats_for_every_executing_run_and_none_outlives_them():
    """A batch executes many runs at once: one thread touches every run's heartbeat
    (not one thread each), stops touching a run's the moment it ends, and is gone
    when none is left (nothing is running at the process's exit)."""
    import threading
    import time

    from workerctl.engine.heartbeat import Heartbeat

    class Sink:
        def __init__(self) -> None:
            self.beats: list[str] = []

        def heartbeat(self, run_id: str) -> None:
            self.beats.append(run_id)

    def beaters() -> int:
        return sum(t.name == "workerctl-heartbeat" for t in threading.enumerate())

    sink = Sink()
    first, second = Heartbeat(sink, "a", 0.02), Heartbeat(sink, "b", 0.02)
    first.start()
    second.start()
    time.sleep(0.2)
    assert beaters() == 1
    assert sink.beats.count("a") >= 3 and sink.beats.count("b") >= 3
    first.stop()
    stopped_at = sink.beats.count("a")
    time.sleep(0.1)
    assert sink.beats.count("a") == stopped_at  # no beat after stop() returned
    assert sink.beats.count("b") > 3
    second.stop()
    deadline = time.monotonic() + 2
    while beaters() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert beaters() == 0


def test_a_beat_due_sooner_than_the_others_wakes_the_beating_thread():
    """The one thread sleeps until the soonest beat due and is woken only when a new
    run's beat comes sooner (a batch adds a run every few milliseconds, each due one
    interval later): a run added with a short interval beside one with a long interval
    is beaten on its own time, not after the long one's."""
    import time

    from workerctl.engine.heartbeat import Heartbeat

    class Sink:
        def __init__(self) -> None:
            self.beats: list[tuple[str, float]] = []

        def heartbeat(self, run_id: str) -> None:
            self.beats.append((run_id, time.monotonic()))

    sink = Sink()
    slow, quick = Heartbeat(sink, "slow", 30.0), Heartbeat(sink, "quick", 0.05)
    slow.start()
    time.sleep(0.05)  # the thread now sleeps till the slow beat, 30 s away
    began = time.monotonic()
    quick.start()
    try:
        deadline = began + 5
        while not any(r == "quick" for r, _ in sink.beats) and time.monotonic() < deadline:
            time.sleep(0.01)
        first = next(at for r, at in sink.beats if r == "quick")
        assert first - began < 2.0
        assert not any(r == "slow" for r, _ in sink.beats)
    finally:
        quick.stop()
        slow.stop()


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ([], ["intended"]),  # nothing reported: one possible write, unknown
        (["intended"], ["intended"]),  # the comment's intent was read: it becomes unknown itself
        (["committed"], ["committed"]),  # a proven write stands, nothing added
    ],
)
def test_a_lost_remote_report_leaves_one_unknown_per_possible_write(reported, expected):
    """A remote run whose report the broker lost is finished as outcome_unknown. A report
    read while its comment was only intended (a refresh in between) already holds the
    unknown write; the lost-write entry was added beside it, two unknowns for one
    comment (seen in CI under load)."""
    from workerctl.engine.remote import outcome_unknown
    from workerctl.runs.model import Run

    run = Run(
        id="remote01",
        worker="w",
        config_hash="x",
        config={},
        executor="rq",
        created="2026-12-04T00:00:00.000Z",
        record_id="T-1042",
    )
    run.move("queued")
    run.move("running")
    run.side_effects = [
        {"kind": "comment", "key": f"remote01:{n}", "record_id": "T-1042", "state": state}
        for n, state in enumerate(reported)
    ]
    outcome_unknown(run, "the broker lost the job", "check the record", may_write=True)
    assert run.status == "failed" and run.error.kind == "outcome_unknown"
    assert [e["state"] for e in run.side_effects] == expected
