"""How a command that stops on an error ends: the line on stderr and the exit status.

One place, called by the click group (``cli.root``), so a locked history, a damaged
file or Ctrl-C ends the same way whichever command ran.
"""

from __future__ import annotations

import signal
import sys

from workerctl.errors import Terminated  # before the handlers: cli.main catches it

# typing's names for annotations only: this module runs before the stop-signal handlers are
# in place (cli.main), and importing typing (with re and enum) was most of that window
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from workerctl.errors import PluginFailed

ENDINGS = (OSError, KeyboardInterrupt)  # besides WorkerctlError: what ``failure`` handles


def raise_on_sigterm() -> None:
    """From the first thing a ``workerctl`` process does (``cli.main``) to its end,
    SIGTERM raises ``errors.Terminated`` in the main thread, as Ctrl-C raises
    ``KeyboardInterrupt``, so the command ends in one line and exit 143
    (``end_terminated``) with its ``finally`` blocks run (the history lock released,
    temp files removed) instead of vanishing without a word. A second SIGTERM ends the
    process at once. Commands with their own meaning for SIGTERM (a run cancels, a batch
    stops like Ctrl-C) install their handler inside and restore this one. A SIGTERM the
    parent left blocked (the mask survives exec) is unblocked: 'run cancel' stops a run
    by it, and a run started with it blocked could not be cancelled. SIGHUP (the
    terminal closed) ends a command the same way, with exit 129. A signal the parent
    set to be ignored stays ignored, as Python keeps an ignored Ctrl-C: ``nohup
    workerctl …`` is not ended (nor its run cancelled) when the terminal closes. A
    Ctrl-C the parent left blocked is unblocked too: it was silently lost."""
    global _unraisable
    for signum in STOPPED_BY:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise_terminated)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, *STOPPED_BY})
    if sys.unraisablehook is not _deliver_lost_stops:
        _unraisable = sys.unraisablehook
        sys.unraisablehook = _deliver_lost_stops


_unraisable = sys.unraisablehook  # the hook ``_deliver_lost_stops`` passes the rest to


def _deliver_lost_stops(unraisable: Any) -> None:
    """No stop signal is lost. Python runs a signal's handler in the main thread at
    whatever instruction it is at, and when that is inside a finalizer (a ``__del__``,
    a weakref callback: importlib's module locks have one) the exception the handler
    raises (``Terminated``, ``KeyboardInterrupt``) cannot propagate: Python prints
    "Exception ignored" and carries on, so the command ran to its end, exit 0, as if no
    SIGTERM or Ctrl-C had come. Every such exception comes to this hook, which raises
    it again, the same exception, at the main thread's next call or return outside the
    hook (a one-shot profile function: no thread, no second signal, so what the handler
    left in place for the next signal stays as it left it). Raised in another finalizer,
    it comes back here, until it lands where it propagates. The rest goes on to the hook
    before this one."""
    if not _raise_again(unraisable.exc_value):
        _unraisable(unraisable)


def _raise_again(exc: BaseException | None) -> bool:
    if not isinstance(exc, (KeyboardInterrupt, Terminated)):
        return False
    if isinstance(exc, Terminated) and exc.signum not in STOPPED_BY:
        return False  # a halt (engine.halts) raised by hand, not by a signal
    if exc.__traceback__ is None or not _in_main_thread():
        return False  # not raised by a handler: handlers run in the main thread

    def at_next_event(frame: Any, event: str, arg: object) -> None:
        if frame.f_code in _HOOK_CODE:  # still in this hook: raised here, it is lost again
            return
        sys.setprofile(None)
        raise exc

    sys.setprofile(at_next_event)
    return True


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


_HOOK_CODE = frozenset({_deliver_lost_stops.__code__, _raise_again.__code__})


def ignore_stop_signals() -> None:
    """Once the command has ended (its output complete, or a stop signal's exception on
    its way to ``cli.main``), a SIGTERM, SIGHUP or Ctrl-C has nothing left to stop: the
    process ends with the status already decided. Raised now, a second signal's
    exception would land in the ending itself (``end_terminated``), where nothing
    catches it: a traceback instead of the one line."""
    for signum in (signal.SIGINT, *STOPPED_BY):
        signal.signal(signum, signal.SIG_IGN)


def end_terminated(signum: int = signal.SIGTERM) -> NoReturn:
    """The ending of a command that SIGTERM (or SIGHUP) stopped: one line, exit 128 + the
    signal's number (143, 129), what a shell reports for a process the signal killed."""
    line = TERMINATED_LINE.replace("SIGTERM", signal.Signals(signum).name)
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: the status still says it
        pass
    raise SystemExit(128 + signum)


def end_stopped(stop: BaseException) -> NoReturn:
    """The ending of a command a stop signal ended: SIGTERM's or SIGHUP's one line and
    143 or 129 (``end_terminated``), Ctrl-C's 130 (click wrote the newline after ^C)."""
    Terminated.unanswered.clear()  # met: this is its ending
    if isinstance(stop, Terminated):
        end_terminated(stop.signum)
    raise SystemExit(130) from None


#: the signals that end a command in one line (``raise_on_sigterm``)
STOPPED_BY = (signal.SIGTERM, signal.SIGHUP)
#: what a command stopped by SIGTERM says (SIGHUP: the same, naming it)
TERMINATED_LINE = "error: stopped by SIGTERM before the command finished"


def _raise_terminated(signum: int, frame: object) -> None:
    signal.signal(signum, signal.SIG_DFL)  # asked twice: no more waiting
    Terminated.unanswered.append(signum)  # until an ending meets it (end_stopped)
    raise Terminated(signum)


#: the exit status the running command has decided before printing what it did
_decided = [0]


def decide(status: int) -> int:
    """Say the command's exit status before printing its answer: a batch whose runs
    failed exits 1 even when the reader of its output goes away while it prints
    (``| head -1``: it exited 0, hiding the failures from ``set -o pipefail``)."""
    _decided[0] = status
    return status


def failure(exc: BaseException) -> tuple[str | None, int]:
    """The message for stderr (None: say nothing) and the exit status for ``exc``,
    a ``WorkerctlError`` or one of ``ENDINGS`` (SIGTERM ends in ``end_terminated``)."""
    from workerctl.errors import EXIT_HISTORY, EXIT_INTERRUPTED, WorkerctlError

    if isinstance(exc, WorkerctlError):
        return f"error: {exc}", exc.exit_code
    if isinstance(exc, BrokenPipeError):
        # the reader went away (``| head``): done, with the status the command had
        # decided before it printed (``decide``); with stderr closed Python does not
        # complain at exit about the output it could not flush
        sys.stderr.close()
        return None, _decided[0]
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C: the shell convention, 128 + SIGINT
        return "", EXIT_INTERRUPTED
    if isinstance(exc, OSError):
        # the operating system refused a file operation somewhere storage/ did not
        # wrap it: one line naming the path and the cause, exit 4, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        fix = _os_fix(exc)
        return f"error: {where}{exc.strerror or exc}" + (f"; {fix}" if fix else ""), EXIT_HISTORY
    raise TypeError(f"not a command failure: {exc!r}")


def _os_fix(exc: OSError) -> str:
    """What fixes the refusal, by its cause: the path alone did not say what to do."""
    import errno

    where = exc.filename or "that path"
    return {
        errno.EACCES: f"check the owner and permissions of {where} and the folders above it (ls -ld)",
        errno.EPERM: f"check the owner, permissions and attributes (chattr) of {where}",
        errno.ENOSPC: "free some space and run the command again",
        errno.EDQUOT: "free some space (disk quota) and run the command again",
        errno.EROFS: "the file system is mounted read-only; use a writable folder",
        errno.ENOTDIR: f"a part of {where} is a file where a folder is expected",
        errno.EEXIST: f"{where} is in the way: move it aside",
    }.get(exc.errno or 0, "")


#: set to show a plugin command's traceback instead of the one line (for its author)
DEBUG_ENV = "WORKERCTL_DEBUG"


def plugin_failure(plugin: str, command: str, exc: BaseException) -> PluginFailed:
    """What a plugin's own command raised, when workerctl does not know it: one line
    naming the plugin, the command and the exception (``errors.described``), and how
    to see the traceback."""
    from workerctl.errors import PluginFailed, described

    return PluginFailed(
        f"command {command!r} of plugin {plugin!r} failed: {described(exc)}; "
        f"this is a bug in the plugin (report it to its authors; {DEBUG_ENV}=1 shows the traceback)"
    )


def stdout_closed() -> bool:
    """True when the reader of standard output has gone (``| head`` ended): what a
    ``BrokenPipeError`` means for workerctl, as against one from a plugin's own socket."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no real stdout (click's runner)
        return False
