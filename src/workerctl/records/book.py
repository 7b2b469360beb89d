"""The record book: every record source behind one door, with a read log.

The engine, the tools and the output modes reach records only through a
``RecordBook``, so which records a run read can always be told.

A batch's threads share one book. A run's own reads are therefore never taken from
the book's log of every read (a slice of it made on one thread held what the other
threads read meanwhile, and review then took another run's records for this run's);
they are what ``reading`` gathers on the run's own thread. Every read is logged in
one place, ``note_read``.
"""

from __future__ import annotations

import builtins
import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from workerctl.errors import ConfigError, NotFoundError
from workerctl.records.builtin_store import BuiltinRecordStore, SeedError
from workerctl.records.model import (
    Comment,
    ImportCheck,
    Record,
    RecordSource,
    SourceConfig,
)

T = TypeVar("T")

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry
    from workerctl.workspace import Workspace


class RecordBook:
    """All record sources behind one door, with a log of every record read.

    The engine reads records only through here, which is what lets a test prove
    that a context source that is not enabled is never read.
    """

    def __init__(self, sources: list[RecordSource]) -> None:
        self.sources = sources
        # every read of this book, by any thread (what proves a source was never read);
        # one run's reads are ``reading``'s
        self.reads: list[tuple[str, str]] = []
        self._logs = threading.local()  # .current: the list ``reading`` gathers on this thread
        # a ``worker try`` of a past run sees its record's comments without the ones
        # that run wrote (its own output is not its input): the run's id, or None
        self.hide_comments_of: str | None = None
        # (the sources' versions, what was built at them): one value, so that a thread
        # never pairs one version with what another thread built at another
        self._memo: tuple[tuple[Hashable, ...], dict[str, Any]] | None = None

    def _find(self, record_id: str) -> tuple[RecordSource, Record] | None:
        from workerctl.names import RECORD_ID

        if not RECORD_ID.ok(record_id):  # no source is asked about an id that breaks the rule
            return None
        for source in self.sources:
            record = source.get(record_id)
            if record is not None:
                record.source = source.name
                return source, record
        return None

    def get(self, record_id: str) -> Record | None:
        found = self._find(record_id)
        if found is None:
            return None
        self.note_read(found[1].type, record_id)
        return found[1]

    def note_read(self, type: str, record_id: str) -> None:
        """Log a read: in the book's log, and in what ``reading`` gathers on this thread."""
        self.reads.append((type, record_id))
        log = getattr(self._logs, "current", None)
        if log is not None:
            log.append((type, record_id))

    @contextlib.contextmanager
    def reading(self) -> Iterator[builtins.list[tuple[str, str]]]:
        """The reads made on this thread inside the block, (type, id) in order: a run's
        own, whatever the batch's other threads read meanwhile. An enclosing block gets
        them too."""
        outer = getattr(self._logs, "current", None)
        log: builtins.list[tuple[str, str]] = []
        self._logs.current = log
        try:
            yield log
        finally:
            self._logs.current = outer
            if outer is not None:
                outer.extend(log)

    def peek(self, record_id: str) -> Record | None:
        """Look up a record without counting it as read (for cards and checks)."""
        found = self._find(record_id)
        return found[1] if found else None

    def refresh(self) -> None:
        """Every source drops what it keeps in memory and changed on disk since: the
        next read sees what another process wrote meanwhile."""
        for source in self.sources:
            source.refresh()

    def fresh(self, record_id: str) -> Record | None:
        """``peek`` after ``refresh``: the record as it is on disk now."""
        self.refresh()
        return self.peek(record_id)

    def source_named(self, name: str) -> RecordSource | None:
        """The source called ``name`` (a record's ``source``), found without reading."""
        return next((s for s in self.sources if s.name == name), None)

    def source_of(self, record_id: str) -> RecordSource | None:
        """The source that holds ``record_id`` (for a write made through the run's records API)."""
        found = self._find(record_id)
        return found[0] if found else None

    def require(self, record_id: str) -> Record:
        """The record ``record_id``: exit 2 for an id that breaks the rule, 3 if none."""
        from workerctl.names import RECORD_ID

        record = self.peek(RECORD_ID.check(record_id))
        if record is None:
            raise NotFoundError(
                f"no record with id {record_id!r}", hint="'workerctl records list' shows the ids"
            )
        return record

    def memo(self, key: str, build: Callable[[builtins.list[Record]], T]) -> T:
        """``build(every record)``, kept while no source's ``version`` changed.

        Review derives things from every record of the workspace at each run (the
        ids, the types, the people named in fields); a batch's runs share them rather
        than listing and scanning hundreds of records twice a run. What ``build``
        returns is shared: treat it, and the records it was given, as read-only. A
        source that cannot tell its version (None) makes every call build anew."""
        versions = tuple(source.version() for source in self.sources)
        if None in versions:
            return build(self.list())
        memo = self._memo  # read once: another thread may start a new version meanwhile
        if memo is None or memo[0] != versions:
            memo = self._memo = (versions, {})
        built = memo[1]
        if key not in built:
            built[key] = build(self.list())
        return built[key]

    def list(self, type: str | None = None) -> list[Record]:
        out: list[Record] = []
        for source in self.sources:
            if type is None or type in source.record_types:
                for record in source.list(type):
                    record.source = source.name
                    out.append(record)
        return out

    def search(self, type: str, filters: dict[str, str]) -> builtins.list[Record]:
        """Records of ``type`` whose fields equal ``filters`` (a source may filter on its
        server: ``RecordSource.search``)."""
        out: builtins.list[Record] = []
        for source in self.sources:
            if type in source.record_types:
                for record in source.search(type, **filters):
                    record.source = source.name
                    out.append(record)
        return out

    def find_linking(self, type: str, link: str, target_id: str) -> builtins.list[Record]:
        """Records of ``type`` whose ``links[link]`` names ``target_id`` (counted as read)."""
        found = [r for r in self.list(type) if target_id in r.linked_ids(link)]
        for r in found:
            self.note_read(r.type, r.id)
        return found

    def comments(self, record_id: str) -> builtins.list[Comment]:
        found = self._find(record_id)
        comments = found[0].comments(record_id) if found else []
        if self.hide_comments_of is not None:
            comments = [c for c in comments if c.run_id != self.hide_comments_of]
        return comments

    def add_comment(
        self, record_id: str, text: str, *, author: str, run_id: str | None, key: str | None
    ) -> tuple[Comment, bool]:
        found = self._find(record_id)
        if found is None:
            raise NotFoundError(f"no record with id {record_id!r}")
        return found[0].add_comment(record_id, text, author=author, run_id=run_id, key=key)

    def import_records(self, items: builtins.list[Any], origin: str, *, dry_run: bool = False) -> ImportCheck:
        """Send each record to the source that owns its type; returns what was (or, with
        ``dry_run``, would be) added and replaced.

        Every record of every source is checked before anything is written, so a file
        with one bad record, or a record no source owns, changes nothing.
        """
        owners = {t: s for s in reversed(self.sources) for t in s.record_types}
        batches: dict[str, tuple[RecordSource, builtins.list[Any], builtins.list[int]]] = {}
        problems = []
        for index, item in enumerate(items, start=1):
            where = f"{origin}: record {index}"
            rtype = item.get("type") if isinstance(item, dict) else None
            source = owners.get(rtype) if isinstance(rtype, str) else None
            if source is None and isinstance(rtype, str) and rtype.strip():
                problems.append(
                    f"{where}: type: unknown record type {rtype!r} (one of {', '.join(sorted(owners))})"
                )
                continue
            source = source or self.builtin()  # it reports a missing type or a non-mapping
            _, members, positions = batches.setdefault(source.name, (source, [], []))
            members.append(item)
            positions.append(index)
        checks = []
        for source, members, positions in batches.values():
            try:
                checks.append(source.check_records(members, origin, positions=positions))
            except SeedError:
                raise  # another file's error (records/…): never this file's
            except ConfigError as bad:
                problems.extend([str(p) for p in bad.problems] or [bad.message])
        if problems:
            raise ConfigError(
                f"{origin}: {len(problems)} invalid record(s); nothing was imported:",
                [_Line(p) for p in problems],
                hint="fix the file and import it again (--dry-run checks it "
                "without writing); each type belongs to the record source "
                "that declares it",
            )
        if not dry_run:
            for source, members, _ in batches.values():
                source.import_records(members, origin)
        return ImportCheck(
            added=[i for c in checks for i in c.added], replaced=[i for c in checks for i in c.replaced]
        )

    def builtin(self) -> BuiltinRecordStore:
        for source in self.sources:
            if isinstance(source, BuiltinRecordStore):
                return source
        raise NotFoundError("the built-in record source is not loaded")


def open_records(workspace: Workspace, registry: Registry) -> RecordBook:
    """Every record source: each registered one, and one per ``record_sources:`` entry
    of workerctl.yaml for the classes that declare a ``kind`` (a tracker on a server)."""
    sources: list[RecordSource] = []
    kinds: dict[str, Any] = {}
    for factory in registry.record_sources.values():
        kind = getattr(factory, "kind", "")
        if kind:
            kinds.setdefault(kind, factory)
        else:
            sources.append(factory(workspace))
    for config in configured_sources(workspace, kinds, taken={s.name for s in sources}):
        sources.append(kinds[config.kind](workspace, config))
    return RecordBook(sources)


def configured_sources(
    workspace: Workspace, kinds: dict[str, Any], taken: frozenset[str] | set[str] = frozenset()
) -> list[SourceConfig]:
    """The ``record_sources:`` entries of workerctl.yaml, checked: each a mapping with a
    unique ``name``, a registered ``kind`` and an http(s) ``url``; every problem is
    reported with its entry, and a URL holding credentials is refused."""
    from workerctl.names import WORKER_NAME
    from workerctl.records.http import check_url

    entries = workspace.settings.get("record_sources")
    if entries is None:
        return []
    origin = f"{workspace.settings_file}: record_sources"
    if not isinstance(entries, list):
        raise ConfigError(f"{origin}: must be a list of sources (- name: ..., kind: ..., url: ...)")
    out: list[SourceConfig] = []
    problems: list[str] = []
    names = set(taken)
    for index, entry in enumerate(entries, start=1):
        where = f"{origin}[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a mapping with name, kind and url")
            continue
        name, kind = entry.get("name"), entry.get("kind")
        if not isinstance(name, str) or not WORKER_NAME.ok(name):
            problems.append(f"{where}: name: give a short name (letters, digits, '-', '_'), e.g. bugs")
            continue
        if name in names:
            problems.append(f"{where}: name: {name!r} is already the name of another record source")
            continue
        if kind not in kinds:
            known = ", ".join(sorted(kinds)) or "none: install a plugin that adds one, e.g. workerctl-roundup"
            problems.append(f"{where}: kind: {kind!r} is not a record source kind (installed: {known})")
            continue
        try:
            url = check_url(entry.get("url"), where)
        except ConfigError as bad:
            problems.append(bad.message + (f" ({bad.hint})" if bad.hint else ""))
            continue
        names.add(name)
        options = {k: v for k, v in entry.items() if k not in ("name", "kind", "url")}
        config = SourceConfig(name=name, kind=str(kind), url=url, options=options, where=where)
        check = getattr(kinds[kind], "check_options", None)
        found = list(check(config)) if check else []
        if found:
            problems.extend(f"{where}: {p}" for p in found)
            continue
        out.append(config)
    if problems:
        raise ConfigError(
            f"{origin}: {len(problems)} problem(s):",
            [_Line(p) for p in problems],
            hint="fix record_sources in workerctl.yaml ('workerctl records sources' checks it)",
        )
    return out


def source_status(book: RecordBook) -> builtins.list[dict[str, Any]]:
    """Each source's name, kind, types, where it keeps records, and whether it answers
    (``check()``: None, or what is wrong and the fix)."""
    from workerctl.records.http import RecordSourceError

    out = []
    for source in book.sources:
        try:
            problem = source.check()
        except RecordSourceError as exc:
            problem = exc.message + (f" — {exc.hint}" if exc.hint else "")
        out.append(
            {
                "name": source.name,
                "kind": getattr(source, "kind", "") or "local",
                "types": list(source.record_types),
                "where": source.describe(),
                "answers": problem is None,
                "status": "answers" if problem is None else problem,
            }
        )
    return out


class _Line(str):
    """A problem line for ``ConfigError`` (printed as is)."""
