"""Built-in tools over the record source, each in its proper category."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from workerctl.api import Record, Tool, ToolContext, hookimpl


def _id_param(name: str, what: str) -> dict:
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": what}},
        "required": [name],
    }


def _read(ctx: ToolContext, record_id: str, expected: tuple[str, ...]) -> dict:
    record = ctx.records.get(record_id, type=expected)
    data = record.to_dict()
    if record.type == "task":
        data["comments"] = [
            {"author": c.author, "text": c.text, "created": c.created}
            for c in ctx.records.comments(record_id)
        ]
    return data


def read_task(ctx: ToolContext, task_id: str) -> dict:
    return _read(ctx, task_id, ("task",))


def list_project_tasks(ctx: ToolContext, project_id: str) -> list[dict]:
    ctx.records.get(project_id, type="project")
    return [
        {"id": t.id, "title": t.title, "status": t.fields.get("status"), "due": t.fields.get("due")}
        for t in ctx.records.find_linking("task", "project", project_id)
    ]


def list_overdue_tasks(ctx: ToolContext, as_of: str | None = None) -> list[dict]:
    today = as_of or dt.date.today().isoformat()

    def overdue(task: Record) -> bool:
        due, status = task.fields.get("due"), task.fields.get("status")
        return bool(due) and str(due) < today and status not in ("done", "cancelled")

    return [
        {
            "id": task.id,
            "title": task.title,
            "due": task.fields.get("due"),
            "status": task.fields.get("status"),
            "assignee": task.fields.get("assignee"),
        }
        for task in ctx.records.list("task", where=overdue)
    ]


def add_task_comment(ctx: ToolContext, task_id: str, text: str) -> dict:
    ctx.records.get(task_id, type="task")
    written = ctx.records.add_comment(task_id, text)
    return {"comment_id": written.comment_id, "written": written.created, "state": written.state}


def read_contact(ctx: ToolContext, contact_id: str) -> dict:
    return _read(ctx, contact_id, ("contact",))


def read_company(ctx: ToolContext, company_id: str) -> dict:
    return _read(ctx, company_id, ("company",))


def read_invoice(ctx: ToolContext, invoice_id: str) -> dict:
    return _read(ctx, invoice_id, ("invoice",))


def list_company_invoices(ctx: ToolContext, company_id: str) -> list[dict]:
    ctx.records.get(company_id, type="company")
    return [i.to_dict() for i in ctx.records.find_linking("invoice", "company", company_id)]


def read_doc(ctx: ToolContext, doc_id: str) -> dict:
    return _read(ctx, doc_id, ("doc",))


def read_product(ctx: ToolContext, product_id: str) -> dict:
    return _read(ctx, product_id, ("product",))


TOOLS = (
    Tool(
        "read_task",
        "productivity",
        "Read one task with its comments",
        read_task,
        _id_param("task_id", "the task id, e.g. T-1042"),
    ),
    Tool(
        "list_project_tasks",
        "productivity",
        "List the tasks of a project",
        list_project_tasks,
        _id_param("project_id", "the project id, e.g. P-7"),
    ),
    Tool(
        "list_overdue_tasks",
        "productivity",
        "List open tasks whose due date has passed",
        list_overdue_tasks,
        {
            "type": "object",
            "properties": {
                "as_of": {"type": "string", "description": "ISO date to compare with (default today)"}
            },
        },
    ),
    Tool(
        "add_task_comment",
        "productivity",
        "Add a comment to a task",
        add_task_comment,
        {
            "type": "object",
            "properties": {"task_id": {"type": "string"}, "text": {"type": "string"}},
            "required": ["task_id", "text"],
        },
        writes=True,
    ),
    Tool(
        "read_contact",
        "crm",
        "Read one CRM contact",
        read_contact,
        _id_param("contact_id", "the contact id, e.g. C-12"),
    ),
    Tool(
        "read_company",
        "crm",
        "Read one CRM company",
        read_company,
        _id_param("company_id", "the company id, e.g. CO-3"),
    ),
    Tool(
        "read_invoice",
        "finance",
        "Read one invoice",
        read_invoice,
        _id_param("invoice_id", "the invoice id, e.g. INV-2031"),
    ),
    Tool(
        "list_company_invoices",
        "finance",
        "List a company's invoices",
        list_company_invoices,
        _id_param("company_id", "the company id"),
    ),
    Tool("read_doc", "docs", "Read one document", read_doc, _id_param("doc_id", "the document id, e.g. D-4")),
    Tool(
        "read_product",
        "products",
        "Read one product",
        read_product,
        _id_param("product_id", "the product id, e.g. PR-9"),
    ),
)


@hookimpl
def register_tools(register: Callable[..., None]) -> None:
    for tool in TOOLS:
        register(tool)
