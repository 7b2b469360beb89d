"""The one terminal object: what the terminal workerctl talks to allows.

Every command asks it instead of calling ``isatty`` or reading ``NO_COLOR`` itself:

- ``can_prompt``: stdin, stdout and stderr are all terminals, so a question is seen
  (whichever stream it is written on) and can be answered (a script, a cron job,
  ``x=$(workerctl …)``, ``workerctl … > log`` or ``2> log`` get the non-interactive
  behaviour instead of a question hidden in a pipe that waits forever);
- ``at_keyboard``: stdin is a terminal, so a person started the command (a run's
  trigger is "manual");
- ``width``: ``COLUMNS``, else the terminal's columns on stdout, else a fallback (a
  pipe is not a terminal; a width is never read from a stream that is not stdout);
- ``colour``: the colour policy, in this order: ``NO_COLOR`` set and not empty turns
  colour off (``NO_COLOR=""`` does not: https://no-color.org); ``FORCE_COLOR`` set and
  not empty turns it on, even into a pipe; otherwise colour only on a terminal;
- ``show``: data text (a record's title, an output, an error, a path) made safe to
  print (``sanitize.for_terminal``); text workerctl styled itself (``Styled``) is
  left as it is.

It reads the streams and the environment when asked, not when imported, so click's
test runner (which swaps the streams) and ``--watch`` loops see what is there now.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from workerctl.sanitize import for_terminal


class Styled(str):
    """Text workerctl built and styled itself (colour codes included): shown as it is."""

    __slots__ = ()


def _isatty(stream: IO[Any] | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (ValueError, OSError, AttributeError):  # closed, or a stream that cannot say
        return False


class Terminal:
    """The terminal on the process's standard streams (``terminal()`` gives it)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    @property
    def can_prompt(self) -> bool:
        """A person can see a question and answer it: it is read from stdin and asked on
        stdout or stderr (click's prompts take either), so all three must be terminals."""
        return _isatty(sys.stdin) and _isatty(sys.stdout) and _isatty(sys.stderr)

    @property
    def at_keyboard(self) -> bool:
        """A person typed the command: stdin is a terminal (stdout may be a pipe, as in
        ``workerctl run start … | tee log``)."""
        return _isatty(sys.stdin)

    def is_terminal(self, err: bool = False) -> bool:
        """stdout (or stderr) is a terminal: redraws and progress bars make sense."""
        return _isatty(sys.stderr if err else sys.stdout)

    def colour(self, err: bool = False) -> bool:
        """Colour on stdout (or stderr): ``NO_COLOR``, then ``FORCE_COLOR``, then
        whether the stream is a terminal."""
        if self.environ.get("NO_COLOR"):
            return False
        if self.environ.get("FORCE_COLOR"):
            return True
        return self.is_terminal(err)

    def width(self, fallback: int = 120) -> int:
        """Columns: ``COLUMNS``, else the terminal on stdout, else ``fallback``."""
        try:
            columns = int(self.environ.get("COLUMNS", ""))
        except ValueError:
            columns = 0
        if columns > 0:
            return columns
        if self.is_terminal():
            try:
                return os.get_terminal_size(sys.stdout.fileno()).columns or fallback
            except (AttributeError, ValueError, OSError):  # click's runner, a closed stream
                pass
        return fallback

    def page_width(self) -> int | None:
        """The width tables must fit: the terminal's, or ``COLUMNS``; None when the
        output goes to a pipe or a file that no ``COLUMNS`` describes (a script reading
        a table gets every character)."""
        if self.environ.get("COLUMNS", "").strip().isdigit() or self.is_terminal():
            return self.width()
        return None

    def show(self, text: object) -> str:
        """``text`` as it may be printed: data sanitized, ``Styled`` text as it is."""
        if isinstance(text, Styled):
            return text
        return for_terminal(text if isinstance(text, str) else str(text))


def terminal() -> Terminal:
    """The terminal as it is now (the streams and the environment of this moment)."""
    return Terminal()
