"""Context assembly: which records a run is given, from enabled sources only.

A source that is not enabled is never read: a linked record is fetched only
when its type belongs to one of the worker's context sources, which is what the
record book's read log lets tests prove.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workerctl.records.model import LinkRule, link_ids

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.records.model import Record
    from workerctl.workers.model import Worker

MAX_DEPTH = 2


def enabled_types(worker: Worker, registry: Registry) -> set[str]:
    sources = registry.context_sources()
    return {t for name in worker.context_sources for t in sources.get(name, [])}


def source_for_type(record_type: str, registry: Registry) -> list[str]:
    """The context sources that expose ``record_type`` to workers."""
    return [name for name, types in registry.context_sources().items() if record_type in types]


def _entry(record: Record, book: RecordBook) -> dict[str, Any]:
    data = record.to_dict()
    if record.type == "task":
        data["comments"] = [
            {"author": c.author, "text": c.text, "created": c.created, "run_id": c.run_id}
            for c in book.comments(record.id)
        ]
    return data


def _link_type(rules: list[LinkRule], from_type: str, key: str) -> str:
    """The record type a link key names, as the record sources declare it (a key no
    source declares names records of the type of the same name)."""
    for rule in rules:
        if not rule.reverse and rule.link == key and rule.from_type in ("*", from_type):
            return rule.to_type
    return key


def assemble(
    worker: Worker, record: Record, book: RecordBook, registry: Registry
) -> tuple[list[dict], list[dict]]:
    """(context entries, missing links) for a run of ``worker`` on ``record``."""
    allowed = enabled_types(worker, registry)
    rules = registry.link_rules()
    entries: list[dict] = []
    missing: list[dict] = []
    seen: set[str] = set()
    frontier = [record]
    if record.type in allowed:
        book.note_read(record.type, record.id)
        entries.append(_entry(record, book))
    seen.add(record.id)
    for _depth in range(MAX_DEPTH):
        next_frontier = []
        for current in frontier:
            for key in current.links:
                if _link_type(rules, current.type, key) not in allowed:
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
                        missing.append(
                            {"link": key, "id": rid, "from": current.id, "reason": "access denied"}
                        )
                        continue
                    entries.append(_entry(linked, book))
                    next_frontier.append(linked)
        frontier = next_frontier
    for rule in rules:
        if rule.reverse and rule.to_type in allowed:
            _add_reverse(rule, rules, record, entries, seen, book, worker)
    return entries, missing


def _add_reverse(
    rule: LinkRule,
    rules: list[LinkRule],
    record: Record,
    entries: list[dict],
    seen: set[str],
    book: RecordBook,
    worker: Worker,
) -> None:
    """Records of ``rule.to_type`` that link back to a ``rule.from_type`` record the
    run has (in its context, or named by a link of the record or its context)."""
    anchors = [e["id"] for e in entries if e["type"] == rule.from_type]
    for entry in [record.to_dict(), *entries]:
        for key, value in entry.get("links", {}).items():
            if _link_type(rules, entry["type"], key) == rule.from_type:
                anchors.extend(link_ids(value))
    for anchor in dict.fromkeys(anchors):
        for found in book.find_linking(rule.to_type, rule.link, anchor):
            if found.id not in seen and found.accessible_by(worker.name):
                seen.add(found.id)
                entries.append(_entry(found, book))
