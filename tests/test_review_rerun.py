"""The review checklist's automatic checks, stored reviews, and guarded reruns."""

from __future__ import annotations

import json

from helpers import drive_terminal, make_worker
from workerctl.app import App
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.plugins.manager import get_registry
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.runs.model import Run, now_iso
from workerctl.runs.review import checks


def start(workspace, worker, record="T-1042", **kw):
    return Engine(workspace, get_registry()).start(worker, StartOptions(record_id=record, **kw))


def echo(*steps) -> str:
    return json.dumps({"name": "echo", "script": list(steps)})


def review_checks(app, run_id):
    return checks(app.history.get(run_id), records=app.records, registry=app.registry)


def verdicts(workspace, run_id) -> dict[str, str]:
    return {i.key: i.verdict for i in review_checks(App(str(workspace.root)), run_id)}


def evidence(workspace, run_id, key) -> list[str]:
    return next(i.evidence for i in review_checks(App(str(workspace.root)), run_id) if i.key == key)


def test_a_clean_completed_run_passes_every_automatic_check(workspace):
    run = start(workspace, "overdue-task-review")
    found = verdicts(workspace, run.id)
    found.pop("model_judged", None)  # no review model configured: it cannot tell
    assert found == dict.fromkeys(
        (
            "status",
            "record",
            "context",
            "tools",
            "duplicates",
            "claims",
            "next_step",
            "contract",
            "answer",
            "facts",
            "provenance",
            "coverage",
            "privacy",
            "completion",
            "markup",
            "freshness",
            "form",
        ),
        "pass",
    )


def test_duplicate_comment_from_another_run(workspace):
    start(workspace, "overdue-task-review")
    second = start(workspace, "overdue-task-review", allow_repeat=True)
    assert verdicts(workspace, second.id)["duplicates"] == "fail"
    assert "has the same text as" in evidence(workspace, second.id, "duplicates")[0]


def test_a_duplicate_names_the_newest_earlier_twin_only(workspace):
    """A worker run every hour on one ticket meets all its earlier comments: the check
    names the newest near-equal one and stops, so a run's review does not cost more
    with every comment before it (it compared all of them, 0.5 s per run at 120)."""
    runs = [start(workspace, "overdue-task-review", allow_repeat=True) for _ in range(4)]
    comment_of = {c.run_id: c.id for c in BuiltinRecordStore(workspace).comments("T-1042") if c.run_id}
    said = evidence(workspace, runs[-1].id, "duplicates")
    named = [line for line in said if "earlier comment" in line]
    assert len(named) == 1, said
    assert f"earlier comment {comment_of[runs[-2].id]} (run {runs[-2].id})" in named[0]


def test_output_claiming_an_update_that_never_happened(workspace):
    make_worker(
        workspace,
        "boaster",
        output_mode="review_note",
        executor=echo({"output": "I have updated the due date to Friday and reassigned the task."}),
    )
    run = start(workspace, "boaster")
    assert verdicts(workspace, run.id)["claims"] == "fail"
    assert "updated" in evidence(workspace, run.id, "claims")[0]


def test_claimed_comment_backed_by_a_real_side_effect(workspace):
    make_worker(
        workspace,
        "honest",
        output_mode="review_note",
        executor=echo(
            {"tool": "add_task_comment", "arguments": {"task_id": "T-1042", "text": "Ping Lena"}},
            {"output": "I added a comment asking Lena for the glossary. Next step: wait a day."},
        ),
    )
    run = start(workspace, "honest")
    result = verdicts(workspace, run.id)
    assert result["claims"] == "pass" and result["next_step"] == "pass"


def test_failed_run_without_a_next_step(workspace):
    from helpers import record_missing_run

    run = record_missing_run(workspace)
    result = verdicts(workspace, run.id)
    assert result["status"] == "cannot_tell" and result["next_step"] == "fail"
    assert result["record"] == "fail"


def test_tools_outside_the_categories(workspace):
    make_worker(
        workspace, "sneaky", executor=echo({"tool": "read_invoice", "arguments": {"invoice_id": "INV-2031"}})
    )
    run = start(workspace, "sneaky")
    assert verdicts(workspace, run.id)["tools"] == "fail"


def test_record_changed_or_deleted_since_the_run(workspace, tmp_path, wcli):
    run = start(workspace, "overdue-task-review")
    (tmp_path / "edit.yaml").write_text("- {id: T-1042, type: task, title: Renamed}\n")
    wcli("records", "import", str(tmp_path / "edit.yaml"))
    assert verdicts(workspace, run.id)["record"] == "cannot_tell"
    app = App(str(workspace.root))
    app.records.builtin().delete("T-1042")
    assert verdicts(workspace, run.id)["record"] == "fail"


def test_context_outside_the_allowed_sources(workspace):
    app = App(str(workspace.root))
    run = Run(
        id="ctx00001",
        worker="w",
        config_hash="x",
        executor="echo",
        created=now_iso(),
        config={"context_sources": ["tasks"], "tool_categories": []},
        status="completed",
        context={"records": [{"type": "task", "id": "T-1042"}, {"type": "invoice", "id": "INV-2031"}]},
        transitions=[{"status": "completed", "at": now_iso()}],
    )
    app.history.create(run)
    items = {i.key: i for i in review_checks(app, "ctx00001")}
    assert items["context"].verdict == "fail" and "INV-2031" in items["context"].evidence[-1]


def test_review_from_a_script_is_stored_and_shown(workspace, wcli):
    make_worker(workspace, "money", output_mode="review_note", categories=("finance",))
    run = start(workspace, "money")
    assert run.needs_review
    listed = json.loads(wcli("runs", "list", "--unreviewed", "--json").output)
    assert [r["id"] for r in listed] == [run.id]
    assert "needs human review" in wcli("run", "inspect", "--id", run.id).output
    incomplete = wcli("run", "review", "--id", run.id, "--verdict", "approved")
    assert incomplete.exit_code == 2 and "--matches-instructions" in incomplete.output
    done = wcli(
        "run",
        "review",
        "--id",
        run.id,
        "--verdict",
        "needs_changes",
        "--matches-instructions",
        "yes",
        "--next-action-clear",
        "no",
        "--reviewer",
        "dana",
        "--note",
        "ask for amounts",
    )
    assert done.exit_code == 0, done.output
    card = wcli("run", "inspect", "--id", run.id).output
    assert "review       needs_changes by dana" in card and "ask for amounts" in card
    stored = json.loads(wcli("run", "inspect", "--id", run.id, "--json").output)["review"]
    assert stored["answers"] == {"matches_instructions": "yes", "next_action_clear": "no"}
    assert {c["key"] for c in stored["checks"]} >= {"status", "duplicates", "claims"}
    assert json.loads(wcli("runs", "list", "--unreviewed", "--json").output) == []


def test_review_on_a_terminal_asks_the_human_items(workspace):
    run = start(workspace, "overdue-task-review")
    code, screen = drive_terminal(
        ["run", "review", "--id", run.id],
        [
            (b"matches the worker instructions?", b"y\n"),
            (b"next human action is clear?", b"n\n"),
            (b"Verdict", b"approved\n"),
            (b"Note", b"looks right\n"),
        ],
        workspace=workspace,
    )
    assert code == 0, screen
    assert "1. The status is completed or the error is understood  [✓ pass]" in screen
    stored = App(str(workspace.root)).history.get(run.id).review
    assert stored.verdict == "approved" and stored.note == "looks right"
    assert stored.answers == {"matches_instructions": "yes", "next_action_clear": "no"}


def test_rerun_refused_without_change_then_allowed(workspace, wcli):
    make_worker(workspace, "flaky", executor=echo({"error": "upstream down"}))
    failed = start(workspace, "flaky")
    refused = wcli("run", "rerun", "--id", failed.id)
    assert refused.exit_code == 5  # the duplicate guard refuses an unchanged failure
    assert "would fail the same way" in refused.output and "--allow-repeat" in refused.output
    forced = wcli("run", "rerun", "--id", failed.id, "--force", "--json")
    assert forced.exit_code == 5 and "--force overrides nothing" in forced.stderr
    allowed = wcli("run", "rerun", "--id", failed.id, "--allow-repeat", "--json")
    assert allowed.exit_code == 1  # it fails again, as predicted
    assert json.loads(allowed.stdout)["rerun_of"] == failed.id
    make_worker(workspace, "flaky")  # the fix: a worker that works
    fixed = wcli("run", "rerun", "--id", failed.id, "--json")
    assert fixed.exit_code == 0, fixed.output
    assert "Changed since: worker" in fixed.stderr
    new = json.loads(fixed.stdout)
    assert new["trigger"] == "rerun" and new["rerun_of"] == failed.id


def test_rerun_lists_side_effects_and_guards_duplicates(workspace, wcli):
    done = start(workspace, "overdue-task-review")
    comment = done.side_effects[0]["comment_id"]
    refused = wcli("run", "rerun", "--id", done.id)
    assert refused.exit_code == 5
    assert f"run {done.id}: comment {comment} on T-1042 (written)" in refused.output
    assert (
        f"already wrote to T-1042: comment {comment} on T-1042 by run {done.id}" in refused.output
        and "--allow-repeat" in refused.output
    )
    forced = wcli("run", "rerun", "--id", done.id, "--force")
    assert forced.exit_code == 5  # --force never silently disables the duplicate guard
    again = wcli("run", "rerun", "--id", done.id, "--allow-repeat")
    assert again.exit_code == 0
    again = wcli("run", "rerun", "--id", done.id, "--allow-repeat")
    assert again.exit_code == 0
    app = App(str(workspace.root))
    per_run = {}
    for c in app.records.comments("T-1042"):
        if c.run_id:
            per_run[c.run_id] = per_run.get(c.run_id, 0) + 1
    assert set(per_run.values()) == {1} and len(per_run) == 3  # one comment per run, never two
