"""One rule for every state file: the wrong shape is damage, never "empty".

For each kind of file workerctl reads (index shards, run files, markers,
records.json, versions.json, comment files), valid JSON of the wrong shape is
reported as damaged: exit 4, a message naming the file, what is wrong and how
to recover, and the file left byte for byte, even by a command that would
have written it.
"""

from __future__ import annotations

import json

import pytest

from helpers import run_workerctl
from workerctl.history.store import History

WRONG = {"null": "null", "list": "[]", "empty object": "{}", "string": '"x"'}
MISSING_FIELDS = {
    "shard": '{"runs": {"1": {"id": "aaaaaaaa", "status": "running"}}}',
    "run file": '{"id": "RUNID", "status": "completed"}',
    "marker": '{"id": "RUNID"}',
    "records": '{"records": {"1": {"id": "T-1042"}}}',
    "versions": '{"versions": {"1": {"worker": "overdue-task-review"}}}',
    "comments": '{"comments": {"1": {"text": "hello"}}}',
}


@pytest.fixture
def workspace(one_run):
    """A workspace with one finished run, so every kind of state file exists (a copy
    of one made once: see ``one_run`` in conftest)."""
    return one_run[0]


@pytest.fixture
def ran(one_run):
    """The id of that run."""
    return one_run[1]


def target(workspace, kind: str, run_id: str):
    """The file of ``kind`` and the commands that must refuse it (read, and write)."""
    history = History(workspace)
    return {
        "shard": (
            history.shard_path(1),
            [("runs", "list"), ("run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat")],
        ),
        "run file": (
            history.body_path(run_id),
            [
                ("run", "inspect", "--id", run_id),
                (
                    "run",
                    "review",
                    "--id",
                    run_id,
                    "--verdict",
                    "approved",
                    "--matches-instructions",
                    "yes",
                    "--next-action-clear",
                    "yes",
                ),
            ],
        ),
        "marker": (history.marker_path(run_id), [("runs", "list"), ("run", "inspect", "--id", run_id)]),
        "records": (
            workspace.records_file,
            [("records", "list"), ("records", "import", str(workspace.root / "r.yaml"))],
        ),
        "versions": (
            workspace.versions_file,
            [("worker", "history", "overdue-task-review"), ("worker", "pause", "overdue-task-review")],
        ),
        "comments": (workspace.state_dir / "comments" / "+t-1042.json", [("records", "show", "T-1042")]),
    }[kind]


CASES = [
    (kind, name, text)
    for kind in MISSING_FIELDS
    for name, text in [*WRONG.items(), ("missing fields", MISSING_FIELDS[kind])]
]


@pytest.mark.parametrize(("kind", "shape", "text"), CASES, ids=[f"{k}-{n}" for k, n, _ in CASES])
def test_wrong_shape_is_damage_and_left_untouched(workspace, ran, kind, shape, text):
    (workspace.root / "r.yaml").write_text("- {id: T-9, type: task, title: New}\n")
    path, commands = target(workspace, kind, ran)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace("RUNID", ran))
    before = path.read_bytes()
    for command in commands:
        result = run_workerctl(*command, workspace=workspace)
        assert result.returncode == 4, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert str(path) in result.stderr and "damaged state file" in result.stderr
        assert "hint:" in result.stderr
        assert path.read_bytes() == before, f"{command} wrote over the damaged {kind}"


def test_an_empty_marker_is_a_power_cut_and_is_settled(workspace, ran):
    """Markers are not fsynced: an empty one (what a power cut can leave) reads as
    ownerless and its run is settled from the run file, not reported."""
    history = History(workspace)
    history.marker_path(ran).parent.mkdir(parents=True, exist_ok=True)
    history.marker_path(ran).write_bytes(b"")
    result = run_workerctl("runs", "list", "--json", workspace=workspace)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["status"] == "completed"
    assert not history.marker_path(ran).exists()


@pytest.mark.parametrize("text", ["[]", "{}", '"x"', '{"id": 1}', "not json"])
def test_reindex_moves_a_bad_run_file_aside_and_rebuilds_the_rest(workspace, ran, text):
    """Issue 13, case 3: a run file of the wrong shape no longer stops recovery."""
    second = json.loads(
        run_workerctl(
            "run",
            "start",
            "overdue-task-review",
            "--task",
            "T-1042",
            "--allow-repeat",
            "--json",
            workspace=workspace,
        ).stdout
    )["id"]
    history = History(workspace)
    history.body_path(ran).write_text(text)
    inspect = run_workerctl("run", "inspect", "--id", ran, workspace=workspace)
    assert inspect.returncode == 4 and "Traceback" not in inspect.stderr
    result = run_workerctl("runs", "reindex", workspace=workspace)
    assert result.returncode == 0, result.stderr
    aside = history.body_path(ran).with_name(f"{ran}.json.damaged")
    assert aside.read_text() == text
    assert str(aside) in result.stdout + result.stderr
    listed = json.loads(run_workerctl("runs", "list", "--json", workspace=workspace).stdout)
    assert [r["id"] for r in listed] == [second]


def test_a_damaged_file_met_during_a_run_fails_the_run_and_exits_4(workspace, ran):
    """The context of a run reads the record's comments: a damaged comment file is
    reported like anywhere else (exit 4, untouched), and the run is recorded as
    failed, saying which file, instead of being left running or passing as ok."""
    path = workspace.state_dir / "comments" / "+t-1042.json"
    path.write_text("[]")
    result = run_workerctl(
        "run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat", workspace=workspace
    )
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert str(path) in result.stderr and "Traceback" not in result.stderr
    assert path.read_text() == "[]"
    newest = json.loads(run_workerctl("runs", "list", "--json", workspace=workspace).stdout)[0]
    card = json.loads(run_workerctl("run", "inspect", newest["id"], "--json", workspace=workspace).stdout)
    assert card["status"] == "failed" and str(path) in card["error"]["message"]
