"""The sample workspace that ``workerctl init`` writes: workers and linked records.

Due dates are relative to the day ``init`` runs, so "overdue" stays true.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def sample_records(today: dt.date | None = None) -> list[dict]:
    today = today or dt.date.today()

    def day(offset: int) -> str:
        return (today + dt.timedelta(days=offset)).isoformat()

    return [
        {
            "id": "CO-3",
            "type": "company",
            "title": "Northwind Traders",
            "industry": "Wholesale",
            "tier": "gold",
            "links": {"contacts": ["C-12", "C-14"]},
        },
        {
            "id": "CO-5",
            "type": "company",
            "title": "Blue Harbor Clinics",
            "industry": "Healthcare",
            "tier": "silver",
            "links": {"contacts": ["C-21"]},
        },
        {
            "id": "C-12",
            "type": "contact",
            "title": "Maya Lindqvist",
            "role": "Head of Operations",
            "email": "maya@northwind.example",
            "links": {"company": "CO-3"},
            "last_activity": f"{day(-3)}: call about the delayed EU launch",
        },
        {
            "id": "C-14",
            "type": "contact",
            "title": "Jonas Berg",
            "role": "Finance controller",
            "email": "jonas@northwind.example",
            "links": {"company": "CO-3"},
            "last_activity": f"{day(-9)}: asked for a corrected invoice",
        },
        {
            "id": "C-21",
            "type": "contact",
            "title": "Dr. Aisha Okafor",
            "role": "Practice manager",
            "email": "aisha@blueharbor.example",
            "links": {"company": "CO-5"},
            "last_activity": f"{day(-1)}: reported login failures on the booking app",
        },
        {
            "id": "P-7",
            "type": "project",
            "title": "Northwind EU launch",
            "status": "at risk",
            "owner": "Priya Shah",
            "due": day(21),
            "links": {"company": "CO-3", "contact": "C-12", "docs": ["D-2"]},
        },
        {
            "id": "P-9",
            "type": "project",
            "title": "Blue Harbor booking app",
            "status": "on track",
            "owner": "Tom Reyes",
            "due": day(45),
            "links": {"company": "CO-5", "contact": "C-21", "docs": ["D-4"]},
        },
        {
            "id": "T-1042",
            "type": "task",
            "title": "Translate product catalogue into German",
            "status": "in progress",
            "assignee": "Lena Fischer",
            "due": day(-6),
            "priority": "high",
            "description": "The German catalogue blocks the EU launch. Translation agency "
            "needs the final product list and the glossary.",
            "links": {
                "project": "P-7",
                "company": "CO-3",
                "contact": "C-12",
                "docs": ["D-2"],
                "products": ["PR-9"],
            },
            "comments": [
                {
                    "author": "Lena Fischer",
                    "created": day(-8),
                    "text": "Sent the product list to the agency; still waiting for the glossary "
                    "from marketing.",
                },
                {
                    "author": "Priya Shah",
                    "created": day(-2),
                    "text": "Marketing says the glossary is stuck in legal review.",
                },
            ],
        },
        {
            "id": "T-1043",
            "type": "task",
            "title": "Set up EU VAT rates in the shop",
            "status": "todo",
            "assignee": "Omar Haddad",
            "due": day(-2),
            "priority": "medium",
            "description": "Configure VAT for DE, FR and NL before the launch.",
            "links": {"project": "P-7", "company": "CO-3"},
        },
        {
            "id": "T-1044",
            "type": "task",
            "title": "Book launch webinar",
            "status": "done",
            "assignee": "Priya Shah",
            "due": day(-10),
            "links": {"project": "P-7"},
        },
        {
            "id": "T-2001",
            "type": "task",
            "title": "Fix booking app login failures",
            "status": "in progress",
            "assignee": "Tom Reyes",
            "due": day(-1),
            "priority": "high",
            "description": "Several clinics cannot log in since the last release.",
            "links": {"project": "P-9", "company": "CO-5", "contact": "C-21", "products": ["PR-11"]},
            "comments": [
                {
                    "author": "Tom Reyes",
                    "created": day(-1),
                    "text": "Reproduced with Safari 17; session cookie is dropped.",
                }
            ],
        },
        {
            "id": "T-2002",
            "type": "task",
            "title": "Write release notes for 2.4",
            "status": "todo",
            "assignee": "Tom Reyes",
            "due": day(5),
            "links": {"project": "P-9", "docs": ["D-4"]},
            "safe_for_testing": True,
        },
        {
            "id": "T-9001",
            "type": "task",
            "title": "Sandbox task for trying draft workers",
            "status": "todo",
            "assignee": "nobody",
            "due": day(-3),
            "description": "A harmless task: workers in draft may run here.",
            "links": {"project": "P-9"},
            "safe_for_testing": True,
        },
        {
            "id": "T-3001",
            "type": "task",
            "title": "Salary review for the support team",
            "status": "todo",
            "assignee": "HR",
            "due": day(-4),
            "description": "Confidential: restricted to the HR worker.",
            "restricted_to": ["hr-assistant"],
        },
        {
            "id": "INV-2031",
            "type": "invoice",
            "title": "Invoice 2031 — onboarding",
            "amount": 12400.0,
            "currency": "EUR",
            "status": "overdue",
            "due": day(-15),
            "links": {"company": "CO-3"},
        },
        {
            "id": "INV-2044",
            "type": "invoice",
            "title": "Invoice 2044 — licences",
            "amount": 3150.0,
            "currency": "EUR",
            "status": "sent",
            "due": day(14),
            "links": {"company": "CO-3"},
        },
        {
            "id": "INV-2050",
            "type": "invoice",
            "title": "Invoice 2050 — support plan",
            "amount": 980.0,
            "currency": "EUR",
            "status": "paid",
            "due": day(-30),
            "links": {"company": "CO-5"},
        },
        {
            "id": "D-2",
            "type": "doc",
            "title": "EU launch plan",
            "summary": "Milestones: catalogue translation, VAT, webinar, go-live.",
            "links": {"project": "P-7"},
        },
        {
            "id": "D-4",
            "type": "doc",
            "title": "Booking app release checklist",
            "summary": "Smoke tests on Safari, Chrome and Firefox before each release.",
            "links": {"project": "P-9"},
        },
        {"id": "PR-9", "type": "product", "title": "Catalogue Pro licence", "sku": "CAT-PRO", "price": 49.0},
        {"id": "PR-11", "type": "product", "title": "Clinic Booking app", "sku": "BOOK-APP", "price": 199.0},
    ]


# (file name, template key, status, overrides)
SAMPLE_WORKERS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("overdue-task-review", "overdue-task-review", "active", {}),
    ("crm-activity-summary", "crm-activity-summary", "active", {}),
    ("handoff-preparation", "handoff-preparation", "paused", {}),
    ("support-triage-draft", "support-triage-draft", "draft", {}),
    ("record-cleanup", "record-cleanup-suggestions", "draft", {}),
)

SETTINGS_YAML = """\
# workerctl workspace settings
name: {name}
# seconds without a heartbeat before a run executed elsewhere counts as crashed
stale_after: 120
# seconds to wait for the history lock before giving up (exit 4)
lock_timeout: 10
# run timeout for workers that do not set their own
default_timeout: 300
# bytes kept of each step output, stderr, tool arguments and tool result (longer: cut,
# with a "truncated, N bytes" note)
max_field_bytes: 1000000
"""
