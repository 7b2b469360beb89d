"""Workspace discovery, init, and the worker commands end to end."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest
from click.testing import CliRunner

from helpers import make_worker, run_workerctl
from workerctl.cli import cli


def test_workspace_found_by_flag_env_and_parent(workspace, tmp_path, monkeypatch):
    runner = CliRunner()
    nested = workspace.root / "workers"
    monkeypatch.chdir(nested)
    assert runner.invoke(cli, ["workers", "list", "--format", "ids"]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["workers", "list"])
    assert result.exit_code == 2
    assert "no workspace found" in result.output and "workerctl init" in result.output
    monkeypatch.setenv("WORKERCTL_WORKSPACE", str(workspace.root))
    assert "overdue-task-review" in runner.invoke(cli, ["workers", "list"]).output
    bad = runner.invoke(cli, ["-w", str(tmp_path), "workers", "list"])
    assert bad.exit_code == 2 and "is not a workspace" in bad.output


def test_init_refuses_an_existing_workspace(workspace):
    result = CliRunner().invoke(cli, ["init", str(workspace.root)])
    assert result.exit_code == 2 and "already a workspace" in result.output


def test_init_makes_the_workspace_that_dash_w_names(tmp_path, monkeypatch):
    """Found by hand: ``workerctl -w DIR init`` made the workspace in the current
    folder (and said so) instead of DIR."""
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("WORKERCTL_WORKSPACE", str(tmp_path / "elsewhere"))
    made = CliRunner().invoke(cli, ["-w", str(there), "init"])
    assert made.exit_code == 0, made.output
    assert (there / "workerctl.yaml").is_file() and not list(here.iterdir())
    assert f"Made a workspace in {there}" in made.output
    same = CliRunner().invoke(cli, ["-w", str(tmp_path / "same"), "init", str(tmp_path / "same") + "/"])
    assert same.exit_code == 0 and (tmp_path / "same" / "workerctl.yaml").is_file()
    two = CliRunner().invoke(cli, ["-w", str(tmp_path / "a"), "init", str(tmp_path / "b")])
    assert two.exit_code == 2 and "name two folders" in two.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    plain = CliRunner().invoke(cli, ["init"])  # no -w: the current folder, not the variable
    assert plain.exit_code == 0 and (here / "workerctl.yaml").is_file()
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.slow
def test_init_writes_workers_of_each_status_and_linked_records(tmp_path):
    target = tmp_path / "fresh"
    result = run_workerctl("init", str(target))
    assert result.returncode == 0, result.stderr
    listed = json.loads(run_workerctl("-w", str(target), "workers", "list", "--json").stdout)
    assert {"active", "draft", "paused"} <= {w["status"] for w in listed}
    assert all(w["template"] for w in listed)
    records = json.loads(run_workerctl("-w", str(target), "records", "list", "--json").stdout)
    types = {r["type"] for r in records}
    assert types == {"task", "project", "contact", "company", "invoice", "doc", "product"}
    task = next(r for r in records if r["id"] == "T-1042")
    assert task["links"]["project"] == "P-7" and task["fields"]["description"]
    shown = json.loads(run_workerctl("-w", str(target), "records", "show", "T-1042", "--json").stdout)
    assert len(shown["comments"]) == 2


def test_python_dash_m_works(workspace):
    result = run_workerctl("workers", "list", "--format", "ids", workspace=workspace)
    assert result.returncode == 0 and "overdue-task-review" in result.stdout.split()


def test_worker_show_is_the_overview(wcli):
    wcli("run", "start", "overdue-task-review", "--task", "T-1042")
    wcli("run", "start", "overdue-task-review", "--task", "T-3001")
    out = wcli("worker", "show", "overdue-task-review").output
    for words in (
        "status:",
        "active",
        "output mode:",
        "task_comment",
        "template:",
        "context sources:",
        "tasks, projects, docs",
        "tool categories:",
        "productivity",
        "Instructions (read-only",
        "│ Role:",
        "Recent runs ✓✗",
    ):
        assert words in out, words
    data = json.loads(wcli("worker", "show", "overdue-task-review", "--json").output)
    assert [r["status"] for r in data["recent_runs"]] == ["failed", "completed"]
    assert wcli("worker", "show", "nope").exit_code == 3


def test_workers_list_has_last_run_and_success_rate(wcli):
    wcli("run", "start", "overdue-task-review", "--task", "T-1042")
    wcli("run", "start", "overdue-task-review", "--task", "T-3001")
    rows = {r["name"]: r for r in json.loads(wcli("workers", "list", "--json").output)}
    assert rows["overdue-task-review"]["success_rate"] == 0.5
    assert rows["overdue-task-review"]["last_status"] == "failed"
    assert rows["crm-activity-summary"]["last_run"] is None
    assert "50%" in wcli("workers", "list").output


def test_new_from_template_and_versions(workspace, wcli):
    result = wcli("worker", "new", "triage", "--template", "support-triage-draft")
    assert result.exit_code == 0, result.output
    text = (workspace.workers_dir / "triage.yaml").read_text()
    assert "template: support-triage-draft" in text and "status: draft" in text
    assert wcli("worker", "validate", "triage").exit_code == 0
    assert wcli("worker", "new", "triage").exit_code == 2
    assert wcli("worker", "new", "x", "--template", "nope").exit_code == 3  # like templates show
    assert wcli("worker", "activate", "triage").exit_code == 0
    assert wcli("worker", "pause", "triage").exit_code == 0
    history = json.loads(wcli("worker", "history", "triage", "--json").output)
    assert [v["action"] for v in history] == ["new from template support-triage-draft", "activate", "pause"]
    diff = wcli("worker", "diff", "triage").output
    assert "-status: active" in diff and "+status: paused" in diff
    assert wcli("worker", "restore", "triage", "1").exit_code == 0
    assert "status: draft" in (workspace.workers_dir / "triage.yaml").read_text()
    assert (
        json.loads(wcli("worker", "history", "triage", "--json").output)[-1]["action"] == "restore version 1"
    )


def test_pause_keeps_comments_and_layout(workspace, wcli):
    path = workspace.workers_dir / "overdue-task-review.yaml"
    path.write_text(path.read_text().replace("status: active", "status: active  # on call"))
    wcli("worker", "pause", "overdue-task-review")
    assert "status: paused  # on call" in path.read_text()


def test_change_on_disk_becomes_a_version(workspace, wcli):
    path = workspace.workers_dir / "overdue-task-review.yaml"
    path.write_text(path.read_text().replace("max_iterations: 4", "max_iterations: 6"))
    wcli("workers", "list")
    history = json.loads(wcli("worker", "history", "overdue-task-review", "--json").output)
    assert [v["action"] for v in history] == ["init", "found on disk"]
    assert (
        "+max_iterations: 6"
        in wcli("worker", "diff", "overdue-task-review", "--from", "1", "--to", "2").output
    )


def fake_editor(tmp_path, replacement: str) -> str:
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        f"p.write_text(p.read_text().replace('max_iterations: 4', {replacement!r}))\n"
    )
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    return str(editor)


def test_edit_validates_and_keeps_the_previous_file(workspace, tmp_path):
    path = workspace.workers_dir / "overdue-task-review.yaml"
    before = path.read_text()
    bad = run_workerctl(
        "worker",
        "edit",
        "overdue-task-review",
        workspace=workspace,
        env={"EDITOR": fake_editor(tmp_path, "max_iterations: 99")},
        stdin=subprocess.DEVNULL,
    )
    assert bad.returncode == 2
    assert "workers/overdue-task-review.yaml:" in bad.stderr and "max_iterations" in bad.stderr
    assert path.read_text() == before
    good = run_workerctl(
        "worker",
        "edit",
        "overdue-task-review",
        workspace=workspace,
        env={"EDITOR": fake_editor(tmp_path, "max_iterations: 7")},
        stdin=subprocess.DEVNULL,
    )
    assert good.returncode == 0, good.stderr
    assert "max_iterations: 7" in path.read_text()
    history = json.loads(
        run_workerctl("worker", "history", "overdue-task-review", "--json", workspace=workspace).stdout
    )
    assert history[-1]["action"] == "edit" and history[0]["content"] == before


def test_diff_against_a_run(workspace, wcli):
    run_id = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--json").output)[
        "id"
    ]
    path = workspace.workers_dir / "overdue-task-review.yaml"
    path.write_text(path.read_text().replace("max_iterations: 4", "max_iterations: 8"))
    out = wcli("worker", "diff", "overdue-task-review", "--run", run_id).output
    assert "-max_iterations: 4" in out and "+max_iterations: 8" in out
    card = wcli("run", "inspect", "--id", run_id).output
    assert "worker CHANGED since" in card


def test_templates_catalogue(wcli):
    keys = json.loads(wcli("templates", "list", "--json").output)
    names = {t["key"] for t in keys}
    assert {
        "overdue-task-review",
        "crm-activity-summary",
        "handoff-preparation",
        "support-triage-draft",
        "record-cleanup-suggestions",
    } <= names
    for template in keys:
        for part in (
            "Role:",
            "Records to review:",
            "Output format:",
            "Do not:",
            "Stop and ask for human review when:",
        ):
            assert part in template["instructions"], (template["key"], part)
    shown = wcli("templates", "show", "overdue-task-review")
    assert "worker new NAME --template overdue-task-review" in shown.output
    assert wcli("templates", "show", "nope").exit_code == 3


def test_make_worker_helper_is_valid(workspace, wcli):
    make_worker(workspace, "plain")
    assert wcli("worker", "validate", "plain").exit_code == 0


@pytest.mark.slow
def test_worker_show_watch_waits_for_its_recent_runs(workspace):
    make_worker(workspace, "slowish", executor="{name: echo, script: [{sleep: 1, output: ok}]}")
    assert (
        run_workerctl(
            "run", "start", "slowish", "--task", "T-1042", "--detach", workspace=workspace
        ).returncode
        == 0
    )
    shown = run_workerctl("worker", "show", "slowish", "--watch", "0.2", "--json", workspace=workspace)
    assert shown.returncode == 0, shown.stderr
    assert [r["status"] for r in json.loads(shown.stdout)["recent_runs"]] == ["completed"]
