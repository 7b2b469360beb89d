"""Durable, private JSON files: atomic replacement, shape checks, damage detection.

Every state file workerctl writes (history shards, run files, markers, records,
comments, worker versions) goes through here, so that:

- a crash mid-write never leaves a half-written file (temp file, fsync, rename);
- a file that does not parse, or parses to the wrong shape (``shape=``, see
  ``storage.shapes``), is reported as damaged (exit 4) and never written over;
- the operating system's refusals (full disk, read-only file system, permissions)
  become one line naming the path and the cause (``StorageError``, exit 4), with
  the temp file removed, never a traceback;
- what is created is private: folders 0700, files 0600, whatever the umask,
  because run files hold outputs, record contents and context.

A state file written ahead into a process's own folder (``prepare_text`` with
``folder``: a run file, a ledger file) inside a batch (``keeping_old_inodes``) replaces
the file by swapping names with it (``fs.exchange``): the old file's inode then lies
under the temp name in that folder, to be written again by that file's next write
(``_Spares``), instead of being freed while a new one is allocated. On ext4 without a
journal (this project's machines) each new inode is found by skipping every inode freed
in the last 30 seconds, and a batch frees six a run: that search was a quarter of a
batch's time. A reader that opened the old file just before the swap may read it while
it is written again: its bytes then do not parse, and ``parse_json`` reads the file once
more before it calls it damaged.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import itertools
import json
import math
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workerctl.errors import DamagedFile, HistoryError, PlantedLink, StorageError
from workerctl.jsonvalues import TooDeep, loads
from workerctl.storage import fs
from workerctl.storage.faults import write_point
from workerctl.storage.shapes import Shape, describe

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_AHEAD = itertools.count()  # makes the temp files of files written ahead unique within a thread


def read_json(path: Path, *, hint: str | None = None, shape: Shape | None = None) -> Any:
    """Load a JSON file; None if it does not exist.

    ``DamagedFile`` if it does not parse or does not fit ``shape``. An empty file
    counts as damaged: workerctl never writes one, so it means a truncation by
    something else. ``StorageError`` if it cannot be read at all.
    """
    try:
        data = fs.read_bytes(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StorageError(path, exc, "read") from None
    return parse_json(path, data, hint=hint, shape=shape, again=True)


class DuplicateKey(ValueError):
    """A JSON object naming one key twice."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(f"the key {key!r} appears twice in one object (which counts is no rule)")
            seen.add(key)
    return out


class OutOfRange(ValueError):
    """A number no JSON reader holds: one so large that it reads as infinity."""


def loads_state(data: bytes | str) -> Any:
    """JSON as a state file must hold it: an object naming a key twice is refused
    (``DuplicateKey``), and so is a number that reads as infinity (``OutOfRange``,
    see ``_finite``). Python keeps the last key, another reader the first: a shard
    whose document "2" appeared twice hid a run, and a ledger file with "effects"
    twice read as empty let a repeat post a second comment. Every state file is read
    through this (``parse_json``; the search index's reading of run files); it costs
    nothing measurable (``dict`` of the pairs, in C)."""
    return loads(data, object_pairs_hook=_unique, parse_constant=_no_constant, parse_float=_finite)


def _finite(text: str) -> float:
    """A JSON number with a fraction or an exponent, as a float, if it is one: ``1e400``
    is valid JSON that Python reads as infinity, which workerctl never writes and cannot
    write back (``encode_json`` refuses it): a file holding one was read, then its next
    write raised (a traceback at every command after it). It is damage, named, as
    ``NaN`` is."""
    value = float(text)
    if not math.isfinite(value):  # (never NaN: that is no number literal, ``_no_constant``)
        raise OutOfRange(f"the number {text[:40]} is too large to be read (it reads as infinity)")
    return value


def _no_constant(name: str) -> Any:
    """``NaN``, ``Infinity``: Python's reader accepts them, JSON does not, and workerctl
    never writes them (``encode_json``): a state file holding one is damaged."""
    raise ValueError(f"{name} is not a JSON number")


def parse_json(
    path: Path, data: bytes, *, hint: str | None = None, shape: Shape | None = None, again: bool = False
) -> Any:
    """The checks of ``read_json`` on bytes already read (e.g. through a folder's fd).
    ``again``: the bytes were just read from ``path``, and if they fail the checks the
    file is read again: a reader that opened a file just before a writer swapped it
    out (``_Spares``) may have read it while it was written anew; the file is damaged
    only if what is there now fails too."""
    try:
        return _parsed(path, data, hint, shape)
    except DamagedFile:
        if not again:
            raise
        for _ in range(3):
            try:
                now = fs.read_bytes(path)
            except (OSError, HistoryError):
                break
            if now == data:
                break  # the same bytes: the file itself is damaged
            data = now
            try:
                return _parsed(path, data, hint, shape)
            except DamagedFile:
                continue
        raise


def _parsed(path: Path, data: bytes, hint: str | None, shape: Shape | None) -> Any:
    if not data.strip():
        raise DamagedFile(path, "the file is empty", hint=hint)
    try:
        value = loads_state(data)
    except (DuplicateKey, OutOfRange) as exc:
        raise DamagedFile(path, str(exc), hint=hint) from None
    except TooDeep:  # JSON nested thousands deep: no state file workerctl writes
        raise DamagedFile(path, "JSON nested deeper than Python can read", hint=hint) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedFile(path, f"not valid JSON: {exc}", hint=hint) from None
    if shape is not None:
        problem = shape(value)
        if problem:
            raise DamagedFile(path, problem, hint=hint)
    return value


def expect_object(path: Path, value: Any, hint: str | None = None) -> dict:
    """``value`` if it is a JSON object, else ``DamagedFile`` (for ad hoc readers)."""
    if not isinstance(value, dict):
        raise DamagedFile(path, f"expected an object, found {describe(value)}", hint=hint)
    return value


#: the one encoding of every state file (``json.dumps`` with these options builds a new
#: encoder on each call; this one is shared, and safe to share between threads). It writes
#: JSON values only (``workerctl.jsonvalues``): a NaN or an infinity is refused, never
#: written as the ``NaN`` no JSON reader accepts
encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


#: what tells one version of a file from another without reading it: its inode, its
#: size and the time of its last write (``stamp_of``), none of which the rename that
#: puts it in place changes. A file another process wrote over it has another inode
#: (its temp file was made while this one existed); only a third write reusing a
#: number freed meanwhile, with the same size, within one tick of the file system's
#: clock, could look the same
Stamp = tuple[int, int, int]


def stamp_of(st: os.stat_result) -> Stamp:
    return st.st_ino, st.st_size, st.st_mtime_ns


def write_json(
    path: Path, data: Any, *, sync_data: bool = True, cache: bool = False, stamp: bool = False
) -> Stamp | None:
    """Replace ``path`` atomically: temp file, fsync, rename. ``cache``: a file safe
    to regenerate (not a write point of the fault-injection tests). ``stamp``: see
    ``write_text_atomic``."""
    return write_text_atomic(path, encode_json(data), sync_data=sync_data, cache=cache, stamp=stamp)


class _Spares:
    """This process's temp files that hold an old inode after a swap (``fs.exchange``),
    each kept for the next write of the same file, once it has rested ``REST`` seconds:
    a reader that opened the file before the swap and reads it late therefore reads a
    version of that same file, whole as a rule (``parse_json`` reads again otherwise),
    never another file's. A state file removed meanwhile (a finished run's marker, a
    note) is moved here too (``discard(keep_in=)``), never written again.

    Why keep them at all: until the batch ends, no inode is freed. On ext4 without a
    journal (this project's CI machine), every new inode is found by skipping each free
    one freed in the last minute, one inode-table lookup each: a batch that freed the
    six or so inodes a run replaces made each later file cost more to create (a
    quarter of a 200-run batch's system time). At most ``KEEP`` are kept (the moved
    ones removed first, then the longest unused), holding at most ``BYTES`` of old
    content between them (a file's old content before this process first wrote it
    taken to be as large as the new); all are removed when the last block ends, or the
    process does, and the folders they were in with them once empty (a process's
    folder of files written ahead was left behind by every ``run start``). One that a
    maintenance command removed meanwhile, or that is not a plain file of its own, is
    made anew (``_kept_open``). A forked child starts with none: its parent's are its
    parent's."""

    REST = 0.25
    KEEP = 4096  # about 700 runs' worth of a batch of the sample worker
    BYTES = 64 << 20  # a kept file holds its old content until it goes: runs with large outputs

    def __init__(self) -> None:
        # per file (None: removed files): (when it has rested, the temp file, its size)
        self._kept: OrderedDict[Path | None, deque[tuple[float, Path, int]]] = OrderedDict()
        self._count = 0
        self._bytes = 0
        self._sizes: dict[Path, int] = {}  # each file's size as swapped in last
        self._folders: set[Path] = set()  # where temp files were made: removed once empty
        self.keeping = 0  # ``keeping_old_inodes`` blocks open: swaps happen only inside one
        self._guard = threading.Lock()
        self._names = itertools.count()

    def take(self, path: Path, folder: Path) -> tuple[Path, bool]:
        """A temp file in ``folder`` for ``path``'s next content, and whether it is a kept
        one (else a new name)."""
        with self._guard:
            kept = self._kept.get(path)
            if kept and kept[0][0] <= time.monotonic():
                _, tmp, size = kept.popleft()
                self._count -= 1
                self._bytes -= size
                return tmp, True
        return self.name(path, folder), False

    def give(self, path: Path | None, tmp: Path, size: int = 0) -> None:
        """Keep ``tmp`` (which holds an old inode of ``path``, or unused content; for
        ``path`` None, a removed file's, never written again); ``size``: about how many
        bytes it holds."""
        dropped: list[Path] = []
        with self._guard:
            self._kept.setdefault(path, deque()).append((time.monotonic() + self.REST, tmp, size))
            if path is not None:
                self._kept.move_to_end(path)
            else:
                self._kept.move_to_end(path, last=False)  # the first to go
            self._count += 1
            self._bytes += size
            while self._count > self.KEEP or (self._bytes > self.BYTES and self._count > 1):
                oldest = next(iter(self._kept))
                queue = self._kept[oldest]
                _, gone, gone_size = queue.popleft()
                dropped.append(gone)
                self._count -= 1
                self._bytes -= gone_size
                if not queue:
                    del self._kept[oldest]
        for old in dropped:
            with contextlib.suppress(OSError, HistoryError):
                fs.unlink(old)

    def replaced(self, path: Path, size: int) -> int:
        """``path`` now holds ``size`` bytes: how many the file it replaced held, as this
        process last wrote it (else taken to be as many)."""
        with self._guard:
            old = self._sizes.get(path, size)
            self._sizes[path] = size
        return old

    def name(self, path: Path, folder: Path) -> Path:
        """A new temp file's name in ``folder`` for ``path``."""
        if folder not in self._folders:
            with self._guard:
                self._folders.add(folder)
        return folder / f".{path.name}.{os.getpid()}.{next(self._names)}.next.tmp"

    def clear(self) -> None:
        """Remove every kept temp file (the last ``keeping_old_inodes`` block ends, or the
        process does). Several at once when there are many: on a file system mounted
        with ``discard`` (this project's CI machine), removing a file whose blocks were
        fsynced waits for the device to discard them (about 0.1 ms each, most of it
        waiting), and such waits overlap (eight threads: 0.06 ms each)."""
        with self._guard:
            kept, self._kept, self._count, self._bytes = self._kept, OrderedDict(), 0, 0
            self._sizes = {}
        files = [tmp for queue in kept.values() for _, tmp, _ in queue]
        if len(files) >= self.TOGETHER:
            from concurrent.futures import ThreadPoolExecutor

            try:
                with ThreadPoolExecutor(8, thread_name_prefix="workerctl-clear") as pool:
                    files = [
                        tmp
                        for tmp, gone in zip(files, pool.map(_remove_quietly, files), strict=True)
                        if not gone
                    ]
            except RuntimeError:  # at the interpreter's exit no thread starts: one by one
                pass
        for tmp in files:
            _remove_quietly(tmp)
        with self._guard:
            folders, self._folders = self._folders, set()
        for folder in folders:  # this process's own: left empty, they go too
            with contextlib.suppress(OSError, HistoryError):
                fs.rmdir(folder)

    TOGETHER = 64  # fewer kept files than this are removed one after another

    def open(self) -> None:
        with self._guard:
            self.keeping += 1

    def close(self) -> None:
        """One block fewer; the kept files go with the last."""
        with self._guard:
            self.keeping -= 1
            last = self.keeping == 0
        if last:
            self.clear()

    def forget(self) -> None:
        """A forked child: the temp files are its parent's."""
        self._kept, self._count, self._bytes, self.keeping = OrderedDict(), 0, 0, 0
        self._sizes, self._folders = {}, set()
        self._guard = threading.Lock()


def _remove_quietly(tmp: Path) -> bool:
    """Whether ``tmp`` is gone now."""
    try:
        fs.unlink(tmp)
    except FileNotFoundError:
        return True
    except (OSError, HistoryError):
        return False  # tried again, one by one: still refused, it stays
    return True


_SPARES = _Spares()
os.register_at_fork(after_in_child=_SPARES.forget)
atexit.register(_SPARES.clear)


def no_space(exc: BaseException) -> bool:
    """Whether ``exc`` is a write refused for want of space (a full disk, a quota)."""
    return isinstance(exc, (OSError, StorageError)) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class _Reserve:
    """Space set aside, while there is some, for the one write that must not fail on a
    full disk: the end of a run, which only the process executing it knows
    (``History._keep_outcome``). Without it, a run whose save met a full disk left its
    run file saying "running" with its comment "intended", and once its process was
    gone the sweep recorded a death (``crashed``) and a write nobody could vouch for
    (``unknown``) where the process had known both: failed, ``state_unusable``, and
    the comment written or not.

    One file of ``BYTES`` for each run this process makes or executes and has not
    ended (``keep``; the count goes down at its end, ``release``), allocated in full
    (``posix_fallocate``: the blocks are the file's, a write into them needs none
    from the disk); a run's end written into one (``write``) takes that file, and
    only a run that has a file counted for it takes one. They live in the process's
    own folder under ``history/ahead/``, which no other command removes while the
    process lives, and go when it ends (or with that folder, by the sweep, when it
    was killed)."""

    BYTES = 32 << 10  # a run file is 3-20 KB; a larger end is cut to fit (``write_reserved``)

    def __init__(self) -> None:
        self._files: list[Path] = []
        self._runs: set[str] = set()  # the runs the files are for
        self._folders: set[Path] = set()  # where they were made: removed once empty
        self._guard = threading.Lock()
        self._names = itertools.count()

    def keep(self, folder: Path, run_id: str) -> OSError | None:
        """A file set aside in ``folder`` for ``run_id`` (one for each run counted). The
        refusal when there is no space for it (a full disk, a quota: a ``run_id`` not
        counted before is not counted); any other (a read-only mount, no permission)
        is left to the writes that follow, which say so themselves."""
        with self._guard:
            counted = run_id in self._runs
            self._runs.add(run_id)
        while True:
            with self._guard:
                if len(self._files) >= len(self._runs):
                    return None
            path = folder / f".reserve.{os.getpid()}.{next(self._names)}"
            try:
                fd = fs.create_new(path, PRIVATE_FILE)
                try:
                    os.posix_fallocate(fd, 0, self.BYTES)
                finally:
                    os.close(fd)
            except OSError as exc:
                _remove_quietly(path)
                if not no_space(exc):
                    return None
                if not counted:  # one counted before keeps the file it had
                    self.release(run_id)
                return exc
            except HistoryError:
                _remove_quietly(path)
                return None
            with self._guard:
                self._files.append(path)
                self._folders.add(folder)

    def release(self, run_id: str) -> None:
        """``run_id`` ended as usual: its file stays, for the next run."""
        with self._guard:
            self._runs.discard(run_id)

    def rename(self, old: str, new: str) -> None:
        """The run counted as ``old`` is ``new`` now (a new id drawn at its creation)."""
        with self._guard:
            if old in self._runs:
                self._runs.discard(old)
                self._runs.add(new)

    def write(self, run_id: str, path: Path, text: str) -> bool:
        """``run_id``'s end: ``path`` replaced with ``text``, written into a file set
        aside and fsynced, then renamed over it. True when done; False when the run has
        no file counted, or ``text`` does not fit (that file is removed, its space freed;
        ``write_reserved`` cuts an end to fit before it comes here)."""
        data = text.encode("utf-8", "backslashreplace")
        with self._guard:
            if run_id not in self._runs or not self._files:
                return False
            self._runs.discard(run_id)
            tmp = self._files.pop()
        if len(data) > self.BYTES:
            _remove_quietly(tmp)
            return False
        try:
            write_point(path, needs_space=False)
            fd = fs.open_file(tmp, os.O_WRONLY)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.pwrite(fd, view, len(data) - len(view)) :]
                os.ftruncate(fd, len(data))  # gives blocks back: needs none
                os.fsync(fd)
            finally:
                os.close(fd)
            fs.replace(tmp, path)
        except (OSError, HistoryError):
            _remove_quietly(tmp)
            return False
        return True

    def clear(self) -> None:
        """Remove what is left (the process ends), and its folder once empty."""
        with self._guard:
            files, self._files, self._runs = self._files, [], set()
            folders, self._folders = self._folders, set()
        for tmp in files:
            _remove_quietly(tmp)
        for folder in folders:
            with contextlib.suppress(OSError, HistoryError):
                fs.rmdir(folder)

    def forget(self) -> None:
        """A forked child: the files are its parent's."""
        self._files, self._runs, self._folders = [], set(), set()
        self._guard = threading.Lock()


_RESERVE = _Reserve()
os.register_at_fork(after_in_child=_RESERVE.forget)
atexit.register(_RESERVE.clear)  # before _SPARES.clear (last registered, first run): the folder empties


def reserve_space(folder: Path, run_id: str) -> None:
    """Set aside space in ``folder`` (a writer's own) for the end of ``run_id``, a run
    this process makes or executes (``_Reserve``); ``StorageError`` when there is no
    space for it."""
    refused = _RESERVE.keep(folder, run_id)
    if refused is not None:
        raise StorageError(folder / ".reserve", refused, "set aside space for the end of a run in")


def release_space(run_id: str) -> None:
    """``run_id`` ended (its end is written): the space set aside for it is free for
    the next run."""
    _RESERVE.release(run_id)


def renamed_run(old: str, new: str) -> None:
    """A run set aside for as ``old`` was given the id ``new`` before it was made."""
    _RESERVE.rename(old, new)


def write_reserved(run_id: str, path: Path, data: Any) -> bool:
    """The end of ``run_id``: ``path`` replaced by ``data`` (JSON) in the space set
    aside for it by ``reserve_space``, for a write that just failed for want of space.
    An end too large for that space (a long answer, long steps) is written with its
    long texts cut to fit (``jsonvalues.shortened``, each cut one saying so): its
    status, its error and every side effect's state stay as the process knew them,
    which is what the history and the ledger are settled from. False when that cannot
    be done."""
    from workerctl.jsonvalues import shortened

    text = encode_json(data)
    if _utf8_size(text) > _Reserve.BYTES:
        try:
            text = encode_json(
                shortened(data, lambda value: _utf8_size(encode_json(value)) <= _Reserve.BYTES)
            )
        except ValueError:  # even with every long text cut
            return False
    return _RESERVE.write(run_id, path, text)


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "backslashreplace"))


@contextlib.contextmanager
def keeping_old_inodes() -> Iterator[None]:
    """Inside the block (a batch's length), a file written ahead is swapped into place
    and its old inode kept for the same file's next write (``_Spares``); outside any,
    it is renamed into place as always, and nothing is kept. The kept files go when the
    last block ends."""
    _SPARES.open()
    try:
        yield
    finally:
        _SPARES.close()


def _swapped(tmp: Path, path: Path, size: int) -> None:
    """Put ``tmp`` (``size`` bytes) in place of ``path``: swapped when inodes are kept
    and ``path`` exists (its old inode is kept under ``tmp`` for its next write), else
    renamed."""
    if _SPARES.keeping and fs.exchange(tmp, path):
        _SPARES.give(path, tmp, _SPARES.replaced(path, size))
    else:
        fs.replace(tmp, path)


def write_text_atomic(
    path: Path,
    text: str | bytes,
    *,
    sync_data: bool = True,
    private: bool = True,
    cache: bool = False,
    stamp: bool = False,
) -> Stamp | None:
    """Write a temp file beside ``path``, fsync it, rename it over ``path``.

    A reader or a crash sees the old file or the new one, never half of one. The
    folder is not fsynced: a power cut may lose the newest writes (``runs
    reindex`` rebuilds the index from whatever run files survived), and skipping
    it halves the fsyncs on the hot path of every run. ``private``: mode 0600
    whatever the umask (state files); otherwise the umask decides (the user's own
    files, such as worker files). ``stamp``: return the new file's ``Stamp``, by
    which the writer knows it later without reading it.
    """
    # unique per process and thread; cheaper than mkstemp on this hot path
    tmp = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    with _temp_goes_on_failure(path, tmp):
        if not cache:
            write_point(path)
        written = _write_temp(path, tmp, text, sync_data=sync_data, private=private, stamp=stamp)
        fs.replace(tmp, path)
    return written


@contextlib.contextmanager
def _temp_goes_on_failure(path: Path, tmp: Path) -> Iterator[None]:
    """Whatever stops a write to ``tmp`` (a full disk, a kill signal's exception,
    Ctrl-C) removes ``tmp``; an OS refusal becomes a StorageError naming ``path``."""
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(OSError, HistoryError):
            fs.unlink(tmp)
        if isinstance(exc, OSError):
            raise StorageError(path, exc) from None
        raise


def _write_temp(
    path: Path,
    tmp: Path,
    text: str | bytes,
    *,
    sync_data: bool,
    private: bool = True,
    kept: bool = False,
    stamp: bool = False,
) -> Stamp | None:
    """``text`` into ``tmp`` beside ``path``, fsynced (the caller removes ``tmp`` when
    this raises): a new file, or one ``_Spares`` kept (``kept``), emptied first.
    ``stamp``: its ``Stamp`` once written."""
    mode = PRIVATE_FILE if private else 0o666
    fd = _kept_open(tmp) if kept else -1
    if fd < 0:
        fd = fs.create_new(tmp, mode, create_parents=True)  # never through a link at any component
    try:
        if private:
            os.fchmod(fd, PRIVATE_FILE)  # a umask such as 0277 must not leave it unreadable
        # a lone surrogate (a step's output, a plugin's text) cannot be UTF-8: it is
        # written as its JSON escape (\udc80), the only place JSON can hold one is a
        # string, so the file reads back to exactly the same text
        data = memoryview(text.encode("utf-8", "backslashreplace") if isinstance(text, str) else text)
        while data:
            data = data[os.write(fd, data) :]
        if sync_data:
            os.fsync(fd)
        return stamp_of(os.fstat(fd)) if stamp else None
    finally:
        os.close(fd)


def _kept_open(tmp: Path) -> int:
    """A kept temp file opened for writing, emptied; -1 when it is gone (a maintenance
    command removed it) or is not a plain file with one name (then ``create_new``
    removes what is there and makes a new one)."""
    try:
        return fs.open_file(tmp, os.O_WRONLY | os.O_TRUNC)
    except (OSError, PlantedLink):
        return -1


class PreparedFile:
    """A state file's next content, written and fsynced ahead, put in place later.

    ``prepare_text`` does the slow half of ``write_text_atomic`` (the temp file and
    its fsync) before a lock is taken, so that other threads can work meanwhile;
    ``publish`` does the rename under the lock, at the moment the ordinary write
    would have happened (its write point is there too). Until then the file is an
    invisible temp file: a crash in between leaves the old file, as always, and a
    stray temp file that ``runs reindex`` removes. ``discard`` (always safe to
    call) removes it when the content turned out not to be wanted.
    """

    __slots__ = ("key", "path", "size", "stamp", "swap", "tmp")

    def __init__(
        self,
        path: Path,
        tmp: Path,
        key: Any = None,
        *,
        swap: bool = False,
        stamp: Stamp | None = None,
        size: int = 0,
    ) -> None:
        self.path, self.key, self.swap = path, key, swap  # swap: its temp file is a kept one
        self.tmp: Path | None = tmp
        self.stamp = stamp  # the file's once put in place (asked for: ``prepare_text``)
        self.size = size  # of its content (and, about, of the file it replaces)

    def publish(self) -> None:
        tmp, self.tmp = self.tmp, None
        if tmp is None:
            raise RuntimeError(f"{self.path}: prepared content published twice")
        with _temp_goes_on_failure(self.path, tmp):
            write_point(self.path)
            try:
                if self.swap:
                    _swapped(tmp, self.path, self.size)
                else:
                    fs.replace(tmp, self.path)
            except FileNotFoundError:  # written ahead elsewhere, into a folder not made yet
                if not fs.exists(tmp):
                    raise
                private_dirs(self.path.parent)
                fs.replace(tmp, self.path)

    def discard(self) -> None:
        tmp, self.tmp = self.tmp, None
        if tmp is not None and self.swap and _SPARES.keeping:
            _SPARES.give(self.path, tmp, self.size)  # written again by its next write (or removed at the end)
        elif tmp is not None:
            with contextlib.suppress(OSError, HistoryError):
                fs.unlink(tmp)


def prepare_text(
    path: Path,
    text: str | bytes,
    *,
    key: Any = None,
    sync_data: bool = True,
    folder: Path | None = None,
    stamp: bool = False,
) -> PreparedFile:
    """Write and fsync ``path``'s next content to a temp file (see ``PreparedFile``);
    ``key`` says what the content was made for. ``folder``: where the temp file
    lives, when not beside ``path`` (the history's per-process folder of files
    written ahead, which no maintenance command empties while this process lives;
    it must be on the file system of ``path``). ``stamp``: the file's ``Stamp`` is
    kept as ``PreparedFile.stamp``."""
    if folder is None:  # beside ``path``: a temp file of its own, renamed into place
        name = f".{path.name}.{os.getpid()}.{threading.get_ident()}.{next(_AHEAD)}.next.tmp"
        tmp = path.parent / name
        with _temp_goes_on_failure(path, tmp):
            written = _write_temp(path, tmp, text, sync_data=sync_data, stamp=stamp)
        return PreparedFile(path, tmp, key, stamp=written)
    tmp, kept = _SPARES.take(path, folder)
    with _temp_goes_on_failure(path, tmp):
        written = _write_temp(path, tmp, text, sync_data=sync_data, kept=kept, stamp=stamp)
    return PreparedFile(path, tmp, key, swap=True, stamp=written, size=len(text))


def writer_of(name: str) -> int | None:
    """The pid in the name of a temp file ``write_text_atomic`` writes beside its file
    (``.NAME.PID.THREAD.tmp``); None for any other name."""
    parts = name.split(".")
    if len(parts) < 5 or parts[0] or parts[-1] != "tmp" or not parts[-2].isdigit() or not parts[-3].isdigit():
        return None
    return int(parts[-3])


def remove_temps_of(folder: Path, pids: set[int], *, recursive: bool = False) -> None:
    """Remove the temp files in ``folder`` that a process of ``pids`` was writing when it
    died (``writer_of``). Only under the lock those writers held: a live process that
    got such a pid again writes its temp files only while holding it."""
    if not pids:
        return
    with contextlib.suppress(OSError, HistoryError):
        for path in fs.walk_files(folder, ".*.tmp") if recursive else fs.glob(folder, ".*.tmp"):
            if writer_of(path.name) in pids:
                with contextlib.suppress(OSError, HistoryError):
                    fs.unlink(path)


def remove_file(path: Path, *, keep_in: Path | None = None) -> None:
    """Remove a state file (a write point like any other); gone already is fine.
    ``keep_in``: see ``discard``."""
    try:
        write_point(path)
        discard(path, keep_in=keep_in)
    except OSError as exc:
        raise StorageError(path, exc, "remove") from None


def discard(path: Path, *, keep_in: Path | None = None) -> None:
    """Remove ``path`` if it is there. ``keep_in``: inside ``keeping_old_inodes``, it is
    moved into that folder (the process's own, on the same file system) and removed
    with the kept files, so that its inode is not freed while the batch runs (see
    ``_Spares``)."""
    try:
        if keep_in is None or not _SPARES.keeping or not _moved_into(path, keep_in):
            fs.unlink(path)
    except (FileNotFoundError, NotADirectoryError):
        pass  # gone already


def _moved_into(path: Path, folder: Path) -> bool:
    """``path`` moved into ``folder`` and kept there (``discard``); False when it is gone
    or that folder refuses it (a link or a file planted there): the caller removes it."""
    kept = _SPARES.name(path, folder)
    try:
        try:
            fs.replace(path, kept)
        except FileNotFoundError:
            if not fs.exists(path):
                return False
            private_dirs(folder)  # made by the batch's first write ahead, as a rule
            fs.replace(path, kept)
    except (OSError, HistoryError):
        return False
    _SPARES.give(None, kept)
    return True


def private_dirs(path: Path) -> None:
    """Make ``path`` and any missing parents, each 0700 whatever the umask (never
    through a link: see ``storage.fs``)."""
    try:
        fs.mkdir(path, PRIVATE_DIR, parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(path, exc, "create the folder") from None
