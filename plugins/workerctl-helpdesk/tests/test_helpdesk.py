"""The example plugin, tested with workerctl's own pytest fixtures."""

from __future__ import annotations

import json

import pytest
from workerctl_helpdesk.tickets import write_sample_tickets


@pytest.fixture
def helpdesk(workerctl_workspace):
    write_sample_tickets(workerctl_workspace)
    return workerctl_workspace


def test_the_plugin_registers_through_every_hook(helpdesk, workerctl_cli):
    plugins = {p["name"]: p for p in json.loads(workerctl_cli("plugins", "list", "--json").output)}
    assert set(plugins["helpdesk"]["hooks"]) == {
        "register_record_sources",
        "register_tool_categories",
        "register_tools",
        "register_output_modes",
        "register_templates",
    }
    tools = json.loads(workerctl_cli("tools", "list", "--category", "support", "--json").output)
    assert {t["name"]: t["writes"] for t in tools} == {
        "read_ticket": False,
        "list_open_tickets": False,
        "add_ticket_reply": True,
        "set_ticket_priority": True,
    }
    templates = json.loads(workerctl_cli("templates", "list", "--json").output)
    assert "helpdesk-triage-draft" in {t["key"] for t in templates}


def test_worker_from_the_template_runs_on_a_ticket_end_to_end(helpdesk, workerctl_cli, workerctl_run):
    assert workerctl_cli("worker", "new", "triage", "--template", "helpdesk-triage-draft").exit_code == 0
    assert workerctl_cli("worker", "validate", "triage").exit_code == 0
    assert workerctl_cli("worker", "activate", "triage").exit_code == 0
    run = workerctl_run("triage", record="TK-101")
    assert run.status == "completed", run.error
    got = {(r["type"], r["id"]) for r in run.context["records"]}
    assert {("ticket", "TK-101"), ("company", "CO-5"), ("contact", "C-21"), ("product", "PR-11")} <= got
    assert run.needs_review is True
    # the note can influence a support decision: it waits for a person, then is written
    assert run.approval == "waiting" and [e["state"] for e in run.side_effects] == ["held"]
    assert workerctl_cli("records", "show", "TK-101", "--json").json["comments"] == []
    assert workerctl_cli("run", "approve", run.id, "--by", "lead").exit_code == 0
    shown = workerctl_cli("records", "show", "TK-101", "--json").json
    assert [c["run_id"] for c in shown["comments"]] == [run.id]


def test_tools_through_the_gate(helpdesk, workerctl_write_worker, workerctl_run):
    script = [
        {"tool": "read_ticket", "arguments": {"ticket_id": "TK-102"}},
        {
            "tool_calls": [
                {"tool": "set_ticket_priority", "arguments": {"ticket_id": "TK-102", "priority": "high"}},
                {
                    "tool": "add_ticket_reply",
                    "arguments": {"ticket_id": "TK-102", "text": "Checking the licence count"},
                },
            ]
        },
        {"output": "Priority set to high; I added a reply. Next step: a person checks the invoice."},
    ]
    workerctl_write_worker(
        "desk",
        context_sources=["tickets"],
        tool_categories=["support"],
        executor={"name": "echo", "script": script},
    )
    run = workerctl_run("desk", record="TK-102")
    assert run.status == "completed", run.error
    assert [(e["kind"], e["state"]) for e in run.side_effects] == [("update", "held"), ("comment", "held")]
    assert run.iterations[0].tool_calls[0].category == "support"
    bad_priority = [
        {"tool": "set_ticket_priority", "arguments": {"ticket_id": "TK-102", "priority": "asap"}},
        {"output": "x"},
    ]
    workerctl_write_worker(
        "desk2",
        context_sources=["tickets"],
        tool_categories=["support"],
        executor={"name": "echo", "script": bad_priority},
    )
    run = workerctl_run("desk2", record="TK-102")
    assert "must be one of" in run.iterations[0].tool_calls[0].result_summary


def test_support_tools_refused_without_the_category(helpdesk, workerctl_write_worker, workerctl_run):
    workerctl_write_worker(
        "nosy",
        context_sources=["tickets"],
        tool_categories=["crm"],
        executor={
            "name": "echo",
            "script": [{"tool": "add_ticket_reply", "arguments": {"ticket_id": "TK-101", "text": "hi"}}],
        },
    )
    run = workerctl_run("nosy", record="TK-101")
    assert run.error.kind == "tool_not_allowed" and "support" in run.error.message


def test_validate_knows_the_plugin(helpdesk, workerctl_cli, workerctl_write_worker):
    workerctl_write_worker("typo", context_sources=["ticket"], tool_categories=["suport"])
    out = workerctl_cli("worker", "validate", "typo").output
    assert "unknown context source 'ticket'" in out and "tickets" in out
    assert "unknown tool category 'suport'" in out and "support" in out


def test_the_support_category_declares_that_its_output_needs_a_person(
    helpdesk, workerctl_cli, workerctl_write_worker
):
    categories = {c["name"]: c for c in json.loads(workerctl_cli("tools", "categories", "--json").output)}
    assert categories["support"]["needs_review"] is True
    assert categories["productivity"]["needs_review"] is False
    workerctl_write_worker(
        "replier", context_sources=["tickets"], tool_categories=["support"], output_mode="review_note"
    )
    shown = json.loads(workerctl_cli("worker", "show", "replier", "--json").output)
    assert shown["needs_review"] is True  # decided by the plugin's declaration
    workerctl_write_worker(
        "opt-out",
        context_sources=["tickets"],
        tool_categories=["support"],
        output_mode="review_note",
        review_required=False,
    )
    shown = json.loads(workerctl_cli("worker", "show", "opt-out", "--json").output)
    assert shown["needs_review"] is False


def test_records_import_sends_each_record_to_the_source_that_owns_its_type(helpdesk, workerctl_cli, tmp_path):
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(
        "- {id: TK-200, type: ticket, title: Printer on fire, status: open,\n"
        "   priority: urgent, links: {company: CO-5}}\n"
        "- {id: T-9000, type: task, title: Order a new printer}\n"
    )
    result = workerctl_cli("records", "import", str(mixed))
    assert result.exit_code == 0, result.output
    assert "imported 2 records: 2 new, 0 replaced" in result.output
    ticket = json.loads(workerctl_cli("records", "show", "TK-200", "--json").output)
    assert ticket["source"] == "helpdesk" and ticket["fields"]["priority"] == "urgent"
    task = json.loads(workerctl_cli("records", "show", "T-9000", "--json").output)
    assert task["source"] == "builtin"
    builtin = (helpdesk.records_file).read_text()
    assert "TK-200" not in builtin  # not written into the built-in store
    again = workerctl_cli("records", "import", str(mixed))
    assert "imported 2 records: 0 new, 2 replaced" in again.output


def test_an_import_with_a_type_no_source_owns_changes_nothing(helpdesk, workerctl_cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {id: TK-300, type: ticket, title: fine}\n- {id: S-1, type: spaceship, title: nope}\n")
    result = workerctl_cli("records", "import", str(bad))
    assert result.exit_code == 2
    assert "record 2: type: unknown record type 'spaceship'" in result.output
    assert workerctl_cli("records", "show", "TK-300").exit_code == 3
