"""Tickets as workerctl records, kept in ``helpdesk/tickets.json`` in the workspace."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

from workerctl.api import (
    Comment,
    ConfigError,
    ImportCheck,
    LinkRule,
    NotFoundError,
    Record,
    RecordSource,
    load_record_file,
    open_tinydb,
    state_lock,
)

PRIORITIES = ("low", "normal", "high", "urgent")


class TicketSource(RecordSource):
    """Helpdesk tickets; replies are the tickets' comments."""

    name = "helpdesk"
    record_types = ("ticket",)
    context_sources: ClassVar[dict[str, list[str]]] = {"tickets": ["ticket"]}
    # a ticket names its customer's company and contact and the products it is about
    link_rules: ClassVar[tuple[LinkRule, ...]] = (
        LinkRule("company", "company", from_type="ticket"),
        LinkRule("contact", "contact", from_type="ticket"),
        LinkRule("products", "product", from_type="ticket"),
    )

    def __init__(self, workspace) -> None:
        super().__init__(workspace)
        self.folder: Path = workspace.root / "helpdesk"
        self.path = self.folder / "tickets.json"
        self.lock = state_lock(workspace)

    def _db(self):
        if not self.path.exists() and (self.folder / "tickets.yaml").exists():
            self._seed()
        return open_tinydb(self.path, hint=f"restore {self.path} from a backup")

    def _seed(self) -> None:
        with self.lock:
            if self.path.exists():
                return
            items = load_record_file(self.folder / "tickets.yaml")
            open_tinydb(self.path).table("tickets").insert_multiple(
                {**item, "priority": str(item.get("priority", "normal"))} for item in items
            )

    def _to_record(self, doc: dict) -> Record:
        fields = {
            k: v
            for k, v in doc.items()
            if k not in ("id", "title", "links", "safe_for_testing", "restricted_to")
        }
        return Record(
            id=doc["id"],
            type="ticket",
            title=doc.get("title", ""),
            fields=fields,
            links=dict(doc.get("links", {})),
            safe_for_testing=bool(doc.get("safe_for_testing", False)),
            restricted_to=doc.get("restricted_to"),
            source=self.name,
        )

    def get(self, record_id: str) -> Record | None:
        if not record_id.startswith("TK-"):
            return None  # a cheap answer for ids that are not tickets
        from tinydb import Query

        doc = self._db().table("tickets").get(Query().id == record_id)
        return self._to_record(doc) if doc else None

    def list(self, type: str | None = None) -> list[Record]:
        if type not in (None, "ticket"):
            return []
        return [self._to_record(d) for d in self._db().table("tickets").all()]

    def version(self) -> tuple[int, int, int] | None:
        """The tickets file as it is now (each write replaces it: a new inode, time and
        size), so review keeps what it derives from every ticket until one changes."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return (0, 0, 0)
        return st.st_ino, st.st_mtime_ns, st.st_size

    def comments(self, record_id: str) -> list[Comment]:
        from tinydb import Query

        return [Comment(**d) for d in self._db().table("replies").search(Query().record_id == record_id)]

    def add_comment(self, record_id, text, *, author, run_id, key):
        from tinydb import Query

        with self.lock:
            table = self._db().table("replies")
            if key and (existing := table.get(Query().key == key)):
                return Comment(**existing), False
            reply = Comment(
                id=f"r-{len(table) + 1}",
                record_id=record_id,
                text=text,
                author=author,
                run_id=run_id,
                key=key,
                created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            )
            table.insert(asdict(reply))
            return reply, True

    def check_records(self, items: list, origin: str, positions: list[int] | None = None) -> ImportCheck:
        """Every ticket needs an id like TK-101 and a title; nothing is written."""
        problems = [
            f"{origin}: ticket {item.get('id')!r}: needs an id like TK-101 and a title"
            for item in items
            if not (
                isinstance(item.get("id"), str)
                and item["id"].startswith("TK-")
                and isinstance(item.get("title"), str)
            )
        ]
        if problems:
            raise ConfigError(f"{origin}: {len(problems)} invalid ticket(s)", problems)
        return super().check_records(items, origin, positions)

    def import_records(self, items: list[dict], origin: str) -> tuple[int, int]:
        """Insert or replace tickets by id; returns (added, replaced)."""
        from tinydb import Query

        self.check_records(items, origin)
        added = replaced = 0
        with self.lock:
            table = self._db().table("tickets")
            for item in items:
                doc = {k: v for k, v in item.items() if k != "type"}
                doc["priority"] = str(doc.get("priority", "normal"))
                if table.get(Query().id == doc["id"]):
                    table.remove(Query().id == doc["id"])
                    replaced += 1
                else:
                    added += 1
                table.insert(doc)
        return added, replaced

    def update_fields(
        self, record_id: str, changes: dict[str, Any], *, run_id: str | None, key: str | None
    ) -> dict[str, Any]:
        """Workers change tickets through ``ctx.records.update`` (priority only)."""
        if set(changes) - {"priority"}:
            raise NotFoundError(f"only a ticket's priority can be changed, not {sorted(changes)}")
        return {name: self.set_field(record_id, name, value) for name, value in changes.items()}

    def set_field(self, record_id: str, field: str, value) -> object:
        """Set one field; returns the value before (writing the same value is a no-op)."""
        from tinydb import Query

        with self.lock:
            table = self._db().table("tickets")
            doc = table.get(Query().id == record_id)
            if doc is None:
                raise NotFoundError(f"no ticket {record_id!r}")
            before = doc.get(field)
            if before != value:
                table.update({field: value}, Query().id == record_id)
            return before


SAMPLE_TICKETS = """\
- id: TK-101
  title: Booking app logs clinics out after every page
  status: open
  priority: high
  customer: Blue Harbor Clinics
  body: Since Tuesday our staff are logged out whenever they change page in Safari.
  links: {company: CO-5, contact: C-21, products: [PR-11]}
- id: TK-102
  title: Question about the licence invoice
  status: open
  priority: normal
  customer: Northwind Traders
  body: Invoice 2044 lists 12 licences, we have 10 users.
  links: {company: CO-3, contact: C-14}
- id: TK-103
  title: Thank you for the quick fix
  status: closed
  priority: low
  links: {company: CO-5}
"""


def write_sample_tickets(workspace) -> Path:
    """Put the sample tickets in a workspace (tests and the tutorial use it)."""
    folder = workspace.root / "helpdesk"
    folder.mkdir(exist_ok=True)
    path = folder / "tickets.yaml"
    path.write_text(SAMPLE_TICKETS, encoding="utf-8")
    return path
