"""Errors a user can cause, each carrying the documented exit code.

The CLI turns any ``WorkerctlError`` into its message and exit code, so a user's
mistake never shows as a traceback.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported before the stop-signal handlers are in place

if TYPE_CHECKING:
    from os import PathLike
    from typing import ClassVar

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_HISTORY = 4
# a start refused before anything ran: the duplicate guard (a repeat of a write or of an
# unchanged failure, a run executing now, an unknown write) or the worker's status
# (paused, a draft on a record not safe for testing); nothing ran, nothing recorded
EXIT_DUPLICATE = 5
EXIT_REFUSED = EXIT_DUPLICATE  # the same status, by what it means for every refusal
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), the shell convention
EXIT_TERMINATED = 143  # SIGTERM (128 + 15): what a shell reports for a process it killed


class Terminated(BaseException):
    """The process got SIGTERM (``run cancel``, a service manager, ``kill``) or SIGHUP, or
    its run was halted (``engine.halts``, no signal: ``signum`` is ``engine.loop.HALTED``).

    A ``BaseException``, as ``KeyboardInterrupt`` is, so no ``except Exception`` on the
    way up swallows it: the run loop turns it into a cancelled run, and any command it
    reaches ends in one line with ``EXIT_TERMINATED`` (``cli.failures``)."""

    #: the signals whose handler raised one (``cli.failures``) that no ending has met
    #: yet. C code between a handler and the interpreter can drop the exception (seen in
    #: ``compile()`` of a module being imported, with no bytecode cached): the command
    #: then went on, ran its worker and exited 0, as if no SIGTERM had come
    unanswered: ClassVar[list[int]] = []

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @classmethod
    def raise_unanswered(cls) -> None:
        """Raise the stop a handler raised and nothing met, where going on would act
        on it: before a run starts, before a command ends well. In the main thread only
        (handlers run there; a batch's run threads never end the command)."""
        import threading

        if cls.unanswered and threading.current_thread() is threading.main_thread():
            signum = cls.unanswered[0]
            cls.unanswered.clear()
            raise cls(signum)


#: characters of an exception's message quoted in a one-line report
MESSAGE_LIMIT = 500


def stop_within(exc: BaseException) -> BaseException | None:
    """The Ctrl-C or SIGTERM (``KeyboardInterrupt``, ``Terminated``) that ``exc`` is, or
    that caused it. A signal's exception raised in a class body during an import comes
    out as Python's "RuntimeError: Error calling __set_name__", and one inside a library
    may come out wrapped in the library's own error: it is still the user's stop, not a
    bug to show a traceback for."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (KeyboardInterrupt, Terminated)):
            return current
        seen.add(id(current))
        # as a traceback follows it: the cause, else the context unless ``from None`` hid it
        context = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or context
    return None


def described(exc: BaseException) -> str:
    """``TypeName: message`` on one line, the message cut at ``MESSAGE_LIMIT``: how a
    plugin's exception is quoted (a warning, a ``plugins list`` row, a command's one
    line). Safe for an exception whose ``__str__`` itself raises."""
    try:
        text = " ".join(str(exc).split())
    except Exception as broken:  # a plugin's exception class, not ours
        text = f"(its message could not be read: {type(broken).__name__})"
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class WorkerctlError(Exception):
    """A problem the user can fix; ``str(err)`` says what and how."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(WorkerctlError):
    exit_code = EXIT_USAGE


class ConfigError(WorkerctlError):
    """Invalid configuration; ``problems`` holds every located error found."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, problems: list | None = None, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = problems or []

    def __str__(self) -> str:
        lines = [str(p) for p in self.problems] or [self.message]
        if self.problems:
            lines.insert(0, self.message)
        text = "\n".join(lines)
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class NotFoundError(WorkerctlError):
    exit_code = EXIT_NOT_FOUND


class HistoryError(WorkerctlError):
    """The history (or another state file) is locked or damaged."""

    exit_code = EXIT_HISTORY


class LockTimeout(HistoryError):
    pass


class DamagedFile(HistoryError):
    def __init__(self, path: str | PathLike[str], detail: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"{path}: damaged state file ({detail}); it was left untouched",
            hint=hint or f"move {path} aside and restore it from a backup",
        )
        self.path = path
        self.detail = detail


class PlantedLink(DamagedFile):
    """A link (or a FIFO, device or hard link) where workerctl keeps its own state:
    never written through, read through or followed; exit 4 naming the path."""

    def __init__(self, path: str | PathLike[str], what: str) -> None:
        super().__init__(
            path,
            f"{what}, inside the folder where workerctl keeps its own state; workerctl never "
            "reads or writes through it",
            hint=f"remove it (rm {path}) and, if it pointed at workerctl state kept elsewhere, "
            "move that state into its place; only the workspace folder itself may be reached through a link",
        )


class ClimbingPath(DamagedFile):
    """A state path that climbs out of the state folder: a ``..`` at or below
    ``.workerctl``. workerctl never makes one from its own names, so an id read from a
    damaged or planted state file did; nothing is opened, written or removed there."""

    def __init__(self, path: str | PathLike[str]) -> None:
        super().__init__(
            path,
            "a name read from workerctl's state climbs out of its folder ('..'); nothing was "
            "read, written or removed there",
            hint="a state file holds a damaged or planted id: look for the file named before this "
            "one (or a planted history/pruning.json) and run 'workerctl runs reindex'",
        )


class PluginFailed(WorkerctlError):
    """A plugin's own command failed in a way workerctl does not know (an exception it
    raised, a command it declares but did not add): a bug in the plugin, not the user's
    mistake, so one line naming it and exit 1."""

    exit_code = EXIT_RUN_FAILED


class EndRecorded(HistoryError):
    """A run's last save met the history's own problem (a full disk, a folder refused)
    after the run had ended, and its run file alone was written: the run ended, and
    says so; only what is derived from that file (the index, the ledger) waits for
    the next command that can write. Said as such, never as "nothing was written, run
    the command again": the run happened, its comment may be posted, and a start made
    again on the record would be a repeat."""

    def __init__(self, run_id: str, status: str, cause: HistoryError) -> None:
        import os

        problem = cause.message
        if isinstance(cause, StorageError):  # its "nothing was half-written; run again" is not so here
            problem = f"{cause.path}: cannot {cause.doing}: {os.strerror(cause.errno or 0)}"
        super().__init__(  # one line, as a full disk's every other message
            f"run {run_id} ended {status}, and its run file says so; the rest is not recorded "
            f"yet: {problem}; once that is fixed, the next command that can write records it"
        )
        self.run_id = run_id
        self.cause = cause


class StorageError(HistoryError):
    """The operating system refused a read or write of a state file (full disk,
    read-only file system, permissions). One line: the path, the cause, and the
    reassurance that matters (nothing was half-written)."""

    def __init__(self, path: str | PathLike[str], exc: OSError, doing: str = "write") -> None:
        import errno

        cause = exc.strerror or str(exc)
        fix = {
            errno.ENOSPC: "free some space and run the command again",
            errno.EDQUOT: "free some space (disk quota) and run the command again",
            errno.EROFS: "the file system is mounted read-only; use a writable workspace",
            errno.EACCES: "check the owner and permissions of the workspace's .workerctl folder",
            errno.EPERM: "check the owner, permissions and attributes (chattr) of that file",
        }.get(exc.errno or 0, "fix the cause and run the command again")
        super().__init__(f"{path}: cannot {doing}: {cause}; nothing was half-written; {fix}")
        self.path = path
        self.errno = exc.errno
        self.doing = doing  # "read", "write", "remove" ...
