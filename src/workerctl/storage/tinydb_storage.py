"""TinyDB on durable files: the storage every TinyDB database of workerctl uses.

Kept apart from ``storage.atomic`` so that commands which only read or write the
run history do not pay for importing TinyDB.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tinydb.storages import Storage

from workerctl.storage.atomic import read_json, write_json
from workerctl.storage.shapes import Shape, tinydb_file

if TYPE_CHECKING:
    from tinydb import TinyDB


class AtomicJSONStorage(Storage):
    """TinyDB storage that never writes in place and refuses damaged files.

    TinyDB's own ``JSONStorage`` truncates and rewrites the open file, so a crash
    or a concurrent writer can leave half a document behind. ``shape`` is checked
    on every read (see ``storage.shapes``); without one, the file must at least be
    a TinyDB database (an object of tables).
    """

    def __init__(self, path: str | Path, hint: str | None = None, shape: Shape | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.hint = hint
        self.shape = shape or _any_tables

    def read(self) -> dict | None:
        return read_json(self.path, hint=self.hint, shape=self.shape)

    def write(self, data: dict) -> None:
        write_json(self.path, data)

    def close(self) -> None:
        pass


def _any_tables(data: object) -> str | None:
    from workerctl.storage.shapes import describe

    if not isinstance(data, dict):
        return f"expected a TinyDB database (an object), found {describe(data)}"
    for name, table in data.items():
        if not isinstance(table, dict):
            return f"the {name!r} table is {describe(table)}, not an object of documents"
    return None


def open_db(path: Path, hint: str | None = None, shape: Shape | None = None) -> TinyDB:
    """A TinyDB on ``AtomicJSONStorage`` (imported here to keep start-up cheap)."""
    from tinydb import TinyDB

    return TinyDB(path, storage=AtomicJSONStorage, hint=hint, shape=shape)


__all__ = ["AtomicJSONStorage", "open_db", "tinydb_file"]
