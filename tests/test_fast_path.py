"""The fast path (``cli.fast``): ``--help``, ``--version`` and ``runs list`` answered
without click must answer exactly as click does, and fall back to click for
anything it does not fully understand."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from helpers import record_missing_run
from workerctl import render
from workerctl.cli import cli
from workerctl.cli.fast import answer


@pytest.fixture
def history(workspace, wcli):
    """Runs of two workers, completed, failed and needing review."""
    for task in ("T-1042", "T-1043"):
        assert wcli("run", "start", "overdue-task-review", "--task", task).exit_code == 0
    assert wcli("run", "start", "crm-activity-summary", "--record", "CO-3").exit_code in (0, 1)
    record_missing_run(workspace)
    return workspace


def both_ways(argv, capsys):
    """(exit status, stdout, stderr) from the fast path and from click."""
    status = answer(argv)
    assert status is not None, f"the fast path left {argv} to click"
    fast = capsys.readouterr()
    result = CliRunner().invoke(cli, argv, prog_name="workerctl")
    return (status, fast.out, fast.err), (result.exit_code, result.stdout, result.stderr)


CORPUS = [
    [],
    ["--limit", "2"],
    ["--limit=0"],
    ["--worker", "overdue-task-review"],
    ["--worker=overdue-task-review", "--worker", "crm-activity-summary", "--limit", "1"],
    ["--status", "failed"],
    ["--status", "completed", "--status", "failed", "--json"],
    ["--task", "T-1043"],
    ["--record=T-1042", "--format", "ids"],
    ["--error-kind", "record_missing", "--format", "csv"],
    ["--unreviewed"],
    ["--since", "1h", "--until", "2099-01-01", "--format=ndjson"],
    ["--json", "--format", "ndjson"],
    ["--json"],
    ["--json", "--limit", "1"],
    ["--format", "table"],
    ["--worker", "nosuch"],  # exit 3
    ["--status", "bogus"],  # exit 2
    ["--task", "T-NOPE"],  # nothing matches
    ["--since", "not-a-time"],  # exit 2
    ["--limit", "\u0663"],  # an Arabic-Indic 3: int() reads it, so click does
    ["--limit=0007", "--format", "ids"],
    ["--limit", "x", "--limit", "1"],  # only the last value of an option counts
    ["--format", "yaml", "--format", "ids"],
    ["--task", "T-1042", "--record", "T-1043"],  # one option, two names: the last wins
    ["--json", "--json", "--limit", "1"],
]


@pytest.mark.parametrize("options", CORPUS, ids=lambda o: " ".join(o) or "(none)")
def test_runs_list_answers_as_click_does(history, options, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    fast, slow = both_ways(["-w", str(history.root), "runs", "list", *options], capsys)
    assert fast == slow
    assert fast[1] or fast[2]  # it said something: the comparison was of real output


def test_help_and_version_answer_as_click_does(tmp_path):
    """In real processes (click's runner wraps help at another width than a terminal)."""
    by_click = "from workerctl.cli.root import cli; cli(prog_name='workerctl')"
    by_main = "from workerctl.cli import main; main()"
    for columns in ("80", "200"):
        env = {**os.environ, "COLUMNS": columns}
        for argv in (["--help"], ["-h"], ["--version"], ["-w", str(tmp_path), "--help"]):
            fast, slow = (
                subprocess.run(
                    [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=60
                )
                for code in (by_main, by_click)
            )
            assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
            assert "Commands:" in fast.stdout or "version 0" in fast.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "list", "--json", "id,status"],  # a field list: ShapedCommand decides
        ["runs", "list", "--jq", ".[]"],
        ["runs", "list", "--watch"],
        ["runs", "list", "--help"],
        ["runs", "list", "--limit", "-1"],
        ["runs", "list", "--limit", "ten"],
        ["runs", "list", "--limit", "\u00b2"],  # a digit to str.isdigit, not to int()
        ["runs", "list", "--limit", "1" * 4301],  # more digits than int() converts
        ["runs", "list", "--limit=-1"],
        ["runs", "list", "--format", "yaml"],
        ["runs", "list", "--worker"],
        ["runs", "list", "--worker", "--json"],
        ["runs", "list", "--worker="],
        ["runs", "list", "--", "x"],
        ["runs", "list", "extra"],
        ["runs", "lis"],
        ["runs"],
        ["--workspace"],
        ["-x", "runs", "list"],
        [],
    ],
)
def test_anything_else_is_left_to_click(argv, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert answer(argv) is None


def test_shell_completion_is_left_to_click(history, monkeypatch):
    monkeypatch.setenv("_WORKERCTL_COMPLETE", "bash_complete")
    assert answer(["--help"]) is None
    assert answer(["-w", str(history.root), "runs", "list"]) is None
    env = {**os.environ, "COMP_WORDS": "workerctl runs li", "COMP_CWORD": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "workerctl"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "list" in done.stdout


def test_help_on_a_narrow_terminal_is_left_to_click(monkeypatch):
    """click wraps help to the terminal below 80 columns; the fast text is for 80+."""
    monkeypatch.setenv("COLUMNS", "60")
    assert answer(["--help"]) is None


def test_a_real_process_answers_without_importing_click(history):
    """What makes the fast path fast: neither click nor dataclasses (nor shutil) is
    imported by ``--help`` or ``runs list``; a test, since timing belongs in
    benchmarks/ (history_bench.py prints the figures)."""
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted(m for m in ('click', 'dataclasses', "
        "'shutil', 'inspect') if m in sys.modules), file=sys.stderr))\n"
        "from workerctl.cli import main\n"
        "main()\n"
    )
    for argv in (
        ["--help"],
        ["--version"],
        ["-w", str(history.root), "runs", "list"],
        ["-w", str(history.root), "runs", "list", "--json", "--status", "failed"],
    ):
        for _ in range(2):  # the second time: after any one-off catch-up of the indexes
            done = subprocess.run(
                [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=60
            )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip()
        assert done.stderr.strip().splitlines()[-1] == "[]", (argv, done.stderr)
    # and a form it leaves to click still works in a real process
    done = subprocess.run(
        [sys.executable, "-c", probe, "-w", str(history.root), "runs", "list", "--json", "id"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and '"id"' in done.stdout
    assert "'click'" in done.stderr


def test_a_closed_pipe_ends_quietly(history):
    """``runs list | head -1`` when head has gone: exit 0 and no traceback. The pipe's
    reading end is closed before the command starts, so its first write fails."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "workerctl", "-w", str(history.root), "runs", "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 0
    assert done.stderr == ""


def test_colours_are_the_codes_click_writes(monkeypatch):
    monkeypatch.setattr(render, "use_colour", lambda stream=None: True)
    for key, name in render.COLOURS.items():
        for bold in (False, True):
            assert render.colour("x", key, bold=bold) == click.style("x", fg=name, bold=bold)
    assert render.colour("x", "no such key", bold=True) == click.style("x", bold=True)


def _ageless(done: tuple) -> tuple:
    """(status, stdout, stderr) with the relative ages in a table made the same."""
    import re

    return (done[0], re.sub(rb"\b\d+ (s|min|h) ago", b"N ago", done[1] or b""), done[2])


def run_real(code, argv, env, streams):
    """(exit status, stdout, stderr) of ``code`` in a real process whose streams are
    set up as ``streams`` says: None (pipes), "no stdout" (>&-), "no stderr" (2>&-)
    or "pipe gone" (stdout a pipe whose reader has already gone, ``| head`` done)."""
    out, err, close_fd = subprocess.PIPE, subprocess.PIPE, None
    read_end = write_end = None
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
            [sys.executable, "-c", code, *argv],
            env={**os.environ, **env},
            stdout=out,
            stderr=err,
            timeout=60,
            preexec_fn=None if close_fd is None else lambda: os.close(close_fd),
        )
    finally:
        if write_end is not None:
            os.close(write_end)
    return done.returncode, done.stdout, done.stderr


BY_CLICK = "from workerctl.cli.root import cli; cli(prog_name='workerctl')"
BY_MAIN = "from workerctl.cli import main; main()"
ASCII_LOCALE = {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}


@pytest.mark.parametrize(
    ("argv", "env", "streams"),
    [
        # stderr set to ASCII: click writes its messages as UTF-8
        (["WS", "runs", "list", "--worker", "\u00e9"], {"PYTHONIOENCODING": "ascii"}, None),
        # ... and a table too (output.echo once let the status symbols raise UnicodeEncodeError)
        (["WS", "runs", "list"], {"PYTHONIOENCODING": "ascii", "COLUMNS": "100"}, None),
        (["WS", "runs", "list", "--format", "csv"], ASCII_LOCALE, None),
        # an escape sequence in a path: click strips it when stderr is not a terminal
        (["-w", "/nonexistent/\x1b[31mred", "runs", "list"], {}, None),
        # stdout closed (>&-): click prints nothing and exits 0
        (["--help"], {}, "no stdout"),
        (["--version"], {}, "no stdout"),
        # stderr closed (2>&-): the error's exit status is kept
        (["WS", "runs", "list", "--worker", "nosuch"], {}, "no stderr"),
        # help into a pipe whose reader has gone: click's main ends that with status 1
        (["--help"], {}, "pipe gone"),
        (["--version"], {}, "pipe gone"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_streams_are_written_as_click_writes_them(history, argv, env, streams):
    """In real processes: how a stream is set (an ASCII locale, closed, a pipe nobody
    reads, not a terminal) changes what click writes, so it must change what the
    fast path writes the same way."""
    if argv[0] == "WS":
        argv = ["-w", str(history.root), *argv[1:]]
    fast = run_real(BY_MAIN, argv, env, streams)
    # the two processes run a moment apart: a run's age may read "0 s ago", then "1 s ago"
    assert _ageless(fast) == _ageless(run_real(BY_CLICK, argv, env, streams))
    assert fast[0] in (0, 1, 2, 3)
    if streams is None:
        assert fast[1] or fast[2]  # it said something
        assert b"Traceback" not in fast[2] and b"\x1b" not in fast[2]


def test_a_locale_that_cannot_show_the_symbols_gets_question_marks(history):
    """A latin-1 terminal cannot show a status symbol (✓): '?' instead, not a
    UnicodeEncodeError traceback (in both paths: the table is printed the same way)."""
    env = {"PYTHONIOENCODING": "latin-1", "COLUMNS": "100"}
    for code in (BY_MAIN, BY_CLICK):
        status, out, err = run_real(code, ["-w", str(history.root), "runs", "list"], env, None)
        assert status == 0, err
        assert b"? completed" in out and b"overdue-task-review" in out
