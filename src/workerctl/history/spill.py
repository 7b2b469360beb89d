"""Scratch files that let ``runs reindex`` work in bounded memory, whatever the history's size.

A reindex must see every run in an order (by slot, then by creation time) and
group every side effect by its target; holding a million runs in memory to do so
took gigabytes. Here the items go to JSON-lines files under the history's
``reindex.work/`` folder instead: ``SortedSpill`` sorts them in runs of at most
``CHUNK`` items and merges the runs lazily (an external merge sort), and
``Partitions`` appends them to one file per partition, read back one at a time.
Memory then holds one chunk, or one partition, at a time.

The files are scratch, never a state file: nothing reads them but the reindex
that wrote them, they are not fsynced, and a crash leaves them for the next
reindex to remove (``WORK``), as it leaves ``index.new``. Each file written
passes ``write_point`` so the fault-injection tests can kill a reindex there.
"""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from workerctl.digits import whole_number
from workerctl.errors import StorageError
from workerctl.jsonvalues import loads
from workerctl.storage import fs
from workerctl.storage.faults import write_point

WORK = "reindex.work"  # the folder under the history
#: items sorted in memory at once (the tests make it small, in process or through
#: WORKERCTL_TEST_SPILL_CHUNK, so that a small history goes through the merge)
CHUNK = 5000


def chunk_size() -> int:
    """``CHUNK``, or the test's WORKERCTL_TEST_SPILL_CHUNK, read when a sorter is made
    (not at import: the suite forks its processes from one that imported this)."""
    asked = whole_number(os.environ.get("WORKERCTL_TEST_SPILL_CHUNK", ""))
    return asked if asked else CHUNK


def _append(path: Path, lines: list[str]) -> None:
    """``lines`` appended to the scratch file ``path`` (created if need be)."""
    try:
        write_point(path)
        fd = fs.open_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600, create_parents=True)
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogatepass") as out:
            out.write("".join(lines))
    except OSError as exc:  # a full disk: the one-line "cannot write" (exit 4), as for any file
        raise StorageError(path, exc) from None


def _lines(path: Path) -> Iterator[Any]:
    try:
        fd = fs.open_file(path, os.O_RDONLY)
    except OSError as exc:
        raise StorageError(path, exc, "read") from None
    with os.fdopen(fd, "r", encoding="utf-8", errors="surrogatepass") as src:
        for line in src:
            yield loads(line)


def _encode(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n"


class SortedSpill:
    """Items (JSON values) given in any order, read back sorted by ``key``."""

    def __init__(self, folder: Path, name: str, key: Callable[[Any], Any], chunk: int | None = None) -> None:
        self.folder = folder
        self.name = name
        self.key = key
        self.chunk = chunk or chunk_size()
        self._items: list[Any] = []
        self._files: list[Path] = []
        self.count = 0

    def add(self, item: Any) -> None:
        self._items.append(item)
        self.count += 1
        if len(self._items) >= self.chunk:
            self._spill()

    def _spill(self) -> None:
        if not self._items:
            return
        self._items.sort(key=self.key)
        path = self.folder / f"{self.name}-{len(self._files):06d}.jsonl"
        _append(path, [_encode(item) for item in self._items])
        self._files.append(path)
        self._items = []

    def __iter__(self) -> Iterator[Any]:
        """The items sorted by ``key`` (stable: equal keys keep the order they were added
        in); one line of each chunk file in memory at a time."""
        if not self._files:  # small: never left memory
            yield from sorted(self._items, key=self.key)
            return
        self._spill()
        yield from heapq.merge(*(_lines(path) for path in self._files), key=self.key)


class Partitions:
    """Items appended to one of ``count`` partitions, read back a partition at a time."""

    def __init__(self, folder: Path, name: str, count: int, buffered: int | None = None) -> None:
        self.folder = folder
        self.name = name
        self.count = count
        self.buffered = buffered or 4 * chunk_size()
        self._held: dict[int, list[str]] = {}
        self._size = 0
        self._written: set[int] = set()

    def add(self, part: int, item: Any) -> None:
        self._held.setdefault(part, []).append(_encode(item))
        self._size += 1
        if self._size >= self.buffered:
            self._flush()

    def _path(self, part: int) -> Path:
        return self.folder / f"{self.name}-{part:06d}.jsonl"

    def _flush(self) -> None:
        for part, lines in self._held.items():
            _append(self._path(part), lines)
            self._written.add(part)
        self._held, self._size = {}, 0

    def __iter__(self) -> Iterator[tuple[int, list[Any]]]:
        """(partition, its items in the order added), for each partition that has any."""
        self._flush()
        for part in sorted(self._written):
            yield part, list(_lines(self._path(part)))
