"""workerctl run diff A B: configuration, iterations side by side, output, figures."""

from __future__ import annotations

import json

from helpers import make_worker


def test_run_diff_shows_what_changed(workspace, wcli):
    path = make_worker(
        workspace,
        "differ",
        executor=json.dumps(
            {
                "name": "echo",
                "script": [
                    {"tool": "read_task", "arguments": {"task_id": "T-1042"}},
                    {"output": "All fine."},
                ],
            }
        ),
    )
    a = json.loads(wcli("run", "start", "differ", "--task", "T-1042", "--json").output)
    path.write_text(
        path.read_text()
        .replace("Summarise the task", "Summarise the task briefly")
        .replace("[tasks]", "[tasks, projects]")
        .replace('{"output": "All fine."}', '{"tool": "read_invoice", "arguments": {"invoice_id": "INV-1"}}')
    )
    b = json.loads(wcli("run", "start", "differ", "--task", "T-1042", "--json").output)
    assert a["status"] == "completed" and b["status"] == "failed"
    doc = json.loads(wcli("run", "diff", a["id"], b["id"], "--json").output)
    assert doc["config"]["same"] is False
    assert doc["config"]["changed"] == ["instructions", "context_sources", "executor"]
    assert doc["config"]["fields"]["context_sources"] == {"a": ["tasks"], "b": ["tasks", "projects"]}
    assert "+Summarise the task briefly" in doc["config"]["instructions_diff"]
    first, second = doc["iterations"]
    assert first["same"] is True and first["a"]["tool_calls"][0]["name"] == "read_task"
    assert second["same"] is False and second["a"]["text"] == "All fine."
    refused = second["b"]["tool_calls"][0]
    assert refused["name"] == "read_invoice" and refused["allowed"] is False
    assert doc["output"]["same"] is False and "-All fine." in doc["output"]["diff"]
    assert doc["duration"]["delta"] == round(doc["duration"]["b"] - doc["duration"]["a"], 6)
    assert doc["tokens"]["input"] == {"a": None, "b": None, "delta": None}
    text = wcli("run", "diff", a["id"][:4], b["id"]).output
    for words in (
        "changed: instructions, context_sources, executor",
        'context_sources: ["tasks"] → ["tasks", "projects"]',
        "+Summarise the task briefly",
        "REFUSED",
        "final: All fine.",
        "-All fine.",
        "duration:",
        "tokens: none reported",
    ):
        assert words in text, words
    assert "{'" not in text


def test_run_diff_of_the_same_configuration_and_unknown_ids(wcli):
    a = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--json").output)
    b = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-1043", "--json").output)
    text = wcli("run", "diff", a["id"], b["id"]).output
    assert f"configuration: the same ({a['config_hash']})" in text
    assert "record: different" in text
    assert wcli("run", "diff", a["id"], "zzzzzzzz").exit_code == 3
    assert wcli("run", "diff", a["id"]).exit_code == 2
