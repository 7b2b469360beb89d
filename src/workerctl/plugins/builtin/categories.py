"""The built-in tool categories (those of the original product).

Actions in crm, finance, commerce and hrm can change what a customer, an
invoice or a person's record says, so those categories need a person's review.
"""

from __future__ import annotations

from collections.abc import Callable

from workerctl.api import hookimpl

NEEDS_REVIEW = ("crm", "finance", "commerce", "hrm")
CATEGORIES = {
    "productivity": "Projects and tasks: read tasks, list a project's tasks, comment on tasks",
    "crm": "Contacts, companies and their activity",
    "finance": "Invoices, payments and balances",
    "docs": "Documents and knowledge-base pages",
    "files": "Attached files",
    "products": "Product catalogue entries",
    "scheduling": "Calendars, due dates and meetings",
    "hrm": "People, roles and time off",
    "commerce": "Orders, carts and customer purchases",
    "workflows": "Automations and approval flows",
}


@hookimpl
def register_tool_categories(register: Callable[..., None]) -> None:
    for name, description in CATEGORIES.items():
        register(name, description, needs_review=name in NEEDS_REVIEW)
