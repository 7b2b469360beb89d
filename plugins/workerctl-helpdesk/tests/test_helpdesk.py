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
        "register_record_sources", "register_tool_categories", "register_tools",
        "register_output_modes", "register_templates"}
    tools = json.loads(workerctl_cli("tools", "list", "--category", "support", "--json").output)
    assert {t["name"]: t["writes"] for t in tools} == {
        "read_ticket": False, "list_open_tickets": False, "add_ticket_reply": True,
        "set_ticket_priority": True}
    templates = json.loads(workerctl_cli("templates", "list", "--json").output)
    assert "helpdesk-triage-draft" in {t["key"] for t in templates}


def test_worker_from_the_template_runs_on_a_ticket_end_to_end(helpdesk, workerctl_cli,
                                                             workerctl_run):
    assert workerctl_cli("worker", "new", "triage", "--template",
                         "helpdesk-triage-draft").exit_code == 0
    assert workerctl_cli("worker", "validate", "triage").exit_code == 0
    assert workerctl_cli("worker", "activate", "triage").exit_code == 0
    run = workerctl_run("triage", record="TK-101")
    assert run.status == "completed", run.error
    got = {(r["type"], r["id"]) for r in run.context["records"]}
    assert {("ticket", "TK-101"), ("company", "CO-5"), ("contact", "C-21"),
            ("product", "PR-11")} <= got
    shown = json.loads(workerctl_cli("records", "show", "TK-101", "--json").output)
    assert [c["run_id"] for c in shown["comments"]] == [run.id]
    assert run.needs_review is True


def test_tools_through_the_gate(helpdesk, workerctl_write_worker, workerctl_run):
    script = [{"tool": "read_ticket", "arguments": {"ticket_id": "TK-102"}},
              {"tool_calls": [
                  {"tool": "set_ticket_priority",
                   "arguments": {"ticket_id": "TK-102", "priority": "high"}},
                  {"tool": "add_ticket_reply",
                   "arguments": {"ticket_id": "TK-102", "text": "Checking the licence count"}}]},
              {"output": "Priority set to high; I added a reply. Next step: a person checks "
                         "the invoice."}]
    workerctl_write_worker("desk", context_sources=["tickets"], tool_categories=["support"],
                           executor={"name": "echo", "script": script})
    run = workerctl_run("desk", record="TK-102")
    assert run.status == "completed", run.error
    assert [e["kind"] for e in run.side_effects] == ["update", "comment"]
    assert run.iterations[0].tool_calls[0].category == "support"
    bad_priority = [{"tool": "set_ticket_priority",
                     "arguments": {"ticket_id": "TK-102", "priority": "asap"}}, {"output": "x"}]
    workerctl_write_worker("desk2", context_sources=["tickets"], tool_categories=["support"],
                           executor={"name": "echo", "script": bad_priority})
    run = workerctl_run("desk2", record="TK-102")
    assert "must be one of" in run.iterations[0].tool_calls[0].result_summary


def test_support_tools_refused_without_the_category(helpdesk, workerctl_write_worker,
                                                   workerctl_run):
    workerctl_write_worker("nosy", context_sources=["tickets"], tool_categories=["crm"],
                           executor={"name": "echo", "script": [
                               {"tool": "add_ticket_reply",
                                "arguments": {"ticket_id": "TK-101", "text": "hi"}}]})
    run = workerctl_run("nosy", record="TK-101")
    assert run.error.kind == "tool_not_allowed" and "support" in run.error.message


def test_validate_knows_the_plugin(helpdesk, workerctl_cli, workerctl_write_worker):
    workerctl_write_worker("typo", context_sources=["ticket"], tool_categories=["suport"])
    out = workerctl_cli("worker", "validate", "typo").output
    assert "unknown context source 'ticket'" in out and "tickets" in out
    assert "unknown tool category 'suport'" in out and "support" in out
