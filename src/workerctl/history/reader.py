"""Reading the history's own files, strictly, and never writing: index shards and run files.

The store, the cross-run indexes, the ledger's checks and a reindex all need to read a
shard or a run file; each reads through a ``Reader`` (``History.reader``), so none of
them calls into another's private methods, and every read checks the file's shape
(``history.layout``) the same way: a damaged file raises ``DamagedFile`` naming it
and the fix (exit 4), never half an answer.

Shards are parsed once per content and shared through the process's tables
(``history.tables.KnownTables``): a caller replaces a summary in the dict it gets,
never changes one in place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from workerctl.errors import DamagedFile, StorageError
from workerctl.history.layout import RUN_SHAPE, SHARD_SHAPE, TABLE
from workerctl.memo import Memo
from workerctl.storage import fs
from workerctl.storage.atomic import parse_json, read_json

if TYPE_CHECKING:
    from workerctl.history.tables import KnownTables


class Reader:
    """The shards and run files under one history folder."""

    def __init__(self, root: Path, tables: KnownTables) -> None:
        self.root = root
        self.tables = tables
        self._paths: Memo[tuple[str, str], Path] = Memo(lambda key: self.root / key[0] / key[1])

    def _path(self, folder: str, name: str) -> Path:
        """``root/folder/name``, made once (a commit asks for the same paths many times)."""
        return self._paths[folder, name]

    def shard_path(self, shard: int) -> Path:
        return self._path("index", f"{shard:06d}.json")

    def body_path(self, run_id: str) -> Path:
        return self._path(f"runs/{run_id[:2]}", f"{run_id}.json")

    def hint(self, path: Path) -> str:
        return f"move {path} aside, then run 'workerctl runs reindex' to rebuild the index from the run files"

    def shard(self, shard: int) -> dict[str, dict]:
        """The shard's TinyDB table as ``{doc_id: summary}``; {} if absent."""
        path = self.shard_path(shard)
        return self.tables.read(path, TABLE, SHARD_SHAPE, hint=self.hint(path))

    def run_file(self, run_id: str, dir_fd: int | None = None) -> dict | None:
        """The run file of ``run_id``, checked; None if absent. ``dir_fd``: its folder,
        already open (``fs.open_dir``): a scan of every run file opens each folder once."""
        if dir_fd is not None:
            return self.run_file_at(run_id, dir_fd)[0]
        path = self.body_path(run_id)
        return self._of(run_id, path, read_json(path, hint=self._run_hint(path), shape=RUN_SHAPE))

    def run_file_at(self, run_id: str, dir_fd: int) -> tuple[dict | None, os.stat_result | None]:
        """``run_file`` from its folder's descriptor, with the ``fstat`` of the file read:
        a reindex's one scan feeds the search index too, which keeps each file's stamp."""
        path = self.body_path(run_id)
        try:
            fd = fs.open_file_at(dir_fd, path.name, os.O_RDONLY, path=path)
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            raise StorageError(path, exc, "read") from None
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            data = parse_json(path, handle.read(), hint=self._run_hint(path), shape=RUN_SHAPE, again=True)
        return self._of(run_id, path, data), st

    def _of(self, run_id: str, path: Path, data: dict | None) -> dict | None:
        """``data``, a run file's checked JSON, if it is ``run_id``'s (else damaged)."""
        if data is not None and data["id"] != run_id:
            raise DamagedFile(path, f"it holds run {data['id']!r}, not {run_id!r}", hint=self._run_hint(path))
        return data

    def _run_hint(self, path: Path) -> str:
        return (
            f"move {path} aside (as {path.name}.damaged) and run 'workerctl runs reindex', "
            "or restore it from a backup"
        )
