"""The one way to touch workspace state: no path under ``.workerctl/`` is followed
through a link.

Every open, create, rename, chmod, listing and removal of a state file or folder
goes through this module. A path is walked one component at a time from the
folder that holds ``.workerctl`` (the workspace, whose own path the user may
reach through links), each folder opened with ``O_NOFOLLOW | O_DIRECTORY``
relative to the one before (``dir_fd``), and the last component is opened,
renamed or removed relative to its folder's descriptor with ``O_NOFOLLOW``. So a
symbolic link planted at any component, ``.workerctl`` itself included, is never
followed, and there is no window between a check and the use (the kernel does
both in one call). Such a link, or a file that is not a plain file where one is
written in place (a FIFO, a device, a hard link shared with a file elsewhere), is
reported as damage (``PlantedLink``, exit 4, naming the path) and left as it is.

The functions mirror ``os`` and ``pathlib`` (and raise their ``OSError``\\ s, such
as ``FileNotFoundError``), so a caller swaps ``path.read_bytes()`` for
``fs.read_bytes(path)`` and keeps its error handling. A path with no
``.workerctl`` component (a history opened on a bare folder by a test) is walked
from its parent folder: only its last component is guarded.

Cost: one ``openat`` and one ``close`` per folder of the path (four or five for a
run file), a few microseconds each. A process that walks many paths (a batch: about
290 a run) resolves each in one ``openat2`` call instead, with
``RESOLVE_NO_SYMLINKS``: the kernel refuses a link at any component, as the walk
does, and on any refusal the walk runs to name the component (or make the missing
folders); a missing file (ENOENT, which the kernel answers only when no link lies before
the missing component) is reported at once, and an ``lstat`` opens the entry itself
(``O_PATH | O_NOFOLLOW``). ``openat2`` is reached through ``ctypes`` (Linux 5.6 and
later), loaded only after ``FAST_AFTER`` walks, so that a short command never pays its
import.
"""

from __future__ import annotations

import _thread
import contextlib
import errno
import fnmatch
import os
import stat as stat_mod
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workerctl.errors import ClimbingPath, PlantedLink

STATE_DIR_NAME = ".workerctl"

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_NOFOLLOW = os.O_NOFOLLOW | _CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a planted FIFO never hangs an open

PathArg = str | os.PathLike[str]


_SPLIT: dict[str, tuple[str, list[str]]] = {}
_MAX_SPLIT = 4096


def _split(path: PathArg) -> tuple[str, list[str]]:
    """The anchor folder (followed as the user's own path) and the components below it
    that must not be links: from ``.workerctl`` down, else only the last one. An
    absolute path's answer is kept (the same state files are met again and again;
    the answer is the text's alone). The list is shared: never changed."""
    text = os.fspath(path)
    known = _SPLIT.get(text)
    if known is not None:
        return known
    given = text.split(os.sep)
    if STATE_DIR_NAME in given and ".." in given[given.index(STATE_DIR_NAME) :]:
        raise ClimbingPath(text)  # made from a damaged id: abspath would take it elsewhere
    full = os.path.abspath(text)
    parts = full.split(os.sep)
    try:  # the innermost: a workspace may be kept in a folder named so (~/.workerctl/acme);
        # no name below a state folder is (``storage.filenames`` never makes one with a leading dot)
        at = len(parts) - 1 - parts[::-1].index(STATE_DIR_NAME)
    except ValueError:
        at = len(parts) - 1
    found = (os.sep.join(parts[:at]) or os.sep, [p for p in parts[at:] if p])
    if full == text:
        if len(_SPLIT) >= _MAX_SPLIT:
            _SPLIT.clear()
        _SPLIT[text] = found
    return found


_ANCHORS: dict[str, int] = {}
_MAX_ANCHORS = 16
_PINNED: dict[str, int] = {}  # anchor -> the locks this process holds in that folder (``pin``)
_FORGETTING = _thread.allocate_lock()  # not threading's: a short command never imports it


def _anchor(anchor: str, parts: list[str]) -> int:
    """A new descriptor of the anchor folder (the caller closes it)."""
    kept = _kept_anchor(anchor, parts)
    if kept is None:
        return os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    return os.dup(kept)


def _kept_anchor(anchor: str, parts: list[str]) -> int | None:
    """The process's descriptor of a workspace's folder (never closed: not the
    caller's to close), or None for a path outside a state folder. A workspace's
    folder is opened once per process (resolving its whole path is the dearest step
    of a walk, and a process works in one or two workspaces); it is the user's own
    path, so where it leads may be a link, and that does not change while a command
    runs. A process that opens the workspace again (``renew``) goes on from the folder
    at the path then."""
    if parts[0] != STATE_DIR_NAME:
        return None
    fd = _ANCHORS.get(anchor)
    if fd is None:
        if len(_ANCHORS) >= _MAX_ANCHORS:
            return None
        fd = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        kept = _ANCHORS.setdefault(anchor, fd)
        if kept != fd:  # another thread was first
            os.close(fd)
            fd = kept
    return fd


def renew(folder: PathArg) -> None:
    """The workspace at ``folder`` opened again (``load_workspace``, ``init_workspace``,
    an rq worker's next job): if the folder this process kept for that path is no longer
    the one there (removed, or moved away, and perhaps made again), the process goes on
    from the folder there now. The kept descriptor's number is pointed at it (``dup2``):
    no number is freed while another thread may be resolving from it, and none is left
    open per folder made again. Not while this process holds a lock in the old folder
    (``pin``): what is written under a lock goes beside that lock."""
    anchor = os.path.abspath(folder)
    kept = _ANCHORS.get(anchor)
    if kept is None:
        return
    try:
        now, was = os.stat(anchor), os.fstat(kept)
    except OSError:
        return  # nothing there: the load says so
    if (now.st_dev, now.st_ino) == (was.st_dev, was.st_ino):
        return
    with _FORGETTING:
        if _PINNED.get(anchor) or _ANCHORS.get(anchor) != kept:
            return
        fresh = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        try:
            os.dup2(fresh, kept, inheritable=False)
        finally:
            os.close(fresh)


def pin(path: PathArg) -> str:
    """Keep the workspace folder that holds ``path`` (a lock file) while the lock is
    held: the process does not go on in a new folder made at the same path meanwhile
    (``renew``), so what is written under a lock is written beside it. The caller
    checks, once pinned, that its lock file is the one at the path (``storage.lock``).
    Returns the key ``unpin`` takes."""
    anchor = _split(path)[0]
    with _FORGETTING:
        _PINNED[anchor] = _PINNED.get(anchor, 0) + 1
    return anchor


def unpin(key: str) -> None:
    """One ``pin`` let go."""
    with _FORGETTING:
        left = _PINNED.pop(key, 0) - 1
        if left > 0:
            _PINNED[key] = left


def _shown(anchor: str, parts: list[str], upto: int) -> str:
    return os.path.join(anchor, *parts[: upto + 1])


def _refuse(anchor: str, parts: list[str], index: int, dir_fd: int, exc: OSError) -> None:
    """Raise ``PlantedLink`` when the component ``index`` is a link (or, for a folder,
    anything but a folder); else let ``exc`` go on."""
    try:
        st = os.lstat(parts[index], dir_fd=dir_fd)
    except OSError:
        return
    where = _shown(anchor, parts, index)
    if stat_mod.S_ISLNK(st.st_mode):
        raise PlantedLink(where, "a symbolic link") from None
    if exc.errno == errno.ENOTDIR and not stat_mod.S_ISDIR(st.st_mode):
        raise PlantedLink(where, "a file where a folder belongs") from None


class folder_of:  # used as a function: ``with folder_of(path) as (dir_fd, name)``
    """``(dir_fd, name)``: the open folder that holds ``path``'s last component, walked
    without following a link, and that component's name. ``create``: make missing
    folders on the way, each 0700. (A class, not a generator: it is entered about 300
    times a run, and a generator-based context manager costs three times as much.)"""

    __slots__ = ("fd", "name")

    def __init__(self, path: PathArg, *, create: bool = False) -> None:
        anchor, parts = _split(path)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "not a state path", os.fspath(path))
        if create and parts[0] != STATE_DIR_NAME:
            # a file outside the state folder (a plugin's own data, such as helpdesk/tickets.json):
            # its folders are the user's own path, made as any program would make them
            os.makedirs(anchor, exist_ok=True)
        self.fd = _walk_to(anchor, parts, len(parts) - 1, create)
        self.name = parts[-1]

    def __enter__(self) -> tuple[int, str]:
        return self.fd, self.name

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _walk_to(anchor: str, parts: list[str], upto: int, create: bool) -> int:
    """A descriptor of the folder ``anchor/parts[:upto]``, no component followed
    through a link: one ``openat2`` where it is loaded and answers, else the walk. A
    folder that is not there (and is not to be made) is reported at once, as a missing
    file is (``MISSING``): the walk would only meet the same ``FileNotFoundError``, a
    call per folder later (a batch's commits unlink a run's heartbeat and note files in
    folders that short runs never make: twelve calls a run)."""
    if upto:
        found = _fast_open(anchor, parts, upto, _DIR_FLAGS)
        if found >= 0:
            return found
        if found == MISSING and not create:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), _shown(anchor, parts, upto - 1))
    fd = _anchor(anchor, parts)
    for index in range(upto):
        fd = _step(fd, anchor, parts, index, parts[index], create)  # closes fd, also when it raises
    return fd


def _fast_open(anchor: str, parts: list[str], upto: int, flags: int, mode: int = 0) -> int:
    """``anchor/parts[:upto]`` opened with ``flags`` in one ``openat2`` call that follows
    no link at any component; below 0 when that call is not loaded (yet) or refuses:
    ``MISSING`` when a component is missing and none before it is a link, else -1 or
    another negative errno (the caller then walks, which names the component or makes
    what is missing)."""
    resolve = _openat2 if _openat2 is not None else _count_walk()
    if not resolve:
        return -1
    base = _kept_anchor(anchor, parts)
    if base is None:
        return -1
    return resolve(base, _relative(parts, upto), flags, mode)


_RELATIVE: dict[tuple[int, int], tuple[list[str], bytes]] = {}


def _relative(parts: list[str], upto: int) -> bytes:
    """``parts[:upto]`` joined and encoded, as ``openat2`` takes it: kept per list of
    parts (``_split`` gives the same list for the same path; the list is kept with its
    answer, so its id names no other list meanwhile)."""
    key = (id(parts), upto)
    kept = _RELATIVE.get(key)
    if kept is not None and kept[0] is parts:
        return kept[1]
    rel = os.fsencode("/".join(parts[:upto]))
    if len(_RELATIVE) >= _MAX_SPLIT:
        _RELATIVE.clear()
    _RELATIVE[key] = (parts, rel)
    return rel


FAST_AFTER = 600  # walks before openat2 is loaded: about two runs' worth
_walks = 0
#: once loaded: the call, or a stub that declines
_openat2: Callable[[int, str | bytes, int, int], int] | None = None


def _count_walk() -> Callable[[int, str | bytes, int, int], int] | None:
    global _walks, _openat2
    _walks += 1
    if _walks < FAST_AFTER:
        return None
    _openat2 = _load_openat2()
    return _openat2


def _declined(dir_fd: int, rel: str | bytes, flags: int = 0, mode: int = 0) -> int:
    return -1


_RESOLVE = 0x02 | 0x04 | 0x08  # RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH


def _load_openat2() -> Callable[[int, str | bytes, int, int], int]:
    """``call(dir_fd, relative path, flags, mode) -> fd or -1``: ``openat2`` with
    ``RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH``; a stub that always
    declines where the kernel or the platform has no such call (the walk then does all).

    Called through ``ctypes.PyDLL``, which keeps Python's lock (the GIL) for the call: it
    resolves a path in a few microseconds, and a call that lets the lock go hands it to
    another thread of a batch, which this thread must then wait to get back (about 90
    calls a run; a ``--jobs 4`` batch made 10 % fewer context switches and took 4.6 %
    less time with it kept). One that creates a file lets the lock go, as ``os.open``
    does: the kernel may search a while for a free inode (on this project's ext4 without
    a journal, past every inode freed in the last minute), and other threads can run
    meanwhile (alternated batches: faster in 12 of 16 pairs, 2.88 s against 3.03 s)."""
    if not sys.platform.startswith("linux"):
        return _declined
    try:
        import ctypes

        syscall = ctypes.PyDLL(None, use_errno=True).syscall
        syscall.restype = ctypes.c_long
        creating = ctypes.CDLL(None, use_errno=True).syscall  # lets the GIL go
        creating.restype = ctypes.c_long
        hows: dict[tuple[int, int], Any] = {}  # struct open_how by (flags, mode): a few kinds of open

        def how(flags: int, mode: int) -> Any:
            found = hows.get((flags, mode))
            if found is None:
                found = hows[(flags, mode)] = ctypes.byref((ctypes.c_uint64 * 3)(flags, mode, _RESOLVE))
            return found

        root = os.open(os.sep, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        try:
            probe = syscall(_SYS_OPENAT2, root, b".", how(_DIR_FLAGS, 0), 24)
        finally:
            os.close(root)
    except (OSError, AttributeError):
        return _declined
    if probe < 0:  # ENOSYS (an older kernel), EPERM (a seccomp filter) ...
        return _declined
    os.close(probe)

    def call(dir_fd: int, rel: str | bytes, flags: int = _DIR_FLAGS, mode: int = 0) -> int:
        fd: int = (creating if flags & os.O_CREAT else syscall)(
            _SYS_OPENAT2,
            dir_fd,
            rel if type(rel) is bytes else os.fsencode(rel),
            hows.get((flags, mode)) or how(flags, mode),
            24,
        )
        return fd if fd >= 0 else -(ctypes.get_errno() or 1)

    return call


_SYS_OPENAT2 = 437  # the same number on every Linux architecture

#: what ``openat2`` answers when a component is missing: the kernel resolves the path in
#: order, so a link before the missing component would have been refused first (ELOOP),
#: and the walk would end in the same ``FileNotFoundError``; it is raised at once
MISSING = -errno.ENOENT
_O_PATH = getattr(os, "O_PATH", 0)  # an lstat opens the entry itself (without O_PATH: it walks)


def _missing(path: PathArg) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), _full(path))


def _full(path: PathArg) -> str:
    """What an error of the last component names: the state file, not a bare name (an
    error a caller meets as an ``OSError`` is then known for a state file's). A missing
    file is met about 30 times a run: an absolute path is named as it is."""
    text = os.fspath(path)
    return text if text.startswith(os.sep) else os.path.abspath(text)


def _step(fd: int, anchor: str, parts: list[str], index: int, part: str, create: bool) -> int:
    """Open folder ``part`` inside ``fd`` (closing ``fd``), without following a link."""
    try:
        try:
            new = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o700, dir_fd=fd)
            new = os.open(part, _DIR_FLAGS, dir_fd=fd)
            with contextlib.suppress(OSError):
                os.fchmod(new, 0o700)  # whatever the umask
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST):
            try:
                _refuse(anchor, parts, index, fd, exc)
            except BaseException:
                os.close(fd)
                raise
        os.close(fd)
        if exc.filename is not None:
            exc.filename = _shown(anchor, parts, index)
        raise
    os.close(fd)
    return new


def open_dir(path: PathArg, *, create: bool = False) -> int:
    """A descriptor of the folder ``path`` itself (the caller closes it)."""
    anchor, parts = _split(path)
    return _walk_to(anchor, parts, len(parts), create)


def _open_at(dir_fd: int, name: str, flags: int, mode: int, path: PathArg) -> int:
    try:
        return os.open(name, flags | _NOFOLLOW, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EEXIST, errno.ENXIO, errno.EMLINK):
            _check_entry(dir_fd, name, path)
        exc.filename = _full(path)
        raise


def _check_entry(dir_fd: int, name: str, path: PathArg) -> None:
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except OSError:
        return
    if stat_mod.S_ISLNK(st.st_mode):
        raise PlantedLink(os.fspath(path), "a symbolic link") from None
    if not stat_mod.S_ISREG(st.st_mode) and not stat_mod.S_ISDIR(st.st_mode):
        raise PlantedLink(os.fspath(path), "not a plain file") from None


def _plain(fd: int, path: PathArg, *, writing: bool) -> os.stat_result:
    """The open file's stat, if it is a plain file (and, to be written in place, not a
    hard link shared with another name); else ``PlantedLink`` (fd closed)."""
    st = os.fstat(fd)
    problem = None
    if not stat_mod.S_ISREG(st.st_mode):
        problem = "not a plain file"
    elif writing and st.st_nlink > 1:
        problem = "a hard link to a file elsewhere"
    if problem:
        os.close(fd)
        raise PlantedLink(os.fspath(path), problem)
    return st


def open_file(path: PathArg, flags: int, mode: int = 0o600, *, create_parents: bool = False) -> int:
    """``os.open`` for a state file (the caller closes the descriptor): never through a
    link, only a plain file; one opened for writing must have no other name. (It is
    opened ``O_NONBLOCK``, so that a FIFO planted there never hangs the open; on the
    plain file it must be, that flag changes nothing.)"""
    return _opened(path, flags, mode, create_parents)[0]


def _opened(path: PathArg, flags: int, mode: int, create_parents: bool) -> tuple[int, os.stat_result]:
    # O_TRUNC would empty the file before it is seen: a hard link planted at the name
    # (another name of a file elsewhere) was truncated, then refused. It is opened as
    # it is, checked, and only then emptied.
    truncate = bool(flags & os.O_TRUNC)
    flags &= ~os.O_TRUNC
    anchor, parts = _split(path)
    fast_mode = mode if flags & os.O_CREAT else 0  # openat2 refuses a mode it would not use
    fd = _fast_open(anchor, parts, len(parts), flags | _NOFOLLOW, fast_mode) if parts else -1
    if fd == MISSING and not (flags & os.O_CREAT or create_parents):
        raise _missing(path)
    if fd < 0:
        with folder_of(path, create=create_parents) as (dir_fd, name):
            fd = _open_at(dir_fd, name, flags, mode, path)
    return fd, _checked(fd, path, flags, truncate)


def _checked(fd: int, path: PathArg, flags: int, truncate: bool) -> os.stat_result:
    """``_plain`` for a file just opened, then emptied if it was asked for (``O_TRUNC``
    taken out of ``flags``); ``fd`` closed if either fails."""
    st = _plain(fd, path, writing=bool(flags & (os.O_WRONLY | os.O_RDWR)))
    if truncate and st.st_size:
        try:
            os.ftruncate(fd, 0)
        except BaseException:
            os.close(fd)
            raise
    return st


def open_file_at(dir_fd: int, name: str, flags: int, mode: int = 0o600, *, path: PathArg) -> int:
    """``open_file`` inside a folder already opened through ``open_dir``; ``path`` is
    what a refusal names."""
    truncate = bool(flags & os.O_TRUNC)
    flags &= ~os.O_TRUNC
    fd = _open_at(dir_fd, name, flags, mode, path)
    _checked(fd, path, flags, truncate)
    return fd


def create_new(path: PathArg, mode: int = 0o600, *, create_parents: bool = True) -> int:
    """A new, empty state file opened for writing (a temp file): whatever was left at
    the name before (a killed writer's temp file, a planted link) is removed first,
    never opened."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW  # a new file: plain, whatever NONBLOCK says
    anchor, parts = _split(path)
    fd = _fast_open(anchor, parts, len(parts), flags, mode) if parts else -1
    if fd >= 0:
        return fd
    with folder_of(path, create=create_parents) as (dir_fd, name):
        try:
            fd = os.open(name, flags, mode, dir_fd=dir_fd)
        except FileExistsError:
            os.unlink(name, dir_fd=dir_fd)
            fd = os.open(name, flags, mode, dir_fd=dir_fd)
    return fd


def held_as(path: PathArg, ident: tuple[int, int]) -> bool:
    """Whether every descriptor this process holds on a file named ``path`` is the file
    ``ident`` (device, inode) with no other name. For a file a library opened by name
    after it was checked (SQLite, the search index): a hard link swapped in between the
    check and that open, then swapped back, is found here, before anything is written."""
    if not os.path.isdir("/proc/self/fd"):
        return True
    target = os.path.realpath(path)
    # a file swapped in and then replaced at the name reads "NAME (deleted)"
    names = (target, f"{target} (deleted)")
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") not in names:
                continue
            st = os.stat(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) != ident or st.st_nlink > 1:
            return False
    return True


def read_bytes(path: PathArg) -> bytes:
    """``Path.read_bytes`` for a state file."""
    fd, st = _opened(path, os.O_RDONLY, 0o600, False)
    try:
        chunks = []
        got = 0
        want = max(st.st_size + 1, 4096)  # one read for the whole file and a byte more
        while chunk := os.read(fd, want):
            chunks.append(chunk)
            got += len(chunk)
            if len(chunk) < want and got == st.st_size:
                break  # the size it had when opened, and a short read: its end (no read more)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: PathArg, errors: str = "strict") -> str:
    return read_bytes(path).decode("utf-8", errors)


def touch(path: PathArg, mode: int = 0o600, *, create_parents: bool = True) -> None:
    """Create the file if missing, make it ``mode`` and set its time to now (a
    heartbeat, a note)."""
    fd = open_file(path, os.O_WRONLY | os.O_CREAT, mode, create_parents=create_parents)
    try:
        if os.fstat(fd).st_mode & 0o777 != mode:
            os.fchmod(fd, mode)
        os.utime(fd)
    finally:
        os.close(fd)


def replace(src: PathArg, dst: PathArg) -> None:
    """``os.replace``: renames the entries themselves, never what a link points to."""
    _split(src)  # the same rules as for ``dst`` (the shortcut below opens only its folder)
    if os.path.dirname(os.fspath(src)) == os.path.dirname(os.fspath(dst)):  # a temp file beside its file
        with folder_of(dst) as (dir_fd, dst_name):
            os.replace(os.path.basename(os.fspath(src)), dst_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return
    with folder_of(src) as (src_fd, src_name), folder_of(dst) as (dst_fd, dst_name):
        os.replace(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)


#: ``renameat2``'s flag that swaps two names (Linux 3.15 and later)
_RENAME_EXCHANGE = 2
#: once loaded: the call, or None where the system has none (``exchange`` then declines)
_renameat2: Any = None
_RENAMEAT2_LOADED = False


def _load_renameat2() -> Any:
    global _renameat2, _RENAMEAT2_LOADED
    if not _RENAMEAT2_LOADED:
        _RENAMEAT2_LOADED = True
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
            except (OSError, AttributeError):  # a C library without it
                _renameat2 = None
    return _renameat2


def exchange(src: PathArg, dst: PathArg) -> bool:
    """Swap the files named ``src`` and ``dst`` in one step (``renameat2`` with
    ``RENAME_EXCHANGE``), never through a link: ``dst`` then holds what ``src`` held,
    and ``src`` the old ``dst``. False, with nothing changed, when ``dst`` does not
    exist or the system cannot swap (the caller then renames); a missing ``src`` is
    ``FileNotFoundError``."""
    call = _load_renameat2()
    if call is None:
        return False
    import ctypes

    with folder_of(src) as (src_fd, src_name), folder_of(dst) as (dst_fd, dst_name):
        if call(src_fd, os.fsencode(src_name), dst_fd, os.fsencode(dst_name), _RENAME_EXCHANGE) == 0:
            return True
        code = ctypes.get_errno()
        if code == errno.ENOENT:
            if not exists_at(src_fd, src_name, path=src):
                raise FileNotFoundError(code, os.strerror(code), _full(src))
            return False  # no dst: a first write
        if code in (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.EOPNOTSUPP):
            global _renameat2
            _renameat2 = None  # a file system or a kernel that cannot swap: not asked again
            return False
        raise OSError(code, os.strerror(code), _full(dst))


def unlink(path: PathArg, *, missing_ok: bool = False) -> None:
    """Remove a state file (a link there is removed itself, never its target)."""
    try:
        with folder_of(path) as (dir_fd, name):
            os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        if not missing_ok:
            raise


def rmdir(path: PathArg) -> None:
    """Remove an empty state folder (a link there is refused: ``NotADirectoryError``)."""
    with folder_of(path) as (dir_fd, name):
        os.rmdir(name, dir_fd=dir_fd)


def mkdir(path: PathArg, mode: int = 0o700, *, parents: bool = False, exist_ok: bool = False) -> None:
    """Make a private folder (0700 whatever the umask); an existing link there is
    damage, never taken for the folder."""
    with folder_of(path, create=parents) as (dir_fd, name):
        try:
            os.mkdir(name, mode, dir_fd=dir_fd)
        except FileExistsError:
            st = os.lstat(name, dir_fd=dir_fd)
            if not stat_mod.S_ISDIR(st.st_mode):
                _check_entry(dir_fd, name, path)
            if not exist_ok:
                raise
            return
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)


def chmod(path: PathArg, mode: int) -> None:
    """Change a state file's or folder's mode through a descriptor opened without
    following a link (a hard-linked file is refused: its other name would change too)."""
    with folder_of(path) as (dir_fd, name):
        st = os.lstat(name, dir_fd=dir_fd)
        if stat_mod.S_ISDIR(st.st_mode):
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        else:
            fd = _open_at(dir_fd, name, os.O_RDONLY, 0, path)
            _plain(fd, path, writing=True)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def is_hard_link(path: PathArg) -> bool:
    """Whether ``path`` is a plain file with another name too (a backup of hard links)."""
    try:
        st = lstat(path)
    except (OSError, PlantedLink):
        return False
    return stat_mod.S_ISREG(st.st_mode) and st.st_nlink > 1


def lstat(path: PathArg) -> os.stat_result:
    """``os.lstat`` through the guarded folders (a link is reported as damage). Where
    ``openat2`` is loaded, the entry itself is opened (``O_PATH | O_NOFOLLOW``: a link at
    the end is opened as the link, never followed) and its descriptor's stat read."""
    anchor, parts = _split(path)
    fd = (
        _fast_open(anchor, parts, len(parts), _O_PATH | os.O_NOFOLLOW | _CLOEXEC) if parts and _O_PATH else -1
    )
    if fd >= 0:
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
    elif fd == MISSING:
        raise _missing(path)
    else:
        with folder_of(path) as (dir_fd, name):
            try:
                st = os.lstat(name, dir_fd=dir_fd)
            except OSError as exc:
                exc.filename = _full(path)
                raise
    if stat_mod.S_ISLNK(st.st_mode):
        raise PlantedLink(os.fspath(path), "a symbolic link")
    return st


def exists(path: PathArg) -> bool:
    try:
        lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def exists_at(dir_fd: int, name: str, *, path: PathArg) -> bool:
    """``exists`` inside a folder opened through ``open_dir`` (``path``: what a link,
    reported as damage, is named by)."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat_mod.S_ISLNK(st.st_mode):
        raise PlantedLink(os.fspath(path), "a symbolic link")
    return True


def is_dir(path: PathArg) -> bool:
    try:
        return stat_mod.S_ISDIR(lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


def is_file(path: PathArg) -> bool:
    try:
        return stat_mod.S_ISREG(lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


def listdir(path: PathArg) -> list[str]:
    """``os.listdir`` of a state folder."""
    fd = open_dir(path)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def listdir_at(dir_fd: int) -> list[str]:
    """``os.listdir`` of a folder opened through ``open_dir``."""
    return os.listdir(dir_fd)


def entries_at(dir_fd: int) -> list[tuple[str, os.stat_result]]:
    """(name, its own ``lstat``) of each entry of a folder opened through ``open_dir``
    (nothing followed; an entry gone meanwhile is left out)."""
    out = []
    with os.scandir(dir_fd) as found:
        for entry in found:
            try:
                out.append((entry.name, entry.stat(follow_symlinks=False)))
            except OSError:
                continue
    return out


def glob(folder: PathArg, pattern: str) -> list[Path]:
    """The entries of ``folder`` whose names match ``pattern`` (one level, no ``/``);
    none when the folder is missing."""
    try:
        names = listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [Path(folder) / n for n in sorted(names) if fnmatch.fnmatchcase(n, pattern)]


def walk_files(folder: PathArg, pattern: str = "*", *, dirs: bool = False) -> list[Path]:
    """Every file below ``folder`` whose name matches ``pattern`` (``Path.rglob``),
    never descending through a link; ``dirs``: the folders too (each before what
    it holds)."""
    out: list[Path] = []
    try:
        fd = open_dir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return out
    try:
        _walk(fd, Path(folder), pattern, out, dirs)
    finally:
        os.close(fd)
    return out


def _walk(fd: int, where: Path, pattern: str, out: list[Path], dirs: bool) -> None:
    with os.scandir(fd) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                if dirs and fnmatch.fnmatchcase(entry.name, pattern):
                    out.append(where / entry.name)
                sub = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                try:
                    _walk(sub, where / entry.name, pattern, out, dirs)
                finally:
                    os.close(sub)
            elif fnmatch.fnmatchcase(entry.name, pattern):
                out.append(where / entry.name)


def rmtree(path: PathArg, *, ignore_errors: bool = False) -> None:
    """``shutil.rmtree`` of a state folder: through descriptors, so a link inside is
    removed itself and nothing outside the folder is touched."""
    import shutil  # here: few commands remove folders

    try:
        with folder_of(path) as (dir_fd, name):
            st = os.lstat(name, dir_fd=dir_fd)
            if stat_mod.S_ISLNK(st.st_mode) or not stat_mod.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=dir_fd)
                return
            shutil.rmtree(name, dir_fd=dir_fd)
    except OSError:
        if not ignore_errors:
            raise
