"""The invocations run most often, answered without importing click.

Importing click (and the ``inspect``, ``typing``, ``enum`` and ``datetime`` it
pulls in) costs a cold start about as much as Python itself; ``workerctl --help``
and ``runs list`` in a watch loop or a cron job would pay it every time for a
job of a few milliseconds. ``answer`` handles exactly these forms:

    workerctl [-w DIR] --help | -h | --version
    workerctl [-w DIR] runs list [--worker W]... [--status S]... [--task|--record ID]
        [--error-kind K]... [--since WHEN] [--until WHEN] [--limit N] [--unreviewed]
        [--json] [--format table|json|ndjson|csv|ids]

and returns None for anything else, or anything it does not fully understand
(``--json FIELDS``, ``--jq``, ``--watch``, ``--help`` of a command, a value that
needs checking, ``--``), so that click answers, with its own messages. What the
fast path does after parsing is what the click command does: the same
``runs_list`` functions, the same ``output.emit``, the same ``failures``. A test
runs a corpus of argument lists both ways and compares the output byte for byte.
"""

from __future__ import annotations

import os
from collections.abc import Callable

#: ``runs list`` options that take a value: option -> (parameter, repeatable)
_VALUES = {
    "--worker": ("worker", True),
    "--status": ("status", True),
    "--task": ("task", False),
    "--record": ("task", False),
    "--error-kind": ("error_kinds", True),
    "--since": ("since", False),
    "--until": ("until", False),
    "--limit": ("limit", False),
    "--format": ("fmt", False),
}
_FORMATS = ("table", "json", "ndjson", "csv", "ids")
COMPLETION_VAR = "_WORKERCTL_COMPLETE"  # click's shell completion: "_{PROG}_COMPLETE"
_HELP_WIDTH = 78  # click's: the terminal's columns, at most 80, minus 2


def answer(argv: list[str]) -> int | None:
    """Answer ``argv`` and return the exit status, or None to leave it to click."""
    if COMPLETION_VAR in os.environ:  # the shell asks click for completions
        return None
    workspace, rest = _workspace_option(argv)
    if rest is None:
        return None
    if rest in (["--help"], ["-h"]) and _help_width() == _HELP_WIDTH:
        return _say(root_help(_HELP_WIDTH))
    if rest == ["--version"]:
        from workerctl import __version__

        return _say(f"workerctl, version {__version__}")
    if rest[:2] == ["runs", "list"]:
        options = _runs_list_options(rest[2:])
        if options is not None:
            return _run(lambda: _runs_list(workspace, **options))
    return None


def _workspace_option(argv: list[str]) -> tuple[str | None, list[str] | None]:
    """The group's ``-w/--workspace`` and what follows it; (None, None) when the
    group's options are anything else."""
    if argv[:1] in (["-w"], ["--workspace"]):
        return (argv[1], argv[2:]) if len(argv) > 1 and not argv[1].startswith("-") else (None, None)
    if argv and argv[0].startswith("--workspace="):
        value = argv[0].partition("=")[2]
        return (value, argv[1:]) if value else (None, None)
    return None, argv


def _runs_list_options(args: list[str]) -> dict | None:
    """``runs list``'s options as the click command would receive them, or None
    when they hold anything this parser does not fully understand."""
    options: dict = {
        "worker": [],
        "status": [],
        "task": None,
        "error_kinds": [],
        "since": None,
        "until": None,
        "limit": "20",
        "unreviewed": False,
        "json": False,
        "fmt": None,
    }
    index = 0
    while index < len(args):
        token = args[index]
        name, eq, value = token.partition("=")
        if token == "--unreviewed":
            options["unreviewed"] = True
        elif token == "--json":
            follow = args[index + 1] if index + 1 < len(args) else None
            if follow is not None and not (follow.startswith("-") and len(follow) > 1):
                return None  # a field list, or an argument click should refuse
            options["json"] = True
        elif name in _VALUES:
            if not eq:
                index += 1
                if index >= len(args):
                    return None
                value = args[index]
            if not value or (not eq and value.startswith("-")):
                return None
            key, repeatable = _VALUES[name]
            if repeatable:
                options[key].append(value)
            else:
                options[key] = value
        else:
            return None
        index += 1
    if options["fmt"] not in (None, *_FORMATS):
        return None
    try:  # click's IntRange(0): int() as it is, whatever digits or spaces it accepts
        options["limit"] = int(options["limit"])
    except ValueError:  # '²' is a digit to isdigit(), not to int(); so are 5,000 digits
        return None
    return options if options["limit"] >= 0 else None


def _runs_list(
    workspace: str | None,
    *,
    worker: list[str],
    status: list[str],
    task: str | None,
    error_kinds: list[str],
    since: str | None,
    until: str | None,
    limit: int,
    unreviewed: bool,
    json: bool,
    fmt: str | None,
) -> int:
    """What ``cli.runs.list_cmd`` does without ``--watch``."""
    from workerctl.app import App
    from workerctl.cli.output import emit, shape_of
    from workerctl.cli.runs_list import HEADERS, RUN_COLUMNS, listed, table_rows

    shape, as_json = shape_of("" if json else None, None, fmt == "ndjson")
    fmt = "json" if as_json else (fmt or "table")  # as ``common.output_options`` does
    items = listed(App(workspace), worker, status, task, error_kinds, since, until, unreviewed, limit)
    emit(fmt, items, RUN_COLUMNS, lambda: table_rows(items), HEADERS, shape, empty="no runs match")
    return 0


def _say(text: str) -> int:
    """Print help or the version as click does, from its ``main``: a reader that went
    away (EPIPE) ends with status 1 and nothing said; any other failure to write is
    not caught (click's ``main`` lets it through)."""
    from workerctl.cli.output import echo

    try:
        echo(text)
    except BrokenPipeError as gone:
        from workerctl.cli.failures import failure

        failure(gone)  # quiet at exit, as click's _PacifyFlushWrapper keeps it
        return 1
    return 0


def _run(command: Callable[[], int]) -> int:
    """Run ``command``; a failure ends as it does under click (``cli.failures``)."""
    from workerctl.cli.failures import ENDINGS, failure
    from workerctl.errors import WorkerctlError

    try:
        return command()
    except (WorkerctlError, *ENDINGS) as exc:
        message, code = failure(exc)
        if message is not None:
            from workerctl.cli.output import echo

            echo(message, err=True)
        return code


def _help_width() -> int:
    """The width click gives help: the terminal's columns, at most 80, minus 2."""
    from workerctl.render import terminal_columns

    return max(min(terminal_columns(80), 80) - 2, 50)


def root_help(width: int) -> str:
    """``workerctl --help`` as click formats it, from the same texts (``cli.commands``)."""
    from workerctl.cli.commands import COMMANDS, PLUGIN_COMMANDS_NOTE, ROOT_HELP, ROOT_OPTIONS

    paragraphs = [
        " ".join(line.strip() for line in block.splitlines()) for block in ROOT_HELP.strip().split("\n\n")
    ]
    options = [(f"{flags} {metavar}" if metavar else flags, text) for flags, metavar, text in ROOT_OPTIONS]
    lines = ["Usage: workerctl [OPTIONS] COMMAND [ARGS]...", ""]
    for paragraph in paragraphs:
        lines += [*_wrap(paragraph, width, "  "), ""]
    lines += ["Options:", *_definitions(options, width), ""]
    lines += ["Commands:", *_definitions([(n, COMMANDS[n][1]) for n in sorted(COMMANDS)], width), ""]
    lines += ["Plugin commands:", *_wrap(PLUGIN_COMMANDS_NOTE, width, "  ")]
    return "\n".join(lines)


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    import textwrap

    return textwrap.TextWrapper(
        width, initial_indent=indent, subsequent_indent=indent, replace_whitespace=False
    ).wrap(text)


def _definitions(rows: list[tuple[str, str]], width: int) -> list[str]:
    """click's definition list (``HelpFormatter.write_dl``) at an indent of two."""
    first_col = min(max(len(term) for term, _ in rows), 30) + 2
    text_width = max(width - first_col - 2, 10)
    lines = []
    for term, text in rows:
        wrapped = _wrap(text, text_width) or [""]
        if len(term) <= first_col - 2:
            lines.append(f"  {term.ljust(first_col)}{wrapped[0]}")
        else:
            lines += [f"  {term}", f"{'':>{first_col + 2}}{wrapped[0]}"]
        lines += [f"{'':>{first_col + 2}}{line}" for line in wrapped[1:]]
    return lines
