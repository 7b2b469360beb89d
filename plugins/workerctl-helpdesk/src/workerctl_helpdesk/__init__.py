"""workerctl-helpdesk: the example plugin. Every hook it implements is below."""

from __future__ import annotations

from workerctl.api import OutputContext, OutputMode, Record, Template, Tool, ToolContext, hookimpl
from workerctl_helpdesk.tickets import PRIORITIES, TicketSource

__all__ = ["PRIORITIES", "TicketSource"]


@hookimpl
def register_record_sources(register):
    register(TicketSource)


@hookimpl
def register_tool_categories(register):
    # replies and priorities are what a customer sees next: a person reviews them
    register("support", "Helpdesk tickets: read them, reply, set priorities", needs_review=True)


def read_ticket(ctx: ToolContext, ticket_id: str) -> dict:
    ticket = ctx.records.get(ticket_id, type="ticket")
    data = ticket.to_dict()
    data["replies"] = [
        {"author": c.author, "text": c.text, "created": c.created} for c in ctx.records.comments(ticket_id)
    ]
    return data


def list_open_tickets(ctx: ToolContext, priority: str | None = None) -> list[dict]:
    def wanted(ticket: Record) -> bool:
        return ticket.fields.get("status") != "closed" and (
            not priority or ticket.fields.get("priority") == priority
        )

    return [
        {
            "id": ticket.id,
            "title": ticket.title,
            "priority": ticket.fields.get("priority"),
            "status": ticket.fields.get("status"),
        }
        for ticket in ctx.records.list("ticket", where=wanted)
    ]


def add_ticket_reply(ctx: ToolContext, ticket_id: str, text: str) -> dict:
    ctx.records.get(ticket_id, type="ticket")
    written = ctx.records.add_comment(ticket_id, text)
    return {"reply_id": written.comment_id, "state": written.state}


def set_ticket_priority(ctx: ToolContext, ticket_id: str, priority: str) -> dict:
    before = ctx.records.get(ticket_id, type="ticket").fields.get("priority")
    written = ctx.records.update(ticket_id, {"priority": priority})
    return {"ticket_id": ticket_id, "priority": priority, "was": before, "state": written.state}


@hookimpl
def register_tools(register):
    ticket_id = {"type": "string", "description": "the ticket id, e.g. TK-101"}
    register(
        Tool(
            "read_ticket",
            "support",
            "Read one helpdesk ticket with its replies",
            read_ticket,
            {"type": "object", "properties": {"ticket_id": ticket_id}, "required": ["ticket_id"]},
        )
    )
    register(
        Tool(
            "list_open_tickets",
            "support",
            "List tickets that are not closed",
            list_open_tickets,
            {"type": "object", "properties": {"priority": {"type": "string", "enum": list(PRIORITIES)}}},
        )
    )
    register(
        Tool(
            "add_ticket_reply",
            "support",
            "Add an internal reply to a ticket",
            add_ticket_reply,
            {
                "type": "object",
                "properties": {"ticket_id": ticket_id, "text": {"type": "string"}},
                "required": ["ticket_id", "text"],
            },
            writes=True,
        )
    )
    register(
        Tool(
            "set_ticket_priority",
            "support",
            "Set a ticket's priority",
            set_ticket_priority,
            {
                "type": "object",
                "properties": {
                    "ticket_id": ticket_id,
                    "priority": {"type": "string", "enum": list(PRIORITIES)},
                },
                "required": ["ticket_id", "priority"],
            },
            writes=True,
        )
    )


def write_ticket_note(ctx: OutputContext, text: str) -> None:
    if ctx.record is not None:
        ctx.records.add_comment(ctx.record.id, text)


@hookimpl
def register_output_modes(register):
    register(
        OutputMode(
            name="ticket_note",
            description="Write the output as an internal note on the linked ticket, once per run",
            needs_record=("ticket",),
            apply=write_ticket_note,
        )
    )


@hookimpl
def register_templates(register):
    register(
        Template(
            key="helpdesk-triage-draft",
            title="Support triage draft (helpdesk tickets)",
            description="Triage one helpdesk ticket and leave an internal note for the support lead",
            instructions=(
                "Role: You triage one helpdesk ticket for the support lead.\n\n"
                "Records to review: the linked ticket and its replies (read_ticket), the customer "
                "contact and company, and the product it names.\n\n"
                "Output format: an internal note with 'Severity:' (low/normal/high/urgent), "
                "'Product:', 'Likely cause:' and 'Draft reply:' for a person to send.\n\n"
                "Do not: send anything to the customer, promise dates or refunds, or close the "
                "ticket.\n\n"
                "Stop and ask for human review when: the customer mentions money, a contract or "
                "legal terms, or the severity is urgent.\n"
            ),
            context_sources=["tickets", "crm", "products"],
            tool_categories=["support"],
            output_mode="ticket_note",
            max_iterations=4,
            review_required=True,
            output_contract={
                "sections": ["Severity", "Product", "Likely cause", "Draft reply"],
                "names_record": True,
                "max_length": 2000,
            },
        )
    )
