"""The ``workerctl`` command line.

``main`` is the console script. The invocations scripts and people run most
(``workerctl --help``, ``--version``, ``runs list``) are answered by ``cli.fast``
without importing click, about half of the start-up cost; everything else, and
anything the fast path does not fully understand, goes to the click group in
``cli.root``. ``from workerctl.cli import cli`` gives that group.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    from workerctl.sanitize import guard_streams

    guard_streams()  # every write of the command passes the one sanitizer (sanitize.py)
    from workerctl.cli.fast import answer

    status = answer(sys.argv[1:])
    if status is not None:
        sys.exit(status)
    from workerctl.cli.root import cli

    cli(prog_name="workerctl")


def __getattr__(name: str) -> Any:
    # the click group is imported when asked for, not by every start of the command
    if name == "cli":
        from workerctl.cli.root import cli

        return cli
    raise AttributeError(f"module 'workerctl.cli' has no attribute {name!r}")
