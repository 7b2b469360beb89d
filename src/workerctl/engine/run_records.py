"""The records a run may reach: the one door between a tool (or an output mode) and records.

A tool receives ``ctx.records``, a ``RunRecords``; it holds no other way to records.
Every rule about what a run may read and write is enforced here, once, for built-in
and plugin tools alike:

1. a read of a record whose type is outside the worker's context sources is refused
   at call time (the run fails with ``read_refused``; the refusal is on the call);
2. a record the worker may not access (``restricted_to``) is never returned: ``get``
   tells the tool it is denied, ``list`` and ``find_linking`` leave it out;
3. every record returned is logged in the run's read log (``Run.reads``), which
   review and troubleshooting read: a tool cannot forget to log;
4. a write outside the run's write scope (``engine.write_scope``) is refused (the run
   fails with ``write_refused``, judged as a possible prompt injection like an
   unoffered tool);
5. a test run (``--test``, or a draft worker) never writes to a record not marked
   ``safe_for_testing``: such a write is not made and recorded as ``not_written``;
6. a run that needs a person (``workers.influence.hold_reasons``) does not write: the
   write is recorded as ``held`` for ``workerctl run approve``;
7. any other write goes through the side-effect ledger: stored as ``intended`` before
   it is made and ``committed`` after (``unknown`` if the process dies in between).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workerctl.engine import stop_signals
from workerctl.engine.tools import ToolError
from workerctl.records.http import RecordSourceError
from workerctl.runs.model import now_iso

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.records.model import Comment, Record, RecordSource
    from workerctl.runs.model import Run
    from workerctl.workers.model import Worker

HELD, NOT_WRITTEN = "held", "not_written"
INTENDED, COMMITTED = "intended", "committed"
SNAPSHOT_LIMIT = 20_000  # characters of a record kept with a held write (to say what changed)


class Refused(Exception):
    """Raised into a tool when the records API refuses a read or a write.

    The refusal is also remembered on the ``RunRecords``, so a tool that catches this
    exception cannot hide it: the engine fails the run all the same.
    """

    def __init__(self, kind: str, what: str, message: str, record_id: str, record_type: str) -> None:
        super().__init__(message)
        self.kind = kind  # "read_refused" or "write_refused"
        self.what = what  # "read" or "write"
        self.message = message
        self.record_id = record_id
        self.record_type = record_type


@dataclass(frozen=True)
class Written:
    """What became of one write a tool asked for.

    ``state``: ``committed`` (it is on the record), ``held`` (it waits for a person's
    ``workerctl run approve``) or ``not_written`` (a test run on a record not marked
    safe for testing). ``created`` is false when a retry found the same keyed write
    there already, and for a write that was not made.
    """

    record_id: str
    kind: str
    state: str
    created: bool = False
    comment_id: str | None = None

    @property
    def held(self) -> bool:
        return self.state == HELD

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RunRecords:
    """The records API of one run (``ToolContext.records``, ``OutputContext.records``).

    Read: ``get``, ``list``, ``find_linking``, ``comments``, ``linked``.
    Write: ``add_comment``, ``update``. See the module docstring for the rules.
    """

    def __init__(
        self,
        book: RecordBook,
        *,
        run: Run,
        worker: Worker,
        registry: Registry,
        save: Callable[[], None],
    ) -> None:
        from workerctl.engine.context import enabled_types

        self._book = book
        self._run = run
        self._worker = worker
        self._registry = registry
        self._save = save
        self._readable = enabled_types(worker, registry)
        self._call: dict[str, str] = {"by": "tool", "tool": "", "call": "", "key": run.id}
        self._writes_in_call = 0
        self.refusal: Refused | None = None
        self.defer_last_save = False
        # records as this run last read them: a write is gated on what the run saw, and
        # asking the source again would move its idea of "the version the run read"
        # (a source that writes with If-Match would then overwrite a change made since)
        self._known: dict[str, Record] = {}

    # -- the call being served (the engine sets it) --

    def know(self, record: Record) -> None:
        """A record the run was given (its linked record, read for the context)."""
        self._known[record.id] = record

    def serve(self, *, by: str, key: str, tool: str = "", call: str = "") -> None:
        """Attribute what follows to one tool call (or the output mode)."""
        self._call = {"by": by, "tool": tool, "call": call, "key": key}
        self._writes_in_call = 0
        self.refusal = None

    @property
    def worker(self) -> str:
        return self._worker.name

    @property
    def run_id(self) -> str:
        return self._run.id

    # -- reading --

    def linked(self) -> Record | None:
        """The run's linked record (``--task``), read like any other; None without one."""
        return self.get(self._run.record_id) if self._run.record_id else None

    def get(self, record_id: str, type: str | tuple[str, ...] | None = None) -> Record:
        """The record ``record_id``, logged as read.

        Raises ``ToolError`` (the model is told) when there is no such record, it is
        not of ``type``, or the worker may not access it; refuses (``Refused``, the run
        fails) a record whose type is outside the worker's context sources.
        """
        record = self._book.peek(record_id) if isinstance(record_id, str) else None
        if record is None:
            raise ToolError(f"no record {str(record_id)[:80]!r}")
        expected = (type,) if isinstance(type, str) else type
        if expected and record.type not in expected:
            raise ToolError(f"{record_id} is {_a(record.type)}, not {_a(' or '.join(expected))}")
        self._gate_read(record.type, record.id)
        if not record.accessible_by(self._worker.name):
            raise ToolError(f"access to {record_id} is denied for worker {self._worker.name!r}")
        self._log([record])
        self._known[record.id] = record
        return record

    def list(
        self,
        type: str,
        where: Callable[[Record], bool] | None = None,
        filters: dict[str, str] | None = None,
    ) -> builtins.list[Record]:
        """Records of ``type`` the worker may access (and ``where`` selects), each logged
        as read; the type must be in the worker's context sources. ``filters`` (field →
        value) lets a source filter on its server (``RecordSource.search``)."""
        self._gate_read(type, "")
        listed = self._book.search(type, filters) if filters else self._book.list(type)
        found = [r for r in listed if r.accessible_by(self._worker.name) and (where is None or where(r))]
        self._known.update((r.id, r) for r in found)
        self._log(found)
        return found

    def find_linking(self, type: str, link: str, target_id: str) -> builtins.list[Record]:
        """Records of ``type`` whose ``links[link]`` names ``target_id`` (accessible ones,
        logged as read)."""
        return self.list(type, where=lambda r: target_id in r.linked_ids(link))

    def comments(self, record_id: str) -> builtins.list[Comment]:
        """The comments on a record the run may read (reading them reads the record)."""
        self.get(record_id)
        return self._book.comments(record_id)

    def replay_reads(self, reads: builtins.list[dict[str, str]], seen: dict[str, Any] | None) -> None:
        """A ``worker try`` gives a read tool the result the past run recorded
        (``engine.replay``): the records that call read pass the same gate a read does
        now (the worker's context sources; refused: the run fails as it would), are
        logged as read by this call, and are noted as the past run saw them."""
        for read in reads:
            self._gate_read(str(read.get("type", "")), str(read.get("id", "")))
        if self._run.reads is None:
            self._run.reads = []
        call = self._call
        for read in reads:
            entry = {"type": str(read.get("type", "")), "id": str(read.get("id", "")), "by": call["by"]}
            if call["tool"]:
                entry.update(tool=call["tool"], call=call["call"])
            if entry not in self._run.reads:
                self._run.reads.append(entry)
            known = self._run.seen
            if seen and known is not None and entry["id"] in seen and entry["id"] not in known:
                known[entry["id"]] = seen[entry["id"]]

    def _gate_read(self, record_type: str, record_id: str) -> None:
        if self.refusal is not None:
            raise self.refusal
        if record_type in self._readable:
            return
        from workerctl.engine.context import source_for_type

        needed = " or ".join(source_for_type(record_type, self._registry)) or record_type
        what = f"{record_type} {record_id}" if record_id else f"{record_type} records"
        self._refuse(
            "read_refused",
            "read",
            f"read of {what} refused: the worker's context sources "
            f"({', '.join(self._worker.context_sources) or 'none'}) do not include {needed}",
            record_id,
            record_type,
        )

    def _log(self, records: builtins.list[Record]) -> None:
        if self._run.reads is None:
            self._run.reads = []
        seen = {(r.get("type"), r.get("id"), r.get("call")) for r in self._run.reads}
        call = self._call
        for record in records:
            if (record.type, record.id, call["call"]) in seen:
                continue
            entry = {"type": record.type, "id": record.id, "by": call["by"]}
            if call["tool"]:
                entry.update(tool=call["tool"], call=call["call"])
            self._run.reads.append(entry)

    # -- writing --

    def add_comment(self, record_id: str, text: str) -> Written:
        """Write ``text`` as a comment on ``record_id``, once per call (a retried run
        writes the same keyed comment, not a second one)."""
        if not isinstance(text, str) or not text.strip():
            raise ToolError("the comment text is empty")
        return self._write(record_id, "comment", {"text": text})

    def update(self, record_id: str, changes: dict[str, Any]) -> Written:
        """Set fields of ``record_id`` (its source must implement ``update_fields``)."""
        if not isinstance(changes, dict) or not changes:
            raise ToolError("no fields to update")
        return self._write(record_id, "update", {"changes": dict(changes)})

    def _write(self, record_id: str, kind: str, payload: dict[str, Any]) -> Written:
        from workerctl.engine.write_scope import sandbox_allows, scope_refusal
        from workerctl.workers.influence import hold_reasons

        if self.refusal is not None:  # a tool that caught a refusal gets no further
            raise self.refusal
        record = self._known.get(record_id) if isinstance(record_id, str) else None
        if record is None and isinstance(record_id, str):
            record = self._book.peek(record_id)
        if record is None:
            raise ToolError(f"no record {str(record_id)[:80]!r}")
        if not record.accessible_by(self._worker.name):
            raise ToolError(f"access to {record_id} is denied for worker {self._worker.name!r}")
        source = self._book.source_named(record.source) or self._book.source_of(record.id)
        if kind == "update" and not updatable(source):
            raise ToolError(f"record source {record.source!r} does not let workers update its records")
        refusal = scope_refusal(self._worker, self._run, record, self._book, self._readable)
        if refusal:
            self._refuse("write_refused", "write", refusal, record.id, record.type)
        self._writes_in_call += 1
        key = self._call["key"] + (f".{self._writes_in_call}" if self._writes_in_call > 1 else "")
        effect: dict[str, Any] = {
            "kind": kind,
            "key": key,
            "record_id": record.id,
            "by": self._call["by"],
            **({"tool": self._call["tool"]} if self._call["tool"] else {}),
            **payload,
            "at": now_iso(),
        }
        if self._call["by"] == "output_mode" and payload.get("text") is self._run.output:
            del effect["text"]  # the run's output, stored once (``Run.comment_text`` finds it)
            effect["text_is_output"] = True
        if self._run.trigger == "try":  # worker try (runs.trial): every write captured, none made
            effect.update(state=NOT_WRITTEN, reason="worker try: captured, not written")
            self._run.side_effects.append(effect)
            return Written(record.id, kind, NOT_WRITTEN)
        if not sandbox_allows(self._worker, self._run, record):
            effect.update(state=NOT_WRITTEN, reason=f"test run: {record.id} is not marked safe_for_testing")
            self._run.side_effects.append(effect)
            return Written(record.id, kind, NOT_WRITTEN)
        hold = hold_reasons(self._run, self._worker, record.type)
        if hold:
            effect.update(state=HELD, held_because=hold[0], seen=snapshot(record))
            self._run.side_effects.append(effect)
            self._save()
            return Written(record.id, kind, HELD)
        # a local write is never left unknown by a stop signal: held from its intent to
        # its outcome (RecordSource.local_writes); kill -9 still can, as it should
        held = stop_signals.hold() if getattr(source, "local_writes", False) else {}
        try:
            return self._intend_and_apply(record, kind, effect, source)
        finally:
            stop_signals.release(held)

    def _intend_and_apply(
        self, record: Record, kind: str, effect: dict[str, Any], source: RecordSource | None
    ) -> Written:
        placeholder = {**effect, "state": INTENDED}
        self._run.side_effects.append(placeholder)
        try:
            self._save()
        except BaseException:
            # stopped while the intent was being stored (a SIGTERM, Ctrl-C, a full disk):
            # the write was never sent, so it is no unknown for a person to settle
            placeholder.update(state=NOT_WRITTEN, reason="the run stopped before this write was made")
            raise
        try:
            done = apply_write(self._book, self._run, effect, source)
        except RecordSourceError as refused:
            if refused.nothing_written:
                # the server refused (403, 412, 429 …) or nothing was sent yet: the write
                # certainly did not happen, so it is no unknown for a person to settle
                self._run.side_effects.remove(placeholder)
                self._save()
            raise
        except Exception:
            found = _landed(record.id, effect, source)
            if found is False:  # looked for under its key on this machine: not there
                self._run.side_effects.remove(placeholder)
            elif found is not None:  # there: the write happened before the error
                placeholder.update(comment_id=found, state=COMMITTED, committed_at=now_iso())
            raise
        placeholder.update(done, state=COMMITTED, committed_at=now_iso())
        if not self.defer_last_save:
            self._save()
        return Written(record.id, kind, COMMITTED, bool(done.get("created")), done.get("comment_id"))

    def _refuse(self, kind: str, what: str, message: str, record_id: str, record_type: str) -> None:
        refusal = Refused(kind, what, message, record_id, record_type)
        if self.refusal is None:
            self.refusal = refusal
        raise refusal


def _landed(record_id: str, effect: dict[str, Any], source: RecordSource | None) -> str | bool | None:
    """Whether a comment whose write raised is on its record, for a source whose writes
    end on this machine (``local_writes``: nothing of it is still in flight once it
    raised, so a look under its key is the answer): the comment's id, False when it is
    not there, None when that cannot be told (a server, another kind of write, a source
    that cannot be read now). A write refused by the state itself (a comments folder
    made unwritable) was left ``unknown`` for a person to settle though the tool could
    see that nothing was written (second fresh-brief attack)."""
    if effect.get("kind") != "comment" or source is None or not getattr(source, "local_writes", False):
        return None
    try:
        comments = source.comments(record_id)
    except Exception:
        return None
    return next((c.id for c in comments if c.key == effect.get("key")), False)


def apply_write(
    book: RecordBook, run: Run, effect: dict[str, Any], source: RecordSource | None = None
) -> dict[str, Any]:
    """Make one write of ``run`` on its record's source, keyed (a second call with the
    same key writes nothing new); returns what it did, for the effect. The engine
    calls it for a write it may make now (``source``: the record's, found without
    reading it again), ``run approve`` for a held one."""
    record_id = str(effect.get("record_id"))
    source = source or book.source_of(record_id)
    if source is None:
        raise ToolError(f"no record {record_id!r}")
    if effect["kind"] == "comment":
        comment, created = source.add_comment(
            record_id,
            run.comment_text(effect),
            author=f"worker:{run.worker}",
            run_id=run.id,
            key=effect["key"],
        )
        done: dict[str, Any] = {"comment_id": comment.id, "created": created}
    elif effect["kind"] == "update":
        before = source.update_fields(record_id, effect["changes"], run_id=run.id, key=effect["key"])
        changed = any(before.get(k) != v for k, v in effect["changes"].items())
        done = {"before": before, "created": changed}
    else:
        raise ToolError(f"unknown write kind {effect['kind']!r}")
    after = source.fingerprint_now(record_id)
    if after is not None:
        done["record_after"] = after  # what the duplicate guard compares a later start with
    return done


def updatable(source: RecordSource | None) -> bool:
    """Whether ``source`` implements ``update_fields``."""
    from workerctl.records.model import RecordSource

    return source is not None and type(source).update_fields is not RecordSource.update_fields


def snapshot(record: Record) -> dict[str, Any]:
    """The record as the run saw it when it asked to write: its fingerprint, and its
    content when small enough to say later what changed."""
    import json

    data = {"title": record.title, "fields": record.fields, "links": record.links}
    text = json.dumps(data, default=str)
    return {"fingerprint": record.fingerprint(), "record": data if len(text) <= SNAPSHOT_LIMIT else None}


def _a(noun: str) -> str:
    """``noun`` with its indefinite article ("a task", "an issue")."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
