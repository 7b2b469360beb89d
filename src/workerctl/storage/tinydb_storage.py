"""TinyDB on durable files: the storage every TinyDB database of workerctl uses.

Kept apart from ``jsonfiles`` so that commands which only read or write the run
history do not pay for importing TinyDB.
"""

from __future__ import annotations

from pathlib import Path

from tinydb.storages import Storage

from workerctl.errors import DamagedFile
from workerctl.storage.atomic import read_json, write_json


class AtomicJSONStorage(Storage):
    """TinyDB storage that never writes in place and refuses damaged files.

    TinyDB's own ``JSONStorage`` truncates and rewrites the open file, so a crash
    or a concurrent writer can leave half a document behind.
    """

    def __init__(self, path: str | Path, hint: str | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.hint = hint

    def read(self) -> dict | None:
        data = read_json(self.path, hint=self.hint)
        if data is not None and not isinstance(data, dict):
            raise DamagedFile(self.path, "top level is not an object", hint=self.hint)
        return data

    def write(self, data: dict) -> None:
        write_json(self.path, data)

    def close(self) -> None:
        pass


def open_db(path: Path, hint: str | None = None):
    """A TinyDB on ``AtomicJSONStorage`` (imported here to keep start-up cheap)."""
    from tinydb import TinyDB

    return TinyDB(path, storage=AtomicJSONStorage, hint=hint)
