"""Small TinyDB tables read and written directly, checked for shape on every load.

The ledger and the cross-run indexes are TinyDB databases (``TinyDB(path)
.table(name)`` opens one) kept in many small files. They are read and written
here without importing TinyDB (a cold command pays about 8 ms for it), under the
caller's lock, each file replaced atomically. A file that does not parse, or
whose shape is not a table of documents holding the required fields, is
damaged: exit 4, named, never written over.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from workerctl.storage.atomic import read_json, write_json
from workerctl.storage.shapes import FieldSpec, Shape, tinydb_file

_SHAPES: dict[tuple[str, tuple], Shape] = {}


def read_table(path: Path, table: str, fields: Mapping[str, FieldSpec], *,
               hint: str | None = None) -> dict[str, dict]:
    """The table's documents as ``{doc_id: doc}``; ``{}`` when the file does not exist.
    Each document must hold ``fields`` (``storage.shapes``), else ``DamagedFile``."""
    key = (table, tuple(fields.items()))
    shape = _SHAPES.get(key)
    if shape is None:
        shape = _SHAPES[key] = tinydb_file(table, fields)
    data = read_json(path, hint=hint, shape=shape)
    return data[table] if data is not None else {}


def write_table(path: Path, table: str, docs: dict[str, dict], *, durable: bool = True) -> None:
    """Replace the file with ``{table: docs}`` atomically (fsynced when ``durable``)."""
    write_json(path, {table: docs}, sync_data=durable)


def next_id(docs: dict[str, dict]) -> str:
    return str(max((int(k) for k in docs), default=0) + 1)


def safe_name(key: str) -> str:
    """A file name for a record id or worker name: anything odd becomes ``_``, and a
    short hash keeps two ids that differ only in odd characters apart."""
    import hashlib

    clean = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:80]
    if clean == key and not key.startswith("."):
        return key
    return f"{clean.lstrip('.')}~{hashlib.sha1(key.encode()).hexdigest()[:8]}"
