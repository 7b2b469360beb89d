"""The ``workerctl`` command line.

``main`` is the console script: one parser, the click group in ``cli.root``, which
imports a command's module only when that command is invoked (``cli.commands``).
``from workerctl.cli import cli`` gives that group.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported before the stop-signal handlers are in place
if TYPE_CHECKING:
    from typing import Any


def main() -> None:
    """The one place a command stopped by a signal ends: Ctrl-C exit 130, SIGTERM 143,
    SIGHUP 129, one line (``cli.failures``), whichever layer it came through."""
    try:
        _main()
    except KeyboardInterrupt:  # Ctrl-C before the handlers or click took over: 130, no traceback
        raise SystemExit(130) from None


def _main() -> None:
    from workerctl.cli.failures import end_stopped, ignore_stop_signals, raise_on_sigterm
    from workerctl.errors import Terminated, stop_within

    raise_on_sigterm()  # first: a SIGTERM from here on ends the command in one line
    try:
        try:
            from workerctl.cli.root import cli

            _replace_what_cannot_be_shown()
            try:
                cli(prog_name="workerctl")
            except SystemExit as ending:
                if ending.code in (0, None):  # a SIGTERM whose exception was lost on its way
                    Terminated.raise_unanswered()
                raise
        finally:
            ignore_stop_signals()
    except (Terminated, KeyboardInterrupt) as stop:  # before click took over, or as it ended
        end_stopped(stop)
    except Exception as exc:  # a stop signal's exception wrapped on its way (errors.stop_within)
        wrapped = stop_within(exc)
        if wrapped is None:
            raise
        end_stopped(wrapped)


def _replace_what_cannot_be_shown() -> None:
    """A locale that cannot show a character (latin-1 and a status symbol ✓) gets
    '?' for it instead of a UnicodeEncodeError traceback; click already writes
    UTF-8 to a stream set to ASCII."""
    import io
    import sys

    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="replace")


def __getattr__(name: str) -> Any:
    # the click group is imported when asked for, not when a submodule is imported
    if name == "cli":
        from workerctl.cli.root import cli

        return cli
    raise AttributeError(f"module 'workerctl.cli' has no attribute {name!r}")
