"""Run history on TinyDB that survives concurrent cron jobs, crashes and full disks.

Layout under ``.workerctl/history/``::

    lock                  flock: every read-modify-write holds it
    index/000001.json     TinyDB shards of small run summaries, at most SHARD_BYTES each
    runs/ab/abcdefgh.json one file per run body (iterations, context, output): the truth
    active/abcdefgh.json  one marker per unfinished (or half-written) run: who owns it
    heartbeats/abcdefgh   touched by the process executing a run

A status change rewrites one run file and one bounded shard (and adds or removes
a marker), whatever the size of the history; listing the newest runs reads the
newest shard or two; finding crashed runs lists only the markers.

Crash consistency: every change of a run goes through ``_commit``, in this order:
the marker (naming a process whose death means "repair me"), the run file, the
index shard (unless the run's summary there is unchanged), then (for a finished
run) the marker's removal. Each file is
replaced atomically, so a crash or a full disk at any point leaves a marker
whose process is dead, and the next command's sweep (``history.sweep``) settles
it from the run file under the lock: a finished run gets its index entry
rewritten from the run file, an unfinished one is marked crashed, a run that
never got its run file loses its marker. Every file is checked for its shape
when read (``storage.shapes``); a damaged one is reported (exit 4) and never
written over.

A batch's threads share the lock, so what can be done without it is: ``save``
writes and fsyncs the run file and the ledger's record files ahead (``_prepare``)
and ``_commit`` only renames them in their turn, if they are still what is to be
written; and while other threads wait, the shard is staged and written once per
chain of hand-overs (``_shard_write``), the finished runs' markers removed after
it. Neither changes which files a crash can leave in which state.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import heapq
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workerctl.digits import whole_number
from workerctl.errors import (
    DamagedFile,
    EndRecorded,
    HistoryError,
    LockTimeout,
    NotFoundError,
    StorageError,
    UsageError,
)
from workerctl.history.change import Change
from workerctl.history.layout import (
    COMPLETE,
    JOURNAL,
    MARKER_SHAPE,
    PRUNE_SHAPE,
    SHARD_BYTES,
    SHARD_SHAPE,
    STAGE,
    TABLE,
    TOP_NOTE,
    marker_doc,
    numbered,
    write_top_note,
)
from workerctl.history.reader import Reader
from workerctl.history.sweep import current_owner, mark_crashed, seen_note
from workerctl.memo import Memo
from workerctl.runs.states import (
    FAILED,
    FINISHED,
    ID_LENGTH,
    REFUSED,
    UNFINISHED,
    new_run_id,
    now_iso,
    preview_of,
)
from workerctl.storage import fs
from workerctl.storage.atomic import (
    PRIVATE_FILE,
    Stamp,
    discard,
    keeping_old_inodes,
    no_space,
    parse_json,
    read_json,
    release_space,
    remove_file,
    renamed_run,
    reserve_space,
    stamp_of,
    write_json,
    write_reserved,
)
from workerctl.storage.faults import write_point
from workerctl.storage.lock import lock_for

if TYPE_CHECKING:
    from workerctl.history.indexes import Indexes
    from workerctl.history.ledger import Ledger
    from workerctl.runs.model import Run
    from workerctl.storage.atomic import PreparedFile
    from workerctl.workspace import Workspace

_OWNER_KEYS = ("pid", "host", "proc_start", "boot_id", "pid_ns", "remote")  # liveness.py


class RunFinishedElsewhere(Exception):
    """The stored run was finished by someone else (cancelled, marked crashed)."""

    def __init__(self, stored: Run) -> None:
        super().__init__(f"run {stored.id} is already {stored.status}")
        self.stored = stored


@dataclass(frozen=True)
class RunFilter:
    """Which runs a listing asks for (every field empty: all of them)."""

    workers: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    record_id: str | None = None
    since: str | None = None
    until: str | None = None
    unreviewed: bool = False
    ids: tuple[str, ...] = ()
    error_kinds: tuple[str, ...] = ()

    def match(self, doc: dict) -> bool:
        if self.error_kinds and doc.get("error_kind") not in self.error_kinds:
            return False
        if self.workers and doc["worker"] not in self.workers:
            return False
        if self.statuses and doc["status"] not in self.statuses:
            return False
        if self.record_id and doc.get("record_id") != self.record_id:
            return False
        if self.since and doc["created"] < self.since:
            return False
        if self.until and doc["created"] > self.until:
            return False
        if self.unreviewed and not (
            doc.get("needs_review") and not doc.get("review") and doc["status"] == "completed"
        ):
            return False
        return not (self.ids and doc["id"] not in self.ids)


#: ``runs prune --json``: the result's fields (``History.prune``, with the CLI's ``dry_run``)
PRUNE_FIELDS = ("removed", "kept_unfinished", "kept_held", "side_effects_forgotten", "dry_run")
#: runs a prune removes per hold of the lock (whole index shards: a few hundred runs each;
#: the tests make it small through WORKERCTL_TEST_PRUNE_BATCH, read as a prune starts)
PRUNE_BATCH = 250


def _prune_batch() -> int:
    asked = whole_number(os.environ.get("WORKERCTL_TEST_PRUNE_BATCH", ""))
    return max(1, asked) if asked is not None else PRUNE_BATCH


class _IndexMoved(Exception):
    """The index folder was swapped by a reindex while it was being read."""


class History:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.root: Path = workspace.history_dir
        self.lock = lock_for(self.root / "lock", float(workspace.setting("lock_timeout")))
        self.stale_after = float(workspace.setting("stale_after"))
        self._ledger: Ledger | None = None
        self._indexes: Indexes | None = None
        from workerctl.history.tables import KnownTables

        #: the shards, ledger files and index files as this process last read or
        #: wrote them: not parsed again while unchanged (``history.tables``)
        self.tables = KnownTables()
        #: the shards and run files, read strictly: the indexes read through it too
        self.reader = Reader(self.root, self.tables)
        self._paths: Memo[tuple[str, ...], Path] = Memo(lambda parts: self.root.joinpath(*parts))
        self._ahead: tuple[int, Path] | None = None
        #: set when a write failed for want of space or permission (``cannot_write``):
        #: readers then answer from what is on disk without trying to write again
        self.unwritable: StorageError | None = None
        #: runs whose process is gone that this reader could not record as crashed
        #: (run id -> marker): shown as crashed (``liveness.crashed_view``)
        self.unsettled: dict[str, dict] = {}
        #: unfinished runs this process wrote last, with what it wrote (``_Written``)
        self._written: dict[str, _Written] = {}
        #: run id -> its worker and record, as its marker names them (``unfinished_identities``)
        self._identities: dict[str, dict] = {}
        self._swept_ahead = False  # ``create``: dead writers' folders looked for, once
        #: files staged (``write_shared``), and the notes and finished runs' markers
        #: to remove once they are written
        self._staged: dict[Path, Path] = {}  # each staged file, with its folder
        self._notes: dict[Path, None] = {}  # in order; asked about at every commit of a chain
        self._finished: list[str] = []

    # -- paths --

    def _path(self, *parts: str) -> Path:
        """``root/parts…``, made once (a run's commits ask for the same paths a dozen
        times, and joining paths costs more than a dictionary look-up)."""
        return self._paths[parts]

    def shard_path(self, shard: int) -> Path:
        return self.reader.shard_path(shard)

    def body_path(self, run_id: str) -> Path:
        return self.reader.body_path(run_id)

    def marker_path(self, run_id: str) -> Path:
        return self._path("active", f"{run_id}.json")

    def heartbeat_path(self, run_id: str) -> Path:
        return self._path("heartbeats", run_id)

    def ahead_dir(self) -> Path:
        """This process's folder of files written ahead of the lock (``_prepare``):
        ``ahead/HOST.PID.START``. A maintenance command removes such a folder only
        once the process it names is gone (``_sweep_ahead``), so a file written
        ahead is never taken from under its writer; it is on the history's file
        system, so putting it in place is a rename."""
        pid = os.getpid()  # a forked child is another writer: another folder
        if self._ahead is None or self._ahead[0] != pid:
            owner = current_owner()
            name = f"{_host_key(owner['host'])}.{pid}.{owner['proc_start']}"
            self._ahead = (pid, self.root / "ahead" / name)
        return self._ahead[1]

    def _sweep_ahead(self) -> None:
        """Remove the folders of files written ahead by processes that are gone, and the
        journal of a reindex that died (under the lock)."""
        from workerctl.history.journal import sweep_journal

        sweep_journal(self)
        self.sweep_ahead_folders()

    def sweep_after_death(self, pids: set[int], run_folders: Iterable[Path] = ()) -> None:
        """What processes of this machine that died mid-write left (``pids``: the owners
        of runs the sweep just found dead; ``run_folders``: the folders of those runs'
        files): their folders of files written ahead, and the temp files they were
        writing under the history lock (run files, index shards, cross-run index files,
        ledger files, markers: taken under it here) and under the
        workspace's lock (comments, records, worker versions: taken under that one,
        after this one is let go; a wait that would be long is left for the next
        sweep)."""
        from workerctl.errors import LockTimeout
        from workerctl.storage.atomic import remove_temps_of

        with self.lock:
            self.sweep_ahead_folders()
            # folders whose size follows the history's shards, the workers or the runs
            # executing; not ledger/records/ (a file per record) nor all of runs/ (a file
            # per run): a crash's repair must not grow with them
            for name in ("index", "indexes", "ledger/workers", "active"):
                remove_temps_of(self.root / name, pids, recursive=True)
            for folder in run_folders:  # the dead runs' own folders of runs/
                remove_temps_of(folder, pids)
        with contextlib.suppress(LockTimeout), lock_for(self.workspace.lock_file).within():
            state = self.workspace.state_dir
            remove_temps_of(state, pids)
            remove_temps_of(state / "comments", pids)

    def sweep_ahead_folders(self) -> None:
        """Remove the folders of files written ahead by processes that are gone (under
        the lock; a live writer's folder is never touched, whatever it holds): what a
        killed batch left there, its runs' files in flight and the inodes it kept."""
        from workerctl.history.sweep import _pid_alive
        from workerctl.storage.lock import hostname

        base = self.root / "ahead"
        try:
            names = fs.listdir(base)
        except (OSError, HistoryError):  # none, or a link planted there: nothing of ours
            return
        host = _host_key(hostname())
        for name in names:
            parts = name.rsplit(".", 2)
            pid = whole_number(parts[1]) if len(parts) == 3 and parts[0] == host else None
            if pid is None:
                continue  # another host's, or not ours to judge
            start = None if parts[2] == "None" else parts[2]
            if not _pid_alive(pid, start):
                fs.rmtree(base / name, ignore_errors=True)

    def note_change(self, run_id: str, slot: tuple[int, int] | None = None) -> None:
        """While a ``runs reindex`` runs (its journal exists), say that ``run_id`` is about
        to change (under the lock, before anything of it is written; ``slot``: where the
        index holds a run about to be removed). One ``stat`` otherwise. A note that
        cannot be written (a full disk) removes the journal instead: the reindex then
        stops without swapping anything in, rather than miss this change."""
        folder = self._path(JOURNAL)
        if not fs.exists(folder):
            return
        from workerctl.history.journal import sweep_journal

        if not sweep_journal(self):  # a dead reindex's journal: noted for nobody, ever
            return
        note = folder / run_id
        try:
            write_point(note)
            # a note's time is when the run was first noted (the reindex places the runs
            # created meanwhile in that order): opened again, it is left as it is
            flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if slot is not None else 0)
            fd = fs.open_file(note, flags, PRIVATE_FILE)
            try:
                if slot is not None:
                    os.write(fd, f"{slot[0]} {slot[1]}".encode())
            finally:
                os.close(fd)
        except FileNotFoundError:
            return  # the reindex ended this instant
        except OSError:
            fs.rmtree(folder, ignore_errors=True)

    def _hint_reindex(self, path: Path) -> str:
        return f"move {path} aside, then run 'workerctl runs reindex' to rebuild the index from the run files"

    # -- reading files, strictly --

    def _shard_docs(self, shard: int) -> dict[str, dict]:
        """The shard's TinyDB table as ``{doc_id: summary}``; {} if absent. Parsed and
        checked once per content (``self.tables``): replace a summary, never change
        one in place."""
        return self.reader.shard(shard)

    def _shard_write(self, shard: int, docs: dict[str, dict], *, may_stage: bool = False) -> None:
        """Write an index shard: at once; or, with ``may_stage`` (a run's commit)
        while other threads of this process wait for the lock (a batch), staged
        (``write_shared``). Until it is written the markers of runs that finished
        stay (``_unmark``): a crash in between leaves them naming a dead process,
        and the sweep settles those runs from their run files, as after any crash
        between a run file and its index entry."""
        self.write_shared(self.shard_path(shard), TABLE, docs, may_stage=may_stage)

    def staging(self) -> bool:
        """Whether a commit now stages the files every run shares (see ``write_shared``)."""
        return bool(self._staged) or (self.lock.held and self.lock.waited_for)

    @contextlib.contextmanager
    def taking_turns(self) -> Iterator[None]:
        """For the length of a batch whose threads commit in turns: a thread done with
        the lock waits a moment for the next one to ask (``FileLock.linger``), so that a
        chain of commits writes the shared files once, not after every few commits; and
        a file written ahead keeps its old inode for its next write
        (``storage.atomic.keeping_old_inodes``)."""
        with self.lock.linger(), keeping_old_inodes():
            yield

    def write_shared(
        self, path: Path, table: str, docs: dict[str, dict], *, durable: bool = True, may_stage: bool = True
    ) -> None:
        """Write a file every run's commit rewrites (an index shard, a cross-run index
        file): at once; or, with ``may_stage`` while other threads of this process
        wait for the lock (a batch), staged in ``self.tables`` and written once just
        before the lock is let go (``FileLock.before_release``, which meanwhile
        hands the lock from thread to thread for at most ``HANDOVER_SECONDS``): one
        write for a chain of commits instead of one each."""
        if may_stage and self.staging():
            self.tables.stage(path, table, docs, durable=durable)
            if path not in self._staged:
                self._staged[path] = path.parent
            self.lock.before_release(self, self._flush)
        else:
            self.tables.write(path, table, docs, durable=durable)

    def staged_in(self, folder: Path) -> builtins.list[Path]:
        """The staged files of ``folder`` (not on disk yet: a listing misses them)."""
        return [path for path, parent in self._staged.items() if parent == folder]

    def after_flush(self, note: Path) -> None:
        """Remove ``note`` (a file saying a write is under way) once the staged files
        are written; while it stays, readers know the files may be behind."""
        self._notes.setdefault(note)
        self.lock.before_release(self, self._flush)

    def deferred(self, note: Path) -> bool:
        """Whether ``note`` waits for the staged files (it is no crash's leftover)."""
        return note in self._notes

    def flush_staged(self) -> None:
        """Write what is staged now (before something reads the files from disk)."""
        if self._staged or self._notes or self._finished:
            self._flush()

    def _unmark(self, run_id: str) -> None:
        """Remove a finished run's marker once its index entry is written (now, or
        when the staged files are)."""
        if self._staged:
            self._finished.append(run_id)
        else:
            self.clear_marker(run_id)

    def _flush(self) -> None:
        """Write the staged files (index shards first, then the cross-run indexes),
        then remove the notes and the markers of the runs that finished meanwhile
        (under the lock, just before it is let go). If a write fails, what was
        staged is dropped (the files on disk are what the next reader sees) and the
        notes and markers stay: readers rebuild the cross-run indexes, and the
        sweep settles those runs once this process is gone."""
        staged, self._staged = self._staged, {}
        notes, self._notes = self._notes, {}
        finished, self._finished = self._finished, []
        try:
            ahead = self.ahead_dir()  # swapped in: a batch writes them again and again (``_Spares``)
            for path in sorted(staged):  # history/index/ sorts before history/indexes/
                self.tables.flush(path, folder=ahead)
        except BaseException:
            for path in staged:
                self.tables.forget(path)
            raise
        for note in notes:
            discard(note, keep_in=ahead)
        for run_id in finished:
            self.clear_marker(run_id, keep_in=ahead)

    def _read_body(self, run_id: str, dir_fd: int | None = None) -> dict | None:
        return self.reader.run_file(run_id, dir_fd)

    def _run_from(self, run_id: str, data: dict) -> Run:
        from workerctl.runs.model import Run  # the record's dataclasses: only when one is read

        try:
            return Run.from_dict(data)
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            path = self.body_path(run_id)
            raise DamagedFile(
                path, f"not a run: {exc}", hint=f"move {path} aside and run 'workerctl runs reindex'"
            ) from None

    def marker(self, run_id: str) -> dict | None:
        """A run's marker, None if it has none. An empty (or all-NUL) marker is what a
        power cut can leave of one (markers are not fsynced): it reads as ownerless
        ({}), so its run is settled from its run file. Anything else that does not
        fit is damaged (exit 4)."""
        path = self.marker_path(run_id)
        try:
            data = fs.read_bytes(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(path, exc, "read") from None
        if not data.strip(b"\0 \t\r\n"):
            return {}
        return parse_json(path, data, hint=self._hint_reindex(path), shape=MARKER_SHAPE)

    # -- the one write path --

    def _slot(self, run_id: str, shard: int | None, doc_id: int | None) -> tuple[int, int, dict[str, dict]]:
        """Where the run's summary goes, and that shard's documents. A slot taken by
        another run (possible only after a crash between writes) is not reused."""
        if shard is not None and doc_id is not None:
            docs = self._shard_docs(shard)
            if not docs and self._index_put_back():
                docs = self._shard_docs(shard)
            held = docs.get(str(doc_id))
            if held is None or held["id"] == run_id:
                return shard, doc_id, docs
        shard = self._current_shard()
        docs = self._shard_docs(shard)
        return shard, max((int(k) for k in docs), default=0) + 1, docs

    def _commit(
        self,
        run: Run,
        shard: int | None = None,
        doc_id: int | None = None,
        stored: dict | None = None,
        ahead: _Ahead | None = None,
        *,
        repair: bool = False,
    ) -> None:
        """Write ``run``: marker, run file, index (when its summary changed), marker
        removed (finished runs). ``repair``: the write is made again after a crash
        (``settle``): see ``Change.repair``.

        Each step is an atomic file replacement; whatever step a crash or a full
        disk stops at, a marker names a process that is then gone, and the sweep
        settles the run from its run file (see the module's docstring).
        """
        shard, doc_id, docs = self._slot(run.id, shard, doc_id)
        self.note_change(run.id)  # a reindex running meanwhile catches up on it
        indexed = stored is None or stored.get("status") != run.status
        if indexed:
            self.indexes.begin(run.id)
        published = False  # the run file replaced: from then on the note must stay
        try:
            marker = self.marker(run.id)
            if run.status in UNFINISHED:
                wanted = self._marker_doc(run, shard, doc_id, run.owner or current_owner())
                if marker is None or any(
                    marker.get(k) != wanted[k] for k in ("status", "shard", "doc", *_OWNER_KEYS)
                ):
                    write_json(self.marker_path(run.id), wanted, sync_data=False)
                    self._identities[run.id] = {"worker": run.worker, "record_id": run.record_id}
            elif not _is_me(marker):
                # finishing someone else's run, or changing a finished one: until the
                # marker goes, it names this process, so a crash here gets repaired;
                # the cause its owner noted (``_note_stop``) goes with it
                doc = self._marker_doc(run, shard, doc_id, current_owner())
                if marker and marker.get("stopped"):
                    doc["stopped"] = marker["stopped"]
                write_json(self.marker_path(run.id), sync_data=False, data=doc)
            self._write_body(run, shard, doc_id, ahead.body if ahead else None)
            published = True
            change = Change(run, stored, shard, doc_id, run.summary(), repair)
            if docs.get(str(doc_id)) != change.summary:  # e.g. a write confirmed: nothing to index
                docs[str(doc_id)] = change.summary
                self._shard_write(shard, docs, may_stage=True)
        except Exception:
            if indexed and not published and not self.staging():
                # refused (a full disk) before the run file, the shard or any index
                # changed: the note has nothing to repair, and a start refused before
                # it ran leaves the history as it was. Once the run file is replaced the
                # note stays, for the reader after the sweep has settled the run.
                with contextlib.suppress(OSError):
                    self.indexes.end(run.id)
            raise
        # before the marker goes: a crash here gets settled
        self._hand_over(change, ahead.ledger if ahead else None)
        if indexed:
            self.indexes.end(run.id)
        if run.status in FINISHED:
            self._unmark(run.id)

    @staticmethod
    def _marker_doc(run: Run, shard: int, doc_id: int, owner: dict) -> dict:
        return marker_doc(run.id, run.status, run.worker, run.record_id, (shard, doc_id), owner)

    def _write_body(self, run: Run, shard: int, doc_id: int, ahead: PreparedFile | None = None) -> None:
        """The run file, from what ``save`` prepared when it was made for this slot."""
        if ahead is not None and ahead.key == (shard, doc_id):
            ahead.publish()
            stamp = ahead.stamp
        else:
            data = run.to_stored()
            data["_shard"], data["_doc"] = shard, doc_id
            stamp = write_json(self.body_path(run.id), data, stamp=True)
        if run.status in FINISHED:
            self._written.pop(run.id, None)
            release_space(run.id)  # its end is written
        else:
            self._written[run.id] = _Written.of(run, shard, doc_id, stamp)

    def _stored(self, run_id: str) -> dict | None:
        """The run file of ``run_id`` as a commit reads it (its status, slot, side
        effects and usage; see ``Change``), None if absent. Not read when it is still
        the file this process wrote last (``_Written``: one ``lstat`` where reading
        and checking 7 KB of JSON took ten times as long, twice a run)."""
        written = self._written.get(run_id)
        if written is not None and written.stamp is not None:
            try:
                now = stamp_of(fs.lstat(self.body_path(run_id)))
            except (OSError, HistoryError):
                now = None  # gone, refused or planted: reading it says which
            if now == written.stamp:
                return written.stored()
        return self._read_body(run_id)

    def _prepare(self, run: Run) -> _Ahead | None:
        """The fsynced files of a save written ahead, before the lock is taken
        (``storage.atomic.PreparedFile``): the run file, and the ledger's record
        files when its side effects changed. While one thread of a batch holds the
        lock, the others' files reach the disk. Only for a run this process wrote
        last (it knows its slot and what its stored copy holds); ``_commit`` puts
        each in place in its usual turn if it is still what is to be written
        (the run's slot unchanged; a ledger file byte for byte the same), and
        writes as usual otherwise. Anything that fails here is left for the
        ordinary write to meet."""
        from workerctl.errors import WorkerctlError
        from workerctl.storage.atomic import encode_json, prepare_text

        written = self._written.get(run.id)
        if written is None:
            return None
        shard, doc_id, effects = written.shard, written.doc, written.effects
        ahead = _Ahead()
        try:
            data = run.to_stored()
            data["_shard"], data["_doc"] = shard, doc_id
            ahead.body = prepare_text(
                self.body_path(run.id),
                encode_json(data),
                key=(shard, doc_id),
                folder=self.ahead_dir(),
                stamp=True,
            )
        except WorkerctlError:
            pass
        if run.side_effects or effects:
            ahead.ledger = self.ledger.prepare(run, effects)
        return ahead

    def clear_marker(self, run_id: str, *, keep_in: Path | None = None) -> None:
        """Remove a run's marker and beat notes; ``keep_in``: as ``remove_file`` takes it."""
        remove_file(self.marker_path(run_id), keep_in=keep_in)
        fs.unlink(self.heartbeat_path(run_id), missing_ok=True)
        # this host's note of a beat from a process it could not verify (liveness)
        fs.unlink(seen_note(self, run_id), missing_ok=True)

    def shards(self) -> list[int]:
        try:
            names = fs.listdir(self.root / "index")
        except FileNotFoundError:
            if not self.settle_swap():
                return []
            names = fs.listdir(self.root / "index")
        return numbered(names)

    def _index_put_back(self) -> bool:
        """Under the lock, before a commit writes into a missing ``index/``: a reindex
        killed between the two renames of its swap left its complete new index in the
        stage; it is put in place first (``settle_swap``). Else the commit started a
        new, empty ``index/``, the swap was never finished, and every other run was
        missing from the listings until a reindex (a fresh-brief attack: a dead run
        recorded by the next command). True when it was."""
        return not fs.is_dir(self._path("index")) and self.settle_swap()

    def _current_shard(self) -> int:
        """The shard a new run goes to (under the lock): the newest, or the one after it
        once the newest is full. The newest is read from ``index/.top`` when the folder
        agrees with it, else from a listing, after which the note is written again."""
        last = self._top_shard()
        if last is None:
            shards = self.shards()
            if not shards and self._index_put_back():
                shards = self.shards()
            if not shards:
                return 1
            last = shards[-1]
            self._note_top(last)
        if self._shard_size(last) < SHARD_BYTES:
            return last
        self._note_top(last + 1)  # before the shard is written (it may be staged: see _top_shard)
        return last + 1

    def _shard_size(self, shard: int) -> int:
        """The shard's size on disk; 0 for one this process has staged and not written
        yet (a new shard a batch's chain started: far from full)."""
        path = self.shard_path(shard)
        try:
            return fs.lstat(path).st_size
        except FileNotFoundError:
            if path not in self._staged:
                raise
            return 0

    def _on_disk_or_staged(self, dir_fd: int, shard: int) -> bool:
        path = self.shard_path(shard)
        return path in self._staged or fs.exists_at(dir_fd, path.name, path=path)

    def _top_shard(self, dir_fd: int | None = None) -> int | None:
        """The newest index shard as ``index/.top`` notes it, or None unless the folder
        agrees: that shard exists and the next one does not (a shard this process has staged
        and not written yet counts as one that exists: a batch's chain started it, and
        until the chain writes it every creation would find the note ahead of the folder,
        list the folder and write the note twice). Writers note a new shard
        under the lock before writing it (``_note_top``: written or removed), a reindex
        notes its new folder's newest (or none), and a prune only removes shards: so a
        note is absent or at least the newest shard, and one whose shard exists is the
        newest. One that an older workerctl or damage left disagrees, and the caller
        lists the folder. ``dir_fd``: ``index/``, already open."""
        if dir_fd is None:
            try:
                fd = fs.open_dir(self._path("index"))
            except (FileNotFoundError, NotADirectoryError):
                return None
            try:
                return self._top_shard(fd)
            finally:
                os.close(fd)
        note = self._path("index", TOP_NOTE)
        try:
            fd = fs.open_file_at(dir_fd, TOP_NOTE, os.O_RDONLY, path=note)
        except FileNotFoundError:
            return None
        try:
            text = os.read(fd, 32).strip()
        finally:
            os.close(fd)
        top = whole_number(text) if len(text) < 20 else None
        if top is None:
            return None
        if not self._on_disk_or_staged(dir_fd, top) or self._on_disk_or_staged(dir_fd, top + 1):
            return None
        return top

    def newest_shard(self) -> int:
        """The number of the newest index shard, on disk or staged by this process; 0 when
        there is none. A bound for any walk over shard numbers a state file names (a
        prune journal, the counts): a number past it names no shard."""
        top = self._top_shard()
        on_disk = top if top is not None else max(self.shards(), default=0)
        return max([on_disk, *numbered(p.name for p in self.staged_in(self._path("index")))])

    def newest_slot(self) -> tuple[int, int, str] | None:
        """(shard, document, run id) of the newest run in the index; None if it holds
        none. The noted newest shard is read first (``_top_shard``); only when it is
        absent, contradicted or empty (a prune emptied it) is the folder listed."""

        def newest_first() -> Iterator[int]:
            top = self._top_shard()
            if top is not None:
                yield top
            yield from reversed(self.shards())  # listed only if need be

        for shard in newest_first():
            docs = self.reader.shard(shard)
            if docs:
                doc = max(docs, key=int)
                return shard, int(doc), docs[doc]["id"]
        return None

    def _note_top(self, shard: int) -> None:
        """Note ``shard`` as the newest, under the lock (``layout.write_top_note``)."""
        write_top_note(self._path("index"), shard)

    # -- writing --

    def create(self, run: Run, admit: Callable[[], None] | None = None) -> Run:
        """Store a new run; gives it a fresh unique id and its creation time. ``admit``
        is called first under the same hold of the lock, and stops the creation by
        raising (the duplicate guard: of simultaneous starts on a record, one is made)."""
        self._set_aside(run.id)
        try:
            with self.lock:
                if self.unsettled and self.unwritable is None:
                    self._settle_found_dead()
                if not self._swept_ahead:
                    # once a process: a writer killed with no run in hand (a batch at its
                    # end, removing the files it kept) left a folder no settling removes
                    self._swept_ahead = True
                    self.sweep_ahead_folders()
                if admit is not None:
                    admit()
                self.indexes.start_if_empty()
                while fs.exists(self.body_path(run.id)):
                    drawn, run.id = run.id, new_run_id()
                    renamed_run(drawn, run.id)
                run.created = now_iso()
                # transitions made before the run was stored happened "at creation"
                for transition in run.transitions:
                    transition["at"] = run.created
                self._commit(run)
        except (HistoryError, OSError) as exc:
            # a refused, damaged or planted state path (in the commit, or in the staged
            # files written as the lock is let go); not a lock that stayed held
            kept = not isinstance(exc, LockTimeout) and self._keep_refused_creation(run, exc)
            release_space(run.id)  # not made, or kept as it ended
            if kept:  # the run exists, ended: said so, never "nothing was written"
                raise self._end_recorded(run, exc) from None
            raise
        except BaseException:  # the guard's refusal, a stop signal: nothing made
            release_space(run.id)
            raise
        return run

    def _set_aside(self, run_id: str) -> None:
        """Space for the end of every run this process makes or executes (those it wrote
        last, and ``run_id``), should the disk fill before it is recorded
        (``_keep_outcome``), set aside before the lock is taken. A creation that finds
        none is refused (``StorageError``, nothing made): a run is made only when its
        end can be recorded as its process knows it."""
        reserve_space(self.ahead_dir(), run_id)

    def _end_recorded(self, run: Run, exc: HistoryError | OSError) -> EndRecorded:
        """The error of a save (or creation) cut by the history's own problem once the
        run's end was written in its run file alone (``_keep_outcome``)."""
        cause = exc if isinstance(exc, HistoryError) else StorageError(self.body_path(run.id), exc)
        return EndRecorded(run.id, run.status, cause)

    def _settle_found_dead(self) -> None:
        """The runs this command found dead but could not record while another held
        the lock (``sweep.catch_up``), recorded now that it holds the lock itself:
        before the duplicate guard, which would take their markers for runs executing
        now, and before this start adds to the history."""
        found, self.unsettled = self.unsettled, {}
        mark_crashed(self, builtins.list(found))
        self.indexes.repair_settled()  # what their cut writes left (``sweep.repair_cut_writes``)

    def _keep_refused_creation(self, run: Run, exc: BaseException) -> bool:
        """A creation whose commit was cut by the history's own problem after the run
        file was written: the run exists and will never execute. It is recorded failed,
        kind ``state_unusable``, with the problem (its run file alone, as
        ``_keep_outcome`` does; the sweep settles the rest once this process is gone),
        not left for the sweep to call a death ("the process died while it was
        running"). Without its run file the run does not exist, and nothing is kept."""
        from workerctl.runs.model import Run, RunError
        from workerctl.runs.states import STATE_UNUSABLE

        if not run.created or run.status not in UNFINISHED:
            return False  # refused before the run was made (the guard, the lock)
        message = exc.message if isinstance(exc, HistoryError) else f"{type(exc).__name__}: {exc}"
        hint = (exc.hint or "") if isinstance(exc, HistoryError) else ""
        ended = Run.from_dict(run.to_dict())
        ended.error = RunError(STATE_UNUSABLE, f"its creation was cut: {message}", hint)
        ended.move(FAILED)
        if not self._keep_outcome(ended, exc):
            return False
        run.error, run.status, run.transitions = ended.error, ended.status, ended.transitions
        return True

    def save(self, run: Run, *, executing: bool = False) -> Run:
        """Write ``run`` back. The process executing a run passes ``executing``: if the
        stored copy was finished meanwhile by someone else (cancelled, marked crashed),
        ``RunFinishedElsewhere`` is raised, so that mark is never undone."""
        try:
            if run.status in UNFINISHED and _is_me(run.owner):
                # this process executes it (made by another: --detach's child, taking it
                # up before its first step): its end has space here too
                self._set_aside(run.id)
        except StorageError:
            pass  # the disk is full already: the commit meets it, and says so
        try:
            ahead = self._prepare(run)
        except (HistoryError, OSError):
            ahead = None  # writing ahead only saves time: the commit writes in place
        try:
            with self.lock:
                stored = self._stored(run.id)
                if stored is None:
                    raise NotFoundError(f"run {run.id} is not in the history (pruned?)")
                if stored["status"] in FINISHED and (executing or stored["status"] != run.status):
                    raise RunFinishedElsewhere(self._run_from(run.id, stored))
                self._commit(run, stored["_shard"], stored["_doc"], stored, ahead)
        except LockTimeout:
            raise
        except (HistoryError, OSError) as exc:  # a refused, damaged or planted state path
            # (in the commit, or in the staged files written as the lock is let go)
            kept = self._keep_outcome(run, exc)
            if kept and executing and run.status in FINISHED:  # its process hears how it ended
                raise self._end_recorded(run, exc) from None
            raise
        finally:
            if ahead is not None:
                ahead.discard()  # what was not used (or failed): its temp files go
        return run

    def _keep_outcome(self, run: Run, exc: BaseException) -> bool:
        """When a save of a run this process executes cannot be committed (a state
        folder it needs refused: no permission, a full disk), its run file alone is
        written, if it can be: the truth, kept. The marker still names this process
        (every unfinished run has one, and its run file says whose), so once this
        process is gone the next command that can write settles the run from that
        file (``settle``: a finished run's commit made again, ledger and indexes
        included) instead of marking it crashed; a reader that cannot write shows
        it as its run file says. Nothing else is tried: the commit's error is what
        the caller hears. True when the run file now says what ``run`` says."""
        try:
            with self.lock:
                try:
                    stored = self._read_body(run.id)
                except (HistoryError, OSError):  # its run file cannot even be read
                    self._note_stop(run.id, exc)
                    return False
                if stored is None or stored.get("status") not in UNFINISHED:
                    # none, or the cut commit wrote it already (finished: settled from it)
                    return stored is not None and stored.get("status") == run.status
                if not _is_me(stored.get("owner")):
                    return False  # no marker of this process's to settle it from
                data = run.to_stored()
                data["_shard"], data["_doc"] = stored["_shard"], stored["_doc"]
                try:
                    write_json(self.body_path(run.id), data)
                except (HistoryError, OSError) as refused:
                    # a full disk: a run's end goes into the space set aside for it
                    # (``_set_aside``), one file a run; a save on the way does not
                    ended = run.status in FINISHED and no_space(refused)
                    if not (ended and write_reserved(run.id, self.body_path(run.id), data)):
                        self._note_stop(run.id, exc)
                        return False
                return True
        except (HistoryError, OSError):
            return False

    def _note_stop(self, run_id: str, exc: BaseException) -> None:
        """The run file itself cannot be written: the marker, if it can be, says why the
        run stopped (``stopped``), so that the sweep records the run failed
        ``state_unusable`` with that cause, not a death (``sweep.mark_crashed``)."""
        marker = None
        with contextlib.suppress(HistoryError, OSError):
            marker = self.marker(run_id)
        if marker is None or not _is_me(marker):
            return  # no marker, or not this process's: nothing of its own to say
        marker["stopped"] = preview_of(exc.message if isinstance(exc, HistoryError) else str(exc), 400)
        with contextlib.suppress(HistoryError, OSError):
            write_json(self.marker_path(run_id), marker, sync_data=False)

    def _hand_over(self, change: Change, ahead: dict[Path, PreparedFile] | None = None) -> None:
        """The one place a committed change reaches the stores derived from the run files
        (under the lock, after the run file and the shard, before the marker goes, so a
        crash in any of them is settled from the run file): the side-effect ledger and
        the cross-run indexes, each from the change record and its own files. A further
        derived index (full-text search) takes the same record here."""
        self.ledger.apply(change, ahead)
        self._searchable(change.run, change.shard, change.doc)
        self.indexes.apply(change)

    def _searchable(self, run: Run, shard: int, doc_id: int) -> None:
        """The search index (derived data, ``.workerctl/search.db``) kept in step with
        the run file just written, before the marker goes (``history.search_index``)."""
        from workerctl.history.search_index import keep

        keep(self, run, shard, doc_id)

    @property
    def indexes(self) -> Indexes:
        if self._indexes is None:  # imported once it is needed (a list never needs it)
            from workerctl.history.indexes import Indexes

            self._indexes = Indexes(self)
        return self._indexes

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:  # the import statement alone cost 1 % of a batch's Python
            from workerctl.history.ledger import Ledger

            self._ledger = Ledger(self)
        return self._ledger

    def update(self, run_id: str, change: Callable[[Run], Any]) -> Run:
        """Read-modify-write one run under the lock."""
        with self.lock:
            run = self.get(run_id)
            change(run)
            return self.save(run)

    def heartbeat(self, run_id: str) -> None:
        fs.touch(self.heartbeat_path(run_id), PRIVATE_FILE)

    # -- repair (the sweep calls these under the lock) --

    def settle(self, run_id: str) -> Run | None:
        """Settle a run whose marker names a dead process, from its run file.

        No run file: the run was never stored past its marker, which goes. A
        finished run: its last write is committed again as a repair (``_commit``,
        ``Change.repair``), and its marker goes. An unfinished run is returned for the caller to judge
        (its run file may name a live owner; otherwise it crashed).
        """
        with self.lock:
            data = self._read_body(run_id)
            if data is None:
                self.clear_marker(run_id)
                return None
            run = self._run_from(run_id, data)
            if run.status in UNFINISHED:
                return run
            # the last write made again through the one commit path, as a repair: the
            # run file (at a free slot), its index entry, the ledger and the search
            # index, then the marker goes. The cross-run indexes are recomputed for this
            # run from the shards (``Indexes.recover``, from a note left here): the cut
            # write may have left no note of its own (one refused before it could write
            # it, whose run file alone was kept: ``_keep_outcome``), and the run file now
            # reading as the indexes' next state says nothing changed
            self.indexes.begin(run.id)
            self._commit(run, data["_shard"], data["_doc"], data, repair=True)
            return None

    def restore_marker(self, run: Run) -> None:
        """Point the marker back at the owner the run file names (it is alive)."""
        with self.lock:
            data = self._read_body(run.id) or {}
            write_json(
                self.marker_path(run.id),
                sync_data=False,
                data=self._marker_doc(run, data.get("_shard", 0), data.get("_doc", 0), run.owner),
            )

    # -- reading --

    def cannot_write(self, exc: StorageError) -> None:
        """Note that the history cannot be written now (a full disk, a read-only mount,
        no permission): reads answer from disk, and nothing tries to repair."""
        self.unwritable = exc

    def get(self, run_id: str) -> Run:
        from workerctl.names import STORED_ID

        data = self._read_body(STORED_ID.check(run_id))
        if data is None:
            raise NotFoundError(f"no run with id {run_id!r}", hint="'workerctl runs list' shows the ids")
        run = self._run_from(run_id, data)
        if run_id in self.unsettled:
            from workerctl.history.sweep import crashed_view

            run = crashed_view(self, run, self.unsettled[run_id])
        return run

    def _as_seen(self, doc: dict) -> dict:
        """A summary as a reader should see it: a run found dead but not recorded so
        (``unsettled``) is summarised from its run file as the sweep would leave it."""
        if doc["id"] in self.unsettled:
            try:
                return self.get(doc["id"]).summary()
            except NotFoundError:
                return doc
        return doc

    def has_marker(self, run_id: str) -> bool:
        """Whether the run has a marker (it is unfinished, or a write of it was cut)."""
        return fs.exists(self.marker_path(run_id))

    def file_stamp(self, run_id: str) -> tuple[int, int] | None:
        """What changes whenever the run's file is replaced (mtime, inode); None while
        it is missing (being replaced this instant, or gone)."""
        try:
            st = fs.lstat(self.body_path(run_id))
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino

    def holds(self, run_id: str) -> bool:
        """Whether the run's file exists (a creation a full disk stopped may have
        written it)."""
        return fs.exists(self.body_path(run_id))

    def resolve(self, prefix: str) -> str:
        """The full id for a unique prefix (exit 2 if ambiguous, 3 if unknown)."""
        from workerctl.names import run_id_rule

        prefix = run_id_rule().check(prefix.strip().lower())
        base = self.root / "runs"
        folders = [base / prefix[:2]] if len(prefix) >= 2 else fs.glob(base, f"{prefix}*")
        found = sorted(
            p.stem
            for folder in folders
            if fs.is_dir(folder)
            for p in fs.glob(folder, f"{prefix}*.json")
            if len(p.stem) == ID_LENGTH
        )
        if not found:
            raise NotFoundError(f"no run with id {prefix!r}", hint="'workerctl runs list' shows the ids")
        if len(found) > 1:
            shown = ", ".join(found[:10]) + (" …" if len(found) > 10 else "")
            raise UsageError(
                f"run id prefix {prefix!r} is ambiguous: {shown}", hint="type more characters of the id"
            )
        return found[0]

    def iter_summaries(self, flt: RunFilter | None = None) -> Iterator[dict]:
        """Run summaries, newest first.

        Read without the lock, through one open handle on the index folder: a
        ``runs reindex`` swaps in a complete new index folder, so a reader sees
        the complete old index or the complete new one. If the folder it was
        reading is removed under it, or is missing mid-swap, it reads again
        under the lock (waiting for the reindex, at most ``REPAIR_WAIT``: a
        reindex stopped or killed mid-swap beside another holder), skipping runs
        already given; past that wait, from the complete new index the swap puts
        in place (``_swapping_in``).
        """
        seen: set[str] = set()
        if not fs.is_dir(self.root):
            return
        spans = None
        if flt is not None and (flt.since or flt.until):
            spans = self.indexes.shard_spans(flt.since, flt.until)
        try:
            yield from self._iter_index(flt, seen, spans)
        except _IndexMoved:
            try:
                with self.lock.within():  # entered before anything is read under it
                    self.settle_swap()
                    yield from self._iter_index(flt, seen, spans)
                return
            except LockTimeout:
                folder = self._swapping_in()
                if folder is None:
                    return  # no index anywhere (a new workspace's first run under way)
            try:
                yield from self._iter_index(flt, seen, spans, folder)
            except _IndexMoved:  # the swap went on meanwhile: the index is in place
                yield from self._iter_index(flt, seen, spans, moving=False)

    def _swapping_in(self) -> Path | None:
        """The complete index a reindex's swap puts in place (its holder stopped or
        stuck, or killed between its renames beside another holder): ``index/`` once
        it is back, else the stage's (or an older workerctl's ``index.new``); None
        when there is none to read."""
        if fs.is_dir(self.root / "index"):
            return self.root / "index"
        for folder in (self.root / STAGE / "index", self.root / "index.new"):
            if fs.exists(folder / COMPLETE):
                return folder
        return None

    def _iter_index(
        self,
        flt: RunFilter | None,
        seen: set[str],
        spans: builtins.list[tuple[int, int]] | None = None,
        folder: Path | None = None,
        *,
        moving: bool = True,
    ) -> Iterator[dict]:
        """Newest first by sequence: shards from the last, and in each shard its
        documents from the highest number (both given out under the lock at
        creation), whatever the clock said. ``spans``: the only shards that can
        hold runs created in the filter's window (``Indexes.shard_spans``); None:
        every shard is read. ``folder``: another complete index (``_swapping_in``)."""
        folder = folder or self.root / "index"
        try:
            fd = fs.open_dir(folder)
        except FileNotFoundError:
            if self.lock.held or not moving:
                return  # no index at all: an empty history
            raise _IndexMoved() from None
        except OSError as exc:
            raise StorageError(folder, exc, "read") from None
        try:
            indexed = self._slots_newest_first(fd, spans, folder if moving else None)
            if self.unsettled:  # a dead run whose index entry was never written, at its slot
                indexed = heapq.merge(indexed, self._unindexed(), key=lambda u: (u[0], u[1]), reverse=True)
            for _shard, _doc, doc in indexed:
                if doc["id"] in seen:
                    continue
                seen.add(doc["id"])
                if self.unsettled:
                    doc = self._as_seen(doc)
                if flt is None or flt.match(doc):
                    yield dict(doc)
        finally:
            os.close(fd)

    def _slots_newest_first(
        self, dir_fd: int, spans: builtins.list[tuple[int, int]] | None, folder: Path | None = None
    ) -> Iterator[tuple[int, int, dict]]:
        """(shard, document number, summary) of the index, newest first."""
        for shard, docs in self._newest_shards(dir_fd, spans, folder):
            for key, doc in sorted(docs.items(), key=lambda kv: int(kv[0]), reverse=True):
                yield shard, int(key), doc

    def _unindexed(self) -> builtins.list[tuple[int, int, dict]]:
        """The runs this reader found dead and could not record (``unsettled``: the
        history cannot be written) whose index entry was never written (a start killed
        between its run file and its index entry), as (shard, document, summary as the
        sweep would leave it), newest first, at the slot their marker names. A reader
        that can write settles them instead; without this a read-only reader left them
        out of every listing and count while ``run inspect`` showed them crashed."""
        out = []
        for run_id, marker in self.unsettled.items():
            shard, doc = marker.get("shard"), marker.get("doc")
            if type(shard) is not int or type(doc) is not int or str(doc) in self._shard_docs(shard):
                continue  # indexed (``_as_seen`` shows it), or its slot is another run's
            try:
                out.append((shard, doc, self.get(run_id).summary()))
            except NotFoundError:
                continue  # killed before its run file: there is no run
        return sorted(out, key=lambda u: (u[0], u[1]), reverse=True)

    def _newest_shards(
        self, dir_fd: int, spans: builtins.list[tuple[int, int]] | None, folder: Path | None = None
    ) -> Iterator[tuple[int, dict[str, dict]]]:
        """(number, documents) of the shards of ``index/`` (``dir_fd``), newest first,
        within ``spans`` if given. Counted down from the noted newest shard while each
        one is there; listed (once) when there is no note the folder agrees with, or
        from the first number missing below it (a gap a prune or a reindex left). A
        listing grows with the history; the newest runs are found without one."""
        top = self._top_shard(dir_fd)
        below: int | None = None
        if top is not None:
            for shard in _count_down(top, spans):
                docs = self._shard_docs_at(dir_fd, shard, missing_ok=True)
                if docs is None:
                    if folder is not None and not self.lock.held and self._index_moved(dir_fd, folder):
                        raise _IndexMoved()  # a reindex swapped a new index in: start over
                    below = shard
                    break
                yield shard, docs
            else:
                return
        names = fs.listdir_at(dir_fd)
        shards = numbered(names)
        if spans is not None:
            shards = [s for s in shards if any(a <= s <= b for a, b in spans)]
        for shard in reversed(shards):
            if below is None or shard < below:
                yield shard, self._shard_docs_at(dir_fd, shard) or {}

    def _index_moved(self, dir_fd: int, folder: Path) -> bool:
        """Whether ``folder`` is no longer the folder ``dir_fd`` opened."""
        try:
            now = fs.lstat(folder)
        except (FileNotFoundError, NotADirectoryError):
            return True
        then = os.fstat(dir_fd)
        return (now.st_dev, now.st_ino) != (then.st_dev, then.st_ino)

    def _shard_docs_at(self, dir_fd: int, shard: int, *, missing_ok: bool = False) -> dict[str, dict] | None:
        """A shard read from ``index/`` (``dir_fd``). Missing: None with ``missing_ok``;
        else {} under the lock (pruned away: nothing to list), and without it
        ``_IndexMoved`` (a listing named it: the folder changed, the caller starts over)."""
        path = self.shard_path(shard)
        try:
            fd = fs.open_file_at(dir_fd, path.name, os.O_RDONLY, path=path)
        except FileNotFoundError:
            if missing_ok:
                return None
            if self.lock.held:
                return {}
            raise _IndexMoved() from None
        except OSError as exc:
            raise StorageError(path, exc, "read") from None
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
        return parse_json(path, data, hint=self._hint_reindex(path), shape=SHARD_SHAPE)[TABLE]

    def list(self, flt: RunFilter | None = None, limit: int | None = 20) -> list[dict]:
        """Summaries newest first. A filter by worker, record, status or error kind is
        answered from the cross-run indexes (``history.indexes``): only the refs of that
        filter and the shards they name are read."""
        if flt is not None and (flt.workers or flt.record_id or flt.statuses or flt.error_kinds):
            return self.indexes.list(flt, limit)
        out = []
        for doc in self.iter_summaries(flt):
            out.append(doc)
            if limit and len(out) >= limit:
                break
        return out

    def remote_unfinished(self) -> dict[str, builtins.list[str]]:
        """Executor name → ids of unfinished runs handed to a remote executor.

        Only stored runs: a marker whose run file is not there yet is a start still
        writing it (it holds the lock; this reads without it), or one that died
        before it (``liveness.mark_crashed`` removes that marker)."""
        out: dict[str, builtins.list[str]] = {}
        for run_id, info in self.unfinished().items():
            if info.get("remote") and info.get("status") in UNFINISHED and fs.exists(self.body_path(run_id)):
                out.setdefault(info["remote"], []).append(run_id)
        return out

    def unfinished(self) -> dict[str, dict]:
        """Run id → marker (owner pid and host) for every run that is unfinished or
        half-written (see ``_commit``). A run this process finished whose marker goes
        with the staged files (``_unmark``) is finished already: a batch's next thread,
        handed the lock before they are written, must not take it for a run executing
        now (the duplicate guard's ``in_progress``)."""
        out = {}
        for run_id in self._active_ids():
            marker = self.marker(run_id)
            if marker is not None:
                out[run_id] = marker
        return out

    def unfinished_identities(self) -> dict[str, dict]:
        """Run id → ``{"worker", "record_id"}`` for the runs ``unfinished`` lists. A run's
        worker and record never change, so each marker is read once per process (the
        duplicate guard asks at every start: a batch read every marker of the runs
        executing beside each of its runs); one that does not name them (an older
        workerctl's) is given whole, as ``unfinished`` gives it."""
        known = self._identities
        out = {}
        ids = self._active_ids()
        for run_id in ids:
            identity = known.get(run_id)
            if identity is None:
                marker = self.marker(run_id)
                if marker is None:
                    continue
                if "worker" not in marker:
                    out[run_id] = marker
                    continue
                identity = known[run_id] = {"worker": marker["worker"], "record_id": marker.get("record_id")}
            out[run_id] = identity
        if len(known) > 2 * len(ids) + 64:  # runs gone from the folder are forgotten
            for gone in known.keys() - set(ids):
                del known[gone]
        return out

    def _active_ids(self) -> builtins.list[str]:
        """The ids of the markers in ``active/``, but for runs this process finished whose
        markers go with its staged files (see ``unfinished``)."""
        folder = self.root / "active"
        try:
            names = fs.listdir(folder)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(folder, exc, "read") from None
        finished = set(self._finished)
        return [
            name[:-5]
            for name in names
            if name.endswith(".json") and not name.startswith(".") and name[:-5] not in finished
        ]

    # -- crashed runs --

    def sweep(self) -> builtins.list[Run]:
        """Mark runs whose process is gone, or whose heartbeat is stale, as crashed."""
        return mark_crashed(self)

    # -- retention and recovery --

    @property
    def prune_journal(self) -> Path:
        return self.root / "pruning.json"

    def prune(self, cutoff: str, dry_run: bool = False, forget_effects: bool = False) -> dict[str, int]:
        """Remove finished runs created before ``cutoff``; never unfinished ones. Their
        side effects stay in the ledger unless ``forget_effects``.

        In batches of about ``PRUNE_BATCH`` runs (whole index shards), one short hold of
        the lock each, so that writers and a reindex go on meanwhile. For each batch the
        runs to remove (with their summaries) are written to a journal first, then
        removed from the index and their run files deleted, the counts they touched
        recounted, then the journal goes: a prune that dies half-way is finished by the
        next command (``finish_prune``), and the batches before it stand.
        """
        removed = kept_unfinished = kept_held = forgotten = 0
        if dry_run:  # counted from the hourly counts, not by reading every shard
            per = self.indexes.counts(until=cutoff)
            for item in per.values():
                removed += sum(item["counts"].get(s, 0) for s in (*FINISHED, REFUSED))
                kept_unfinished += sum(item["counts"].get(s, 0) for s in UNFINISHED)
            return {
                "removed": removed,
                "kept_unfinished": kept_unfinished,
                "kept_held": 0,  # the counts cannot tell: a prune keeps them
                "side_effects_forgotten": 0,
            }
        with self.lock:
            self.finish_prune()
            self._sweep_ahead()
            # only the shards the daily counts say hold runs created before the cutoff
            # (whatever the clock did); every shard when the indexes cannot say
            spans = self.indexes.shard_spans(None, cutoff)
            todo = [s for s in self.shards() if spans is None or any(a <= s <= b for a, b in spans)]
        todo.reverse()  # popped oldest first
        batch = _prune_batch()
        while todo:
            with self.lock:
                self.finish_prune()  # another prune's, cut short meanwhile
                gone: builtins.list[builtins.list[Any]] = []  # [summary, shard]
                while todo and len(gone) < batch:
                    shard = todo.pop()
                    for doc in self._shard_docs(shard).values():
                        if doc["created"] < cutoff:
                            if doc["status"] not in FINISHED:
                                kept_unfinished += 1
                            elif self._holds_a_write(doc):
                                kept_held += 1
                            else:
                                gone.append([doc, shard])
                if not gone:
                    continue
                journal = {
                    "ids": [doc["id"] for doc, _ in gone],
                    "cutoff": cutoff,
                    "forget_effects": forget_effects,
                    "shards": sorted({shard for _, shard in gone}),
                    "gone": gone,
                    "token": new_run_id(),
                }
                try:
                    write_json(self.prune_journal, journal)
                    forgotten += self.finish_prune()
                except StorageError as exc:
                    if not no_space(exc) or forget_effects:
                        raise
                    # a full disk, met by the journal or after it (room for the journal,
                    # none for the shards): the run files go first, and the cross-run
                    # indexes (derived data, rebuilt from the shards by the next command
                    # that can), to make room for the journal and the shard rewrites
                    # (``finish_prune`` may be repeated). A crash in between leaves shard
                    # entries of runs whose files are gone: the next prune or reindex
                    # drops them
                    for doc, _ in gone:
                        remove_file(self.body_path(doc["id"]))
                    self.indexes.drop()
                    write_json(self.prune_journal, journal)
                    forgotten += self.finish_prune()
                removed += len(gone)
        return {
            "removed": removed,
            "kept_unfinished": kept_unfinished,
            "kept_held": kept_held,
            "side_effects_forgotten": forgotten,
        }

    def finish_prune(self) -> int:
        """Carry out the prune journal, if any (idempotent: each step may be repeated).
        Returns how many ledger entries it forgot.

        A journal this workerctl writes names the summaries of the runs it removes: the
        counts of their hours, days and workers are then recounted from the shards, and
        each worker's error kinds lowered once per journal (its ``token``), so a repeat
        after a crash at any point leaves the indexes right without a rebuild. An older
        journal (ids only) is carried out as before, its note left for a rebuild."""
        if not fs.exists(self.prune_journal):
            return 0
        forgotten = 0
        gone: builtins.list[tuple[dict, int]] = []
        with self.lock:
            journal = read_json(
                self.prune_journal,
                shape=PRUNE_SHAPE,
                hint=f"move {self.prune_journal} aside; the runs it lists "
                "may then stay in the history, to be pruned again",
            )
            if journal is None:
                return 0
            current: builtins.list[int] = []  # the shard new runs go to, asked once if need be
            named = journal.get("shards")
            if isinstance(named, builtins.list) and all(type(n) is int for n in named):
                existing = sorted(set(named))  # the shards holding them (one gone reads as empty)
            else:
                existing = self.shards()
            named_ids = set(journal["ids"])
            placed = self._placed(named_ids, existing)
            if len(placed) < len(named_ids) and existing != self.shards():
                # a run the named shards do not hold may be in another (a journal's
                # "shards" is believed no more than the rest): look everywhere once
                existing = self.shards()
                placed = self._placed(named_ids, existing)
            ids = self._prunable(named_ids, str(journal["cutoff"]), placed)
            recorded = _recorded_gone(journal)
            if recorded is not None:
                # the counts are lowered by the summaries the shards hold, not by the
                # journal's own (a false one made counts negative); a run no shard holds
                # any more (a prune cut after its shard rewrite) keeps the journal's
                recorded = [
                    placed.get(doc["id"], (doc, shard)) for doc, shard in recorded if doc["id"] in ids
                ]
            self.indexes.begin("prune")
            if fs.exists(self._path(JOURNAL)):  # a reindex meanwhile: told where each run was
                where = {
                    doc["id"]: (shard, int(key))
                    for shard in existing
                    for key, doc in self._shard_docs(shard).items()
                    if doc["id"] in ids
                }
                for run_id in sorted(ids):
                    self.note_change(run_id, where.get(run_id))
            for shard in existing:
                docs = self._shard_docs(shard)
                remaining = {k: d for k, d in docs.items() if d["id"] not in ids}
                if len(remaining) == len(docs):
                    continue
                if not remaining and not current:
                    current.append(self._current_shard())
                if remaining or shard == current[0]:
                    self._shard_write(shard, remaining)
                else:
                    remove_file(self.shard_path(shard))
                gone.extend((doc, shard) for doc in docs.values() if doc["id"] in ids)
            for run_id in sorted(ids):
                if journal.get("forget_effects"):  # while the run file still names them
                    forgotten += self._forget_effects(run_id)
                remove_file(self.body_path(run_id))
            if recorded is not None:
                self.indexes.recount_pruned(recorded, str(journal["token"]))
                self.indexes.end("prune", repaired=True)
            else:
                self.indexes.on_prune(gone)
                self.indexes.end("prune")
            remove_file(self.prune_journal)
        return forgotten

    def _placed(self, ids: set[str], shards: builtins.list[int]) -> dict[str, tuple[dict, int]]:
        """Run id -> (its summary, its shard), for those of ``ids`` the shards hold."""
        return {
            doc["id"]: (doc, shard)
            for shard in shards
            for doc in self._shard_docs(shard).values()
            if doc["id"] in ids
        }

    def _holds_a_write(self, doc: dict[str, Any]) -> bool:
        """Whether a finished run still holds a write for a person (``run approve`` or
        ``run reject`` decides it, by the run's id): a prune keeps it, else the write
        stayed held for ever, neither made nor dropped. Its run file is read only when
        its summary says it needs review and has side effects."""
        if not (doc.get("needs_review") and doc.get("side_effects")):
            return False
        try:
            data = self._read_body(doc["id"])
        except (HistoryError, OSError):
            return False
        from workerctl.history.ledger import HELD

        effects = (data or {}).get("side_effects") or []
        return any(isinstance(e, dict) and e.get("state") == HELD for e in effects)

    def _prunable(self, ids: set[str], cutoff: str, placed: dict[str, tuple[dict, int]]) -> set[str]:
        """Of the runs a prune journal names, those its own rule removes: finished, created
        before its cutoff, with no marker. The journal is believed for nothing else: one
        planted, damaged or left by another version naming a run created after its
        cutoff, or one still executing, made the next command (a plain ``runs list``)
        delete that run's file. A run the shards no longer hold (a prune cut after
        its shard rewrite) is judged by its run file, and goes if that is gone or
        unreadable, as before."""
        keep = {run_id for run_id in ids if fs.exists(self.marker_path(run_id))}
        keep |= {
            run_id
            for run_id, (doc, _shard) in placed.items()
            if not (doc["created"] < cutoff and doc["status"] in FINISHED)
        }
        for run_id in ids - placed.keys() - keep:
            try:
                data = self._read_body(run_id)
            except (HistoryError, OSError):
                continue  # unreadable: nothing the rule could keep
            rule = str(data.get("created")) < cutoff and data.get("status") in FINISHED if data else True
            if not rule:
                keep.add(run_id)
        return ids - keep

    def _forget_effects(self, run_id: str) -> int:
        try:
            run = self.get(run_id)
        except NotFoundError:
            return 0
        if not run.side_effects:
            return 0
        targets = {str(e.get("record_id") or "-") for e in run.side_effects}
        return self.ledger.forget(run_id, targets)

    def settle_swap(self) -> bool:
        """Finish a reindex that died between swapping its two folders in (under the
        lock): ``index.new`` is complete before the swap starts. Done before anything
        is written into the cross-run indexes by whoever finds the swap half done: a
        reader's repair (``Indexes.recover``, ``Indexes.repair_settled``) and any writer,
        whose first commit finds the dead reindex's journal (``journal.sweep_journal``).
        Else a writer's run went into the old cross-run indexes, which the swap, settled
        later, replaced by the reindex's, without it."""
        if not self.lock.held:
            return False
        done = False
        for name in ("index", "active"):  # an older workerctl's reindex: index.new, active.new
            new = self.root / f"{name}.new"
            if not fs.exists(self.root / name) and fs.exists(new / COMPLETE):
                fs.replace(new, self.root / name)
                done = True
        stage = self.root / STAGE
        if not fs.exists(self.root / "index") and fs.exists(stage / "index" / COMPLETE):
            fs.replace(stage / "index", self.root / "index")
            done = True
        if fs.exists(stage / "indexes" / COMPLETE) and not fs.exists(stage / "index"):
            # the index was swapped in: the cross-run indexes built with it follow
            import datetime as dt

            if fs.exists(self.root / "indexes"):
                old = self.root / f"indexes.old-{dt.datetime.now(dt.UTC).strftime('%Y%m%d%H%M%S%f')}"
                fs.replace(self.root / "indexes", old)
                fs.rmtree(old, ignore_errors=True)
            fs.replace(stage / "indexes", self.root / "indexes")
            done = True
        return done

    def reindex(self) -> dict[str, Any]:
        """Rebuild the index shards, markers, ledger, indexes and search index from the
        run files, read once, in memory that does not grow with the history, holding
        the lock only briefly at a time (``history.reindex``)."""
        from workerctl.history.reindex import reindex

        return reindex(self)


@dataclass(frozen=True)
class _Written:
    """An unfinished run's file as this process wrote it last: its slot, its file's
    ``Stamp``, and the fields of it a commit reads (``History._stored``), copied (the
    run's own lists and dicts change as it goes on)."""

    shard: int
    doc: int
    stamp: Stamp | None
    status: str
    effects: list[dict]
    usage: Any

    @classmethod
    def of(cls, run: Run, shard: int, doc: int, stamp: Stamp | None) -> _Written:
        effects = [dict(e) for e in run.side_effects]
        return cls(shard, doc, stamp, run.status, effects, copy.deepcopy(run.usage))

    def stored(self) -> dict:
        return {
            "status": self.status,
            "_shard": self.shard,
            "_doc": self.doc,
            "side_effects": [dict(e) for e in self.effects],
            "usage": copy.deepcopy(self.usage),
        }


class _Ahead:
    """What ``History._prepare`` wrote ahead for one save."""

    def __init__(self) -> None:
        self.body: PreparedFile | None = None
        self.ledger: dict[Path, PreparedFile] = {}

    def discard(self) -> None:
        """Remove what was not put in place (after the save, whatever happened)."""
        for prepared in (self.body, *self.ledger.values()):
            if prepared is not None:
                prepared.discard()


def _recorded_gone(journal: dict) -> builtins.list[tuple[dict, int]] | None:
    """The summaries (and shards) of the runs a prune journal removes, if it names them
    in the shape this workerctl writes; else None (an older journal)."""
    gone, token = journal.get("gone"), journal.get("token")
    if not isinstance(gone, builtins.list) or not isinstance(token, str):
        return None
    out = []
    for item in gone:
        if not (
            isinstance(item, builtins.list)
            and len(item) == 2
            and isinstance(item[0], dict)
            and type(item[1]) is int
            and all(isinstance(item[0].get(k), str) for k in ("id", "created", "worker", "status"))
        ):
            return None
        out.append((item[0], item[1]))
    return out


def _host_key(host: object) -> str:
    """A host name as a file-name part (the folders of files written ahead)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(host))


def _is_me(marker: dict | None) -> bool:
    me = current_owner()
    return marker is not None and marker.get("pid") == me["pid"] and marker.get("host") == me["host"]


def _count_down(top: int, spans: builtins.list[tuple[int, int]] | None) -> Iterator[int]:
    """``top``, ``top - 1``, … 1, only the numbers within ``spans`` (inclusive ranges,
    which may overlap) if given, each once."""
    if spans is None:
        yield from range(top, 0, -1)
        return
    below = top + 1
    for low, high in sorted(spans, key=lambda span: span[1], reverse=True):
        yield from range(min(high, below - 1), max(low, 1) - 1, -1)
        below = min(below, max(low, 1))
