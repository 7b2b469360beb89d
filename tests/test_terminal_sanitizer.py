"""No data reaches a terminal raw: escape sequences and control characters from records,
step outputs, errors, tool arguments and plugin text are shown as text, in every
command's default output; ``--json`` keeps the exact data, JSON-escaped.

The terminal cases run each command as a real process on a real pseudo-terminal (the
``pty`` module), so the stream is a terminal exactly as a person's is."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import make_worker, run_workerctl
from workerctl.plugins.manager import get_registry
from workerctl.sanitize import for_terminal, is_safe, json_safe, own_sgr
from workerctl.workspace import init_workspace

#: what a hostile field holds: OSC 52 (clipboard), OSC 0 (title), clear screen, cursor
#: up, DCS, C1 CSI, a bare CR, BEL, a bidi override
EVIL = (
    "\x1b]52;c;SGVsbG8=\x07 \x1b]0;pwned\x07 \x1b[2J\x1b[H \x1b[3A \x1bP1$qm\x1b\\ "
    "\x9b31m \x9d0;t\x9c \rHIDE \x07 \u202egnp.exe \x1b_apc\x1b\\ "
    # a colour code of the kind workerctl writes itself, which must not stay open past
    # its field, and characters a terminal shows as nothing (zero-width space and joiner,
    # byte-order mark, line separator, a tag character, a Hangul filler)
    "\x1b[1mSTAYSOPEN \u200bzw\u200dj\ufeffbom\u2028ls\U000e0041tag\u3164fill"
)
INVISIBLE_BYTES = [c.encode() for c in "\u200b\u200d\ufeff\u2028\U000e0041\u3164"]
OWN_SGR = re.compile(rb"\x1b\[(?:3[1-6]|1|22|0)m")


def _terminal_bytes(argv: list[str], env: dict[str, str], timeout: float = 60) -> tuple[bytes, int]:
    """Run ``argv`` with stdout and stderr on one new pseudo-terminal; all it wrote."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    out = bytearray()
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], timeout)
            if not ready:
                proc.kill()
                raise AssertionError(f"{argv} wrote nothing for {timeout}s")
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
    return bytes(out), proc.wait(timeout=timeout)


def _on_terminal(workspace, *args: str, colour: bool = False) -> tuple[bytes, int]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update({"COLUMNS": "200", "TERM": "xterm-256color"})
    if not colour:
        env["NO_COLOR"] = "1"
    return _terminal_bytes([sys.executable, "-m", "workerctl", "-w", str(workspace.root), *args], env)


def _assert_clean(data: bytes, colour: bool) -> None:
    rest = OWN_SGR.sub(b"", data) if colour else data
    for bad in (b"\x1b", b"\xc2\x9b", b"\xc2\x9d", b"\xc2\x9c", b"\x07", b"\r\x48", b"\xe2\x80\xae"):
        assert bad not in rest, (bad, data[:2000])
    for bad in [b"\x1b[1mSTAYSOPEN", *INVISIBLE_BYTES]:  # checked on the whole output, colour or not
        assert bad not in data, (bad, data[:2000])
    # the pty turns each \n into \r\n; any other \r came from data
    assert b"\r" not in rest.replace(b"\r\n", b"\n"), data[:2000]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A record whose title and description hold EVIL, and a run of a command worker
    whose output and stderr hold it too, and that failed with it in its error.

    Built once per module (it costs four real processes): the tests only read it, but
    for new runs of ``evil`` that no test counts."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    workspace = init_workspace(tmp_path / "ws", get_registry())
    records = tmp_path / "evil.json"
    records.write_text(
        json.dumps(
            [{"id": "T-666", "type": "task", "title": f"evil {EVIL}", "status": "open", "description": EVIL}]
        ),
        encoding="utf-8",
    )
    assert run_workerctl("records", "import", str(records), workspace=workspace).returncode == 0
    script = workspace.root / "evil_step.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, sys
            sys.stdin.read()
            sys.stderr.write({EVIL!r} * 3)
            print(json.dumps({{"text": "Blocker: T-666 " + {EVIL!r}}}))
            """
        ),
        encoding="utf-8",
    )
    make_worker(
        workspace,
        "evil",
        output_mode="review_note",
        executor="{name: command, argv: [python3, evil_step.py]}",
    )
    bad = workspace.root / "bad_step.py"
    bad.write_text(
        f"import sys\nsys.stdin.read()\nsys.stderr.write({EVIL!r})\nsys.exit(3)\n", encoding="utf-8"
    )
    make_worker(
        workspace,
        "evil-fail",
        output_mode="review_note",
        executor="{name: command, argv: [python3, bad_step.py]}",
    )
    ok = run_workerctl("run", "start", "evil", "--task", "T-666", "--json", workspace=workspace)
    assert ok.returncode == 0, ok.stderr
    failed = run_workerctl("run", "start", "evil-fail", "--task", "T-666", "--json", workspace=workspace)
    return workspace, json.loads(ok.stdout)["id"], json.loads(failed.stdout)["id"]


@pytest.mark.slow
@pytest.mark.parametrize("colour", [False, True])
def test_no_escape_sequence_from_data_reaches_the_terminal(hostile, colour):
    workspace, ok_id, failed_id = hostile
    commands = [
        ("records", "show", "T-666"),
        ("records", "list"),
        ("run", "inspect", ok_id),
        ("run", "inspect", failed_id),
        ("runs", "list"),
        ("run", "troubleshoot", "--id", failed_id),
        ("run", "review", ok_id),
        ("records", "show", f"T-{EVIL}"),  # an error message quoting the argument
        ("run", "start", "evil", "--task", "T-666", "--allow-repeat"),  # the card of a new run
    ]
    seen_evil = 0
    for args in commands:
        data, _status = _on_terminal(workspace, *args, colour=colour)
        assert b"Traceback" not in data, data.decode(errors="replace")
        _assert_clean(data, colour)
        seen_evil += "\ufffdHIDE".encode() in data  # the text around the sequences is shown
    assert seen_evil >= 4


def test_json_keeps_the_exact_data(hostile):
    workspace, ok_id, _ = hostile
    data, status = _on_terminal(workspace, "records", "show", "T-666", "--json")
    assert status == 0
    _assert_clean(data, colour=False)
    record = json.loads(data.replace(b"\r\n", b"\n"))
    assert record["title"] == f"evil {EVIL}" and EVIL in record["fields"].values()
    run = json.loads(run_workerctl("run", "inspect", ok_id, "--json", workspace=workspace).stdout)
    assert EVIL in run["output"]


def test_a_pipe_gets_the_same_text_as_a_terminal(hostile):
    workspace, ok_id, _ = hostile
    piped = run_workerctl("run", "inspect", ok_id, workspace=workspace)
    assert "\x1b" not in piped.stdout and "\x9b" not in piped.stdout and "\ufffdHIDE" in piped.stdout


_TEXT = st.text(st.characters(blacklist_categories=()), max_size=200) | st.binary(max_size=200).map(
    lambda b: b.decode("latin-1")
)


@settings(max_examples=1000, deadline=None)
@given(_TEXT)
def test_the_sanitizer_leaves_nothing_a_terminal_obeys(text):
    shown = for_terminal(text)
    assert is_safe(shown)
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]", shown)
    assert for_terminal(shown) == shown
    coloured = for_terminal(text, colour=True)
    assert "\x1b" not in re.sub(r"\x1b\[(?:3[1-6]|1|22|0)m", "", coloured)
    assert "\x9b" not in coloured and "\x07" not in coloured


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_shown_without_escapes(raw):
    for text in (
        raw.decode("utf-8", "replace"),
        raw.decode("latin-1"),
        raw.decode("utf-8", "surrogateescape"),
    ):
        shown = for_terminal(text)
        assert "\x1b" not in shown and "\x9b" not in shown and "\x07" not in shown


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
@pytest.mark.slow
def test_json_output_is_exact_and_safe(value):
    encoded = json_safe(json.dumps(value, ensure_ascii=False))
    assert json.loads(encoded) == value
    assert is_safe(encoded.replace("\n", ""))


def test_the_sanitizer_keeps_only_its_own_colours():
    red = f"{own_sgr('31')}red{own_sgr('0')}"
    assert for_terminal(red, colour=True) == "\x1b[31mred\x1b[0m"
    assert for_terminal(red) == "red"
    assert for_terminal(f"a\x1b]52;c;x\x07b{own_sgr('31')}c", colour=True) == "ab\x1b[31mc"
    # a code in data is removed even while colour is on, its own codes' numbers included:
    # it cannot stay open past its field (a record title's bold ran on into the card)
    assert for_terminal("\x1b[31mred\x1b[0m", colour=True) == "red"
    assert for_terminal("SGR1 \x1b[1mHIDDEN", colour=True) == "SGR1 HIDDEN"
    assert for_terminal("\x1b[38;5;1mx\x1b[2J", colour=True) == "x"  # only its own codes
    assert for_terminal("a\tb\nc\rd\udc80\u202e") == "a\tb\nc\ufffdd\ufffd\ufffd"
