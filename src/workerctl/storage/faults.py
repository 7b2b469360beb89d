"""Test-only fault injection at each write point of the state files.

Every replacement or removal of a state file passes ``write_point(path)`` first.
Normally that is one dictionary look-up. With ``WORKERCTL_TEST_FAULT`` set, the
process numbers its write points and, at point N:

- ``kill:N``   sends itself a real SIGKILL (nothing runs after it: no ``finally``,
  no ``atexit``), exactly what the OOM killer or a power-off does to a process;
- ``enospc:N`` raises ``OSError(ENOSPC)`` as a full disk does, at that point and at
  every later one (a full disk stays full) that needs space: not at a write into
  space set aside before (``needs_space=False``: ``atomic._Reserve``);
- ``trace:FILE`` appends "N path" for each point to FILE (to enumerate them);
- ``stop:N`` stops the process at point N (SIGSTOP), before it writes there: the test
  then sends it a signal of its own and SIGCONT;
- ``kill-at:K:TEXT`` sends the SIGKILL at the K-th point whose path holds TEXT (a
  point among several threads' writes, whose numbers vary from run to run).

The variable is removed from the environment as soon as it is read, so only
the process it was set for is affected, not the ones it starts. The tests use
it to *reach* a write point; the kill itself and the recovery are real.
"""

from __future__ import annotations

import errno
import os
import signal

FAULT_ENV = "WORKERCTL_TEST_FAULT"

_spec = os.environ.pop(FAULT_ENV, "")
_count = 0
_matched = 0  # points whose path held kill-at's text


def write_point(path: os.PathLike | str, *, needs_space: bool = True) -> None:
    global _count
    if not _spec:
        return
    _count += 1
    action, _, arg = _spec.partition(":")
    if action == "trace":
        with open(arg, "a", encoding="utf-8") as out:
            out.write(f"{_count} {path}\n")
    elif action == "kill" and _count == int(arg):
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "stop" and _count == int(arg):
        os.kill(os.getpid(), signal.SIGSTOP)
    elif action == "kill-at":
        global _matched
        nth, _, text = arg.partition(":")
        if text in str(path):
            _matched += 1
            if _matched == int(nth):
                os.kill(os.getpid(), signal.SIGKILL)
    elif action == "enospc" and _count >= int(arg) and needs_space:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
