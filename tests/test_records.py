"""Records: import, list, show with the comments workers left."""

from __future__ import annotations

import json

import pytest

from helpers import run_workerctl


def test_import_yaml_and_json(workspace, wcli, tmp_path):
    (tmp_path / "more.yaml").write_text(
        "records:\n"
        "  - id: T-5000\n    type: task\n    title: New task\n    due: 2026-01-05\n"
        "    links: {project: P-7}\n    safe_for_testing: true\n"
        "    comments:\n      - {author: Ann, text: first note, created: 2026-01-01}\n"
        "  - id: P-7\n    type: project\n    title: Renamed launch\n"
    )
    result = wcli("records", "import", str(tmp_path / "more.yaml"))
    assert result.exit_code == 0 and "1 new, 1 replaced" in result.output
    (tmp_path / "one.json").write_text(json.dumps([{"id": "D-9", "type": "doc", "title": "Spec"}]))
    assert wcli("records", "import", str(tmp_path / "one.json")).exit_code == 0
    shown = json.loads(wcli("records", "show", "T-5000", "--json").output)
    assert shown["fields"]["due"] == "2026-01-05" and shown["safe_for_testing"] is True
    assert shown["comments"][0]["created"] == "2026-01-01"
    assert json.loads(wcli("records", "show", "P-7", "--json").output)["title"] == "Renamed launch"
    again = wcli("records", "import", str(tmp_path / "more.yaml"))
    assert "0 new, 2 replaced" in again.output
    assert len(json.loads(wcli("records", "show", "T-5000", "--json").output)["comments"]) == 1
    docs = json.loads(wcli("records", "list", "--type", "doc", "--json").output)
    assert {d["id"] for d in docs} == {"D-2", "D-4", "D-9"}


def test_import_errors_name_the_record_and_field(wcli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: X-1\n  type: spaceship\n  title: nope\n")
    result = wcli("records", "import", str(bad))
    assert result.exit_code == 2
    assert "record 1: type: unknown record type 'spaceship'" in result.output
    assert wcli("records", "import", str(tmp_path / "missing.yaml")).exit_code == 3
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    assert wcli("records", "import", str(broken)).exit_code == 2


def test_show_lists_worker_comments_with_their_run(workspace, wcli):
    run_id = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--json").output)[
        "id"
    ]
    shown = wcli("records", "show", "T-1042").output
    assert f"worker:overdue-task-review (run {run_id})" in shown
    assert "Comments (3)" in shown
    assert wcli("records", "show", "T-0000").exit_code == 3


def test_records_are_seeded_from_workspace_files(tmp_path):
    ws = tmp_path / "git-ws"
    (ws / "workers").mkdir(parents=True)
    (ws / "records").mkdir()
    (ws / "workerctl.yaml").write_text("name: git-ws\n")
    (ws / "records" / "tasks.yaml").write_text("- {id: T-1, type: task, title: Seeded}\n")
    listed = run_workerctl("-w", str(ws), "records", "list", "--format", "ids")
    assert listed.stdout.split() == ["T-1"]
    assert (ws / ".workerctl" / "records.json").exists()


@pytest.mark.parametrize(
    ("second", "named"),
    [
        (
            '- {id: B-1, type: task, title: ok}\n- {id: "a/b", type: task, title: odd}\n',
            "records/b.yaml: record 2",
        ),
        ("- {id: T-1, type: task, title: again}\n", "records/b.yaml: id: T-1 is also in records/a.yaml"),
    ],
)
def test_a_bad_seed_file_is_named_and_never_blamed_on_another_import(tmp_path, second, named):
    """The fourth fresh-brief attack: a bad record in the seed folder was reported as
    "records/: record 3" (counted across files), and 'records import GOOD.yaml' of a
    valid file said "GOOD.yaml: 1 invalid record(s)". Each seed file is checked as
    itself, and its error stays its own (``SeedError``)."""
    ws = tmp_path / "git-ws"
    (ws / "workers").mkdir(parents=True)
    (ws / "records").mkdir()
    (ws / "workerctl.yaml").write_text("name: git-ws\n")
    (ws / "records" / "a.yaml").write_text("- {id: T-1, type: task, title: Seeded}\n")
    (ws / "records" / "b.yaml").write_text(second)
    listed = run_workerctl("-w", str(ws), "records", "list")
    assert listed.returncode == 2 and named in listed.stderr, listed.stderr
    good = tmp_path / "good.yaml"
    good.write_text("- {id: G-1, type: task, title: fine}\n")
    imported = run_workerctl("-w", str(ws), "records", "import", str(good))
    assert imported.returncode == 2 and named in imported.stderr
    assert "good.yaml" not in imported.stderr, imported.stderr
    (ws / "records" / "b.yaml").write_text("- {id: B-1, type: task, title: ok}\n")
    assert run_workerctl("-w", str(ws), "records", "import", str(good)).returncode == 0
