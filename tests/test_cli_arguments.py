"""Hostile command-line arguments, in real processes: bytes that are not UTF-8, escape
sequences, unknown filter values. Each is exit 2 with one line naming the value and the
rule, never a traceback, and nothing on the terminal is raw control bytes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def workerctl(argv: list[bytes], cwd: str) -> subprocess.CompletedProcess[bytes]:
    """``workerctl`` with arguments given as bytes, as a shell passes them."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORKERCTL_WORKSPACE", "COLUMNS")}
    return subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"workerctl", *argv],
        capture_output=True,
        env={**env, "NO_COLOR": "1"},
        cwd=cwd,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([b"runs", b"list", b"--task", b"T-\x9b2J"], b"argument 4 is not UTF-8 text: b'T-\\x9b2J'"),
        ([b"runs", b"list", b"--task", b"T-\xff"], b"is not UTF-8 text"),
        ([b"runs", b"list", b"--task", b""], b"is not a valid record id"),
        ([b"runs", b"list", b"--error-kind", b"x\x9b"], b"is not UTF-8 text"),
        ([b"run", b"start", b"overdue-task-review", b"--reason", b"\xff"], b"not UTF-8"),
        ([b"-w", b"/tmp/\xff", b"runs", b"list"], b"argument 2 is not UTF-8 text"),
        ([b"runs", b"list", b"--error-kind", b"nosuch"], b"unknown error kind"),
        ([b"runs", b"rerun", b"--failed", b"--task", b"T-\xc3", b"--dry-run"], b"is not UTF-8 text"),
        ([b"runs", b"cancel", b"--task", b"../../x", b"--yes"], b"is not a valid record id"),
        ([b"runs", b"list", b"--worker", b"w\xc3\xa9"], b"is not a valid worker name"),  # UTF-8 é
        ([b"run", b"start", b"overdue-task-review", b"--task", b"T-\x1b]0;x\x07"], b"not a valid record id"),
        ([b"run", b"inspect", b"\x1b[31m"], b"is not a valid run id"),
        ([b"runs", b"list", b"--status", b"\x1b[2J"], b"unknown status"),
    ],
)
def test_hostile_arguments_are_usage_errors(workspace, argv, says):
    done = workerctl(argv, str(workspace.root))
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert b"Traceback" not in done.stderr
    assert b"\x1b" not in done.stdout + done.stderr and b"\x9b" not in done.stderr


def test_a_known_error_kind_and_a_valid_record_still_filter(workspace, wcli):
    assert wcli("run", "start", "overdue-task-review", "--task", "T-1042").exit_code == 0
    done = workerctl([b"runs", b"list", b"--task", b"T-1042", b"--format", b"ids"], str(workspace.root))
    assert done.returncode == 0 and len(done.stdout.split()) == 1
    done = workerctl([b"runs", b"list", b"--error-kind", b"crashed"], str(workspace.root))
    assert done.returncode == 0 and b"no runs match" in done.stderr


def test_a_records_file_that_is_not_utf8_is_named(workspace, tmp_path):
    """Found by hand: --records-from FILE holding bytes that are not UTF-8 ended in a
    UnicodeDecodeError traceback."""
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"T-1042\n\xff\xfeT-1043\n")
    done = workerctl(
        [b"run", b"start", b"overdue-task-review", b"--records-from", os.fsencode(ids)], str(workspace.root)
    )
    assert done.returncode == 2, done.stderr
    assert b"not UTF-8 text (byte 0xff at offset 7)" in done.stderr and os.fsencode(ids) in done.stderr
    assert b"Traceback" not in done.stderr
