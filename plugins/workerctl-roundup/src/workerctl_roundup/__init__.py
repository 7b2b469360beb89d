"""workerctl-roundup: Roundup issues as records, the 'tracker' tools, a message output mode.

Every hook it implements is below; the REST client is ``source.RoundupSource``.
"""

from __future__ import annotations

from typing import Any

from workerctl.api import (
    OutputContext,
    OutputMode,
    Record,
    RecordChanged,
    RecordSourceError,
    Template,
    Tool,
    ToolContext,
    ToolError,
    hookimpl,
)
from workerctl_roundup.source import RoundupSource

__all__ = ["RoundupSource"]


@hookimpl
def register_record_sources(register: Any) -> None:
    register(RoundupSource)


@hookimpl
def register_tool_categories(register: Any) -> None:
    # messages and statuses are what the people on the issue see next: a person reviews them
    register(
        "tracker",
        "Issue tracker: read and list issues, add messages, set status or priority",
        needs_review=True,
    )


def _issue(ctx: ToolContext, record_id: str) -> Record:
    """The issue, read through the run's records API (gated, access-checked, logged)."""
    return ctx.records.get(record_id, type="issue")


def read_issue(ctx: ToolContext, issue_id: str) -> dict[str, Any]:
    record = _issue(ctx, issue_id)
    data = record.to_dict()
    data["messages"] = [
        {"id": c.id, "author": c.author, "text": c.text, "created": c.created, "run_id": c.run_id}
        for c in ctx.records.comments(issue_id)
    ]
    return dict(data)


def list_issues(
    ctx: ToolContext, status: str | None = None, keyword: str | None = None
) -> list[dict[str, Any]]:
    filters = {k: v for k, v in (("status", status), ("keywords", keyword)) if v}
    try:
        found = ctx.records.list("issue", filters=filters)  # filtered on the tracker's server
    except RecordSourceError as refused:
        if refused.status in (400, 409):  # a status or keyword the tracker does not know
            raise ToolError(refused.message) from None
        raise
    return [{"id": r.id, "title": r.title, **r.fields, "source": r.source} for r in found]


def add_issue_message(ctx: ToolContext, issue_id: str, text: str) -> dict[str, Any]:
    _issue(ctx, issue_id)
    if not text.strip():
        raise ToolError("the message is empty")
    written = ctx.records.add_comment(issue_id, text)
    return {"message_id": written.comment_id, "written": written.created, "state": written.state}


def _set(ctx: ToolContext, issue_id: str, field: str, value: str) -> dict[str, Any]:
    # no read here: the update is checked (If-Match) against the version the run last
    # read (its context, read_issue), so a change since then is refused, not overwritten
    try:
        written = ctx.records.update(issue_id, {field: value})
    except RecordChanged as changed:
        raise ToolError(f"{changed.message}; {changed.hint}") from None
    except RecordSourceError as refused:
        if refused.status in (400, 409):  # a value the tracker does not know: the model may fix it
            raise ToolError(refused.message) from None
        raise
    return {"issue_id": issue_id, field: value, "state": written.state, "written": written.created}


def set_issue_status(ctx: ToolContext, issue_id: str, status: str) -> dict[str, Any]:
    return _set(ctx, issue_id, "status", status)


def set_issue_priority(ctx: ToolContext, issue_id: str, priority: str) -> dict[str, Any]:
    return _set(ctx, issue_id, "priority", priority)


@hookimpl
def register_tools(register: Any) -> None:
    issue_id = {"type": "string", "description": "the issue's designator, e.g. issue12"}

    def schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
        return {"type": "object", "properties": props, "required": required}

    register(Tool("read_issue", "tracker", "Read one issue with its messages", read_issue,
                  schema({"issue_id": issue_id}, ["issue_id"])))  # fmt: skip
    register(Tool("list_issues", "tracker", "List issues, by status and/or keyword", list_issues,
                  schema({"status": {"type": "string"}, "keyword": {"type": "string"}}, [])))  # fmt: skip
    register(Tool("add_issue_message", "tracker", "Add a message to an issue", add_issue_message,
                  schema({"issue_id": issue_id, "text": {"type": "string"}}, ["issue_id", "text"]),
                  writes=True))  # fmt: skip
    register(Tool("set_issue_status", "tracker", "Set an issue's status (refused if changed since read)",
                  set_issue_status, schema({"issue_id": issue_id, "status": {"type": "string"}},
                                           ["issue_id", "status"]), writes=True))  # fmt: skip
    register(Tool("set_issue_priority", "tracker", "Set an issue's priority (refused if changed since read)",
                  set_issue_priority, schema({"issue_id": issue_id, "priority": {"type": "string"}},
                                             ["issue_id", "priority"]), writes=True))  # fmt: skip


def write_issue_message(ctx: OutputContext, text: str) -> None:
    if ctx.record is not None:
        ctx.records.add_comment(ctx.record.id, text)


@hookimpl
def register_output_modes(register: Any) -> None:
    register(
        OutputMode(
            name="issue_message",
            description="Post the output as a message on the linked tracker issue, once per run",
            needs_record=("issue",),
            apply=write_issue_message,
        )
    )


@hookimpl
def register_templates(register: Any) -> None:
    register(
        Template(
            key="tracker-stale-review",
            title="Stale issue review (Roundup)",
            description="Review one issue nobody touched lately and post a message saying what it needs",
            instructions=(
                "Role: You review one tracker issue that has had no activity for a while.\n\n"
                "Records to review: the linked issue and its messages (read_issue).\n\n"
                "Output format: a message with 'State:' (what the issue is waiting for), "
                "'Next step:' and 'Owner:' (who should take it).\n\n"
                "Do not: close the issue, change its priority, or promise dates.\n\n"
                "Stop and ask for human review when: the issue mentions a customer, security "
                "or data loss.\n"
            ),
            context_sources=["issues"],
            tool_categories=["tracker"],
            output_mode="issue_message",
            max_iterations=4,
            review_required=False,
            output_contract={"sections": ["State", "Next step", "Owner"], "names_record": True},
        )
    )
