"""The defects found while comparing workerctl with gh, Temporal, Prefect and llm: each
one proved fixed through the command a script or a person would type."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from helpers import make_worker, write_worker
from workerctl.history.store import History
from workerctl.history.sweep import current_owner
from workerctl.runs.model import Run, new_run_id, now_iso


def start_json(wcli, *args):
    result = wcli("run", "start", *args, "--json")
    return json.loads(result.output)


# -- positional ids --


def test_run_id_as_argument_or_option(wcli):
    run_id = start_json(wcli, "overdue-task-review", "--task", "T-1042")["id"]
    by_arg = wcli("run", "inspect", run_id[:5], "--json")
    by_opt = wcli("run", "inspect", "--id", run_id, "--json")
    assert json.loads(by_arg.output)["id"] == json.loads(by_opt.output)["id"] == run_id
    assert (
        "troubleshooting" in wcli("run", "troubleshoot", run_id).output.lower()
        or wcli("run", "troubleshoot", run_id).exit_code == 0
    )
    assert wcli("run", "review", run_id, "--check").exit_code == 0
    both = wcli("run", "inspect", run_id, "--id", "zzzzzzzz")
    assert both.exit_code == 2 and "two run ids" in both.output
    none = wcli("run", "inspect")
    assert none.exit_code == 2 and "give a run id" in none.output
    assert wcli("run", "inspect", "zzzzzzzz").exit_code == 3


# -- a typo in a filter --


def test_runs_list_and_stats_with_an_unknown_worker_exit_3(wcli):
    listed = wcli("runs", "list", "--worker", "nosuch")
    assert listed.exit_code == 3 and "no worker named 'nosuch'" in listed.output
    assert wcli("runs", "stats", "--worker", "nosuch").exit_code == 3
    # a known worker without runs is not an error, nor is a deleted one that has runs
    assert wcli("runs", "list", "--worker", "crm-activity-summary").exit_code == 0
    wcli("run", "start", "overdue-task-review", "--task", "T-1042")
    (wcli.workspace.workers_dir / "overdue-task-review.yaml").unlink()
    assert wcli("runs", "list", "--worker", "overdue-task-review").exit_code == 0


def test_unknown_template_is_not_found_like_templates_show(wcli):
    assert wcli("templates", "show", "nosuch").exit_code == 3
    result = wcli("worker", "new", "x", "--template", "nosuch")
    assert result.exit_code == 3 and "unknown template 'nosuch'" in result.output


# -- records show --json | records import --


def test_records_show_json_round_trips_through_import(wcli):
    shown = json.loads(wcli("records", "show", "T-1042", "--json").output)
    shown["fields"]["status"] = "blocked"
    text = json.dumps(shown)
    result = wcli("records", "import", "-", input=text)
    assert result.exit_code == 0, result.output
    assert "imported 1 record: 0 new, 1 replaced" in result.output
    again = json.loads(wcli("records", "show", "T-1042", "--json").output)
    assert again["fields"]["status"] == "blocked"
    assert "fields" not in again["fields"] and "source" not in again["fields"]
    assert again["links"] == shown["links"]
    assert len(again["comments"]) == len(shown["comments"])  # kept keys: not doubled
    table = wcli("records", "show", "T-1042").output
    assert "{" not in table and "status:       blocked" in table


def test_records_import_validates_everything_and_writes_nothing_when_invalid(wcli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [
                {"id": "T-1", "type": "task", "title": "fine"},
                {"id": "T-2", "type": "nosuch", "title": "bad type"},
                {"id": "T-1", "type": "task", "title": "duplicate"},
                {"id": "T-3", "type": "task", "title": "x", "fields": ["not", "a", "mapping"]},
            ]
        )
    )
    result = wcli("records", "import", str(bad))
    assert result.exit_code == 2
    assert "record 2: type: unknown record type 'nosuch'" in result.output
    assert "record 3: id: T-1 is also record 1" in result.output
    assert "record 4: fields: must be a mapping" in result.output
    assert "nothing was imported" in result.output
    assert wcli("records", "show", "T-1").exit_code == 3


def test_records_import_dry_run_and_json_lines(wcli, tmp_path):
    lines = tmp_path / "new.jsonl"
    lines.write_text(
        '{"id": "T-7001", "type": "task", "title": "one", "status": "open"}\n'
        '{"id": "T-1042", "type": "task", "title": "replaced title"}\n'
    )
    dry = json.loads(wcli("records", "import", str(lines), "--dry-run", "--json").output)
    assert dry == {"dry_run": True, "added": ["T-7001"], "replaced": ["T-1042"]}
    assert wcli("records", "show", "T-7001").exit_code == 3
    assert (
        "would import 2 records: 1 new, 1 replaced"
        in wcli("records", "import", str(lines), "--dry-run").output
    )
    assert wcli("records", "import", str(lines)).exit_code == 0
    assert wcli("records", "show", "T-7001").exit_code == 0


# -- Ctrl-C --


def _unfinished_run(workspace) -> str:
    """A running run owned by this (live) test process: it stays unfinished."""
    run = Run(
        id=new_run_id(),
        worker="overdue-task-review",
        config_hash="x",
        config={},
        executor="echo",
        created=now_iso(),
        owner=current_owner(),
        transitions=[{"status": "pending", "at": now_iso()}],
    )
    run.move("queued")
    run.move("running")
    return History(workspace).create(run).id


def _in_its_loop(workspace, *args, then) -> subprocess.CompletedProcess:
    """The command, ``then(process)`` once it is inside its watch loop, and how it ended."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "workerctl", "-w", str(workspace.root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)  # imported and inside its watch loop
    then(proc)
    out, err = proc.communicate(timeout=20)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _interrupt(workspace, *args) -> subprocess.CompletedProcess:
    return _in_its_loop(workspace, *args, then=lambda proc: proc.send_signal(signal.SIGINT))


@pytest.mark.slow
def test_ctrl_c_on_a_watch_exits_130(workspace):
    _unfinished_run(workspace)
    listed = _interrupt(workspace, "runs", "list", "--watch", "0.1", "--format", "ids")
    assert listed.returncode == 130, listed.stderr
    assert "Traceback" not in listed.stderr
    shown = _interrupt(workspace, "worker", "show", "overdue-task-review", "--watch", "0.1")
    assert shown.returncode == 130, shown.stderr


# -- no Python reprs, no "1 runs" --


def test_tables_and_csv_show_no_python_reprs(wcli):
    out = wcli("records", "list").output
    assert "['" not in out and "contacts: C-12, C-14" in out
    csv_text = wcli("records", "list", "--format", "csv").output
    assert "False" not in csv_text and "True" not in csv_text and "['" not in csv_text
    assert ",false," in csv_text
    make_worker(
        wcli.workspace,
        "reader",
        executor=json.dumps(
            {
                "name": "echo",
                "script": [{"tool": "read_task", "arguments": {"task_id": "T-1042"}}, {"output": "done"}],
            }
        ),
    )
    run_id = start_json(wcli, "reader", "--task", "T-1042")["id"]
    card = wcli("run", "inspect", run_id).output
    assert "{'" not in card and 'tool read_task(task_id="T-1042")' in card
    runs_csv = wcli("runs", "list", "--format", "csv").output
    assert "False" not in runs_csv and "True" not in runs_csv
    stats = wcli("runs", "stats").output
    assert "1 run (" in stats and "1 runs" not in stats


# -- every run points at a stored worker version --


def test_a_hand_made_worker_edited_after_a_run_can_be_restored(workspace, wcli):
    path = make_worker(workspace, "handmade")
    original = path.read_text()
    first = start_json(wcli, "handmade", "--task", "T-1042")
    path.write_text(original.replace("Summarise the task", "Translate the task"))
    history = json.loads(wcli("worker", "history", "handmade", "--json").output)
    assert len(history) == 2  # the version that ran is kept, and the edit found on disk
    ran = next(v for v in history if v["version"] == first["worker_version"])
    assert ran["config_hash"] == first["config_hash"]
    assert ran["action"] == "kept when a run started"
    restored = wcli("worker", "restore", "handmade", "--run", first["id"])
    assert restored.exit_code == 0, restored.output
    assert path.read_text() == original
    second = start_json(wcli, "handmade", "--task", "T-1042", "--allow-repeat")  # same config
    assert second["config_hash"] == first["config_hash"]
    assert wcli("worker", "restore", "handmade").exit_code == 2
    write_worker(workspace, "other", original.replace("name: handmade", "name: other"))
    assert wcli("worker", "restore", "other", "--run", first["id"]).exit_code == 2


def test_restore_by_run_for_a_run_stored_before_versions_were_kept(workspace, wcli):
    path = make_worker(workspace, "older")
    original = path.read_text()
    run = start_json(wcli, "older", "--task", "T-1042")
    history = History(workspace)
    history.update(run["id"], lambda r: setattr(r, "worker_version", None))
    path.write_text(original.replace("Summarise the task", "Rewrite the task"))
    assert wcli("worker", "history", "older").exit_code == 0  # the edit is found on disk
    restored = wcli("worker", "restore", "older", "--run", run["id"])
    assert restored.exit_code == 0, restored.output  # matched by configuration hash
    assert path.read_text() == original


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "list", "--watch", "0.1", "--format", "ids"),
        ("worker", "show", "overdue-task-review", "--watch", "0.1"),
    ],
)
def test_a_watch_whose_workspace_is_removed_says_so(workspace, args):
    """A watch went on over an empty history (exit 0, "no runs match") once its workspace
    was removed; a new command says "not a workspace" (exit 2), and so does the watch."""
    _unfinished_run(workspace)
    ended = _in_its_loop(workspace, *args, then=lambda proc: shutil.rmtree(workspace.root))
    out, err = ended.stdout, ended.stderr
    assert ended.returncode == 2, (out, err)
    assert "is not a workspace" in err and "Traceback" not in err
