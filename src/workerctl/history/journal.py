"""The change journal of a rebuild (``reindexing/``): while a ``runs reindex`` reads the
run files without the lock, every change of a run leaves a note here, under the lock,
before anything of it is written (``History.note_change``). The rebuild brings what it
built up to date from the notes alone, taking them under the lock a bounded number at a
time: first the history's index shards and cross-run indexes (``history.reindex``),
then the search index built from the same scan (``history.search_index.Build``), so
the journal stays open until both are swapped in. A rebuild of the search index alone
opens one of its own.

The journal names its owner (pid, process start, host). Only the owner takes notes; a
journal whose owner is gone is removed by the next maintenance command or writer
(``sweep_journal``), and a note that cannot be written removes the journal instead, so
a rebuild that finds its journal gone never trusts the notes to name every change.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from workerctl.errors import DamagedFile, StorageError
from workerctl.history.layout import JOURNAL, JOURNAL_OWNER
from workerctl.storage import fs
from workerctl.storage.atomic import private_dirs, write_json

if TYPE_CHECKING:
    from workerctl.history.store import History


def open_journal(history: History) -> None:
    """Under the lock, with no journal there: make the journal ``reindexing/``, owned by
    this process. From now on every change of a run leaves a note in it
    (``History.note_change``) until ``close_journal``; a rebuild that reads the run files
    without the lock then brings what it built up to date from the notes alone (the
    index shards and cross-run indexes, ``history.reindex``; the search index,
    ``search_index.Build``)."""
    folder = history.root / JOURNAL
    private_dirs(folder)
    from workerctl.history.sweep import current_owner

    owner = current_owner()
    try:
        write_json(
            folder / JOURNAL_OWNER, {"pid": owner["pid"], "start": owner["proc_start"], "host": owner["host"]}
        )
    except BaseException:
        fs.rmtree(folder, ignore_errors=True)  # no journal nobody owns (a full disk)
        raise


def journal_notes(history: History) -> list[str] | None:
    """Under the lock: the runs noted in this process's journal, their notes removed;
    None when the journal is gone or not this process's (a note could not be written:
    the notes cannot be trusted to name every change)."""
    folder = history.root / JOURNAL
    if _owner_pid(folder) != os.getpid():
        return None
    try:
        names = [n for n in fs.listdir(folder) if not n.startswith(".")]
    except FileNotFoundError:
        return None
    for name in names:
        fs.unlink(folder / name, missing_ok=True)
    return names


def close_journal(history: History) -> None:
    """Remove the journal if it is this process's (writers stop noting), under the lock."""
    folder = history.root / JOURNAL
    with history.lock:
        if _owner_pid(folder) == os.getpid():
            fs.rmtree(folder, ignore_errors=True)


def _owner_pid(journal: Path) -> int | None:
    from workerctl.storage.atomic import read_json

    try:
        owner = read_json(journal / JOURNAL_OWNER)
    except (DamagedFile, StorageError):
        return None
    return owner.get("pid") if isinstance(owner, dict) else None


def sweep_journal(history: History) -> bool:
    """Remove the journal unless a live process owns it (under the lock), so that
    writers stop noting their changes for nobody; True when a journal stays.

    Removing it is always safe, even from a live reindex: before it swaps anything in,
    a reindex checks, under the lock, that the journal is still there and still names
    it (``journal_notes``), and stops otherwise. So a journal whose owner file cannot
    be read (damaged, or from another host's copy) is removed as a dead one's, instead
    of making every later ``runs reindex`` say that another one is running."""
    from workerctl.history.sweep import _pid_alive
    from workerctl.storage.atomic import read_json
    from workerctl.storage.lock import hostname

    folder = history.root / JOURNAL
    if not fs.exists(folder):
        return False
    try:
        owner = read_json(folder / JOURNAL_OWNER)
    except (DamagedFile, StorageError):
        owner = None  # unreadable, or not there: being made is never seen under the lock
    if isinstance(owner, dict) and isinstance(owner.get("pid"), int):
        if owner.get("host", hostname()) != hostname():
            return True  # a process of another host sharing this folder: not ours to judge
        if _pid_alive(owner["pid"], owner.get("start")):
            return True
    history.settle_swap()  # a reindex killed between its two renames: its swap finished first
    fs.rmtree(folder, ignore_errors=True)
    return False
