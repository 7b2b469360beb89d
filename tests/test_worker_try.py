"""``worker try``: a changed worker run again on the inputs of past runs, writing nothing."""

from __future__ import annotations

import hashlib
import json

from helpers import run_workerctl


def _digests(workspace) -> dict[str, str]:
    """Every file of the state folder (records, comments, ledger, history, search index,
    versions) by its bytes, but the tries' own folder. (First the reads a try makes, once:
    the history builds its cross-run indexes on the first read that needs them.)"""
    run_workerctl("runs", "list", "--worker", "overdue-task-review", workspace=workspace)
    out = {}
    for path in sorted(workspace.state_dir.rglob("*")):
        if path.is_file() and "tries" not in path.relative_to(workspace.state_dir).parts:
            out[str(path.relative_to(workspace.state_dir))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _past_runs(workspace, *tasks: str) -> list[str]:
    ids = []
    for task in tasks:
        done = run_workerctl(
            "run", "start", "overdue-task-review", "--task", task, "--json", workspace=workspace
        )
        assert done.returncode == 0, done.stderr
        ids.append(json.loads(done.stdout)["id"])
    return ids


def _edited(workspace, tmp_path, output: str):
    text = (workspace.workers_dir / "overdue-task-review.yaml").read_text()
    head = text[: text.index("executor:")]
    path = tmp_path / "edited-copy.yaml"
    path.write_text(head + f"executor: {{name: echo, script: [{{output: {json.dumps(output)}}}]}}\n")
    return path


def test_a_try_writes_nothing_anywhere_byte_for_byte(workspace, tmp_path):
    """A worker whose output mode writes a comment, tried live on a record marked
    safe_for_testing too (the test sandbox would let that write through): records,
    comments, ledger, history, index, versions unchanged; the writes captured."""
    records = json.loads(workspace.records_file.read_text())
    table = records[next(iter(records))]
    for doc in table.values():
        if doc.get("id") == "T-1043":
            doc["safe_for_testing"] = True
    workspace.records_file.write_text(json.dumps(records))
    past = _past_runs(workspace, "T-1042", "T-1043")
    run_workerctl("runs", "search", "x", workspace=workspace)  # the search index exists too
    before = _digests(workspace)
    done = run_workerctl("worker", "try", "overdue-task-review", "--json", workspace=workspace)
    assert done.returncode == 0, done.stderr
    assert _digests(workspace) == before
    doc = json.loads(done.stdout)
    assert {i["run_id"] for i in doc["items"]} == set(past)
    captured = [e for i in doc["items"] for e in i["would_write"]]
    assert len(captured) == 2 and {e["state"] for e in captured} == {"not_written"}
    assert {e["record_id"] for e in captured} == {"T-1042", "T-1043"}
    assert all(i["answer"] == "live" for i in doc["items"])


def test_an_edit_that_makes_a_check_fail_exits_1_and_shows_both_outputs(workspace, tmp_path):
    _past_runs(workspace, "T-1042")
    edited = _edited(workspace, tmp_path, "Hello! How can I help you today?")
    before = _digests(workspace)
    done = run_workerctl("worker", "try", "overdue-task-review", "--file", str(edited), workspace=workspace)
    assert done.returncode == 1, done.stderr
    assert "NEWLY FAILING" in done.stdout and "Hello! How can I help you today?" in done.stdout
    assert "Blocker: task T-1042" in done.stdout  # the old output, beside the new
    assert _digests(workspace) == before


def test_tries_are_apart_from_runs_stats_and_the_duplicate_guard(workspace):
    _past_runs(workspace, "T-1042")
    stats_before = run_workerctl("runs", "stats", "--json", workspace=workspace).stdout
    assert run_workerctl("worker", "try", "overdue-task-review", workspace=workspace).returncode == 0
    assert len(json.loads(run_workerctl("runs", "list", "--json", "id", workspace=workspace).stdout)) == 1
    assert run_workerctl("runs", "stats", "--json", workspace=workspace).stdout == stats_before
    tries = json.loads(run_workerctl("runs", "list", "--tries", "--json", workspace=workspace).stdout)
    assert len(tries) == 1 and tries[0]["worker"] == "overdue-task-review"
    # the guard still sees one write to T-1042 (the run's), and the try did not add one
    again = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace)
    assert again.returncode == 5


def test_replay_reuses_the_recorded_answer_where_the_request_is_the_same(workspace, tmp_path):
    _past_runs(workspace, "T-1042")
    same = json.loads(
        run_workerctl(
            "worker", "try", "overdue-task-review", "--replay", "--json", workspace=workspace
        ).stdout
    )
    assert [i["answer"] for i in same["items"]] == ["replayed"]
    edited = _edited(workspace, tmp_path, "Blocker: something else")
    changed = json.loads(
        run_workerctl(
            "worker",
            "try",
            "overdue-task-review",
            "--replay",
            "--file",
            str(edited),
            "--json",
            workspace=workspace,
        ).stdout
    )
    assert [i["answer"] for i in changed["items"]] == ["live"]


def test_a_broken_edited_file_is_exit_2_naming_it(workspace, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: overdue-task-review\nstatus: sideways\n")
    done = run_workerctl("worker", "try", "overdue-task-review", "--file", str(bad), workspace=workspace)
    assert done.returncode == 2 and str(bad) in done.stderr and "Traceback" not in done.stderr


def test_an_edit_that_makes_the_run_fail_exits_1(workspace, tmp_path):
    """Found by hand: a try whose run now fails (no check decided) exited 0."""
    _past_runs(workspace, "T-1042")
    text = (workspace.workers_dir / "overdue-task-review.yaml").read_text()
    broken = tmp_path / "broken-model.yaml"
    broken.write_text(
        text[: text.index("executor:")] + "executor: {name: echo, script: [{error: model gone}]}\n"
    )
    done = run_workerctl(
        "worker", "try", "overdue-task-review", "--file", str(broken), "--json", workspace=workspace
    )
    assert done.returncode == 1, done.stderr
    item = json.loads(done.stdout)["items"][0]
    assert item["new_status"] == "failed" and "model gone" in item["new_error"]


def test_no_past_runs_is_said_and_nothing_is_recorded(workspace):
    """Found by hand: an empty try was recorded as a try of 0 runs."""
    done = run_workerctl("worker", "try", "overdue-task-review", workspace=workspace)
    assert done.returncode == 0 and "no past runs match" in done.stderr
    assert not (workspace.state_dir / "tries").exists()
