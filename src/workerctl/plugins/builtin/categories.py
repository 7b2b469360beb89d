"""The built-in tool categories (those of the original product)."""

from workerctl import hookimpl

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
def register_tool_categories(register):
    for name, description in CATEGORIES.items():
        register(name, description)
