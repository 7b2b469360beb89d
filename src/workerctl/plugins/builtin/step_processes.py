"""Step programs die with their run, however the run ends.

A step program runs in its own session, so its process group holds it and every
child it starts (unless one deliberately calls ``setsid`` again: see docs/guarantees.md).
Three things make sure nothing of that group outlives its step or its run:

- **A sweep after every step.** When the program exits (or times out, or the run
  is cancelled), whatever is left in its group gets SIGTERM, then SIGKILL after
  a grace period. A background child holding stdout open no longer keeps the
  step waiting either: once the program itself has exited, the group is swept.
- **A watchdog for when workerctl itself dies.** SIGKILL leaves no chance to
  sweep. So each workerctl process that runs step programs starts one small
  watchdog process, in its own session, holding the read end of a pipe whose
  write end only workerctl holds. Every step's group is registered on the pipe
  (by the child itself, before the program starts, so there is no window) and
  unregistered after its sweep. When workerctl dies, however it dies, the kernel
  closes the pipe; the watchdog reads end-of-file and kills every group still
  registered, then exits.
- **A parent-death signal (Linux).** The program itself also gets
  ``PR_SET_PDEATHSIG`` = SIGKILL, so it stops at once even before the watchdog acts.

Losing the terminal (SIGHUP) is handled by the engine like ``run cancel``: the
run is recorded as cancelled, and the step's group is killed on the way out.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

GRACE_SECONDS = 2.0
PR_SET_PDEATHSIG = 1

WATCHDOG = r"""
import os, signal, sys, time
fd = int(sys.argv[1])
groups, buf = set(), b""
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    try:
        chunk = os.read(fd, 4096)
    except InterruptedError:
        continue
    except OSError:
        break
    if not chunk:
        break
    buf += chunk
    *lines, buf = buf.split(b"\n")
    for line in lines:
        if line[:1] == b"+":
            groups.add(int(line[1:]))
        elif line[:1] == b"-":
            groups.discard(int(line[1:]))
def send(sig):
    alive = set()
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
            alive.add(pgid)
        except OSError:
            pass
    return alive
groups = send(signal.SIGTERM)
deadline = time.monotonic() + float(sys.argv[2])
while groups and time.monotonic() < deadline:
    time.sleep(0.05)
    groups = send(0)
send(signal.SIGKILL)
"""


class Watchdog:
    """One per process: kills the registered step groups when this process dies."""

    _lock = threading.Lock()
    _current: Watchdog | None = None

    def __init__(self) -> None:
        read_end, self.write_end = os.pipe()  # both close on exec: no program inherits them
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-S", "-E", "-c", WATCHDOG, str(read_end), str(GRACE_SECONDS)],
                pass_fds=(read_end,),
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(read_end)
        self.pid = os.getpid()

    @classmethod
    def get(cls) -> Watchdog | None:
        """This process's watchdog, started on first use (again after a fork, or if it
        was killed: a forked child must be watched on its own). None if no Python
        interpreter can be started for it (an embedded one): the sweeps and the
        parent-death signal still hold then."""
        with cls._lock:
            dog = cls._current
            if dog is None or dog.pid != os.getpid() or dog.proc.poll() is not None:
                if dog is not None and dog.pid == os.getpid():
                    with contextlib.suppress(OSError):
                        os.close(dog.write_end)
                try:
                    cls._current = dog = cls() if sys.executable else None
                except OSError:
                    cls._current = dog = None
            return dog

    def forget(self, pgid: int) -> None:
        with contextlib.suppress(OSError):
            os.write(self.write_end, b"-%d\n" % pgid)


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def child_setup(write_end: int | None) -> Callable[[], None]:
    """What the forked child does before the program starts (it is in its new session
    already): register its group with the watchdog, ask for SIGKILL if workerctl
    dies. Only plain system calls: this runs between fork and exec."""
    prctl, parent, kill = _PRCTL, os.getpid(), int(signal.SIGKILL)

    def setup() -> None:
        if write_end is not None:
            with contextlib.suppress(OSError):
                os.write(write_end, b"+%d\n" % os.getpid())
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, kill, 0, 0, 0)
            if os.getppid() != parent:  # workerctl died before the signal was asked for
                os._exit(1)

    return setup


def sweep_group(pgid: int, grace: float = GRACE_SECONDS) -> bool:
    """SIGTERM every process left in group ``pgid``, SIGKILL what is still there after
    ``grace``. True if anything was found."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        time.sleep(0.02)
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        if _only_zombies(pgid):
            return True
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    return True


def _only_zombies(pgid: int) -> bool:
    """Dead members not yet reaped (the leader, before ``wait``) still count for killpg."""
    if not os.path.isdir("/proc/self"):
        return False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return False
    return True


@dataclass
class Finished:
    returncode: int
    stdout: bytes  # at most ``head_bytes`` of it: the rest was counted, not kept
    stderr: bytes  # its last ``tail_bytes``
    timed_out: bool = False
    stdout_total: int = 0  # bytes the program wrote on stdout in all


def run_in_group(
    argv: list[str],
    *,
    cwd: str | os.PathLike[str] | None,
    env: dict[str, str],
    payload: bytes,
    limit: float,
    head_bytes: int = 1 << 62,
    tail_bytes: int = 1 << 62,
    halted: threading.Event | None = None,
) -> Finished:
    """Run ``argv`` in a new session watched by this process's watchdog, with
    ``payload`` on its stdin; its group is swept however this ends.

    Both streams are read as they come: at most ``head_bytes`` of stdout are kept
    (the rest is counted) and the last ``tail_bytes`` of stderr, so a program
    that floods either does not grow this process.

    After ``limit`` seconds the group is killed and the result says ``timed_out``.
    ``OSError`` if the program cannot start; a ``BaseException`` raised meanwhile
    (the run cancelled by SIGTERM or SIGHUP) goes through after the group is killed,
    and so does ``StepHalted`` once ``halted`` is set (the run cancelled from inside
    this process, where no signal reaches the thread waiting here).
    """
    dog = Watchdog.get()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
        preexec_fn=child_setup(dog.write_end if dog else None),
    )
    streams = _Streams(proc, payload, head_bytes, tail_bytes)
    try:
        try:
            _communicate(proc, streams, limit, halted)
        except subprocess.TimeoutExpired:
            sweep_group(proc.pid)
            streams.finish()
            return streams.result(timed_out=True)
        except BaseException:
            sweep_group(proc.pid)
            streams.finish()
            raise
        return streams.result()
    finally:
        sweep_group(proc.pid)  # background children the program left behind
        if dog is not None:
            dog.forget(proc.pid)


class _Streams:
    """Feed the program its request and read both its streams at once, each in a
    thread, keeping a bounded head of stdout and tail of stderr."""

    def __init__(self, proc: subprocess.Popen, payload: bytes, head_bytes: int, tail_bytes: int) -> None:
        self.proc, self.head_bytes, self.tail_bytes = proc, head_bytes, tail_bytes
        self.head, self.tail, self.total = bytearray(), bytearray(), 0
        pipes = cast(
            tuple[io.BufferedWriter, io.BufferedReader, io.BufferedReader],
            (proc.stdin, proc.stdout, proc.stderr),
        )
        self.threads = [
            threading.Thread(target=target, args=(pipe,), daemon=True)
            for target, pipe in (
                (self._feed, pipes[0]),
                (self._read_out, pipes[1]),
                (self._read_err, pipes[2]),
            )
        ]
        self.payload = payload
        for thread in self.threads:
            thread.start()

    def _feed(self, pipe: io.BufferedWriter) -> None:
        with contextlib.suppress(OSError):  # the program may exit without reading it all
            pipe.write(self.payload)
        with contextlib.suppress(OSError):
            pipe.close()

    def _read_out(self, pipe: io.BufferedReader) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := pipe.read1(65536):
                self.total += len(chunk)
                room = self.head_bytes - len(self.head)
                if room > 0:
                    self.head += chunk[:room]

    def _read_err(self, pipe: io.BufferedReader) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := pipe.read1(65536):
                self.tail += chunk
                if len(self.tail) > 2 * self.tail_bytes:
                    del self.tail[: -self.tail_bytes]

    def read_all(self, timeout: float) -> bool:
        """Whether both streams reached their end within ``timeout``."""
        deadline = time.monotonic() + timeout
        for thread in self.threads[1:]:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self.threads[1:])

    def finish(self) -> None:
        """After the group was swept: reap the program, let the readers see the end."""
        self.proc.wait()
        self.read_all(GRACE_SECONDS)

    def result(self, timed_out: bool = False) -> Finished:
        return Finished(
            self.proc.returncode,
            bytes(self.head),
            bytes(self.tail[-self.tail_bytes :]),
            timed_out=timed_out,
            stdout_total=self.total,
        )


class StepHalted(Exception):
    """The run was cancelled from inside this process while its program ran."""


def _communicate(
    proc: subprocess.Popen, streams: _Streams, limit: float, halted: threading.Event | None = None
) -> None:
    """Until the program exits and its streams end; a background child holding the
    pipes once the program itself has exited does not keep the step waiting: the
    group is swept and the output read."""
    deadline = time.monotonic() + max(limit, 0.01)
    wait = 0.05
    while True:
        left = deadline - time.monotonic()
        if streams.read_all(max(min(wait, left), 0.001)):
            proc.wait(max(deadline - time.monotonic(), 0.001))
            return
        if proc.poll() is not None:  # the program is done; something else holds stdout
            sweep_group(proc.pid, grace=0.5)
            streams.finish()
            return
        if time.monotonic() >= deadline:
            raise subprocess.TimeoutExpired(proc.args, limit) from None
        if halted is not None and halted.is_set():
            raise StepHalted("the run was cancelled while its program ran")
        wait = min(wait * 2, 0.5)
