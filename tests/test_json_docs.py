"""docs/json.md documents exactly the fields the JSON output has."""

from __future__ import annotations

import json
import re

from helpers import ROOT

DOC = (ROOT / "docs" / "json.md").read_text()


def documented(section: str) -> set[str]:
    body = DOC.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in re.findall(r"^\| (.+?) \|", body, re.M):
        names.update(re.findall(r"`(\w+)`", row))
    return names - {"field"}


def test_runs_list_fields(wcli):
    wcli("run", "start", "overdue-task-review", "--task", "T-1042")
    row = json.loads(wcli("runs", "list", "--json").output)[0]
    assert set(row) == documented("runs list")


def test_run_inspect_fields(wcli):
    run_id = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--json").output)[
        "id"
    ]
    data = json.loads(wcli("run", "inspect", "--id", run_id, "--json").output)
    assert set(data) == documented("run inspect --json")


def test_run_review_fields(wcli):
    run_id = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--json").output)[
        "id"
    ]
    checklist = json.loads(wcli("run", "review", "--id", run_id, "--json").output)
    assert set(checklist) | {"review"} == documented("run review --json")
    assert {c["verdict"] for c in checklist["checks"]} <= {"pass", "fail", "cannot_tell"}
    stored = json.loads(
        wcli(
            "run",
            "review",
            "--id",
            run_id,
            "--json",
            "--verdict",
            "approved",
            "--matches-instructions",
            "yes",
            "--next-action-clear",
            "yes",
            "--reviewer",
            "ana",
        ).output
    )
    assert set(stored) == documented("run review --json")


def test_workers_list_fields(workspace, wcli):
    (workspace.workers_dir / "broken.yaml").write_text("name: broken\n")
    rows = json.loads(wcli("workers", "list", "--json").output)
    assert any(not r["valid"] for r in rows) and any(r["valid"] for r in rows)
    for row in rows:  # every row, valid or broken, has every field (one shape for a script)
        assert set(row) == documented("workers list"), row["name"]
        assert isinstance(row["problems"], list) and (row["problems"] == []) == row["valid"]


def table(section: str) -> list[tuple[str, str]]:
    """docs/json.md's table of ``section``: (the field names, the meaning) per row."""
    body = DOC.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (.+?) \| (.+) \|$", body, re.M)
    return [(", ".join(re.findall(r"`(\w+)`", names)), meaning) for names, meaning in rows[2:]]


def test_the_tables_are_the_declarations_beside_the_types():
    """Each table of docs/json.md is, row for row, what is declared beside the type it
    describes (field names and meaning): change one, and this test names the other."""
    from workerctl.runs.changes import CARD_FACT_FIELDS
    from workerctl.runs.model import RUN_FIELDS, SUMMARY_FIELDS
    from workerctl.runs.review import CHECKLIST_FIELDS
    from workerctl.workers.operations import WORKER_ROW_FIELDS

    for section, declared in (
        ("runs list", SUMMARY_FIELDS),
        ("run inspect --json", {**RUN_FIELDS, **CARD_FACT_FIELDS}),
        ("run review --json", CHECKLIST_FIELDS),
        ("workers list", WORKER_ROW_FIELDS),
    ):
        expected = [(names, meaning) for names, meaning in declared.items()]
        assert table(section) == expected, "\n".join(
            [f"docs/json.md, '{section}' should read:"]
            + [f"| {', '.join(f'`{n}`' for n in names.split(', '))} | {m} |" for names, m in expected]
        )
