"""Tickets as workerctl records, kept in ``helpdesk/tickets.json`` in the workspace."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path
from typing import ClassVar

from workerctl.errors import NotFoundError
from workerctl.records.builtin_store import load_record_file
from workerctl.records.model import Comment, Record, RecordSource
from workerctl.storage.lock import lock_for
from workerctl.storage.tinydb_storage import open_db

PRIORITIES = ("low", "normal", "high", "urgent")


class TicketSource(RecordSource):
    """Helpdesk tickets; replies are the tickets' comments."""

    name = "helpdesk"
    record_types = ("ticket",)
    context_sources: ClassVar[dict[str, list[str]]] = {"tickets": ["ticket"]}

    def __init__(self, workspace) -> None:
        super().__init__(workspace)
        self.folder: Path = workspace.root / "helpdesk"
        self.path = self.folder / "tickets.json"
        self.lock = lock_for(workspace.lock_file)

    def _db(self):
        if not self.path.exists() and (self.folder / "tickets.yaml").exists():
            self._seed()
        return open_db(self.path, hint=f"restore {self.path} from a backup")

    def _seed(self) -> None:
        with self.lock:
            if self.path.exists():
                return
            items = load_record_file(self.folder / "tickets.yaml")
            open_db(self.path).table("tickets").insert_multiple(
                {**item, "priority": str(item.get("priority", "normal"))} for item in items)

    def _to_record(self, doc: dict) -> Record:
        fields = {k: v for k, v in doc.items()
                  if k not in ("id", "title", "links", "safe_for_testing", "restricted_to")}
        return Record(id=doc["id"], type="ticket", title=doc.get("title", ""), fields=fields,
                      links=dict(doc.get("links", {})),
                      safe_for_testing=bool(doc.get("safe_for_testing", False)),
                      restricted_to=doc.get("restricted_to"), source=self.name)

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

    def comments(self, record_id: str) -> list[Comment]:
        from tinydb import Query

        return [Comment(**d) for d in self._db().table("replies").search(
            Query().record_id == record_id)]

    def add_comment(self, record_id, text, *, author, run_id, key):
        from tinydb import Query

        with self.lock:
            table = self._db().table("replies")
            if key and (existing := table.get(Query().key == key)):
                return Comment(**existing), False
            reply = Comment(id=f"r-{len(table) + 1}", record_id=record_id, text=text,
                            author=author, run_id=run_id, key=key,
                            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
            table.insert(asdict(reply))
            return reply, True

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
