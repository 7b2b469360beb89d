"""Runs cancelled from inside the process that executes them.

``run cancel`` stops a run's process with SIGTERM, which Python hands to the main
thread. A batch executes many runs on threads of one process: when it cancels its own
runs (Ctrl-C, SIGTERM to the batch), no signal can reach the thread waiting for a
step, and it waited until the step returned, a long model call or a scripted sleep
keeping the whole batch from exiting. So the one place that cancels a run
(``runs.cancel.cancel_run``) halts it here when its owner is this very process, and
the step loop's wait for an executor's step (``engine.loop._bounded_step``) wakes on
the halt as on the step's end. The step itself is abandoned as at a timeout; its
result, if it ever comes, is ignored.
"""

from __future__ import annotations

import threading


class Halt:
    """One executing run's halt: requested at most once, seen by whichever wait is on
    and by the executor through ``event`` (its steps' ``StepRequest.halted``)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._wake: threading.Event | None = None
        self._lock = threading.Lock()

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def wake_on(self, event: threading.Event | None) -> None:
        """The event the loop is waiting on now (None when it waits on nothing); a halt
        requested before the wait began sets it at once."""
        with self._lock:
            self._wake = event
            if event is not None and self.requested:
                event.set()

    def request(self) -> None:
        with self._lock:
            self.event.set()
            if self._wake is not None:
                self._wake.set()


_running: dict[str, Halt] = {}
_guard = threading.Lock()


def watch(run_id: str) -> Halt:
    """The halt of a run this process starts executing (already requested when the
    cancel came between the run being stored as running and its loop starting)."""
    with _guard:
        return _running.setdefault(run_id, Halt())


def of(run_id: str) -> Halt | None:
    with _guard:
        return _running.get(run_id)


def forget(run_id: str) -> None:
    with _guard:
        _running.pop(run_id, None)


def halt(run_id: str) -> None:
    """Halt ``run_id``, which this process executes or is about to: a request made
    before its loop starts waits for it (under load a batch's thread can be that late,
    and the halt was lost: the run's ten-minute step went on)."""
    with _guard:
        found = _running.setdefault(run_id, Halt())
    found.request()
