"""How ``workerctl`` writes to streams that are not an ordinary terminal: an ASCII or
latin-1 locale, a closed stream, a pipe whose reader has gone. Real processes, since
each of these is set up by the operating system, not by click's test runner."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from workerctl import render
from workerctl.sanitize import for_terminal


@pytest.fixture
def history(workspace, wcli):
    """Runs of two workers, completed and failed."""
    for task in ("T-1042", "T-1043"):
        assert wcli("run", "start", "overdue-task-review", "--task", task).exit_code == 0
    assert wcli("run", "start", "crm-activity-summary", "--record", "CO-3").exit_code in (0, 1)
    return workspace


def run_real(argv: list[str], env: dict[str, str], streams: str | None) -> tuple[int, bytes, bytes]:
    """(exit status, stdout, stderr) of ``workerctl argv`` in a real process whose
    streams are set up as ``streams`` says: None (pipes), "no stdout" (>&-),
    "no stderr" (2>&-) or "pipe gone" (stdout a pipe whose reader has already gone,
    ``| head`` done)."""
    out, err, close_fd = subprocess.PIPE, subprocess.PIPE, None
    write_end = None
    if streams == "no stdout":
        out, close_fd = None, 1
    elif streams == "no stderr":
        err, close_fd = None, 2
    elif streams == "pipe gone":
        read_end, write_end = os.pipe()
        os.close(read_end)
        out = write_end
    try:
        done = subprocess.run(
            [sys.executable, "-m", "workerctl", *argv],
            env={**os.environ, "NO_COLOR": "1", **env},
            stdout=out,
            stderr=err,
            timeout=60,
            preexec_fn=None if close_fd is None else lambda: os.close(close_fd),
        )
    finally:
        if write_end is not None:
            os.close(write_end)
    return done.returncode, done.stdout or b"", done.stderr or b""


ASCII_LOCALE = {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}


@pytest.mark.parametrize(
    ("argv", "env", "streams", "status"),
    [
        # stderr set to ASCII: the message about a name with é, no traceback
        (["WS", "runs", "list", "--worker", "\u00e9"], {"PYTHONIOENCODING": "ascii"}, None, 2),
        # ... and a table with its status symbols too
        (["WS", "runs", "list"], {"PYTHONIOENCODING": "ascii", "COLUMNS": "100"}, None, 0),
        (["WS", "runs", "list", "--format", "csv"], ASCII_LOCALE, None, 0),
        (["WS", "runs", "list", "--json"], ASCII_LOCALE, None, 0),
        # an escape sequence in a path: not written raw to a stream that is not a terminal
        (["-w", "/nonexistent/\x1b[31mred", "runs", "list"], {}, None, 2),
        # stdout closed (>&-): nothing to print to, and no complaint
        (["--help"], {}, "no stdout", 0),
        (["--version"], {}, "no stdout", 0),
        # stderr closed (2>&-): the error's exit status is kept
        (["WS", "runs", "list", "--worker", "nosuch"], {}, "no stderr", 3),
        # help into a pipe whose reader has gone: click's main ends that with status 1
        (["--help"], {}, "pipe gone", 1),
        (["--version"], {}, "pipe gone", 1),
        # a listing into such a pipe (``runs list | head -1``): done, quietly
        (["WS", "runs", "list"], {}, "pipe gone", 0),
        # a start or a batch with a failed run keeps its status (it exited 0)
        (["WS", "run", "start", "overdue-task-review", "--task", "T-3001"], {}, "pipe gone", 1),
        (
            ["WS", "run", "start", "overdue-task-review", "--task", "T-2001", "--task", "T-3001"],
            {},
            "pipe gone",
            1,
        ),
        (["WS", "run", "start", "overdue-task-review", "--task", "T-2001"], {}, "pipe gone", 0),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_streams_that_are_not_a_terminal(history, argv, env, streams, status):
    if argv[0] == "WS":
        argv = ["-w", str(history.root), *argv[1:]]
    code, out, err = run_real(argv, env, streams)
    assert code == status, err
    assert b"Traceback" not in err
    assert b"\x1b" not in out + err
    if streams is None:
        assert out or err  # it said something
    if streams == "pipe gone":
        assert err == b""


def test_a_locale_that_cannot_show_the_symbols_gets_question_marks(history):
    """A latin-1 terminal cannot show a status symbol (✓): '?' instead, not a
    UnicodeEncodeError traceback."""
    env = {"PYTHONIOENCODING": "latin-1", "COLUMNS": "100"}
    status, out, err = run_real(["-w", str(history.root), "runs", "list"], env, None)
    assert status == 0, err
    assert b"? completed" in out and b"overdue-task-review" in out


def test_colours_are_the_codes_click_writes(monkeypatch):
    monkeypatch.setattr(render, "use_colour", lambda stream=None: True)
    for key, name in render.COLOURS.items():
        for bold in (False, True):
            shown = for_terminal(render.colour("x", key, bold=bold), colour=True)  # through the guard
            assert shown == click.style("x", fg=name, bold=bold)
    plain_bold = render.colour("x", "no such key", bold=True)
    assert for_terminal(plain_bold, colour=True) == click.style("x", bold=True)
