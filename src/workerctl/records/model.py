"""Records and the record source interface that plugins implement.

A ``Record`` is a business record a run acts on (a task, a project, a
contact …); a ``RecordSource`` serves records of the types it declares and
keeps the comments workers write on them.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from workerctl.workspace import Workspace

BUILTIN_TYPES = ("task", "project", "contact", "company", "invoice", "doc", "product")


BUILTIN_CONTEXT_SOURCES = {
    "tasks": ["task"],
    "projects": ["project"],
    "crm": ["contact", "company"],
    "finance": ["invoice"],
    "docs": ["doc"],
    "products": ["product"],
}


@dataclass(frozen=True)
class LinkRule:
    """How a record of one type reaches records of another, for context assembly.

    Forward (``reverse=False``): a record of ``from_type`` (``"*"``: any type)
    names records of ``to_type`` under ``links[link]`` (a task's ``project``).
    Reverse: records of ``to_type`` whose ``links[link]`` names a record of
    ``from_type`` that is already in the context (a company's invoices).
    """

    link: str
    to_type: str
    from_type: str = "*"
    reverse: bool = False


# the built-in record types, their link keys, and the company → invoices look-up
BUILTIN_LINK_RULES = (
    *(
        LinkRule(key, rtype)
        for rtype in BUILTIN_TYPES
        for key in (rtype, "companies" if rtype == "company" else rtype + "s")
    ),
    LinkRule("company", "invoice", from_type="company", reverse=True),
)


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
        return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:12]

    def accessible_by(self, worker: str) -> bool:
        return self.restricted_to is None or worker in self.restricted_to


def link_ids(value: Any) -> list[str]:
    """A link's ids: links hold one id or a list of them."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@dataclass
class ImportCheck:
    """What importing a batch of records would do: the ids it adds and replaces."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SourceConfig:
    """One entry of ``record_sources:`` in workerctl.yaml: a source on a server.

    ``name`` is what records show as their source; ``kind`` picks the registered
    source class (its ``kind``); ``url`` is the server's address (checked: http(s),
    no credentials in it); ``options`` holds the entry's other keys, which the
    source class reads (``check_options`` reports the bad ones).
    """

    name: str
    kind: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)
    where: str = "workerctl.yaml: record_sources"


class RecordSource(ABC):
    """What a record source plugin provides. Subclass it, set the class attributes.

    A source that lives on a server sets ``kind`` (``"roundup"``): it is built once
    per ``record_sources:`` entry of that kind, as ``cls(workspace, config)``
    with a ``SourceConfig``, and not at all when no entry names it.

    ``record_types`` are the types this source owns (``records import`` sends
    records of these types here); ``context_sources`` maps the context-source
    names a worker may list to the record types served under that name;
    ``link_rules`` say how its records reach others (see ``LinkRule``).
    """

    name: ClassVar[str] = ""
    record_types: ClassVar[tuple[str, ...]] = ()
    context_sources: ClassVar[dict[str, list[str]]] = {}
    link_rules: ClassVar[tuple[LinkRule, ...]] = ()
    kind: ClassVar[str] = ""  # set by sources configured under record_sources:
    #: True for a source whose writes end on this machine (files, no network), within
    #: the lock timeout: the engine holds SIGTERM, SIGHUP and Ctrl-C across each write,
    #: from storing its intent to storing its outcome, so that a stop signal never
    #: leaves such a write ``unknown`` for a person to settle. A source on a server
    #: keeps False: a stop signal must end a write that hangs on the network.
    local_writes: ClassVar[bool] = False

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def check(self) -> str | None:
        """Whether the source answers now: None when it does, else what is wrong
        and the fix, on one line (``workerctl records sources`` shows it)."""
        return None

    def describe(self) -> str:
        """Where the records live, for ``workerctl records sources``."""
        return "this workspace"

    @abstractmethod
    def get(self, record_id: str) -> Record | None:
        """The record with this id, or None when this source does not have it."""

    @abstractmethod
    def list(self, type: str | None = None) -> list[Record]:
        """Every record, or those of one type."""

    def comments(self, record_id: str) -> builtins.list[Comment]:
        return []

    def version(self) -> Hashable | None:
        """What tells that ``list()`` would answer as it did: a value that changes
        whenever the records this source lists may have changed, or None when the
        source cannot tell (a server). Review keeps what it derives from every record
        while each source's version stays the same, so the runs of a batch share it;
        None means it is derived again at each use. Sources that cache override it."""
        return None

    def refresh(self) -> None:
        """Forget what this source keeps in memory, so the next read sees the records
        as they are now (the engine calls it as each run starts, so that a batch's later
        runs see what another process changed, and before the output mode writes, to
        tell whether the record changed while the run worked). Sources that cache
        override it."""
        return None

    @abstractmethod
    def add_comment(
        self, record_id: str, text: str, *, author: str, run_id: str | None, key: str | None
    ) -> tuple[Comment, bool]:
        """Write a comment once per ``key``; returns (comment, created)."""

    def search(self, type: str | None = None, **filters: str) -> builtins.list[Record]:
        """Records of ``type`` whose fields equal ``filters``; a source that can ask its
        server to filter overrides this (the records API's ``list(type, filters=...)``)."""
        return [r for r in self.list(type) if all(str(r.fields.get(k)) == v for k, v in filters.items())]

    def fingerprint_now(self, record_id: str) -> str | None:
        """The record's fingerprint as its source sees it right after a write (a server
        may change a record itself when a message arrives); None when the source does not
        say. Kept on the effect as ``record_after``, which the duplicate guard compares."""
        return None

    def update_fields(
        self, record_id: str, changes: dict[str, Any], *, run_id: str | None, key: str | None
    ) -> dict[str, Any]:
        """Set fields of one record; returns their values before. A source whose
        records workers may change implements it; without it, a tool's
        ``ctx.records.update`` on such a record tells the model so."""
        raise NotImplementedError(f"record source {self.name!r} does not let workers update its records")

    def check_records(
        self, items: builtins.list[Any], origin: str, positions: builtins.list[int] | None = None
    ) -> ImportCheck:
        """Validate a batch of this source's records and say what importing it would
        add and replace; raise ``ConfigError`` naming every bad record (``positions``:
        where each item stands in the file, 1-based, for those messages). Nothing is
        written (``records import --dry-run`` shows this)."""
        if type(self).import_records is RecordSource.import_records:
            self.import_records(items, origin)  # refuses, saying why
        ids = [str(item.get("id")) for item in items]
        return ImportCheck(
            added=[i for i in ids if self.get(i) is None],
            replaced=[i for i in ids if self.get(i) is not None],
        )

    def import_records(self, items: builtins.list[dict], origin: str) -> tuple[int, int]:
        """Insert or replace records of this source's types; returns (added, replaced).

        Sources that cannot take records from a file keep this default, and
        ``records import`` says so instead of writing them elsewhere.
        """
        from workerctl.errors import UsageError

        raise UsageError(
            f"record source {self.name!r} does not import records",
            hint=f"add {', '.join(self.record_types) or 'its'} records through "
            f"the {self.name} source's own tools",
        )
