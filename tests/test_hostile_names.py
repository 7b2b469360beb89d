"""Nothing outside the workspace is ever read as a worker or written: the one name
rule (slug + length, checked before any file access) and the workspace fence
(every resolved path, symlinks included, stays inside)."""

from __future__ import annotations

import json
import os

import pytest

from helpers import make_worker, run_workerctl
from workerctl.history.store import History

OUTSIDE_WORKER = """name: w
status: active
instructions: |
  Summarise the task and suggest a next step.
context_sources: [tasks]
tool_categories: [productivity]
output_mode: review_note
executor: {name: echo}
"""


@pytest.fixture
def elsewhere(workspace, tmp_path):
    """A valid worker file outside the workspace, as an attacker would place it."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    path = folder / "w.yaml"
    path.write_text(OUTSIDE_WORKER)
    return path


def traversal(workspace, elsewhere) -> str:
    rel = os.path.relpath(elsewhere.with_suffix(""), workspace.workers_dir)
    assert rel.startswith("..")
    return rel


def assert_refused(result, what: str):
    assert result.exit_code == 2, result.output
    assert f"is not a valid {what}" in result.output
    assert "Traceback" not in result.output


def test_run_start_with_a_traversal_name_runs_nothing(workspace, wcli, elsewhere):
    result = wcli("run", "start", traversal(workspace, elsewhere))
    assert_refused(result, "worker name")
    assert "lower-case letters, digits and single hyphens" in result.output
    assert History(workspace).list() == []


def test_pause_with_a_traversal_name_writes_nothing(workspace, wcli, elsewhere):
    before = elsewhere.read_text()
    for command in ("pause", "activate", "edit", "history", "diff", "show", "validate"):
        result = wcli("worker", command, traversal(workspace, elsewhere))
        assert_refused(result, "worker name")
    assert_refused(wcli("worker", "restore", traversal(workspace, elsewhere), "1"), "worker name")
    assert elsewhere.read_text() == before
    history = json.loads(wcli("workers", "list", "--json").output)
    assert "w" not in {row["name"] for row in history}


def test_a_5000_character_name_is_a_usage_error_not_enametoolong(workspace, wcli):
    name = "a" * 5000
    for args in (("run", "start", name), ("worker", "pause", name), ("worker", "new", name)):
        result = wcli(*args)
        assert_refused(result, "worker name")
        assert "5,000 characters long" in result.output
        assert "1 to 64 lower-case letters" in result.output


def test_a_symlink_to_an_outside_file_is_never_read_or_written(workspace, wcli, elsewhere):
    make_worker(workspace, "good", output_mode="review_note")
    (workspace.workers_dir / "w.yaml").symlink_to(elsewhere)
    before = elsewhere.read_text()
    rows = {r["name"]: r for r in json.loads(wcli("workers", "list", "--json").output)}
    assert rows["good"]["valid"]
    assert not rows["w"]["valid"]
    assert "outside the workspace" in rows["w"]["problems"][0]["message"]
    for args in (
        ("run", "start", "w"),
        ("worker", "pause", "w"),
        ("worker", "edit", "w"),
        ("worker", "validate", "w"),
    ):
        result = wcli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "outside the workspace" in result.output
    assert elsewhere.read_text() == before
    assert wcli("run", "start", "good").exit_code == 0


def test_a_dangling_symlink_is_not_followed_to_create_a_file(workspace, wcli, tmp_path):
    target = tmp_path / "elsewhere" / "planted.yaml"
    target.parent.mkdir()
    (workspace.workers_dir / "planted.yaml").symlink_to(target)
    result = wcli("worker", "new", "planted")
    assert result.exit_code == 2 and "outside the workspace" in result.output
    assert not target.exists()


def test_a_workers_folder_that_is_a_symlink_outside_is_refused(workspace, wcli, elsewhere):
    real = workspace.workers_dir
    real.rename(workspace.root / "workers.old")
    real.symlink_to(elsewhere.parent)
    result = wcli("run", "start", "w")
    assert result.exit_code == 2 and "outside the workspace" in result.output
    assert History(workspace).list() == []


def test_template_keys_follow_the_rule(workspace, wcli):
    result = wcli("worker", "new", "fresh", "--template", "../../etc/passwd")
    assert_refused(result, "template key")
    assert not (workspace.workers_dir / "fresh.yaml").exists()


@pytest.mark.parametrize("record_id", ["../../../etc/passwd", "T/1042", "x" * 5000, "..", "T 1042"])
def test_record_ids_follow_the_rule(workspace, wcli, record_id):
    make_worker(workspace, "good", output_mode="review_note")
    assert_refused(wcli("records", "show", record_id), "record id")
    result = wcli("run", "start", "good", "--task", record_id)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert History(workspace).list() == []


def test_imported_record_ids_follow_the_rule(workspace, wcli, tmp_path):
    path = tmp_path / "evil.json"
    path.write_text(json.dumps([{"id": "../../x", "type": "task", "title": "t"}]))
    result = wcli("records", "import", str(path))
    assert result.exit_code == 2 and "is not a valid record id" in result.output
    assert not list(workspace.state_dir.rglob("*x.json"))


@pytest.mark.parametrize("run_id", ["../../../etc/passwd", "a" * 5000, "ab/cd", ""])
def test_run_ids_follow_the_rule(workspace, wcli, run_id):
    for command in ("inspect", "troubleshoot", "review", "cancel"):
        result = wcli("run", command, "--id", run_id)
        assert result.exit_code == 2, (command, result.output)
        assert "Traceback" not in result.output


def test_names_in_a_real_process_exit_2_without_traceback(workspace, elsewhere):
    result = run_workerctl("worker", "pause", "x" * 5000, workspace=workspace)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "is not a valid worker name" in result.stderr
    result = run_workerctl("run", "start", traversal(workspace, elsewhere), workspace=workspace)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_a_records_file_that_is_a_symlink_outside_is_not_read(workspace, wcli, tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text("- id: S-1\n  type: task\n  title: not yours\n")
    workspace.records_file.unlink(missing_ok=True)  # records/ is read on first use
    (workspace.root / "records").mkdir(exist_ok=True)
    (workspace.root / "records" / "stolen.yaml").symlink_to(secret)
    result = wcli("records", "show", "S-1")
    assert result.exit_code == 2 and "outside the workspace" in result.output
