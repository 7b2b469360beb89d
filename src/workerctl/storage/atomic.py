"""Durable JSON files: atomic replacement, damage detection, a cross-process lock.

Every state file workerctl writes (history shards, run files, records, worker
versions) goes through here, so a crash mid-write can never leave a half-written
file and a damaged file is reported instead of silently overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from workerctl.errors import DamagedFile, LockTimeout

DEFAULT_LOCK_TIMEOUT = 10.0


def hostname() -> str:
    """The host name, as socket.gethostname() gives it, without importing socket."""
    return os.uname().nodename
HOLDER_BYTES = 240  # the holder note is padded to a fixed size: no truncate per lock


def read_json(path: Path, *, hint: str | None = None) -> Any:
    """Load a JSON file, raising ``DamagedFile`` (exit 4) if it does not parse.

    An empty file counts as damaged: workerctl never writes one, so it means a
    truncation by something else.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if not data.strip():
        raise DamagedFile(path, "the file is empty", hint=hint)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedFile(path, f"not valid JSON: {exc}", hint=hint) from None


def write_json(path: Path, data: Any, *, sync_data: bool = True) -> None:
    """Replace ``path`` atomically: temp file, fsync, rename, fsync the folder."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    write_text_atomic(path, text, sync_data=sync_data)


def write_text_atomic(path: Path, text: str, *, sync_data: bool = True) -> None:
    """Write a temp file beside ``path``, fsync it, rename it over ``path``.

    A reader or a crash sees the old file or the new one, never half of one. The
    folder is not fsynced: a power cut may lose the newest writes (``runs
    reindex`` rebuilds the index from whatever run files survived), and skipping
    it halves the fsyncs on the hot path of every run.
    """
    # unique per process and thread; cheaper than mkstemp on this hot path
    tmp = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = os.open(tmp, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o644)
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data):]
        if sync_data:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class FileLock:
    """An exclusive ``flock`` lock, re-entrant within one process.

    The holder writes its pid, host and command into the lock file so that a
    waiter who gives up can say who holds it.
    """

    def __init__(self, path: Path, timeout: float | None = None) -> None:
        self.path = path
        if timeout is None:
            timeout = float(os.environ.get("WORKERCTL_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT))
        self.timeout = timeout
        self._fd: int | None = None
        self._depth = 0
        self._thread_lock = threading.RLock()

    def __enter__(self) -> FileLock:
        self._thread_lock.acquire()
        if self._depth == 0:
            try:
                self._acquire()
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            fd, self._fd = self._fd, None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        self._thread_lock.release()

    def _acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # the timer-bounded kernel wait needs SIGALRM: only in the main thread, and
            # only when nobody else's timer is running (RQ's job timeout uses it)
            blocking = _in_main_thread() and signal.getitimer(signal.ITIMER_REAL)[0] == 0
            got = self._wait_blocking(fd) if blocking else self._wait_polling(fd)
        except BaseException:
            os.close(fd)
            raise
        if not got:
            holder = self.holder()
            os.close(fd)
            raise LockTimeout(
                f"{self.path}: could not get the lock within {self.timeout:g}s; held by {holder}",
                hint="wait for that command to finish, or raise WORKERCTL_LOCK_TIMEOUT",
            )
        info = f"pid {os.getpid()} on {hostname()} ({' '.join(sys.argv[:4])})"
        os.pwrite(fd, info.encode()[:HOLDER_BYTES].ljust(HOLDER_BYTES), 0)
        self._fd = fd

    def _wait_blocking(self, fd: int) -> bool:
        """Wait in the kernel's queue (fair to every waiter), bounded by a timer signal."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, max(self.timeout, 0.001))
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

    def _wait_polling(self, fd: int) -> bool:
        deadline = time.monotonic() + self.timeout
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
        try:
            text = self.path.read_text(errors="replace").strip()
        except OSError:
            text = ""
        return text or "an unknown process"


class _LockWaitOver(Exception):
    pass


def _alarm(signum, frame):
    raise _LockWaitOver()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


_LOCKS: dict[Path, FileLock] = {}
_LOCKS_GUARD = threading.Lock()


def lock_for(path: Path, timeout: float | None = None) -> FileLock:
    """The one ``FileLock`` object for ``path`` in this process.

    ``flock`` locks belong to an open file, so two objects for the same path in one
    process would block each other; sharing one object makes nesting safe.
    """
    path = Path(path).resolve()
    with _LOCKS_GUARD:
        lock = _LOCKS.get(path)
        if lock is None:
            lock = _LOCKS[path] = FileLock(path, timeout)
        return lock
