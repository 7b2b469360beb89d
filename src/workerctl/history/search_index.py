"""The full-text search index of the run history: derived data, never the truth.

``.workerctl/search.db`` is a SQLite database with an FTS5 table of what each run
said (``search_text.columns``: outputs, errors, tool calls, comments written, record
ids and titles) and a table of the runs it holds, each with the *stamp* of the run
file it was read from (inode, modification time in ns, size: every run file is
replaced by a rename, so a new file is a new stamp). The run files stay the source
of truth; the index may be deleted at any time.

How it stays right (``docs/search.md``):

- **Kept on every transition.** ``keep`` is called by ``History._commit`` (and
  ``History.settle``) under the history lock, after the run file is in place and
  before the run's marker goes. A crash between the two leaves the marker, so the
  sweep settles the run and ``keep`` runs again; until then a reader treats every
  run with a marker as unknown to the index and matches its run file itself.
- **Checked before it is believed** (``open_for_reading``): its schema, a
  ``complete`` flag written last by a rebuild, the high-water mark (the newest slot,
  shard and number, it holds against the history's newest), and the boot it was
  last verified in (writes are not fsynced: after a reboot every run file's stamp is
  compared once, ``catch_up``). Missing, damaged (any SQLite error), or of an
  unknown shape: rebuilt from the run files.
- **Reading never needs to write.** When the index cannot be brought up to date (a
  read-only mount, a full disk, the history lock held past its timeout), the answer
  comes from a scan of the run files through an index built in memory: slower,
  never wrong. The same while another command holds SQLite's own lock past
  ``REPAIR_WAIT`` (``in_use``): the index is being written, not damaged, and kept.

The file is opened only after ``storage.fs`` has walked its folder without
following a link and found a plain file (a link planted there is ``PlantedLink``,
exit 4); SQLite opens it through that folder's descriptor. SQLite opens no other
file: its rollback journal is kept in memory (a journal file is opened by name at
each write, and a hard link planted there was written through). Writes are not
fsynced (``synchronous=OFF``). A write a crash cuts may leave the file torn, so each
write leaves a note (``_written``) for its length: a note whose process is gone, or
an older version's hot journal, makes the index rebuilt, never believed (``_cut``);
a power cut is found by the boot check.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat as stat_mod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workerctl.digits import whole_number
from workerctl.errors import LockTimeout, PlantedLink, StorageError, UsageError
from workerctl.history.search_text import COLUMNS, columns
from workerctl.runs.states import FINISHED
from workerctl.storage import fs
from workerctl.storage.atomic import loads_state
from workerctl.storage.faults import write_point
from workerctl.storage.lock import REPAIR_WAIT

if TYPE_CHECKING:
    import sqlite3

    from workerctl.history.store import History, RunFilter
    from workerctl.runs.model import Run

INDEX_NAME = "search.db"
SCHEMA = "3"  # 2: runs(t) indexed; 3: runs keyed by (created, id); another version is rebuilt
#: versions read and kept as they are: a schema 2 index answers the same (its rows are
#: found through its index of ids, correct but a random page each); ``runs reindex``
#: builds it again as 3
_READABLE = ("2", SCHEMA)
_JOURNAL = "-journal"
#: the wait for SQLite's own lock, held by a command writing the index (for milliseconds,
#: or for as long as a stopped one, or another program, holds it): no longer than a
#: reader's wait for the history lock. Then a reader answers from the run files
#: (``in_use``), and a writer (under the history lock, which others wait for) removes the
#: index's name for the next search to rebuild; a writer that waited 10 s here at each
#: commit held every other writer past its lock timeout
_BUSY_MS = int(REPAIR_WAIT * 1000)
#: a rebuild catches up on the runs changed meanwhile off the lock, in at most this many
#: rounds, until at most _FINAL_NOTES are left for its final hold
_ROUNDS, _FINAL_NOTES = 50, 200


def _ddl(*, on_disk: bool) -> tuple[str, ...]:
    """The tables: ``runs`` (one row per run file: its slot, the fields filters use,
    its stamp, and ``t``, the rowid of its words in ``text``, or null) and ``text``
    (FTS5). On disk ``text`` is contentless (the words are in the run files already;
    the index alone is about a tenth of the history) and holds finished runs only:
    a run still going has a marker, and is matched from its run file. The indexes
    come after the rows (``_INDEXES``): a rebuild sorts each once."""
    contentless = ", content=''" if on_disk else ""
    return (
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID",
        "CREATE TABLE runs(n INTEGER PRIMARY KEY, id TEXT NOT NULL, shard INTEGER, doc INTEGER,"
        " worker TEXT, status TEXT, created TEXT NOT NULL, record_id TEXT, error_kind TEXT, stamp TEXT,"
        " digest TEXT, t INTEGER)",
        f"CREATE VIRTUAL TABLE text USING fts5({', '.join(COLUMNS)}{contentless})",
    )


#: A run's row is found by (created, id), never by its id alone: ids are random, so an
#: index of ids puts each new run on a random page, read from the disk when it is not
#: cached (0.8 ms of the 1.8 ms ``keep`` took at 1,000,000 runs); a run's creation time
#: never changes and new runs' are the newest, so their rows land on the same few pages.
#: And a hit's run by its words' rowid: without that index the join reads every run.
_INDEXES = (
    "CREATE UNIQUE INDEX runs_key ON runs(created, id)",
    "CREATE INDEX runs_t ON runs(t)",
)


_FINISHED = frozenset(FINISHED)

#: snippet marks: private-use characters, removed from the text before it is indexed
#: for display (``Hit.snippet`` never holds one from the data)
MARK_ON, MARK_OFF = "\ue000", "\ue001"


def index_path(history: History) -> Path:
    """``.workerctl/search.db``: beside the history folder, not in it."""
    return history.root.parent / INDEX_NAME


# -- opening, through the no-follow rules --


class _Handle:
    """A connection and the descriptor of the folder SQLite opened the file through."""

    def __init__(self, con: sqlite3.Connection, dir_fd: int, ident: tuple[int, int]) -> None:
        self.con = con
        self.dir_fd = dir_fd
        self.ident = ident
        self.high: tuple[int, int] | None = None

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            os.close(self.dir_fd)


def _plain_or_absent(dir_fd: int, name: str, path: Path) -> os.stat_result | None:
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    if stat_mod.S_ISLNK(st.st_mode):
        raise PlantedLink(str(path), "a symbolic link")
    if not stat_mod.S_ISREG(st.st_mode):
        raise PlantedLink(str(path), "not a plain file")
    if st.st_nlink > 1:  # SQLite writes in place: through it, into the other name's file
        raise PlantedLink(str(path), "a hard link to a file elsewhere")
    return st


def _connect(path: Path, *, readonly: bool, create: bool = False) -> _Handle:
    """Open the index at ``path`` (its folder walked by ``storage.fs``; the file and
    its journal plain files or absent). ``FileNotFoundError`` when it is missing and
    not to be created."""
    import sqlite3

    dir_fd = fs.open_dir(path.parent)
    try:
        st = _plain_or_absent(dir_fd, path.name, path)
        _plain_or_absent(dir_fd, path.name + _JOURNAL, path.with_name(path.name + _JOURNAL))
        if st is None:
            if not create:
                raise FileNotFoundError(str(path))
            fd = fs.create_new(path, 0o600, create_parents=False)
            try:
                os.fchmod(fd, 0o600)  # private whatever the umask (SQLite gives its journal the same)
            finally:
                os.close(fd)
            st = os.lstat(path.name, dir_fd=dir_fd)
        _rollback_only(path)
        where = f"/proc/self/fd/{dir_fd}/{path.name}" if os.path.isdir("/proc/self/fd") else str(path)
        from urllib.parse import quote

        con = sqlite3.connect(
            f"file:{quote(where)}?mode={'ro' if readonly else 'rw'}",
            uri=True,
            timeout=_BUSY_MS / 1000,
            check_same_thread=False,
            isolation_level=None,
        )
        after = _plain_or_absent(dir_fd, path.name, path)
        if (
            after is None
            or (after.st_dev, after.st_ino) != (st.st_dev, st.st_ino)
            or not fs.held_as(path, (st.st_dev, st.st_ino))
        ):
            con.close()
            raise PlantedLink(str(path), "a file swapped while it was opened")
        if not readonly:
            con.execute("PRAGMA synchronous=OFF")
            # no journal file: SQLite opens one by name at each write (a hard link planted
            # there was written through); a write a crash cuts is found by its note instead
            con.execute("PRAGMA journal_mode=MEMORY")
        return _Handle(con, dir_fd, (st.st_dev, st.st_ino))
    except BaseException:
        os.close(dir_fd)
        raise


#: the bytes of a SQLite header that say "rollback journal" (18: write, 19: read
#: version; 2 is WAL, which opens a -wal and a -shm file by name, even to read)
_ROLLBACK = b"\x01\x01"


def _rollback_only(path: Path) -> None:
    """The index must be a rollback-journal database (or a new, empty file): a WAL one
    (two header bytes changed) makes SQLite open ``-shm`` by name and write it even
    for a search, through a hard link planted there. Anything else is damaged."""
    import sqlite3

    fd = fs.open_file(path, os.O_RDONLY)
    try:
        head = os.pread(fd, 20, 0)
    finally:
        os.close(fd)
    if head and head[18:20] != _ROLLBACK:
        raise sqlite3.DatabaseError("not a rollback-journal database (WAL or damaged header)")


def _meta(con: sqlite3.Connection) -> dict[str, str]:
    return {str(k): str(v) for k, v in con.execute("SELECT key, value FROM meta")}


def _set_meta(con: sqlite3.Connection, **values: object) -> None:
    con.executemany(
        "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", [(k, str(v)) for k, v in values.items()]
    )


# -- what is written for one run --


def stamp_of(st: os.stat_result) -> str:
    """A run file's identity: every save replaces it by a rename (a new inode)."""
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


def _digest(cols: tuple[str, ...]) -> str:
    h = hashlib.blake2b(digest_size=12)
    for col in cols:
        h.update(col.encode("utf-8", "surrogatepass"))
        h.update(b"\0\1")
    return h.hexdigest()


def _clean(text: str) -> str:
    """Text as SQLite takes it (every text bound for the index, on disk or in memory,
    passes here): without the snippet marks (they cannot be told from the data's own),
    a NUL as a space (SQLite's snippet() stops at one), and a lone surrogate (stored
    escaped from text that was not valid Unicode) as "?": SQLite refuses to encode one,
    and a search that met one ended in a traceback."""
    if MARK_ON in text or MARK_OFF in text:
        text = text.replace(MARK_ON, "").replace(MARK_OFF, "")
    if "\0" in text:
        text = text.replace("\0", " ")
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


#: the creation time of a row kept for a file that is not a run: no ISO time (nor the
#: empty text of a run file edited by hand) can be it, and it sorts before every time
NOT_A_RUN = "\x00"


def _row(data: dict[str, Any] | None, *, every: bool = False) -> tuple[tuple[Any, ...], tuple[str, ...], str]:
    """(the filter fields, the words, their digest) of one run file's JSON (None: a
    file that is not a run, kept by its stamp only). Words only once it has finished,
    unless ``every`` (an index in memory)."""
    if data is None:
        return (None, None, None, None, NOT_A_RUN, None, None), (), ""
    cols = tuple(_clean(c) for c in columns(data))
    error = data.get("error")
    fields = (
        _int(data.get("_shard")),
        _int(data.get("_doc")),
        _str(data.get("worker")),
        _str(data.get("status")),
        _str(data.get("created")) or "",
        _str(data.get("record_id")),
        _str(error.get("kind")) if isinstance(error, dict) else None,
    )
    if not every and data.get("status") not in _FINISHED:
        cols = ()
    return fields, cols, _digest(cols) if cols else ""


def _words(con: sqlite3.Connection, cols: tuple[str, ...]) -> int | None:
    if not cols:
        return None
    marks = ", ".join("?" * len(COLUMNS))
    return con.execute(f"INSERT INTO text({', '.join(COLUMNS)}) VALUES({marks})", cols).lastrowid


def _insert(
    con: sqlite3.Connection,
    run_id: str,
    fields: tuple[Any, ...],
    cols: tuple[str, ...],
    stamp: str,
    digest: str,
) -> None:
    con.execute(
        "INSERT INTO runs(id, shard, doc, worker, status, created, record_id, error_kind, stamp,"
        " digest, t) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, *fields, stamp, digest, _words(con, cols)),
    )


def put(
    con: sqlite3.Connection, run_id: str, data: dict[str, Any] | None, stamp: str, *, every: bool = False
) -> None:
    """Index one run (``data``: its stored JSON; None: a file that is not a run,
    kept only by its stamp so it is not read again while unchanged). Its words
    only once it has finished, unless ``every`` (an index in memory).

    Its row is found by (created, id) (``_INDEXES``). Words that change are written
    under a new rowid of ``text`` and the old ones left unreachable (a contentless
    table can delete only given the old words): rare, since a finished run's words
    seldom change; a rebuild drops them."""
    fields, cols, digest = _row(data, every=every)
    row = con.execute(
        "SELECT n, digest, t FROM runs WHERE created = ? AND id = ?", (fields[4], run_id)
    ).fetchone()
    if row is None:
        _insert(con, run_id, fields, cols, stamp, digest)
        return
    _update(con, row, fields, cols, stamp, digest)


def _update(
    con: sqlite3.Connection,
    row: tuple[int, str, int | None],
    fields: tuple[Any, ...],
    cols: tuple[str, ...],
    stamp: str,
    digest: str,
) -> None:
    """Row ``row`` ((n, digest, t)) rewritten in place, its words kept if unchanged."""
    t = row[2] if row[1] == digest else _words(con, cols)
    con.execute(
        "UPDATE runs SET shard=?, doc=?, worker=?, status=?, created=?, record_id=?, error_kind=?,"
        " stamp=?, digest=?, t=? WHERE n=?",
        (*fields, stamp, digest, t, row[0]),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    """Text SQLite can hold: a lone surrogate (a record id read back from JSON) as "?",
    as the words are (``put``); it ended a reindex in a traceback."""
    return value.encode("utf-8", "replace").decode("utf-8") if isinstance(value, str) else None


# -- kept on every transition (History._commit, under the history lock) --

_WRITERS: dict[str, tuple[int, _Handle]] = {}


def keep(history: History, run: Run, shard: int, doc: int) -> None:
    """Bring the index's entry for ``run`` up to date with the run file just written.

    Called under the history lock, after the run file and before the run's marker
    goes. No index: nothing to keep (the next search builds one). An index SQLite
    cannot write (damaged, a full disk) is removed, so that the next search
    rebuilds it rather than answer from it; if even that fails, the error goes up
    and the run's marker stays, for the sweep to settle (and call this again).
    """
    import sqlite3

    path = index_path(history)
    key = str(path)
    try:
        st = fs.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        _forget(key)
        return
    except PlantedLink:
        return  # never written through; a search reports it (exit 4)
    if not stat_mod.S_ISREG(st.st_mode):
        return
    if st.st_nlink > 1:
        # a backup of hard links made since it was opened (cp -al beside a long run):
        # SQLite writes in place, so its name here is removed instead (the backup keeps
        # its file), and the next search rebuilds it as a new one
        _forget(key)
        _discard(path, OSError("a hard link to a file elsewhere"))
        return
    write_point(path)  # (tests) between the run file and its index entry
    try:
        cut = _cut(path)
        if cut:
            raise OSError(cut)
        handle = _writer(key, path, (st.st_dev, st.st_ino))
        con = handle.con
        if handle.high is None:
            handle.high = _high_of(_meta(con))
        newer = handle.high is None or (shard, doc) > handle.high
        if run.status not in _FINISHED and not newer:
            return  # a run still going is matched from its run file (it has a marker)
        with _written(con, path):
            if run.status in _FINISHED:
                data = run.to_stored()
                data["_shard"], data["_doc"] = shard, doc
                put(con, run.id, data, stamp_of(fs.lstat(history.body_path(run.id))))
            if newer:
                _set_meta(con, high=f"{shard}:{doc}:{run.id}")
                handle.high = (shard, doc)
            write_point(path.with_name(path.name + _WRITING))  # (tests) a write cut mid-way
    except PlantedLink as exc:
        _forget(key)
        if fs.is_hard_link(path):  # a second name made while the write was under way
            _discard(path, exc)
        return
    except (sqlite3.Error, OSError) as exc:
        # damaged, a full disk, or another process holding SQLite's lock past REPAIR_WAIT:
        # an index left behind would answer wrong, so its name goes (a holder keeps its
        # file) and the next search rebuilds it
        _forget(key)
        _discard(path, exc)


def _writer(key: str, path: Path, ident: tuple[int, int]) -> _Handle:
    kept = _WRITERS.get(key)
    if kept is not None and kept[0] == os.getpid() and kept[1].ident == ident:
        return kept[1]
    _forget(key)
    handle = _connect(path, readonly=False)
    # an older version's journal, its writes done (``_cut`` found it cold): never used
    fs.unlink(path.with_name(path.name + _JOURNAL), missing_ok=True)
    _WRITERS[key] = (os.getpid(), handle)
    return handle


def _forget(key: str) -> None:
    kept = _WRITERS.pop(key, None)
    if kept is not None and kept[0] == os.getpid():
        with contextlib.suppress(Exception):  # a connection to a damaged file: nothing to keep
            kept[1].close()


#: ``search.db.writing``: a write to the index is under way ("PID START HOST" of its
#: writer), there from before the write's first page until its commit or rollback
_WRITING = ".writing"


@contextlib.contextmanager
def _written(con: sqlite3.Connection, path: Path) -> Iterator[None]:
    """One write transaction of the index on disk (under the history lock), committed
    at the end of the block, rolled back if it raises, inside the note of a write under
    way: with the journal in memory, a process killed mid-commit can leave the file
    torn, and its note, naming a process that is gone, says so. (A write rolled back
    keeps its note: the index is then not believed either, which is only cautious.)"""
    from workerctl.history.sweep import current_owner

    owner = current_owner()
    note = path.with_name(path.name + _WRITING)
    fd = fs.open_file(note, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{owner['pid']} {owner['proc_start']} {owner['host']}".encode())
    finally:
        os.close(fd)
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
        if fs.lstat(path).st_nlink > 1:
            # a second name made while it was open (cp -al beside a long command): the
            # commit would write into the other name's file too; rolled back instead
            raise PlantedLink(str(path), "a hard link to a file elsewhere")
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    fs.unlink(note, missing_ok=True)


#: the first bytes of a rollback journal that still holds a write to undo (SQLite's
#: ``aJournalMagic``); an older version's journal left after its commits is zeroed there
_HOT = bytes.fromhex("d9d505f920a163d7")


def _hot_journal(path: Path) -> bool:
    """Whether a rollback journal beside the index holds a write to undo: none is
    written any more, so one is an older version's whose process was killed mid-commit
    (the file is then torn: SQLite would roll it back by opening the journal by name)."""
    try:
        fd = fs.open_file(path.with_name(path.name + _JOURNAL), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        return os.read(fd, len(_HOT)) == _HOT
    finally:
        os.close(fd)


def _cut(path: Path) -> str:
    """Why the index at ``path`` may be torn ("" if not): the note of a write whose
    process is gone (or that cannot be read), or an older version's hot journal."""
    from workerctl.history.sweep import _pid_alive
    from workerctl.storage.lock import hostname

    if _hot_journal(path):
        return "an older version's write to it was cut (its journal is left)"
    try:
        text = fs.read_bytes(path.with_name(path.name + _WRITING)).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    parts = text.strip().split(" ", 2)
    pid = whole_number(parts[0]) if len(parts) == 3 else None
    if pid is not None and parts[2] != hostname():
        return ""  # another host's writer: not this host's to judge
    if pid is not None and pid != os.getpid() and _pid_alive(pid, None if parts[1] == "None" else parts[1]):
        return ""  # a write under way: SQLite's locks show its readers the last commit
    return "a write to it was cut"


def discard(history: History, cause: BaseException) -> None:
    """A reader's: an index found damaged in the middle of a query is removed (under the
    lock), so that the next search rebuilds it; where it cannot be (a read-only mount,
    the lock held), it stays, and each search meets the damage and answers from the
    run files again."""
    from workerctl.errors import WorkerctlError

    path = index_path(history)
    with contextlib.suppress(OSError, WorkerctlError), history.lock.within():
        _forget(str(path))
        _discard(path, cause)


def _discard(path: Path, cause: BaseException) -> None:
    """Remove an index that could not be kept (it is rebuilt when next searched)."""
    try:
        fs.unlink(path, missing_ok=True)
        for leftover in (_JOURNAL, "-wal", "-shm", _WRITING):  # the file they spoke of is gone
            fs.unlink(path.with_name(path.name + leftover), missing_ok=True)
    except OSError as exc:
        raise StorageError(path, exc, "remove") from None


def _high_of(meta: dict[str, str]) -> tuple[int, int] | None:
    parts = [whole_number(p) for p in meta.get("high", "").split(":")]
    if len(parts) == 3 and parts[0] is not None and parts[1] is not None:
        return parts[0], parts[1]
    return None


# -- the run files, for a rebuild, a catch-up or a scan --


def _run_files(history: History) -> Iterator[tuple[str, str, int, Path]]:
    """(run id, stamp, folder descriptor, path) of every run file, from a walk through
    ``storage.fs`` that never follows a link (the descriptor is valid until the next
    item), in the order of their ids (each folder holds the ids it is named by)."""
    base = history.root / "runs"
    try:
        top = fs.open_dir(base)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        subs = sorted(name for name, st in fs.entries_at(top) if stat_mod.S_ISDIR(st.st_mode))
    finally:
        os.close(top)
    for sub in subs:
        try:
            sub_fd = fs.open_dir(base / sub)
        except OSError:
            continue
        try:
            # a run's file is runs/PREFIX/ID.json: one elsewhere (a copy put in the wrong
            # folder) is no run of the history, as for its reindex, which names it; taken as
            # one, a run with its own file besides had two rows, and the rows stopped being
            # in id order (a rebuild ended in a UNIQUE constraint traceback, every time)
            found = sorted(
                (name[:-5], stamp_of(st))
                for name, st in fs.entries_at(sub_fd)
                if name.endswith(".json")
                and not name.startswith(".")
                and name[:2] == sub
                and stat_mod.S_ISREG(st.st_mode)
            )
            for run_id, stamp in found:
                yield run_id, stamp, sub_fd, base / sub / f"{run_id}.json"
        finally:
            os.close(sub_fd)


def _read_run(run_id: str, dir_fd: int, path: Path) -> tuple[str, dict[str, Any] | None] | None:
    """(stamp, the run's JSON or None if it is not a run) of one run file; None if
    it is gone or not a plain file."""
    try:
        fd = fs.open_file_at(dir_fd, path.name, os.O_RDONLY, path=path)
    except (OSError, PlantedLink):
        return None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        raw = handle.read()
    try:
        data = loads_state(raw)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or data.get("id") != run_id:
        data = None
    return stamp_of(st), data


def catch_up(con: sqlite3.Connection, history: History) -> int:
    """Compare every run file's stamp with the one indexed; read again what differs,
    drop what is gone. Returns how many runs changed.

    A merge of two sorted streams, memory flat at a million runs: the index's rows in
    the order of their ids (SQLite sorts them within its cache, spilling to a temporary
    file) and the run files in the same order (``_run_files``). What differs is noted
    (a row, a run file's path) and applied once the rows have been read. A run file
    read again updates one row of its id in place, keeping its words when they did
    not change (a contentless FTS5 table cannot delete words, so new ones beside old
    ones would skew every score until the next rebuild: a reindex killed after
    rewriting the run files it gave new slots left one orphan per run), and any other
    rows of its id go (a creation time edited in its file must not leave a second
    row beside it).
    """
    rows = con.execute("SELECT id, n, stamp, digest, t FROM runs ORDER BY id")
    row = rows.fetchone()
    drop: list[int] = []
    again: list[tuple[str, Path, list[tuple[int, str, int | None]]]] = []
    gone = 0
    for run_id, stamp, _dir_fd, path in _run_files(history):
        while row is not None and row[0] < run_id:  # its run file is gone
            drop.append(row[1])
            gone += 1
            row = rows.fetchone()
        mine = []
        while row is not None and row[0] == run_id:
            mine.append(row)
            row = rows.fetchone()
        if len(mine) == 1 and mine[0][2] == stamp:
            continue
        again.append((run_id, path, [(n, digest, t) for _id, n, _stamp, digest, t in mine]))
    while row is not None:
        drop.append(row[1])
        gone += 1
        row = rows.fetchone()
    rows.close()
    con.executemany("DELETE FROM runs WHERE n = ?", [(n,) for n in drop])
    for run_id, path, held in again:
        read = None
        try:
            dir_fd = fs.open_dir(path.parent)
        except OSError:
            pass  # its folder is gone: so is the run
        else:
            try:
                read = _read_run(run_id, dir_fd, path)
            finally:
                os.close(dir_fd)
        keep = held[0] if held and read is not None else None  # rewritten in place
        con.executemany("DELETE FROM runs WHERE n = ?", [(h[0],) for h in held if h is not keep])
        if read is None:
            continue
        fields, cols, digest = _row(read[1])
        if keep is None:
            _insert(con, run_id, fields, cols, read[0], digest)
        else:
            _update(con, keep, fields, cols, read[0], digest)
    return gone + len(again)


def _read_again(con: sqlite3.Connection, history: History, run_ids: Iterable[str]) -> None:
    """The runs ``run_ids`` (noted as changed) read again from their run files: each
    one's row updated (found by (created, id), as ``keep`` finds it), or dropped when
    its file is gone or is not a run (one pass over the rows for all of those)."""
    drop: list[str] = []
    for run_id in run_ids:
        path = history.body_path(run_id)
        try:
            dir_fd = fs.open_dir(path.parent)
        except OSError:
            drop.append(run_id)  # its folder is gone: so is the run
            continue
        try:
            read = _read_run(run_id, dir_fd, path)
        finally:
            os.close(dir_fd)
        if read is not None and read[1] is not None:
            put(con, run_id, read[1], read[0])
            continue
        drop.append(run_id)
        if read is not None:
            con.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            put(con, run_id, None, read[0])
    for start in range(0, len(drop), 500):
        chunk = drop[start : start + 500]
        con.execute(f"DELETE FROM runs WHERE id IN ({','.join('?' * len(chunk))})", chunk)


def _fill(
    con: sqlite3.Connection, history: History, only: Iterable[str] | None = None, *, every: bool = False
) -> None:
    """Put every run file (or those in ``only``) into a new, empty index: each once (a
    run file is named by its id), so no row is looked up first."""
    wanted = set(only) if only is not None else None
    for run_id, _stamp, dir_fd, path in _run_files(history):
        if wanted is not None and run_id not in wanted:
            continue
        read = _read_run(run_id, dir_fd, path)
        if read is not None:
            fields, cols, digest = _row(read[1], every=every)
            _insert(con, run_id, fields, cols, read[0], digest)


# -- the history's side of the checks --


def _history_high(history: History) -> str:
    """The history's newest slot as ``shard:doc:id`` ("" for an empty history)."""
    newest = history.newest_slot()
    return "" if newest is None else f"{newest[0]}:{newest[1]}:{newest[2]}"


def _boot() -> str:
    from workerctl.history.sweep import boot_id

    return boot_id() or ""


def rebuild(history: History, *, journal: bool = False, wait: float | None = None) -> int:
    """Build the index again from the run files; returns how many runs it holds.

    Built in a file of its own without the lock (a long read), then brought up to
    date under the history lock (every stamp compared, ``catch_up``) and renamed
    into place there, so no commit happens between its last check and the swap.
    With ``journal`` (``runs reindex``) the history's change journal
    (``history.journal``) notes every run changed meanwhile, so that hold
    reads again only those (not every run file's stamp: that grew with the history,
    0.65 s at 100,000 runs); without it (a reader rebuilding a missing index, another
    reindex's journal, a note that could not be written) every stamp is compared.
    ``wait``: a reader's (``FileLock.within``): the final hold is waited for at most
    that long (``LockTimeout``), and the reader answers from the run files."""
    from workerctl.history.journal import close_journal, open_journal
    from workerctl.history.layout import JOURNAL

    noting = False
    if journal:
        with history.lock:
            if not fs.exists(history.root / JOURNAL):
                open_journal(history)
                noting = True
    try:
        return _rebuild(history, noting, wait)
    finally:
        if noting:
            close_journal(history)


def _rebuild(history: History, noting: bool, wait: float | None) -> int:
    build = Build(history)
    try:
        build.fill()
        build.seal()
        return build.finish(noting=noting, wait=wait)
    finally:
        build.abort()


class Build:
    """A new index built in a file of its own (``search.db.build-PID``), off the lock:
    rows added into an empty index, sealed, then brought up to date and renamed into
    place under the lock (``finish``). ``runs reindex`` feeds it from the history's own
    scan (``history.reindex``), so a run file is read once, not twice (but for one the
    reindex rewrites at a new slot): at a million runs the run files no longer fit the
    page cache and a second read goes to the disk."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.path = index_path(history)
        self.file = self.path.with_name(f"{INDEX_NAME}.build-{os.getpid()}")
        _sweep_builds(self.path)
        fs.unlink(self.file, missing_ok=True)
        fs.unlink(self.file.with_name(self.file.name + _JOURNAL), missing_ok=True)
        self.done = False
        self.handle: _Handle | None = _connect(self.file, readonly=False, create=True)
        try:
            con = self.handle.con
            con.execute("BEGIN")
            for ddl in _ddl(on_disk=True):
                con.execute(ddl)
            _set_meta(con, schema=SCHEMA, complete=0)
        except BaseException:
            self.abort()
            raise

    @property
    def con(self) -> sqlite3.Connection:
        assert self.handle is not None, "the build was finished or abandoned"
        return self.handle.con

    def fill(self) -> None:
        """Every run file, read here (a rebuild of the search index alone)."""
        _fill(self.con, self.history)

    def add(self, run_id: str, data: dict[str, Any] | None, st: os.stat_result) -> None:
        """One run file the caller read (``data``: its JSON, None if it is not a run;
        ``st``: its ``fstat``), each at most once: no row is looked up first."""
        fields, cols, digest = _row(data)
        _insert(self.con, run_id, fields, cols, stamp_of(st), digest)

    def seal(self) -> None:
        """The indexes sorted once, the words in one segment, committed (off the lock)."""
        con = self.con
        for ddl in _INDEXES:
            con.execute(ddl)
        # no merge left half done: else the next commits (a batch's ``keep``) carry on
        # merging the rebuild's segments, reading pages the disk cache no longer holds (a
        # run's commit took 1.7 ms at 100,000 runs, 0.2 after)
        con.execute("INSERT INTO text(text) VALUES('optimize')")
        con.execute("COMMIT")

    def finish(self, *, noting: bool, changed: Iterable[str] = (), wait: float | None = None) -> int:
        """Bring the build up to date and rename it into place; how many runs it holds.

        ``changed``: runs the caller knows changed since their files were added (noted
        in the journal it consumed, or run files it rewrote itself), read again off the
        lock. With ``noting`` the change journal is this process's and names every run
        changed since: its notes are taken a bounded number at a time off the lock, the
        last under it. Otherwise (or when the journal went: a note that could not be
        written) the final hold compares every run file's stamp (``catch_up``)."""
        from workerctl.history.journal import journal_notes

        history, con = self.history, self.con
        changed = sorted(set(changed))
        if changed:
            con.execute("BEGIN")
            _read_again(con, history, changed)
            con.execute("COMMIT")
        for _ in range(_ROUNDS if noting else 0):  # the runs changed meanwhile, off the lock
            with history.lock:
                noted = journal_notes(history)
            if noted is None:
                break
            con.execute("BEGIN")
            _read_again(con, history, noted)
            con.execute("COMMIT")
            if len(noted) <= _FINAL_NOTES:
                break
        with history.lock if wait is None else history.lock.within(wait):
            con.execute("BEGIN")
            noted = journal_notes(history) if noting else None
            if noted is None:
                catch_up(con, history)
            else:
                _read_again(con, history, noted)
            _set_meta(con, complete=1, boot=_boot(), high=_history_high(history))
            con.execute("COMMIT")
            count = con.execute("SELECT count(*) FROM runs").fetchone()[0]
            self._close()
            _forget(str(self.path))
            fs.unlink(self.path.with_name(self.path.name + _JOURNAL), missing_ok=True)  # never rolled onto it
            fs.replace(self.file, self.path)
            for leftover in ("-wal", "-shm", _WRITING):  # of the file replaced
                fs.unlink(self.path.with_name(self.path.name + leftover), missing_ok=True)
            self.done = True
        return int(count)

    def _close(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            with contextlib.suppress(Exception):
                handle.close()

    def abort(self) -> None:
        """Remove what is left of the build (nothing once it was renamed into place)."""
        self._close()
        if not self.done:
            fs.unlink(self.file, missing_ok=True)
        fs.unlink(self.file.with_name(self.file.name + _JOURNAL), missing_ok=True)


def _sweep_builds(path: Path) -> None:
    """Remove what a rebuild killed midway left (its process gone)."""
    from workerctl.history.sweep import _pid_alive

    for leftover in fs.glob(path.parent, f"{INDEX_NAME}.build-*"):
        pid = leftover.name.removeprefix(f"{INDEX_NAME}.build-").removesuffix(_JOURNAL)
        number = whole_number(pid)
        if number is not None and number != os.getpid() and not _pid_alive(number, None):
            fs.unlink(leftover, missing_ok=True)


def create_empty(history: History) -> None:
    """A complete index of an empty history (``workerctl init``), kept from the first run."""
    rebuild(history)


# -- reading --


@dataclass
class Source:
    """What a search reads: the index on disk (``kind`` "index"), or an index built in
    memory from the run files (``kind`` "scan": there was no usable index and none
    could be written). ``skip``: runs the index may not know in their latest state
    (a marker names them), matched in ``extra`` from their run files instead."""

    kind: str
    con: sqlite3.Connection
    extra: sqlite3.Connection | None = None
    skip: frozenset[str] = frozenset()
    why: str = ""
    handle: _Handle | None = field(default=None, repr=False)

    def close(self) -> None:
        for con in (self.extra,) + (() if self.handle else (self.con,)):
            if con is not None:
                con.close()
        if self.handle is not None:
            self.handle.close()


def memory(history: History, only: Iterable[str] | None = None) -> sqlite3.Connection:
    """An index in memory of the run files (all, or those in ``only``)."""
    import sqlite3

    con = sqlite3.connect(":memory:", isolation_level=None)
    for ddl in _ddl(on_disk=False):
        con.execute(ddl)
    con.execute("BEGIN")
    _fill(con, history, only, every=True)
    for ddl in _INDEXES:
        con.execute(ddl)
    con.execute("COMMIT")
    return con


def _current(handle: _Handle, history: History) -> str:
    """ "" when the index may be believed as it is; else why not."""
    meta = _meta(handle.con)
    if meta.get("schema") not in _READABLE:
        return "of another version"
    if meta.get("complete") != "1":
        return "incomplete"
    if meta.get("high", "") != _history_high(history):
        return "behind the history"
    if meta.get("boot") != _boot():
        return "written before the last restart"
    return ""


def open_for_reading(history: History) -> Source:
    """The index, checked and brought up to date if it needs it (and can be written);
    else an index in memory of the run files. Never a wrong answer; never a write
    that is not possible (a read-only mount answers from the scan)."""
    import sqlite3

    path = index_path(history)
    why = ""
    for attempt in range(2):
        try:
            cut = _cut(path)
            if cut:
                raise sqlite3.DatabaseError(cut)
            handle = _connect(path, readonly=True)
        except FileNotFoundError:
            why = "missing"
        except PlantedLink:
            if not fs.is_hard_link(path):
                raise  # a symbolic link, a FIFO: refused, never read
            # a backup of hard links (cp -al) gave it a second name: derived data, so it
            # is rebuilt as a new file renamed over this name, the backup's left as it was
            why = "shared with a file elsewhere (a backup of hard links)"
        except sqlite3.Error as exc:
            if in_use(exc):
                return Source("scan", memory(history), why=IN_USE)
            why = f"damaged ({exc})"
        else:
            try:
                why = _current(handle, history)
            except sqlite3.Error as exc:
                if in_use(exc):
                    handle.close()
                    return Source("scan", memory(history), why=IN_USE)
                why = f"damaged ({exc})"
            if not why:
                return _with_markers(Source("index", handle.con, handle=handle), history)
            handle.close()
            if why in ("behind the history", "written before the last restart"):
                try:
                    _catch_up_on_disk(history, path, REPAIR_WAIT)
                    continue
                except (sqlite3.Error, OSError, StorageError, LockTimeout) as exc:
                    why = f"{why}; could not be updated ({_one_line(exc)})"
                    break
        if attempt or history.unwritable is not None:
            break
        try:
            rebuild(history, wait=REPAIR_WAIT)
        except (sqlite3.Error, OSError, StorageError, LockTimeout) as exc:
            why = f"{why}; could not be rebuilt ({_one_line(exc)})"
            break
    return Source("scan", memory(history), why=why)


#: why a search answered from the run files while another command writes the index
IN_USE = "being written by another command (database is locked)"


def in_use(exc: BaseException) -> bool:
    """Whether SQLite refused because another connection holds its lock (busy past
    the wait): the index is in use, not damaged, and is never rebuilt or removed for
    it (a reader that did so removed a good index under a writer stopped mid-write)."""
    import sqlite3

    return isinstance(exc, sqlite3.OperationalError) and _primary(exc) in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


def _primary(exc: BaseException) -> int | None:
    """SQLite's primary result code of an error: the low byte of its extended code."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def as_os_error(exc: sqlite3.Error) -> OSError:
    """What SQLite refused, as the operating system's error it stands for (a full disk
    is ENOSPC), so that it is reported as any refused state file is (``StorageError``)."""
    import errno
    import sqlite3

    code = {
        sqlite3.SQLITE_FULL: errno.ENOSPC,
        sqlite3.SQLITE_READONLY: errno.EROFS,
        sqlite3.SQLITE_PERM: errno.EACCES,
        sqlite3.SQLITE_CANTOPEN: errno.EACCES,
    }.get(_primary(exc) or 0, errno.EIO)
    return OSError(code, _one_line(exc))


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _catch_up_on_disk(history: History, path: Path, wait: float) -> None:
    with history.lock.within(wait):
        handle = _connect(path, readonly=False)
        try:
            con = handle.con
            with _written(con, path):
                catch_up(con, history)
                _set_meta(con, boot=_boot(), high=_history_high(history))
        finally:
            handle.close()


def _with_markers(source: Source, history: History) -> Source:
    """Runs with a marker (unfinished, or a crash between their run file and their
    index entry): matched from their run files, not from the index."""
    skip = frozenset(history.unfinished())
    if skip:
        source.skip = skip
        source.extra = memory(history, skip)
    return source


# -- queries --


def check_query(query: str) -> None:
    """A query FTS5 cannot read is a usage error (exit 2), found on an empty table
    in memory before any file is read."""
    import sqlite3

    if not query.strip():
        raise UsageError("give words to search for", hint="e.g. workerctl runs search 'refund'")
    if "\0" in query:
        raise UsageError("the query holds a NUL character", hint="remove it")
    con = sqlite3.connect(":memory:")
    try:
        con.execute(f"CREATE VIRTUAL TABLE text USING fts5({', '.join(COLUMNS)})")
        con.execute("SELECT rowid FROM text WHERE text MATCH ?", (query,)).fetchall()
    except sqlite3.Error as exc:
        detail = str(exc).removeprefix("fts5: ")
        hint = (
            'put words holding "-", ".", ":", "/" or other punctuation in double quotes '
            "(runs search '\"T-1042\"'); columns are " + ", ".join(COLUMNS) + "; see docs/search.md"
        )
        shown = query if len(query) <= 80 else query[:80] + "…"
        raise UsageError(f"cannot read the search query {shown!r}: {detail}", hint=hint) from None
    finally:
        con.close()


@dataclass(frozen=True)
class Match:
    run_id: str
    shard: int | None
    doc: int | None
    score: float


def matching(
    con: sqlite3.Connection, query: str, flt: RunFilter | None, skip: frozenset[str] = frozenset()
) -> list[Match]:
    """Every run of ``con`` matching ``query`` and the filter's indexed fields, best
    first (bm25; ties newest first by sequence)."""
    sql = [
        "WITH hits AS (SELECT rowid AS n, bm25(text) AS score FROM text WHERE text MATCH ?)"
        " SELECT r.id, r.shard, r.doc, hits.score FROM hits JOIN runs r ON r.t = hits.n WHERE 1"
    ]
    args: list[Any] = [query]

    def within(column: str, values: tuple[str, ...]) -> None:
        if values:
            sql.append(f" AND r.{column} IN ({', '.join('?' * len(values))})")
            args.extend(values)

    if flt is not None:
        within("worker", flt.workers)
        within("status", flt.statuses)
        within("error_kind", flt.error_kinds)
        within("id", flt.ids)
        if flt.record_id:
            sql.append(" AND r.record_id = ?")
            args.append(flt.record_id)
        if flt.since:
            sql.append(" AND r.created >= ?")
            args.append(flt.since)
        if flt.until:
            sql.append(" AND r.created <= ?")
            args.append(flt.until)
    sql.append(" ORDER BY hits.score, r.shard DESC, r.doc DESC")
    found: list[Match] = []
    seen: set[str] = set()
    for row in con.execute("".join(sql), args):
        if row[0] not in skip and row[0] not in seen:  # one hit per run, its best
            seen.add(row[0])
            found.append(Match(row[0], row[1], row[2], float(row[3])))
    return found


def unreadable(con: sqlite3.Connection) -> list[str]:
    """Ids of run files the index holds by their stamp only, files that are not runs
    (``_row`` of None: damaged JSON, another run's id): their words are not known, so
    an answer that left them out could be wrong. Through the (created, id) index."""
    return [row[0] for row in con.execute("SELECT id FROM runs WHERE created = ? LIMIT 3", (NOT_A_RUN,))]


def snippet(history: History, match: Match, query: str, size: int = 16) -> tuple[str, str]:
    """(column, text with MARK_ON/MARK_OFF around each matched word) of the best
    column of a match: the first, in the order output, comments, tools, error,
    title, ids, that holds a match. Read from the run file (the index on disk keeps
    no text) through a one-row index in memory, so the marks are FTS5's own."""
    import sqlite3

    data = history.reader.run_file(match.run_id)
    if data is None:
        return "", ""
    con = sqlite3.connect(":memory:")
    try:
        con.execute(f"CREATE VIRTUAL TABLE text USING fts5({', '.join(COLUMNS)})")
        cols = tuple(_clean(c) for c in columns(data))
        con.execute(f"INSERT INTO text VALUES({', '.join('?' * len(COLUMNS))})", cols)
        order = ("output", "comments", "tools", "error", "title", "ids")
        picks = ", ".join(
            f"snippet(text, {COLUMNS.index(c)}, '{MARK_ON}', '{MARK_OFF}', '…', {size})" for c in order
        )
        row = con.execute(f"SELECT {picks} FROM text WHERE text MATCH ?", (query,)).fetchone()
        if row is None:  # a NOT query: nothing to mark; the start of the first column with words
            row = con.execute(f"SELECT {', '.join(c for c in order)} FROM text").fetchone()
            for col, text in zip(order, row, strict=True):
                if text:
                    return col, text[:120] + ("…" if len(text) > 120 else "")
            return "", ""
    finally:
        con.close()
    for col, text in zip(order, row, strict=True):
        if text and MARK_ON in text:
            return col, text
    for col, text in zip(order, row, strict=True):
        if text:
            return col, text
    return "", ""


# -- what a hit shows --


def summary_of(history: History, match: Match) -> dict[str, Any] | None:
    """The run's summary as ``runs list`` shows it (None: no longer in the history).
    Found by the slot the index holds; by the run file's slot if that one moved; from
    the run file itself when no index shard holds it (``index/`` missing while a
    reindex's swap is stopped or was killed: a scan's answer left every hit out)."""
    slots = [(match.shard, match.doc)]
    data = None
    for attempt in range(2):
        for shard, doc in slots:
            if shard is None or doc is None:
                continue
            found = history.reader.shard(shard).get(str(doc))
            if found is not None and found.get("id") == match.run_id:
                return _as_seen(history, found)
        if attempt:
            break
        data = history.reader.run_file(match.run_id)
        if data is None:
            return None
        slots = [(data["_shard"], data["_doc"])]
    if data is None or fs.is_dir(history.root / "index"):
        return None  # the index is in place and does not hold it: not listed there either
    from workerctl.runs.model import Run

    try:
        return _as_seen(history, Run.from_dict(data).summary())
    except (TypeError, KeyError, ValueError, AttributeError):
        return None


def _as_seen(history: History, summary: dict[str, Any]) -> dict[str, Any]:
    """A hit's summary as ``runs list`` shows it: a run found dead but not yet recorded
    so (``History.unsettled``) is summarised from its run file as the sweep would leave it."""
    if summary["id"] not in history.unsettled:
        return dict(summary)
    from workerctl.errors import NotFoundError

    try:
        return history.get(summary["id"]).summary()
    except NotFoundError:
        return dict(summary)


def stored_output(history: History, run_id: str) -> str | None:
    """A run's full output, from its run file (None: none, or the run is gone)."""
    data = history.reader.run_file(run_id)
    output = data.get("output") if data else None
    return output if isinstance(output, str) else None


def with_outputs(history: History, rows: list[dict[str, Any]]) -> None:
    """Put each run's full output in its row (``output``), from its run file."""
    for row in rows:
        row["output"] = stored_output(history, row["id"])
