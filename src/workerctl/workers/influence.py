"""Does a person need to review this output? Decided from what it can influence.

The original product: if the output will influence a customer response, an
invoice, a project update or a support decision, a person reviews the source
record before acting on it. What an output can influence follows from what the
worker sees and where its output goes, not only from the tools it may call:

- its tool categories: a category that declares ``needs_review`` (built in:
  crm, finance, commerce, hrm; plugins declare their own);
- its context sources: a source that serves customer, money or support records
  (contacts, companies, invoices, tickets, orders, people), or is named like a
  category that needs review;
- its output mode: one that writes onto such a record (a ticket note);
- and, for a run, the records it actually read and wrote, and any ``send``.

``review_required`` in the worker file decides when it is set (true or false).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry
    from workerctl.runs.model import Run
    from workerctl.workers.model import Worker

# record type -> what output drawn from it can influence
INFLUENCE = {
    "contact": "a customer response",
    "company": "a customer response",
    "invoice": "an invoice",
    "payment": "an invoice",
    "order": "a customer response",
    "ticket": "a support decision",
    "employee": "a person's record",
}
# written onto, these record types make the output a project update
WRITTEN_INFLUENCE = {"project": "a project update"}


def category_needs_review(registry: Registry, name: str) -> bool:
    """As the category declares it (``ToolCategory.needs_review``)."""
    category = registry.categories.get(name)
    return category is not None and category.needs_review


def _source_types(registry: Registry) -> dict[str, list[str]]:
    return registry.context_sources()


def reasons(worker: Worker, registry: Registry) -> list[str]:
    """Why a run of ``worker`` needs a person's review ([] when it does not)."""
    if worker.review_required is not None:
        return ["review_required: true in the worker file"] if worker.review_required else []
    out = []
    for category in worker.tool_categories:
        if category_needs_review(registry, category):
            out.append(f"tool category {category} needs a person's review")
    sources = _source_types(registry)
    for source in worker.context_sources:
        types = sources.get(source, [])
        touched = sorted({INFLUENCE[t] for t in types if t in INFLUENCE})
        if touched:
            out.append(f"context source {source} ({', '.join(types)}) can influence {' and '.join(touched)}")
        elif source in registry.categories and category_needs_review(registry, source):
            out.append(f"context source {source} is named like a category that needs review")
    mode = registry.output_modes.get(worker.output_mode)
    for rtype in getattr(mode, "needs_record", ()) or ():
        if rtype in INFLUENCE:
            out.append(f"output mode {worker.output_mode} writes onto a {rtype}: {INFLUENCE[rtype]}")
    return out


def run_reasons(run: Run) -> list[str]:
    """What the run itself touched that can influence a customer, money or support."""
    out = []
    read = sorted({r["type"] for r in (run.reads or []) if r.get("type") in INFLUENCE})
    if read:
        out.append(
            f"it read {', '.join(read)} records: " + " and ".join(sorted({INFLUENCE[t] for t in read}))
        )
    written: set[str] = set()
    for it in run.iterations:
        for call in it.tool_calls:
            for w in call.records_written:
                written.add(w.get("type", ""))
    for rtype in sorted(written):
        what = INFLUENCE.get(rtype) or WRITTEN_INFLUENCE.get(rtype)
        if what:
            out.append(f"it wrote to a {rtype}: {what}")
    if any(e.get("kind") == "send" for e in run.side_effects):
        out.append("it sent something: a customer response")
    return out


def hold_reasons(run: Run, worker: Worker, target_type: str | None = None) -> list[str]:
    """Why a write this run is about to make waits for a person ([] when it may be made
    now): the reasons the run started with (the worker's configuration, or
    ``review_required: true``), and, unless the worker says ``review_required: false``,
    what the run has read and written so far. The records API asks before every write."""
    if worker.review_required is False:
        return []
    found = list(run.review_reasons or [])
    if worker.review_required is None:
        found += [r for r in run_reasons(run) if r not in found]
        what = INFLUENCE.get(target_type or "") or WRITTEN_INFLUENCE.get(target_type or "")
        if what:
            found.append(f"it writes to a {target_type}: {what}")
    return found


def describe(worker: Worker, registry: Registry) -> dict[str, Any]:
    found = reasons(worker, registry)
    return {"needs_review": bool(found), "reasons": found}
