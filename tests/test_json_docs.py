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


def braces_after(marker: str) -> set[str]:
    """The names in the first ``{…}`` of docs/json.md after ``marker``."""
    after = DOC.split(marker, 1)[1]
    names, name, depth = set(), "", 0
    for char in after[after.index("{") + 1 :]:
        if depth == 0 and char in ",}":
            names.add(name.split(":")[0].strip().strip("`"))
            name = ""
            if char == "}":
                return names
            continue
        depth += char in "[{"
        depth -= char in "]}"
        name += char
    raise AssertionError(f"no closed {{…}} after {marker!r}")


def test_the_shapes_in_the_prose_are_the_output(wcli):
    """The shapes docs/json.md gives inside sentences and cells are the output's too (a
    fresh-brief attack found three that had drifted: records show said to have the
    listing's status and due, troubleshooting's steps with an undocumented details, the
    owner's boot_id and pid_ns)."""
    listed = json.loads(wcli("records", "list", "--json").output)
    shown = json.loads(wcli("records", "show", "T-1042", "--json").output)
    # "records show --json is the record without the listing's status and due, plus comments"
    assert set(shown) == set(listed[0]) - {"status", "due"} | {"comments"}
    named = DOC.split("`records list --json`: records with `", 1)[1].split("`", 1)[0]
    assert set(listed[0]) == {n.strip() for n in named.split(",")}
    started = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-3001", "--json").output)
    assert started["status"] == "failed"
    walk = json.loads(wcli("run", "troubleshoot", started["id"], "--json").output)
    step = braces_after("each step\n")
    assert all(set(s) == step for s in walk["steps"] + walk["causes"])
    inspected = json.loads(wcli("run", "inspect", started["id"], "--json").output)
    assert set(inspected["owner"]) == braces_after("| `owner` | ")
    assert inspected["context"] == {}  # refused before its context was assembled: documented
    done = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--json").output)
    assert set(done["context"]) == braces_after("| `context` | ")
    # what a cell names besides its braces: fields some entries carry
    extras = {"text", "tool", "text_is_output", "held_because", "seen", "rejected_by", "rejected_at"}
    extras |= {"reason", "approved_by", "approved_at"}
    for effect in done["side_effects"]:
        assert set(effect) <= braces_after("| `side_effects` | `[") | extras, effect
    for step in done["iterations"]:
        assert set(step["usage"]) <= braces_after("`usage`: "), step["usage"]


def test_a_run_refused_its_record_is_no_old_run(wcli):
    """reads and seen are null only for runs recorded before they were kept: a run of
    this version refused its record has read nothing ([] and {}), and review does not
    call it an old run."""
    started = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-3001", "--json").output)
    run = json.loads(wcli("run", "inspect", started["id"], "--json").output)
    assert run["reads"] == [] and run["seen"] == {}
    said = " ".join(e for c in run["checks"] or [] for e in c["evidence"])
    assert "before review snapshots were kept" not in said
