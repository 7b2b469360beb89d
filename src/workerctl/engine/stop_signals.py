"""Holding the signals that stop a run (Ctrl-C, SIGTERM, SIGHUP) across a step that must
not be cut in two.

Two places need it: storing a run as running before the loop's handler is in place
(else the run is left running with nobody executing it), and a write on a local record
source (``RecordSource.local_writes``), from storing its intent to storing its outcome
(else a stop signal leaves it ``unknown``, to be settled by a person, although this
process decides whether it happened). A signal that comes meanwhile is remembered and
raised again on release, for whatever handler is in place then.

Why handlers and not the signal mask: a mask is per thread, and the kernel gives a
signal sent to the process to any thread that does not block it (the heartbeat's, a
step's, a library's); Python then runs the handler in the main thread at once. Python
runs every handler in the main thread, so swapping the handlers holds a signal whichever
thread the kernel chose. Holds nest: an inner hold finds the handlers already swapped
and holds nothing; ``release`` puts back only the handlers still swapped, so a handler
installed meanwhile (the run loop's) stays. Only the main thread can hold.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

TERMINATING = (signal.SIGTERM, signal.SIGHUP)
STOPPING = (signal.SIGINT, *TERMINATING)

#: the handlers a hold replaced, by signal; empty when nothing was held
Held = dict[int, Any]

_pending: list[int] = []


def _remember(signum: int, frame: FrameType | None) -> None:
    _pending.append(signum)


def remember(signum: int) -> None:
    """Keep ``signum`` to be raised by the next ``release`` (a handler that is not
    ``hold``'s, holding one of its own accord)."""
    _pending.append(signum)


def hold() -> Held:
    """Hold the stop signals until ``release``; what it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    held: Held = {}
    for signum in STOPPING:
        handler = signal.getsignal(signum)
        if handler is _remember or handler is signal.SIG_IGN:  # an outer hold has it; ignored
            continue
        held[signum] = signal.SIG_DFL if handler is None else handler
        signal.signal(signum, _remember)
    return held


def release(held: Held, drop: tuple[int, ...] = ()) -> None:
    """Put back what ``hold`` replaced, then raise the signals that came meanwhile, but
    those in ``drop`` (the caller knows they have nothing left to stop)."""
    if not held:
        return
    for signum, handler in held.items():
        if signal.getsignal(signum) is _remember:
            signal.signal(signum, handler)
    _pending[:] = [s for s in _pending if s not in drop]
    if any(signal.getsignal(s) is _remember for s in STOPPING):
        return  # an outer hold still has some: it raises them when it ends
    while _pending:
        signal.raise_signal(_pending.pop(0))


#: how soon a wait with the signals held notices one that came
WAIT_POLL = 0.05


@contextlib.contextmanager
def held() -> Iterator[Callable[[], bool]]:
    """The stop signals held for the block, then raised after it; the block gets a
    function that says whether one came (to end a wait early: ``wait``). For a block
    that starts or waits for a thread: ``threading``'s waits take a lock back in a
    ``finally``, and a signal's exception raised there (the handler runs wherever the
    main thread is), by a second signal while the first one's was leaving, left the
    lock released: "RuntimeError: release unlocked lock", and the run was recorded as
    failed by its executor, which then refused the next run on that record."""
    saved = hold()
    try:
        yield lambda: bool(saved) and bool(_pending)
    finally:
        release(saved)


def wait(event: threading.Event, timeout: float, came: Callable[[], bool]) -> bool:
    """``event.wait(timeout)`` inside ``held``: it also ends when a stop signal ``came``."""
    deadline = time.monotonic() + timeout
    while not event.is_set() and not came():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        event.wait(min(left, WAIT_POLL))
    return event.is_set()
