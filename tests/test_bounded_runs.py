"""Bounded runs: outputs stored once, every field capped with a visible note.

Real programs through the ``command`` executor flood their streams; the run
file stays bounded, says what was cut, and holds the final answer once.
(Memory while flooding is measured by benchmarks/flood_bench.py, not here.)
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from helpers import make_worker, run_workerctl
from workerctl.history.store import History

FLOOD = """
import json, sys
sys.stdin.read()
size = int(sys.argv[1])
sys.stderr.write("E" * size + "\\nthe last line of stderr\\n")
sys.stdout.write(json.dumps({"text": "word " * (size // 5)}))
"""


def command_worker(workspace, name: str, script: str, *args: str) -> None:
    path = workspace.root / f"{name}.py"
    path.write_text(script)
    argv = json.dumps([sys.executable, str(path), *args])
    make_worker(workspace, name, output_mode="review_note", executor=f"{{name: command, argv: {argv}}}")


def set_limit(workspace, limit: int) -> None:
    settings = workspace.settings_file
    text = re.sub(r"(?m)^max_field_bytes:.*$", "", settings.read_text())
    settings.write_text(text + f"max_field_bytes: {limit}\n")


def start(workspace, name: str) -> dict:
    result = run_workerctl("run", "start", name, "--json", workspace=workspace, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_a_flood_is_cut_with_a_note_and_stored_once(workspace):
    set_limit(workspace, 100_000)
    command_worker(workspace, "flood", FLOOD, "3000000")
    run = start(workspace, "flood")
    body = History(workspace).body_path(run["id"])
    assert body.stat().st_size < 250_000, "one capped copy of the output, not two full ones"
    output = run_workerctl("run", "inspect", run["id"], "--output", workspace=workspace).stdout
    note = re.search(r"\[… truncated, (\d+) bytes; the first (\d+) kept\]", output)
    assert note, output[-300:]
    assert int(note.group(1)) >= 3_000_000 and int(note.group(2)) <= 100_000
    stored = json.loads(body.read_text())
    assert stored["iterations"][-1]["text"] is None
    assert stored["iterations"][-1]["text_is_output"] is True
    assert stored["iterations"][-1]["stderr"].endswith("the last line of stderr\n")
    assert len(stored["iterations"][-1]["stderr"]) <= 4000
    card = json.loads(run_workerctl("run", "inspect", run["id"], "--json", workspace=workspace).stdout)
    assert card["iterations"][-1]["text"] == card["output"], "read back whole"


def test_an_output_under_the_limit_is_kept_whole_and_once(workspace):
    command_worker(workspace, "medium", FLOOD, "60000")
    run = start(workspace, "medium")
    body = History(workspace).body_path(run["id"])
    output = run_workerctl("run", "inspect", run["id"], "--output", workspace=workspace).stdout
    assert "truncated" not in output and output.count("word ") == 12000
    assert body.stat().st_size < 90_000, "the 60 KB answer is stored once"


def test_tool_arguments_and_results_are_capped(workspace):
    set_limit(workspace, 1000)
    script = json.dumps(
        {
            "name": "echo",
            "script": [
                {"tool": "read_task", "arguments": {"task_id": "T-1042", "padding": "p" * 5000}},
                {"output": "done"},
            ],
        }
    )
    make_worker(workspace, "chatty", executor=script)
    result = run_workerctl("run", "start", "chatty", "--task", "T-1042", "--json", workspace=workspace)
    run = json.loads(result.stdout)
    stored = History(workspace).get(run["id"])
    arguments = stored.iterations[0].tool_calls[0].arguments
    assert isinstance(arguments, str) and len(arguments.encode()) < 1100
    assert re.search(r"truncated, \d{4} bytes", arguments)


def test_the_limit_is_checked(workspace):
    set_limit(workspace, 10)
    result = run_workerctl("runs", "list", workspace=workspace)
    assert result.returncode == 2
    assert "max_field_bytes" in result.stderr and "at least 1000" in result.stderr


def test_a_flood_that_is_not_a_step_fails_the_run_saying_so(workspace):
    set_limit(workspace, 1000)
    command_worker(workspace, "noise", "import sys\nsys.stdout.write('x' * 3000000)\n")
    result = run_workerctl("run", "start", "noise", "--json", workspace=workspace)
    assert result.returncode == 1
    run = json.loads(result.stdout)
    assert run["error"]["kind"] == "invalid_output"
    assert "wrote 3000000 bytes on stdout" in run["error"]["message"]
    assert History(workspace).body_path(run["id"]).stat().st_size < 20_000


NOTES = """
import json, sys
sys.stdin.read()
lines = [f"Entry {n}: {chr(97 + n % 26)}{n * 7919 % 1000} reviewed." for n in range(int(sys.argv[1]))]
sys.stdout.write(json.dumps({"text": "T-1042 is in progress.\\n" + "\\n".join(lines)}))
"""


def test_an_output_cut_at_the_limit_is_named_by_the_review(workspace):
    """The field limit's note ends with "…", which the review's visible reading folds
    into "...": the completion check must still read it as the limit's note."""
    set_limit(workspace, 2000)
    command_worker(workspace, "notes", NOTES, "400")
    run = start(workspace, "notes")
    assert "completion" in (run.get("failed_checks") or []), run.get("failed_checks")
    review = json.loads(run_workerctl("run", "review", run["id"], "--json", workspace=workspace).stdout)
    completion = next(c for c in review["checks"] if c["key"] == "completion")
    assert any("max_field_bytes" in e for e in completion["evidence"]), completion["evidence"]
