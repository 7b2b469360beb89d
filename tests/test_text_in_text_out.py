"""Text in, text out: input that is not text is refused naming where (record files,
standard input), step output that is not text is stored escaped and the run goes on
(never a traceback, never "the process died"); JSON records have the YAML limits."""

from __future__ import annotations

import json
import textwrap

import pytest

from helpers import make_worker, run_workerctl


def _nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        (
            "sur.json",
            '[{"id": "T-77", "type": "task", "title": "lone \\udc80"}]',
            "[0].title: holds a lone surrogate",
        ),
        (
            "sur.jsonl",
            '{"id": "T-77", "type": "task", "title": "x", "fields": {"k\\ud800": 1}}\n',
            "a key holds a lone",
        ),
        (
            "deep450.json",
            json.dumps([{"id": "T-77", "type": "task", "title": "x", "d": _nested(450)}]),
            "nested more than 64",
        ),
        (
            "deep500.json",
            json.dumps([{"id": "T-77", "type": "task", "title": "x", "d": _nested(500)}]),
            "nested more than 64",
        ),
        (
            "deep70.json",
            json.dumps([{"id": "T-77", "type": "task", "title": "x", "d": _nested(70)}]),
            "nested more than 64",
        ),
        (
            "deep5000.json",
            '[{"id": "T-77", "type": "task", "title": "x", "d": ' + "[" * 5000 + "]" * 5000 + "}]",
            "nested",
        ),
    ],
)
def test_a_record_file_that_is_not_text_or_too_deep_is_refused(workspace, tmp_path, name, content, where):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = run_workerctl("records", "import", str(path), workspace=workspace)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and str(path) in result.stderr and where in result.stderr
    assert run_workerctl("records", "show", "T-77", workspace=workspace).returncode == 3  # nothing imported


def test_a_record_nested_within_the_limit_imports_and_shows(workspace, tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(
        json.dumps([{"id": "T-77", "type": "task", "title": "x", "d": _nested(40)}]), encoding="utf-8"
    )
    assert run_workerctl("records", "import", str(path), workspace=workspace).returncode == 0
    shown = run_workerctl("records", "show", "T-77", workspace=workspace)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr


def test_invalid_utf8_on_standard_input_is_refused(workspace):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "workerctl", "-w", str(workspace.root), "records", "import", "-"],
        input=b'[{"id": "T-77", "type": "task", "title": "bad \xff byte"}]',
        capture_output=True,
    )
    assert proc.returncode == 2 and b"<stdin>" in proc.stderr and b"Traceback" not in proc.stderr


@pytest.mark.parametrize("source", ["stdin", "file.yaml", "file.json"])
def test_json_records_with_escaped_emoji_import_from_anywhere(workspace, tmp_path, source):
    """JSON as ``json.dumps`` writes it (an emoji as a surrogate-pair escape) imports from
    standard input and from a file of any suffix, with the same title as from a .json
    file (standard input was read as YAML, which refused the escape)."""
    text = json.dumps([{"id": "T-78", "type": "task", "title": "ship \U0001f600 now", "status": "open"}])
    assert "\\ud83d\\ude00" in text
    if source == "stdin":
        done = run_workerctl("records", "import", "-", workspace=workspace, input=text)
    else:
        path = tmp_path / source
        path.write_text(text, encoding="utf-8")
        done = run_workerctl("records", "import", str(path), workspace=workspace)
    assert done.returncode == 0, done.stderr
    shown = run_workerctl("records", "show", "T-78", "--json", workspace=workspace)
    assert json.loads(shown.stdout)["title"] == "ship \U0001f600 now"


def test_step_output_that_is_not_text_is_stored_escaped(workspace):
    """A lone surrogate in the final text (a JSON escape on the program's stdout) and
    bytes that are not UTF-8 on stderr: the run completes, the output keeps the
    surrogate exactly (as its JSON escape in the file and in --json), and a person
    sees U+FFFD in its place (the terminal sanitizer)."""
    script = workspace.root / "odd_step.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            sys.stdin.read()
            sys.stderr.buffer.write(b"bad bytes \\xff\\xfe\\n")
            sys.stdout.write('{"text": "Blocker: T-1042 lone \\\\udc80 here"}')
            """
        ),
        encoding="utf-8",
    )
    make_worker(
        workspace, "odd", output_mode="review_note", executor="{name: command, argv: [python3, odd_step.py]}"
    )
    result = run_workerctl("run", "start", "odd", "--task", "T-1042", "--json", workspace=workspace)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "died" not in result.stdout
    run = json.loads(result.stdout)
    assert run["status"] == "completed" and run["output"] == "Blocker: T-1042 lone \udc80 here"
    shown = run_workerctl("run", "inspect", run["id"], workspace=workspace)
    assert shown.returncode == 0 and "lone \ufffd here" in shown.stdout
    listed = run_workerctl("runs", "list", workspace=workspace)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr


@pytest.mark.parametrize("lone", ["dc80", "d800"])
def test_search_and_jq_read_a_run_that_holds_a_lone_surrogate(workspace, lone):
    """Such a run is searched and its snippet shown (SQLite refused to encode the text:
    a traceback), and ``--jq`` reads it with U+FFFD in the surrogate's place (libjq
    refused the whole list for a lone high surrogate: exit 2, "bad usage")."""
    script = workspace.root / "lone_step.py"
    script.write_text(
        "import sys\nsys.stdin.read()\n"
        f'sys.stdout.write(\'{{"text": "Blocker: T-1042 hello \\\\u{lone} world"}}\')\n',
        encoding="utf-8",
    )
    make_worker(
        workspace,
        "lone",
        output_mode="review_note",
        executor="{name: command, argv: [python3, lone_step.py]}",
    )
    started = run_workerctl("run", "start", "lone", "--task", "T-1042", workspace=workspace)
    assert started.returncode == 0, started.stderr
    found = run_workerctl("runs", "search", "hello", workspace=workspace)
    assert found.returncode == 0, found.stderr
    assert "Traceback" not in found.stderr and "hello ? world" in found.stdout
    listed = run_workerctl("runs", "list", "--jq", ".[].output", workspace=workspace)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "Blocker: T-1042 hello \ufffd world"
    kept = run_workerctl("runs", "list", "--json", "output", workspace=workspace)
    assert json.loads(kept.stdout)[0]["output"] == f"Blocker: T-1042 hello {chr(int(lone, 16))} world"


def test_an_argument_that_is_not_utf8_is_a_usage_error(workspace):
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "workerctl",
            "-w",
            str(workspace.root),
            "records",
            "show",
            os.fsdecode(b"T-\xff"),
        ],
        capture_output=True,
    )
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("executor", "field"),
    [
        ('{name: command, argv: [python3, step.py], env: {"A=B": x}}', "executor.env"),
        ('{name: command, argv: [python3, step.py], env: {"": x}}', "executor.env"),
        ('{name: command, argv: [python3, step.py], env: {MODE: "a\\0b"}}', "executor.env"),
        ('{name: command, argv: ["python3\\0", step.py]}', "executor.argv"),
        ('{name: command, argv: [python3, step.py], pass_env: ["HOME=1"]}', "executor.pass_env"),
        ('{name: command, argv: [python3, step.py], cwd: "a\\0"}', "executor.cwd"),
    ],
)
def test_a_command_the_system_cannot_start_is_an_invalid_worker(workspace, executor, field):
    """Text the system refuses as an argument, a variable or a folder (a NUL, an '=' in a
    name) is a worker file problem naming the field (exit 2), before
    any run: it used to pass ``worker validate`` and put subprocess's traceback on the
    card of a failed run."""
    make_worker(workspace, "odd", executor=executor)
    checked = run_workerctl("worker", "validate", "odd", workspace=workspace)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert field in checked.stdout + checked.stderr
    started = run_workerctl("run", "start", "odd", "--task", "T-1042", workspace=workspace)
    assert started.returncode == 2, started.stdout + started.stderr
    assert "Traceback" not in started.stdout + started.stderr
    assert run_workerctl("runs", "list", "--format", "ids", workspace=workspace).stdout.strip() == ""


def test_a_detached_run_in_a_folder_whose_name_is_not_utf8(workspace, tmp_path):
    """A workspace folder whose path is not UTF-8 works through WORKERCTL_WORKSPACE, and
    so does a detached run's background process: it was handed the path as '-w', an
    argument it refused as not UTF-8, and the run was marked crashed with no word."""
    import os
    import time

    odd = tmp_path / os.fsdecode(b"ws\xff")
    workspace.root.rename(odd)
    env = {"WORKERCTL_WORKSPACE": str(odd)}
    started = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1043", "--detach", env=env)
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.split()[-1] if started.stdout.split() else ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = run_workerctl("run", "inspect", run_id, "--json", env=env)
        if shown.returncode == 0 and json.loads(shown.stdout)["status"] not in (
            "pending",
            "queued",
            "running",
        ):
            break
        time.sleep(0.2)
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert run["status"] == "completed", run.get("error")
