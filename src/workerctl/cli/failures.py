"""How a command that stops on an error ends: the line on stderr and the exit status.

One place, called by the click group (``cli.root``), so a locked history, a damaged
file or Ctrl-C ends the same way whichever command ran.
"""

from __future__ import annotations

import sys

ENDINGS = (OSError, KeyboardInterrupt)  # besides WorkerctlError: what ``failure`` handles


def failure(exc: BaseException) -> tuple[str | None, int]:
    """The message for stderr (None: say nothing) and the exit status for ``exc``,
    a ``WorkerctlError`` or one of ``ENDINGS``."""
    from workerctl.errors import EXIT_HISTORY, EXIT_INTERRUPTED, WorkerctlError

    if isinstance(exc, WorkerctlError):
        return f"error: {exc}", exc.exit_code
    if isinstance(exc, BrokenPipeError):
        # the reader went away (``| head``): done, and with stderr closed Python
        # does not complain at exit about the output it could not flush
        sys.stderr.close()
        return None, 0
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C: the shell convention, 128 + SIGINT
        return "", EXIT_INTERRUPTED
    if isinstance(exc, OSError):
        # the operating system refused a file operation somewhere storage/ did not
        # wrap it: one line naming the path and the cause, exit 4, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        return f"error: {where}{exc.strerror or exc}", EXIT_HISTORY
    raise TypeError(f"not a command failure: {exc!r}")


#: set to show a plugin command's traceback instead of the one line (for its author)
DEBUG_ENV = "WORKERCTL_DEBUG"


def plugin_failure(plugin: str, command: str, exc: Exception) -> tuple[str, int]:
    """A plugin's own command raised something workerctl does not know: a bug in the
    plugin, not the user's mistake, so one line naming the plugin, the command and the
    exception, how to see the traceback, and exit 1 (failed), never a traceback."""
    from workerctl.errors import EXIT_RUN_FAILED

    said = f": {exc}" if str(exc) else ""
    return (
        f"error: command {command!r} of plugin {plugin!r} failed: {type(exc).__name__}{said}; "
        f"this is a bug in the plugin (report it to its authors; {DEBUG_ENV}=1 shows the traceback)",
        EXIT_RUN_FAILED,
    )
