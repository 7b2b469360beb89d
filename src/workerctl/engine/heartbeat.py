"""The heartbeat a run's executing process keeps while it works.

A run executed on another host (or whose pid cannot be checked) is judged
alive by this file's modification time; see ``history.sweep``.

One thread per process beats for every run executing in it: a batch executes
hundreds of short runs, and starting a thread for each cost about as much as
one of its history writes (most runs end before their first beat is due).
"""

from __future__ import annotations

import os
import threading
import time

from workerctl.errors import StorageError
from workerctl.history.store import History

HEARTBEAT_SECONDS = 5.0


def beat_interval(stale_after: float) -> float:
    """Four beats per ``stale_after`` window, at most every ``HEARTBEAT_SECONDS`` and at
    most twice a second: ``workspace.MIN_STALE_AFTER`` keeps the setting where four fit."""
    from workerctl.workspace import MIN_STALE_AFTER

    return max(MIN_STALE_AFTER / 4, min(HEARTBEAT_SECONDS, stale_after / 4))


class Heartbeat:
    """Touches the run's heartbeat file while it executes (for remote stale checks)."""

    def __init__(self, history: History, run_id: str, every: float = HEARTBEAT_SECONDS) -> None:
        self.history, self.run_id, self.every = history, run_id, every
        self._lock = threading.Lock()  # a beat and stop() never overlap
        self._stopped = False

    def start(self) -> None:
        # the first beat comes after one interval: until then the marker's own
        # time stands in for it, and short runs never touch the file at all
        _BEATER.add(self)

    def beat(self) -> bool:
        """One touch; False once stopped or when the file cannot be touched (then
        this run beats no more, as before: its owner's pid still speaks for it)."""
        with self._lock:
            if self._stopped:
                return False
            try:
                self.history.heartbeat(self.run_id)
            except (OSError, StorageError):
                return False
            except Exception:  # a sink's own failure (a lost queue connection)
                return False
            return True

    def stop(self) -> None:
        """No beat after this returns (the final save removes the file: a late touch
        would leave a stray one)."""
        with self._lock:
            self._stopped = True
        _BEATER.discard(self)


class _Beater:
    """The process's one heartbeat thread: beats each registered run when it is due."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._due: dict[Heartbeat, float] = {}
        self._thread: threading.Thread | None = None

    def add(self, beat: Heartbeat) -> None:
        if self._pid != os.getpid():
            # a forked child (an RQ work horse) starts afresh: the parent's thread is
            # not here, and its lock may have been held at the fork (checked here, not
            # with os.register_at_fork, whose hold on this object until the very end
            # of the interpreter cost every process about 2 ms at exit)
            self._reset()
        with self._cond:
            due = time.monotonic() + beat.every
            sooner = all(due < at for at in self._due.values())
            self._due[beat] = due
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="workerctl-heartbeat", daemon=True)
                self._thread.start()
            elif sooner:
                # the thread sleeps till the soonest beat: woken only when this one comes
                # sooner (a batch adds a run every few milliseconds, each due 5 s later)
                self._cond.notify()

    def discard(self, beat: Heartbeat) -> None:
        if self._pid != os.getpid():
            return  # a forked child that added nothing (its lock may be the parent's, held)
        with self._cond:
            self._due.pop(beat, None)
            if not self._due:
                self._cond.notify()  # the thread ends: none is left at the process's exit

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                if not self._due:
                    self._thread = None  # the next add() starts another
                    return
                due = [b for b, at in self._due.items() if at <= now]
                if not due:
                    self._cond.wait(min(self._due.values()) - now)
                    continue
                for beat in due:
                    self._due[beat] = now + beat.every
            for beat in due:  # outside the condition: a sink may be slow
                if not beat.beat():
                    self.discard(beat)


_BEATER = _Beater()
