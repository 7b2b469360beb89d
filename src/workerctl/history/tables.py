"""Small TinyDB tables read and written directly, checked for shape on every load.

The ledger and the cross-run indexes are TinyDB databases (``TinyDB(path)
.table(name)`` opens one) kept in many small files. They are read and written
here without importing TinyDB (a cold command pays about 8 ms for it), under the
caller's lock, each file replaced atomically. A file that does not parse, or
whose shape is not a table of documents holding the required fields, is
damaged: exit 4, named, never written over.
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

from workerctl.errors import HistoryError, StorageError
from workerctl.storage import fs
from workerctl.storage.atomic import (
    PreparedFile,
    encode_json,
    loads_state,
    parse_json,
    prepare_text,
    read_json,
    write_text_atomic,
)
from workerctl.storage.shapes import FieldSpec, Shape, tinydb_file

_SHAPES: dict[tuple[str, tuple], Shape] = {}


def table_shape(table: str, fields: Mapping[str, FieldSpec]) -> Shape:
    key = (table, tuple(fields.items()))
    shape = _SHAPES.get(key)
    if shape is None:
        shape = _SHAPES[key] = tinydb_file(table, fields)
    return shape


def read_table(
    path: Path,
    table: str,
    fields: Mapping[str, FieldSpec],
    *,
    hint: str | None = None,
    known: KnownTables | None = None,
) -> dict[str, dict]:
    """The table's documents as ``{doc_id: doc}``; ``{}`` when the file does not exist.
    Each document must hold ``fields`` (``storage.shapes``), else ``DamagedFile``.
    ``known``: the process's last sight of the file (see ``KnownTables``)."""
    shape = table_shape(table, fields)
    if known is not None:
        return known.read(path, table, shape, hint=hint)
    data = read_json(path, hint=hint, shape=shape)
    return data[table] if data is not None else {}


def write_table(
    path: Path,
    table: str,
    docs: dict[str, dict],
    *,
    durable: bool = True,
    known: KnownTables | None = None,
    ahead: PreparedFile | None = None,
) -> None:
    """Replace the file with ``{table: docs}`` atomically (fsynced when ``durable``).
    ``ahead``: the same content prepared earlier (``KnownTables.prepare``), put in
    place if it is byte for byte what is to be written."""
    if known is not None:
        known.write(path, table, docs, durable=durable, ahead=ahead)
    else:
        write_text_atomic(path, encode_json({table: docs}), sync_data=durable)


class KnownTables:
    """The last content this process read or wrote of a few table files.

    One process rewrites the same files again and again under the history lock: a
    batch's runs commit three times each into the same index shard, ledger worker
    file and cross-run index files, and the process itself wrote them last.
    Reading such a file back is cheap; parsing it and checking its shape is not
    (a 64 KB shard: about 0.4 ms), nor is encoding it whole for each write. So
    the bytes last seen are kept with their documents: a read that finds the same
    bytes returns those documents without parsing them again, and a write encodes
    only the documents that are not the very objects read or written before.

    The key is the file's content, never its ``stat`` (a timestamp's granularity
    and a reused inode could hide another process's write): a file changed by
    anyone else reads differently and is parsed and checked as usual.

    Documents are shared with this cache: a caller replaces a document
    (``docs[k] = new``) and never changes one in place. Each read returns a new
    outer dict, so a write that fails leaves the cache as the file is.

    ``stage`` keeps a file's next content here instead of writing it, until
    ``flush``: reads in this process see it, other processes the file as it was.
    Only for a caller that holds the lock the whole time in between (see
    ``History.write_shared``); a staged file is never evicted.
    """

    def __init__(self, size: int = 24) -> None:
        self.size = size
        self._seen: OrderedDict[Path, _Seen] = OrderedDict()  # read or written: at most ``size``
        self._staged: dict[Path, _Seen] = {}  # to be written by ``flush``: never dropped
        self._guard = threading.Lock()

    def read(self, path: Path, table: str, shape: Shape, *, hint: str | None = None) -> dict[str, dict]:
        seen = self._get(path)
        if seen is not None and seen.staged and seen.table == table:
            return dict(seen.docs)
        try:
            raw = fs.read_bytes(path)  # never through a link (storage.fs)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StorageError(path, exc, "read") from None
        if seen is not None and seen.table == table:
            if seen.raw == raw:
                return dict(seen.docs)
            again = _reread(seen, raw, table, shape)
            if again is not None:
                self._put(path, again)
                return dict(again.docs)
        docs = parse_json(path, raw, hint=hint, shape=shape, again=True)[table]
        self._put(path, _Seen(table, raw, docs, {}))
        return dict(docs)

    def write(
        self,
        path: Path,
        table: str,
        docs: dict[str, dict],
        *,
        durable: bool = True,
        ahead: PreparedFile | None = None,
        folder: Path | None = None,
    ) -> None:
        """Replace the file with ``{table: docs}`` atomically, byte for byte what
        ``write_json`` writes; by putting ``ahead`` in place when it holds exactly
        those bytes (see ``prepare``). ``folder``: the temp file is written there
        (see ``prepare_text``), not beside the file."""
        raw, parts = self._encode(path, table, docs)
        if ahead is not None and ahead.key == raw:
            ahead.publish()
        elif folder is None or not _swapped_in_through(folder, path, raw, durable):
            write_text_atomic(path, raw, sync_data=durable)
        self._put(path, _Seen(table, raw, dict(docs), parts))

    def prepare(
        self, path: Path, table: str, docs: dict[str, dict], *, folder: Path | None = None
    ) -> PreparedFile:
        """``{table: docs}`` written to a temp file (in ``folder``, else beside ``path``)
        and fsynced, for a later ``write`` of the same content to put in place
        (outside a lock now, the rename under it later: ``storage.atomic.PreparedFile``)."""
        raw, _ = self._encode(path, table, docs)
        return prepare_text(path, raw, key=raw, folder=folder)

    def _encode(
        self, path: Path, table: str, docs: dict[str, dict]
    ) -> tuple[bytes, dict[str, tuple[dict, bytes]]]:
        seen = self._get(path)
        before = seen.parts if seen is not None and seen.table == table else {}
        get = before.get
        # each document's bytes are kept beside the very object they encode: a commit
        # replaces or adds one or two of a shard's hundred summaries (a ref log's 500
        # refs), and only those are encoded again; the rest is joined as bytes
        parts = {
            key: part if (part := get(key)) is not None and part[0] is doc else (doc, _part(key, doc))
            for key, doc in docs.items()
        }
        raw = b"".join((_head(table), b",".join(map(_BYTES, parts.values())), b"}}"))
        return raw, parts

    def stage(self, path: Path, table: str, docs: dict[str, dict], *, durable: bool = True) -> None:
        """Keep ``{table: docs}`` as the file's next content, written by ``flush``."""
        seen = self._get(path)
        parts = seen.parts if seen is not None and seen.table == table else {}
        durable = durable or bool(seen is not None and seen.staged and seen.durable)
        self._put(path, _Seen(table, b"", dict(docs), parts, staged=True, durable=durable))

    def flush(self, path: Path, *, folder: Path | None = None) -> None:
        """Write the staged content of ``path`` (fsynced if any stage asked for it);
        ``folder``: as ``write`` takes it."""
        seen = self._get(path)
        if seen is not None and seen.staged:
            self.write(path, seen.table, seen.docs, durable=seen.durable, folder=folder)

    def forget(self, path: Path) -> None:
        """Drop what is known of ``path`` (staged content too): the next read parses
        the file."""
        with self._guard:
            self._seen.pop(path, None)
            self._staged.pop(path, None)

    def _get(self, path: Path) -> _Seen | None:
        with self._guard:
            seen = self._staged.get(path)
            if seen is None:
                seen = self._seen.get(path)
                if seen is not None:
                    self._seen.move_to_end(path)
            return seen

    def _put(self, path: Path, seen: _Seen) -> None:
        """Keep ``seen``; the least recently used files read or written go beyond ``size``.
        Staged files are kept apart and not counted: they are writes still to come, as
        many as one hand-over chain's commits touch (a batch's 0.2 s chain stages about
        20, and counting them pushed out the very files every commit reads, parsed
        again)."""
        with self._guard:
            if seen.staged:
                self._seen.pop(path, None)
                self._staged[path] = seen
                return
            self._staged.pop(path, None)
            self._seen[path] = seen
            self._seen.move_to_end(path)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)


class _Seen:
    """One file as last seen: its bytes, its documents, and (once written) each
    document's JSON beside the object it was encoded from; or, ``staged``, the
    content it is to have (not written yet: no bytes)."""

    __slots__ = ("docs", "durable", "parts", "raw", "staged", "table")

    def __init__(
        self,
        table: str,
        raw: bytes,
        docs: dict[str, dict],
        parts: dict[str, tuple[dict, bytes]],
        *,
        staged: bool = False,
        durable: bool = True,
    ) -> None:
        self.table, self.raw, self.docs, self.parts = table, raw, docs, parts
        self.staged, self.durable = staged, durable


def _head(table: str) -> bytes:
    """What a table file this module writes begins with: ``{"table":{``."""
    return f"{{{encode_json(table)}:{{".encode("utf-8", "backslashreplace")


def _reread(seen: _Seen, raw: bytes, table: str, shape: Shape) -> _Seen | None:
    """The file as another process left it, read from what this process last wrote
    (None: parse it whole). Two processes committing in turn rewrite the same
    shard, ledger and index files; each then found bytes it had not seen, parsed
    the whole file, checked every document's shape and, at its next write,
    encoded every document again (a commit cost three times as much as in one
    process). A file this module wrote is its documents' bytes in order
    (``_encode``), and another process changes a few at the end: the documents
    whose bytes still lead the file are this process's own objects (the same
    bytes parse to equal documents), and only what follows them is parsed and
    checked, as an object of its own. Anything that does not fit that picture
    (another writer's spacing, a document changed in the middle, a damaged
    tail, a key repeated) is read whole, by the one parser and its messages."""
    head = _head(table)
    end = len(raw) - 2
    if not seen.parts or not raw.startswith(head) or not raw.endswith(b"}}") or end < len(head):
        return None
    pos = len(head)
    kept: dict[str, tuple[dict, bytes]] = {}
    for key, part in seen.parts.items():
        stop = pos + len(part[1])
        if stop > end or not raw.startswith(part[1], pos) or (stop < end and raw[stop] != 0x2C):  # ","
            break
        kept[key] = part
        pos = stop + 1
        if stop == end:
            break
    if not kept:
        return None
    if pos > end:  # the kept documents are the whole file
        rest: dict = {}
    else:
        try:
            rest = loads_state(b"{" + raw[pos:end] + b"}")
        except ValueError:  # DuplicateKey and TooDeep are ValueErrors
            return None
        if not rest or kept.keys() & rest.keys() or shape({table: rest}):
            return None
    docs = {key: part[0] for key, part in kept.items()}
    docs.update(rest)
    return _Seen(table, raw, docs, kept)


def next_id(docs: dict[str, dict]) -> str:
    return str(max(map(int, docs), default=0) + 1)  # ids are ASCII digits (storage.shapes)


def _part(key: str, doc: object) -> bytes:
    """``"key":doc`` as it stands in a table file: the bytes ``write_json`` writes (a
    lone surrogate as its JSON escape, see ``atomic._write_temp``)."""
    return f"{encode_json(key)}:{encode_json(doc)}".encode("utf-8", "backslashreplace")


_BYTES = operator.itemgetter(1)


def safe_name(key: str) -> str:
    """A file name for a record id or worker name: the one injective mapping,
    ``storage.filenames.file_name``."""
    from workerctl.storage.filenames import file_name

    return file_name(key)


def _swapped_in_through(folder: Path, path: Path, raw: bytes, durable: bool) -> bool:
    """``raw`` written to a temp file in ``folder`` and put in place (``prepare_text``,
    then ``publish``); False, nothing written, when that folder refuses the temp file (a
    planted link): the caller then writes as always, beside the file."""
    try:
        prepared = prepare_text(path, raw, sync_data=durable, folder=folder)
    except (HistoryError, OSError):
        return False
    prepared.publish()
    return True
