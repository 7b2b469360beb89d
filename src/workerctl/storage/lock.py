"""The cross-process lock around every read-modify-write of workspace state.

An exclusive ``flock`` held for the whole change: concurrent cron jobs queue
in the kernel instead of losing each other's writes, and a waiter that gives
up says which process holds the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from types import FrameType

from workerctl.errors import LockTimeout, PlantedLink

DEFAULT_LOCK_TIMEOUT = 10.0
MAX_LOCK_TIMEOUT = 1e9  # the bound workerctl.yaml's lock_timeout has too (about 31 years)
LOCK_TIMEOUT_ENV = "WORKERCTL_LOCK_TIMEOUT"
#: benchmarks only: a file to which each release appends how long the lock was held
#: ("SECONDS PID COMMAND"), to measure the longest hold of a command (engine_bench)
HOLD_LOG_ENV = "WORKERCTL_BENCH_LOCK_LOG"


def resolve_timeout(setting: float | None) -> tuple[float, str]:
    """The lock timeout and where it came from: the environment variable wins over
    the workspace's ``lock_timeout``, which wins over the default (the usual
    precedence, so a cron job can shorten the wait without editing the workspace)."""
    from workerctl.errors import UsageError

    raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if raw:
        try:
            if not raw.isascii():  # "٣" is 3 to float(); digits.py reads ASCII digits only
                raise ValueError(raw)
            value = float(raw)
            if value != value:  # "nan": no number (it would wait for ever, silently)
                raise ValueError(raw)
        except ValueError:
            raise UsageError(
                f"{LOCK_TIMEOUT_ENV}={raw!r} is not a number of seconds",
                hint=f"set {LOCK_TIMEOUT_ENV} to a number such as 2.5",
            ) from None
        if value < 0:
            raise UsageError(
                f"{LOCK_TIMEOUT_ENV}={raw!r} is negative", hint=f"set {LOCK_TIMEOUT_ENV} to 0 or more seconds"
            )
        if value >= MAX_LOCK_TIMEOUT:  # "inf", "1e400": no timer or clock counts that far
            raise UsageError(
                f"{LOCK_TIMEOUT_ENV}={raw!r} is too long to wait",
                hint=f"set {LOCK_TIMEOUT_ENV} to fewer than {MAX_LOCK_TIMEOUT:.0e} seconds",
            )
        return value, f"{LOCK_TIMEOUT_ENV}={raw}"
    if setting is not None:
        return float(setting), "lock_timeout in workerctl.yaml"
    return DEFAULT_LOCK_TIMEOUT, "the default"


def hostname() -> str:
    """The host name, as socket.gethostname() gives it, without importing socket."""
    return os.uname().nodename


HOLDER_BYTES = 240  # the holder note is padded to a fixed size: no truncate per lock


#: how long one process may keep the lock across hand-overs between its own threads: each
#: chain ends in one write of every file its commits staged and one release, so a batch
#: pays those once per chain (0.05 s: about 60 chains in a 200-run batch, 0.2 s: about 15,
#: and 10 % less time); another process waits at most this much longer for the lock
HANDOVER_SECONDS = 0.2
#: how long a release waits for another of a batch's threads to ask for the lock before
#: it writes the chain's staged files and lets the flock go (``FileLock.linger``): a
#: batch's next commit is usually a few milliseconds away, and without the wait half of
#: a 200-run batch's chains ended after a few commits, each in a write of every shared
#: file (about 85 chains; with it about 15, most ended by ``HANDOVER_SECONDS``)
LINGER_SECONDS = 0.01
#: how long a command waits for the lock to repair what it reads (indexes a crash cut,
#: a search index behind the history) before it answers from what is on disk instead:
#: a holder keeps the lock for milliseconds (a commit, a hand-over chain of at most
#: ``HANDOVER_SECONDS``) or at most about a second (recovery, a reindex's swap), so
#: only a stopped or stuck holder makes a reader give up
REPAIR_WAIT = 2.0


class FileLock:
    """An exclusive ``flock`` lock, re-entrant within one process.

    The holder writes its pid, host and command into the lock file so that a
    waiter who gives up can say who holds it.

    Group commit: work a holder leaves for later (``before_release``: the history
    stages its shared files while other threads wait) is done just before the
    ``flock`` is released. Until then, a thread of the same process waiting for
    the lock is handed it without the ``flock`` being let go, for at most
    ``HANDOVER_SECONDS`` in all, so that the threads of a batch write shared files
    once per hand-over chain instead of once per change, and other processes wait
    at most that much longer. While threads take turns (``linger``), a release first
    waits a moment for the next thread to ask.
    """

    def __init__(self, path: Path, timeout: float | None = None) -> None:
        self.path = path
        self.timeout, self.timeout_source = resolve_timeout(timeout)
        self._fd: int | None = None
        self._pinned = ""  # the key of its workspace folder's pin while the flock is held
        self._depth = 0
        self._thread_lock = threading.RLock()
        self._count_guard = threading.Lock()
        self._waiting = 0  # threads of this process waiting for the lock
        self._asked = threading.Event()  # set by a thread that starts waiting (``_asked_soon``)
        self._linger = 0.0  # ``linger``: how long a release waits for the next thread
        self._since = 0.0  # when this process took the flock
        self._before_release: dict[object, Callable[[], None]] = {}
        self._gave_up_until = 0.0  # a bounded wait timed out: later ones only try, till then
        self._bound = threading.local()  # ``bounded``: this thread's bound on every wait

    @property
    def held(self) -> bool:
        """Whether this thread holds the lock (in this process)."""
        return self._depth > 0 and self._fd is not None and _owns(self._thread_lock)

    @property
    def waited_for(self) -> bool:
        """Whether other threads of this process wait for the lock now, or take turns
        with this one (``linger``): what a holder leaves for the release is then likely
        to be done once for several holds."""
        return self._waiting > 0 or self._linger > 0

    @contextlib.contextmanager
    def linger(self, seconds: float = LINGER_SECONDS) -> Iterator[None]:
        """Inside the block, threads of this process take turns with the lock (a batch):
        a release that would write what holders left for it (``before_release``) and
        let the ``flock`` go waits first, up to ``seconds``, for another thread to ask
        for the lock, and hands it over if one does. The chain's bound stays
        ``HANDOVER_SECONDS``, so another process waits no longer than before; the wait
        is the releasing thread's alone (the other threads run meanwhile)."""
        previous, self._linger = self._linger, seconds
        try:
            yield
        finally:
            self._linger = previous

    def _asked_soon(self) -> bool:
        """Whether another thread waits for the lock, or asks for it within ``linger``'s
        wait (never past the chain's bound)."""
        if self._waiting:
            return True
        wait = min(self._linger, HANDOVER_SECONDS - (time.monotonic() - self._since))
        if wait <= 0:
            return False
        self._asked.clear()
        if not self._waiting:  # one that started waiting before the clear is counted
            self._asked.wait(wait)
        return self._waiting > 0

    def before_release(self, key: object, work: Callable[[], None]) -> None:
        """Run ``work`` (once per ``key``) before the ``flock`` is next released; only
        while this thread holds the lock. Whatever ``work`` raises is raised by the
        release, after the ``flock`` has been let go."""
        if not self.held:
            raise RuntimeError(f"{self.path}: before_release without holding the lock")
        self._before_release.setdefault(key, work)

    def __enter__(self) -> FileLock:
        bound = getattr(self._bound, "seconds", None)
        if bound is None:
            self._enter(self.timeout, self.timeout_source, threads_bounded=False)
        else:
            self._enter_bounded(bound)
        return self

    def within(self, seconds: float = REPAIR_WAIT) -> _Within:
        """The lock waited for at most ``seconds`` (never longer than its timeout):
        for a repair a command makes on the way to reading, which answers from disk
        instead when the wait is over (``LockTimeout``). Nested in this thread's own
        hold, it is taken at once, as usual. For ``seconds`` after such a wait timed
        out, the next ones only try (a command that meets a stopped holder waits once,
        not once per repair it would make)."""
        return _Within(self, min(seconds, self.timeout))

    @contextlib.contextmanager
    def bounded(self, seconds: float = REPAIR_WAIT) -> Iterator[None]:
        """Inside the block, every hold of this lock in this thread is ``within``'s:
        for code that repairs on the way to reading and holds the lock through
        layers that do not know it (the crash sweep, a remote executor's refresh)."""
        previous = getattr(self._bound, "seconds", None)
        self._bound.seconds = min(seconds, self.timeout, previous if previous is not None else seconds)
        try:
            yield
        finally:
            self._bound.seconds = previous

    def _enter_bounded(self, seconds: float) -> None:
        wait = seconds if time.monotonic() >= self._gave_up_until else 0.0
        try:
            self._enter(wait, "a reader's wait: it answers from disk instead", threads_bounded=True)
        except LockTimeout:
            if wait:
                self._gave_up_until = time.monotonic() + seconds
            raise

    def _enter(self, timeout: float, source: str, *, threads_bounded: bool) -> None:
        if not self._thread_lock.acquire(blocking=False):
            with self._count_guard:
                self._waiting += 1
            self._asked.set()
            try:
                # a batch's threads wait for each other without a bound, as before; a
                # bounded wait (``within``) is bounded here too
                got = self._thread_lock.acquire(timeout=timeout if threads_bounded else -1)
            finally:
                with self._count_guard:
                    self._waiting -= 1
            if not got:
                raise self._timed_out(timeout, source, "another thread of this process")
        if self._depth == 0 and self._fd is None:  # else: handed over, flock held
            try:
                self._acquire(timeout, source)
            except BaseException:
                self._thread_lock.release()
                raise
            self._since = time.monotonic()
        self._depth += 1

    def _timed_out(self, timeout: float, source: str, holder: str) -> LockTimeout:
        return LockTimeout(
            f"{self.path}: could not get the lock within {timeout:g}s ({source}); held by {holder}",
            hint=f"wait for that command to finish, or raise {LOCK_TIMEOUT_ENV} "
            "(or lock_timeout in workerctl.yaml)",
        )

    def __exit__(self, *exc: object) -> None:
        if self._depth == 1 and self._before_release:
            if time.monotonic() - self._since < HANDOVER_SECONDS and self._asked_soon():
                self._depth = 0  # handed over: the next thread finds the flock held
                self._thread_lock.release()
                return
            try:
                self._run_before_release()
            finally:
                self._release()
            return
        self._depth -= 1
        if self._depth == 0:
            self._release(counted=True)
        else:
            self._thread_lock.release()

    def _run_before_release(self) -> None:
        problem: BaseException | None = None
        while self._before_release:  # work may leave more work (still holding the lock)
            key = next(iter(self._before_release))
            work = self._before_release.pop(key)
            try:
                work()
            except BaseException as exc:
                problem = problem or exc
        if problem is not None:
            raise problem

    def _release(self, counted: bool = False) -> None:
        if not counted:
            self._depth = 0
        fd, self._fd = self._fd, None
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
                finally:
                    from workerctl.storage import fs

                    fs.unpin(self._pinned)
                if os.environ.get(HOLD_LOG_ENV):
                    _log_hold(time.monotonic() - self._since, self.path)
        finally:
            self._thread_lock.release()

    def _acquire(self, timeout: float, source: str) -> None:
        from workerctl.errors import StorageError
        from workerctl.storage import fs

        for _ in range(3):
            fd = self._open()
            self._wait(fd, timeout, source)  # closes fd when it raises
            # held: its workspace folder is kept from now until it is let go, and the
            # file is checked to be the one at its path (the workspace may have been
            # opened again elsewhere in this process, or a state folder made again, while
            # it was opened or waited for; a wait never keeps the process from that)
            pinned = fs.pin(self.path)
            try:
                if self._at_its_path(fd):
                    self._note_holder(fd)  # closes fd when it raises
                    self._fd, self._pinned = fd, pinned
                    return
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            except BaseException:
                fs.unpin(pinned)
                raise
            fs.unpin(pinned)  # that one's, then
        gone = FileNotFoundError(errno.ENOENT, "another file took its name as it was taken, three times")
        raise StorageError(self.path, gone, "open the lock file")

    def _at_its_path(self, fd: int) -> bool:
        """Whether the lock file opened is the one at its path now: what is written
        under the lock then goes beside it (``storage.fs.pin``)."""
        from workerctl.storage import fs

        try:
            now, opened = fs.lstat(self.path), os.fstat(fd)
        except (OSError, PlantedLink):
            return False
        return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)

    def _open(self) -> int:
        from workerctl.errors import StorageError
        from workerctl.storage import fs
        from workerctl.storage.atomic import PRIVATE_FILE

        try:
            try:  # never through a link, never a file with another name (see storage.fs)
                fd = fs.open_file(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE, create_parents=True)
            except OSError as exc:
                if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise
                # a read-only mount or no write permission: flock works on a file open
                # for reading, so a reader still waits for writers (it writes nothing,
                # its mode included: a workspace made read-only stays as it was)
                return fs.open_file(self.path, os.O_RDONLY)
            except PlantedLink:
                if not fs.is_hard_link(self.path):
                    raise  # a symbolic link, a FIFO: refused
                # a second name made by a backup of hard links (cp -al, rsnapshot): the
                # flock is taken on it as it is, read-only, and the holder note, the one
                # thing written in place, is not written (it would be the backup's too)
                return fs.open_file(self.path, os.O_RDONLY)
            if os.fstat(fd).st_mode & 0o777 != PRIVATE_FILE:
                with contextlib.suppress(OSError):  # a umask such as 0277, an old open file
                    os.fchmod(fd, PRIVATE_FILE)
            return fd
        except OSError as exc:
            raise StorageError(self.path, exc, "open the lock file") from None

    def _wait(self, fd: int, timeout: float, source: str) -> None:
        try:
            # the timer-bounded kernel wait needs SIGALRM: only in the main thread, and
            # only when nobody else's timer is running (RQ's job timeout uses it)
            blocking = _in_main_thread() and signal.getitimer(signal.ITIMER_REAL)[0] == 0
            got = self._wait_blocking(fd, timeout) if blocking else self._wait_polling(fd, timeout)
        except BaseException:
            os.close(fd)
            raise
        if not got:
            holder = self.holder()
            os.close(fd)
            raise self._timed_out(timeout, source, holder)

    def _note_holder(self, fd: int) -> None:
        from workerctl.errors import StorageError

        info = f"pid {os.getpid()} on {hostname()} ({_one_line(' '.join(sys.argv[:4]))})"
        try:
            os.pwrite(fd, info.encode("utf-8", "backslashreplace")[:HOLDER_BYTES].ljust(HOLDER_BYTES), 0)
        except OSError as exc:  # a full disk: the note is a courtesy, the lock is held
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EBADF):  # EBADF: opened read-only
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                raise StorageError(self.path, exc, "write the lock holder note") from None

    def _wait_blocking(self, fd: int, timeout: float) -> bool:
        """Wait in the kernel's queue (fair to every waiter), bounded by a timer signal."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.001))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return True
        except _LockWaitOver:
            # the timer may have fired just as the lock was granted: ask once more
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def _wait_polling(self, fd: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def holder(self) -> str:
        """Who holds the lock, on one line: the note the last workerctl holder wrote,
        unless the kernel names another process (one that is not workerctl, such as
        the ``flock`` tool or a backup script, writes no note). The kernel names the
        process that took the lock; when that one has exited, a child that inherited
        its open file holds it, and those are named instead."""
        from workerctl.errors import HistoryError
        from workerctl.storage import fs

        try:
            note = _one_line(fs.read_text(self.path, errors="replace").strip())
        except (OSError, HistoryError):
            note = ""
        pid, queued = _flock_pids(self.path)
        if pid is None:
            if note.startswith("pid ") and f" on {hostname()} (" in note and os.path.exists("/proc/locks"):
                # nobody on this host holds it now: the holder let go as the wait ended
                return f"a process that has let go of it since (the last note: {note})"
            return note or "an unknown process"  # another host (a network file system)
        if _exited(pid):
            waiting = queued | {os.getpid()}
            heirs = [f"pid {p} ({_command_of(p)})" for p in _openers(self.path) if p not in waiting]
            return f"a process that inherited it from pid {pid}, which has exited: " + (
                ", ".join(heirs) or "not found (run 'fuser' on the lock file)"
            )
        if note.startswith(f"pid {pid} "):
            return note
        return f"pid {pid} on {hostname()} ({_command_of(pid)})"


class _Within:
    """``FileLock.within``'s hold (a class: entered where a plain hold is)."""

    __slots__ = ("lock", "seconds")

    def __init__(self, lock: FileLock, seconds: float) -> None:
        self.lock, self.seconds = lock, seconds

    def __enter__(self) -> FileLock:
        self.lock._enter_bounded(self.seconds)
        return self.lock

    def __exit__(self, *exc: object) -> None:
        self.lock.__exit__(*exc)


def _exited(pid: int) -> bool:
    """Whether ``pid`` names no running process: gone, or a zombie its parent has not
    reaped yet (it still has a /proc entry, and holds no file)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[:1] in (["Z"], ["X"])
    except OSError:
        return True


def _lock_key(path: Path) -> str:
    """The file as /proc/locks names it: device major and minor in hex, then inode."""
    stat = os.lstat(path)
    return f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"


def _flock_pids(path: Path) -> tuple[int | None, set[int]]:
    """(the holder, the waiters) of the flock on ``path``, from Linux's /proc/locks: a
    holder's line reads "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2150001 0 EOF", a waiter's
    the same after "->" (the waiters have the file open too, and are no holder). No
    holder where there is no such file (another system) or it names nobody (a holder on
    another host of a network file system)."""
    holder: int | None = None
    waiters: set[int] = set()
    try:
        key = _lock_key(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            rows = [line.split() for line in locks]
    except (OSError, ValueError):
        return None, waiters
    for fields in rows:
        waiting = len(fields) > 1 and fields[1] == "->"
        f = [fields[0], *fields[2:]] if waiting else fields
        if len(f) > 5 and f[1] == "FLOCK" and f[3] == "WRITE" and f[5] == key and f[4].isdigit():
            if waiting:
                waiters.add(int(f[4]))
            elif holder is None:
                holder = int(f[4])
    return holder, waiters


def _command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().split(b"\0")
    except OSError:
        return "a process that has exited"
    return _one_line(" ".join(w.decode(errors="replace") for w in words[:4] if w)) or "unknown command"


def _openers(path: Path) -> list[int]:
    """The processes that have ``path`` open (those whose files /proc lets this user
    see): the holder among them, and any waiters."""
    try:
        stat = os.stat(path)
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue  # exited, or another user's
        for fd in fds:
            try:
                opened = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if (opened.st_dev, opened.st_ino) == (stat.st_dev, stat.st_ino):
                found.append(pid)
                break
    return found


#: a line break, a tab or another C0 control in a command line, written as its escape: a
#: holder's ``sh -c`` script printed as it is would add lines of its own to the error
_ESCAPES = {c: f"\\x{c:02x}" for c in range(32)} | {10: "\\n", 13: "\\r", 9: "\\t", 127: "\\x7f"}


def _one_line(text: str) -> str:
    return text.translate(_ESCAPES)


def _log_hold(seconds: float, path: Path) -> None:
    """A line per hold, for the benchmarks (``holds_in``): seconds, pid, which lock
    (``history/lock``, the history's; ``.workerctl/lock``, the workspace's, which a record's
    write takes), argv."""
    with open(os.environ[HOLD_LOG_ENV], "a", encoding="utf-8") as out:
        out.write(f"{seconds:.6f} {os.getpid()} {path.parent.name}/{path.name} {' '.join(sys.argv[1:5])}\n")


def holds_in(log: str, lock: str = "history/lock") -> list[float]:
    """The seconds of each hold of ``lock`` in a ``HOLD_LOG_ENV`` log (``_log_hold``)."""
    return [float(words[0]) for words in map(str.split, log.splitlines()) if words[2:3] == [lock]]


class _LockWaitOver(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> NoReturn:
    raise _LockWaitOver()


def _owns(rlock: Any) -> bool:
    """Whether the current thread holds ``rlock`` (an RLock says so via _is_owned)."""
    return rlock._is_owned()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


_LOCKS: dict[Path, FileLock] = {}


_LOCKS_GUARD = threading.Lock()


def lock_for(path: Path, timeout: float | None = None) -> FileLock:
    """The one ``FileLock`` object for ``path`` in this process.

    ``flock`` locks belong to an open file, so two objects for the same path in one
    process would block each other; sharing one object makes nesting safe.
    """
    path = Path(os.path.abspath(path))  # not resolve(): a link there is refused, never followed
    with _LOCKS_GUARD:
        lock = _LOCKS.get(path)
        if lock is None:
            lock = _LOCKS[path] = FileLock(path, timeout)
        return lock
