"""Context assembly: which records a run is given, from enabled sources only.

A source that is not enabled is never read: a linked record is fetched only
when its type belongs to one of the worker's context sources, which is what the
record book's read log lets tests prove.
"""

from __future__ import annotations

from typing import Any

from workerctl.records.model import link_ids

# link key -> record type of the records it names
LINK_TYPES = {
    "project": "project", "projects": "project", "task": "task", "tasks": "task",
    "company": "company", "companies": "company", "contact": "contact", "contacts": "contact",
    "invoice": "invoice", "invoices": "invoice", "doc": "doc", "docs": "doc",
    "product": "product", "products": "product",
}
MAX_DEPTH = 2


def enabled_types(worker, registry) -> set[str]:
    sources = registry.context_sources()
    return {t for name in worker.context_sources for t in sources.get(name, [])}


def source_for_type(record_type: str, registry) -> list[str]:
    return [name for name, types in registry.context_sources().items() if record_type in types]


def _entry(record, book) -> dict[str, Any]:
    data = record.to_dict()
    if record.type == "task":
        data["comments"] = [{"author": c.author, "text": c.text, "created": c.created,
                             "run_id": c.run_id} for c in book.comments(record.id)]
    return data


def assemble(worker, record, book, registry) -> tuple[list[dict], list[dict]]:
    """(context entries, missing links) for a run of ``worker`` on ``record``."""
    allowed = enabled_types(worker, registry)
    entries: list[dict] = []
    missing: list[dict] = []
    seen: set[str] = set()
    frontier = [record]
    if record.type in allowed:
        book.reads.append((record.type, record.id))
        entries.append(_entry(record, book))
    seen.add(record.id)
    for _depth in range(MAX_DEPTH):
        next_frontier = []
        for current in frontier:
            for key in current.links:
                rtype = LINK_TYPES.get(key, key)
                if rtype not in allowed:
                    continue
                for rid in current.linked_ids(key):
                    if rid in seen:
                        continue
                    seen.add(rid)
                    linked = book.get(rid)
                    if linked is None:
                        missing.append({"link": key, "id": rid, "from": current.id})
                        continue
                    if not linked.accessible_by(worker.name):
                        missing.append({"link": key, "id": rid, "from": current.id,
                                        "reason": "access denied"})
                        continue
                    entries.append(_entry(linked, book))
                    next_frontier.append(linked)
        frontier = next_frontier
    if "invoice" in allowed:
        companies = [e["id"] for e in entries if e["type"] == "company"]
        companies += [rid for e in [record.to_dict(), *entries]
                      for rid in link_ids(e.get("links", {}).get("company"))]
        for company_id in dict.fromkeys(companies):
            for invoice in book.find_linking("invoice", "company", company_id):
                if invoice.id not in seen and invoice.accessible_by(worker.name):
                    seen.add(invoice.id)
                    entries.append(_entry(invoice, book))
    return entries, missing

