"""The one terminal object: prompting, width, the colour policy, and the sanitizer every
piece of data text passes on its way to a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workerctl import render
from workerctl.sanitize import REPLACEMENT, for_terminal
from workerctl.terminal import Styled, Terminal

CONTROLS = {chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]} - {"\n", "\t"}


@given(st.text())
def test_sanitized_text_holds_no_control_but_newline_and_tab(text):
    shown = for_terminal(text)
    assert not CONTROLS & set(shown)
    assert for_terminal(shown) == shown  # once is enough


BIDI_OVERRIDES = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
#: what a terminal shows as nothing or obeys: control, format and separator characters
#: (and lone surrogates), by their Unicode category
INVISIBLE_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")
#: default-ignorable code points that Unicode files as letters or marks (DerivedCoreProperties)
IGNORABLE_LETTERS = "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"
# (plane 14 is default-ignorable whole: tags, variation selectors, unassigned)
VISIBLE = st.characters(blacklist_categories=INVISIBLE_CATEGORIES).filter(
    lambda c: c not in IGNORABLE_LETTERS and not 0xE0000 <= ord(c) <= 0xE0FFF
)


# lone surrogates (Cs: not text, a terminal cannot show one) and the bidi overrides
# (they reorder what is shown) are replaced too
@given(st.text(alphabet=VISIBLE))
def test_text_without_controls_is_shown_as_it_is(text):
    assert for_terminal(text) == text


@given(
    st.text(
        alphabet=VISIBLE,
        min_size=1,
    ),
    st.text(min_size=1),
)
def test_a_sequence_takes_nothing_before_it(before, inside):
    """Text before an escape sequence is kept whatever the sequence holds."""
    assert for_terminal(before + "\x1b]0;" + inside).startswith(before)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x1b[31mred\x1b[0m", "ared"),  # CSI: colour
        ("\x1b[2J\x1b[Hcleared", "cleared"),  # CSI: clear the screen, move the cursor
        ("x\x1b]0;pwned\x07y", "xy"),  # OSC: the window title, ended by BEL
        ("x\x1b]8;;http://e.test\x1b\\link\x1b]8;;\x1b\\y", "xlinky"),  # OSC 8: a hyperlink
        ("d\x1bPq#0;2;0;0;0\x1b\\e", "de"),  # DCS (sixel), ended by ST
        ("a\x9b2Jb", "ab"),  # 8-bit CSI
        ("a\x9d0;t\x9cb", "ab"),  # 8-bit OSC and ST
        ("over\rwrite", f"over{REPLACEMENT}write"),  # a carriage return rewrites the line
        ("bell\x07", f"bell{REPLACEMENT}"),
        ("nel\x85x", f"nel{REPLACEMENT}x"),
        ("lines\nand\ttabs", "lines\nand\ttabs"),
        ("é ✓ 日本", "é ✓ 日本"),
    ],
)
def test_escape_sequences_and_controls(text, shown):
    assert for_terminal(text) == shown


@pytest.mark.parametrize(
    ("environ", "colour"),
    [
        ({}, False),  # a pipe: no colour
        ({"NO_COLOR": "1"}, False),
        ({"NO_COLOR": ""}, False),  # empty: the policy falls through to "a terminal?"
        ({"FORCE_COLOR": "1"}, True),
        ({"FORCE_COLOR": "0"}, True),  # set and not empty, whatever the value
        ({"FORCE_COLOR": ""}, False),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),  # NO_COLOR first
        ({"FORCE_COLOR": "1", "NO_COLOR": ""}, True),
    ],
)
def test_colour_policy_off_a_terminal(environ, colour):
    assert Terminal(environ).colour() is colour


def test_width_from_columns_else_the_fallback():
    assert Terminal({"COLUMNS": "77"}).width() == 77
    assert Terminal({"COLUMNS": "zero"}).width(fallback=99) == 99
    assert Terminal({"COLUMNS": "-5"}).width(fallback=99) == 99
    assert Terminal({}).width(fallback=99) == 99  # stdout is not a terminal under pytest


def test_styled_text_is_shown_as_it_is_and_data_is_not():
    assert Terminal({}).show(Styled("\x1b[31mx\x1b[0m")) == "\x1b[31mx\x1b[0m"
    assert Terminal({}).show("\x1b[31mx\x1b[0m") == "x"
    assert Terminal({}).show(42) == "42"


def test_colour_sanitizes_what_it_wraps(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = render.colour("done\x1b]0;title\x07", "completed")
    assert isinstance(coloured, Styled)
    assert for_terminal(coloured, colour=True) == "\x1b[32m\x1b[22mdone\x1b[0m"  # as the guard shows it
    assert for_terminal(coloured) == "done"  # colour off: none of its codes


def test_every_invisible_character_is_replaced():
    """The rule, checked against this Python's Unicode database, every code point: a
    character a terminal shows as nothing, obeys or lets reorder the line is replaced."""
    import unicodedata

    invisible = [
        chr(c)
        for c in range(0x110000)
        if chr(c) not in "\n\t"
        and (
            unicodedata.category(chr(c)) in INVISIBLE_CATEGORIES
            or chr(c) in IGNORABLE_LETTERS
            or 0xE0000 <= c <= 0xE0FFF
        )
    ]
    assert len(invisible) > 500
    for char in invisible:  # replaced, or (ESC and the 8-bit introducers) removed with their sequence
        assert char not in for_terminal(f"a{char}b")
    # the adversarial report's cases, by name
    for char in "\u200b\u200d\ufeff\u200f\u2028\u2029\xad\U000e0041\u3164\u034f\u061c":
        assert for_terminal(f"a{char}b") == f"a{REPLACEMENT}b"


@given(st.text())
def test_json_keeps_invisible_characters_as_escapes(text):
    """--json stays the exact data: what the terminal must not see is escaped, not lost."""
    import json

    from workerctl.sanitize import is_safe, json_safe

    encoded = json_safe(json.dumps(text, ensure_ascii=False))
    assert json.loads(encoded) == text
    assert is_safe(encoded)


def in_a_pty(argv: list[str], env: dict[str, str]) -> bytes:
    """``workerctl argv`` with stdin, stdout and stderr on a pseudo-terminal."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "workerctl", *argv],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=env,
            timeout=60,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other end is closed and everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert done.returncode == 0, b"".join(chunks)
        return b"".join(chunks)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


@pytest.fixture
def listed(workspace, wcli):
    """A workspace with a completed run whose record title holds an escape sequence."""
    assert wcli("run", "start", "overdue-task-review", "--task", "T-1042").exit_code == 0
    return workspace


@pytest.mark.parametrize(
    ("environ", "colour"),
    [({}, True), ({"NO_COLOR": "1"}, False), ({"NO_COLOR": ""}, True), ({"FORCE_COLOR": "1"}, True)],
)
def test_colour_on_a_real_terminal(listed, environ, colour):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    out = in_a_pty(["-w", str(listed.root), "runs", "list"], {**env, **environ})
    assert b"completed" in out
    assert (b"\x1b[32m" in out) is colour


def test_force_colour_into_a_pipe(listed):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    piped = subprocess.run(
        [sys.executable, "-m", "workerctl", "-w", str(listed.root), "runs", "list"],
        capture_output=True,
        env={**env, "FORCE_COLOR": "1"},
        timeout=60,
    )
    assert piped.returncode == 0 and b"\x1b[32m" in piped.stdout
    plain = subprocess.run(
        [sys.executable, "-m", "workerctl", "-w", str(listed.root), "runs", "list"],
        capture_output=True,
        env={**env, "NO_COLOR": ""},
        timeout=60,
    )
    assert plain.returncode == 0 and b"\x1b" not in plain.stdout


def test_a_start_from_a_terminal_is_manual_and_from_a_script_is_not(listed):
    """The trigger a run records comes from ``at_keyboard``: a person at a terminal
    ("manual") or a script (stdin not a terminal)."""
    env = {**os.environ, "NO_COLOR": "1"}
    argv = ["-w", str(listed.root), "run", "start", "overdue-task-review", "--task", "T-1043", "--json"]
    out = in_a_pty(argv, env)
    assert b'"trigger": "manual"' in out
    piped = subprocess.run(
        [sys.executable, "-m", "workerctl", *argv[:-2], "T-1044", "--json"],
        capture_output=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert piped.returncode == 0 and b'"trigger": "script"' in piped.stdout


def _keyboard_into_a_pipe(argv: list[str], stdout_too: bool = False) -> subprocess.CompletedProcess[bytes]:
    """``workerctl argv`` typed at a terminal with its output captured, as in
    ``x=$(workerctl …)`` or ``workerctl … > log``: stdin on a pty, stdout and stderr
    pipes; ``stdout_too``: stdout on the pty as well, only stderr a pipe (``2> log``)."""
    leader, follower = pty.openpty()
    try:
        return subprocess.run(
            [sys.executable, "-m", "workerctl", *argv],
            stdin=follower,
            stdout=follower if stdout_too else subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1"},
            timeout=60,
        )
    finally:
        os.close(follower)
        os.close(leader)


@pytest.mark.slow
def test_no_question_goes_into_a_pipe(listed):
    """A question is asked only where it is seen: with stdout a pipe, 'run review' and
    'run troubleshoot --interactive' behave as in a script (they hung, the question
    written into the pipe); the run a person starts so is still 'manual'."""
    run_id = json.loads(in_a_pty(["-w", str(listed.root), "runs", "list", "--json", "id"], dict(os.environ)))[
        0
    ]["id"]
    review = _keyboard_into_a_pipe(["-w", str(listed.root), "run", "review", run_id])
    assert review.returncode == 2 and b"not on a terminal" in review.stderr, review
    failed = json.loads(
        _keyboard_into_a_pipe(
            ["-w", str(listed.root), "run", "start", "overdue-task-review", "--task", "T-3001", "--json"]
        ).stdout
    )
    walk = _keyboard_into_a_pipe(
        ["-w", str(listed.root), "run", "troubleshoot", failed["id"], "--interactive"]
    )
    assert walk.returncode == 2 and b"needs a terminal" in walk.stderr, walk
    started = _keyboard_into_a_pipe(
        ["-w", str(listed.root), "run", "start", "overdue-task-review", "--task", "T-1043", "--json"]
    )
    assert started.returncode == 0 and json.loads(started.stdout)["trigger"] == "manual"
    # stdin and stdout on the terminal, stderr into a log: a question asked on stderr
    # would be lost there (the second attack found the commands waiting for it)
    logged = _keyboard_into_a_pipe(["-w", str(listed.root), "run", "review", run_id], stdout_too=True)
    assert logged.returncode == 2 and b"not on a terminal" in logged.stderr, logged
