"""Records and the record source interface that plugins implement.

A ``Record`` is a business record a run acts on (a task, a project, a
contact …); a ``RecordSource`` serves records of the types it declares and
keeps the comments workers write on them.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

BUILTIN_TYPES = ("task", "project", "contact", "company", "invoice", "doc", "product")


BUILTIN_CONTEXT_SOURCES = {
    "tasks": ["task"],
    "projects": ["project"],
    "crm": ["contact", "company"],
    "finance": ["invoice"],
    "docs": ["doc"],
    "products": ["product"],
}


RECORD_KEYS = {"id", "type", "title", "links", "safe_for_testing", "restricted_to", "comments"}


@dataclass
class Comment:
    id: str
    record_id: str
    text: str
    author: str
    created: str
    run_id: str | None = None
    key: str | None = None


@dataclass
class Record:
    id: str
    type: str
    title: str
    fields: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)
    safe_for_testing: bool = False
    restricted_to: list[str] | None = None
    source: str = "builtin"

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["fields"], data["links"] = dict(self.fields), dict(self.links)
        return data

    def linked_ids(self, key: str) -> list[str]:
        return link_ids(self.links.get(key))

    def fingerprint(self) -> str:
        """A hash of the record's own content (not its comments), to tell if it changed."""
        data = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(data.encode()).hexdigest()[:12]

    def accessible_by(self, worker: str) -> bool:
        return self.restricted_to is None or worker in self.restricted_to


def link_ids(value: Any) -> list[str]:
    """A link's ids: links hold one id or a list of them."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class RecordSource(ABC):
    """What a record source plugin provides. Subclass it, set the class attributes.

    ``context_sources`` maps the context-source names a worker may list to the
    record types this source serves under that name.
    """

    name: ClassVar[str] = ""
    record_types: ClassVar[tuple[str, ...]] = ()
    context_sources: ClassVar[dict[str, list[str]]] = {}

    def __init__(self, workspace) -> None:
        self.workspace = workspace

    @abstractmethod
    def get(self, record_id: str) -> Record | None:
        """The record with this id, or None when this source does not have it."""

    @abstractmethod
    def list(self, type: str | None = None) -> list[Record]:
        """Every record, or those of one type."""

    def comments(self, record_id: str) -> list[Comment]:
        return []

    @abstractmethod
    def add_comment(self, record_id: str, text: str, *, author: str, run_id: str | None,
                    key: str | None) -> tuple[Comment, bool]:
        """Write a comment once per ``key``; returns (comment, created)."""
