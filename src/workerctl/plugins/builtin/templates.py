"""The built-in template catalogue: the original product's example workers.

Each template's instructions follow the same outline (role, records to review,
output format, what not to do, when to stop and ask a person), because a narrow,
explicit worker is one a person can review.
"""

from __future__ import annotations

from collections.abc import Callable

from workerctl.api import OutputContract, Template, hookimpl


def _instructions(role: str, review: str, output: str, never: str, stop: str) -> str:
    return (
        f"Role: {role}\n\n"
        f"Records to review: {review}\n\n"
        f"Output format: {output}\n\n"
        f"Do not: {never}\n\n"
        f"Stop and ask for human review when: {stop}\n"
    )


CATALOGUE = (
    Template(
        key="overdue-task-review",
        title="Overdue task review",
        description="Review an overdue task and post a blocker summary as a task comment",
        instructions=_instructions(
            "You review one overdue task for its project lead.",
            "the linked task, its comments, its project and the documents linked to it.",
            "a task comment of at most 6 lines: 'Blocker:', 'Evidence:' (quote the comment "
            "or field you used), 'Suggested next step:' and 'Owner:'.",
            "change due dates, reassign the task, or claim that anything was done; "
            "do not guess a blocker that no record mentions.",
            "the task has no comments or description to judge from, or the blocker "
            "involves a customer, an invoice or a person's performance.",
        ),
        context_sources=["tasks", "projects", "docs"],
        tool_categories=["productivity"],
        output_mode="task_comment",
        max_iterations=4,
        output_contract=OutputContract(
            sections=["Blocker", "Evidence", "Suggested next step", "Owner"],
            names_record=True,
            max_length=1200,
            max_lines=6,
        ),
    ),
    Template(
        key="crm-activity-summary",
        title="CRM activity summary",
        description="Summarise recent activity with the company behind a task",
        instructions=_instructions(
            "You prepare an account manager for a customer conversation.",
            "the linked task, the contact and company it names, and that company's invoices.",
            "a review note with 'Relationship:', 'Recent activity:', 'Open money:' "
            "(invoice ids and amounts) and 'Talking points:' (three bullets).",
            "contact the customer, promise discounts, or state amounts you did not read.",
            "an invoice is overdue or disputed, or the records disagree about the contact.",
        ),
        context_sources=["tasks", "crm", "finance"],
        tool_categories=["crm", "finance"],
        output_mode="review_note",
        max_iterations=5,
        review_required=True,
        output_contract=OutputContract(
            sections=["Relationship", "Recent activity", "Open money", "Talking points"],
            names_record=True,
            max_length=2000,
        ),
    ),
    Template(
        key="handoff-preparation",
        title="Handoff preparation",
        description="Prepare a handoff comment so a colleague can take over a task",
        instructions=_instructions(
            "You prepare the handoff of one task to a colleague.",
            "the linked task, its comments, its project and its linked documents.",
            "a task comment with 'Status:', 'Done so far:', 'Open questions:' and "
            "'First step for the new owner:'.",
            "reassign the task yourself or invent progress the comments do not show.",
            "the task's owner or due date is unclear, or the comments contradict each other.",
        ),
        context_sources=["tasks", "projects", "docs"],
        tool_categories=["productivity", "docs"],
        output_mode="task_comment",
        max_iterations=4,
        output_contract=OutputContract(
            sections=["Status", "Done so far", "Open questions", "First step for the new owner"],
            names_record=True,
            max_length=1500,
        ),
    ),
    Template(
        key="support-triage-draft",
        title="Support triage draft",
        description="Draft a triage note for a customer support task",
        instructions=_instructions(
            "You triage one customer support task for the support lead.",
            "the linked task, the customer contact and company, and the products it names.",
            "a review note with 'Severity:' (low/medium/high), 'Product:', "
            "'Likely cause:' and 'Draft reply:' (for a person to send).",
            "send anything to the customer, promise a fix date, or offer refunds.",
            "the customer mentions money, a contract or legal terms, or severity is high.",
        ),
        context_sources=["tasks", "crm", "products"],
        tool_categories=["productivity", "crm", "products"],
        output_mode="review_note",
        max_iterations=5,
        review_required=True,
        output_contract=OutputContract(
            sections=["Severity", "Product", "Likely cause", "Draft reply"],
            names_record=True,
            max_length=2000,
        ),
    ),
    Template(
        key="record-cleanup-suggestions",
        title="Record clean-up suggestions",
        description="Suggest fixes for incomplete or inconsistent records around a task",
        instructions=_instructions(
            "You check the records around one task for gaps and inconsistencies.",
            "the linked task, its project, the linked contact and company.",
            "a review note starting 'Suggested fixes:', then each fix on its own line as "
            "'RECORD-ID field: current -> suggested (why)'; write 'Suggested fixes: none, "
            "no clean-up needed.' when everything is consistent.",
            "change any record yourself; only suggest.",
            "a fix would change money, ownership or a customer-facing field.",
        ),
        context_sources=["tasks", "projects", "crm"],
        tool_categories=["productivity", "crm"],
        output_mode="review_note",
        max_iterations=4,
        output_contract=OutputContract(sections=["Suggested fixes"], names_record=True, max_length=2000),
    ),
    Template(
        key="project-status-update",
        title="Project status update",
        description="Draft a weekly status update for the project behind a task",
        instructions=_instructions(
            "You draft the weekly status update of one project.",
            "the linked task, its project and the project's other tasks.",
            "a review note with 'On track:', 'At risk:' (task ids with due dates) and 'Decisions needed:'.",
            "send the update, or mark tasks done.",
            "more than a third of the project's tasks are overdue.",
        ),
        context_sources=["tasks", "projects"],
        tool_categories=["productivity"],
        output_mode="review_note",
        max_iterations=5,
        review_required=True,
        output_contract=OutputContract(
            sections=["On track", "At risk", "Decisions needed"], names_record=True, max_length=2000
        ),
    ),
)


@hookimpl
def register_templates(register: Callable[..., None]) -> None:
    for template in CATALOGUE:
        register(template)
