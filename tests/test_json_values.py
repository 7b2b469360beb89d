"""Only JSON values come into workerctl (``workerctl.jsonvalues``): text, whole or
finite numbers, true/false, null, lists and mappings. A YAML date is its ISO text; a
NaN, an infinity, bytes, a set or any other object is refused where it comes in (the one
YAML loader at its line, a record at its field, an executor's step or a tool as the
executor's error), never a traceback, never a state file that holds it; every ``--json``
is one JSON document. Also the other breaks of the same fresh-brief round (adv26): a
record's links and flags checked against what the reader demands, a worker link to
nothing listed as one broken file, an endless input refused, a tool's ``SystemExit``
contained."""

from __future__ import annotations

import json
import math
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers
from helpers import run_workerctl
from workerctl.jsonvalues import not_json
from workerctl.workers.yaml_positions import RECORD_FILE, parse_yaml

#: YAML scalars as a file may hold them, JSON values or not
SCALARS = [
    "2026-12-01",
    "2026-12-1",
    "2026-12-01 10:00:00",
    "2026-12-01T10:00:00Z",
    ".nan",
    ".inf",
    "-.Inf",
    "1.0e+400",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!pairs [a: 1]",
    "12",
    "1.5",
    "'2026-12-01'",
    "true",
    "~",
    "text",
    "0x1f",
]


def _strict(text: str):
    """JSON as a strict reader (JavaScript's) reads it: NaN and Infinity refused."""

    def refuse(name):
        raise ValueError(name)

    return json.loads(text, parse_constant=refuse)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SCALARS), st.booleans()), min_size=1, max_size=6))
def test_the_yaml_loader_builds_json_values_or_refuses_at_a_line(items):
    lines = []
    for n, (scalar, as_key) in enumerate(items):
        plain = scalar if not scalar.startswith("!!") else None
        if as_key and plain is not None:
            lines.append(f"{plain}: v{n}")
        else:
            lines.append(f"k{n}: {scalar}")
    text = "\n".join(lines) + "\n"
    data, _, problems = parse_yaml(text, "f.yaml", RECORD_FILE)
    refused = [p for p in problems if p.message != "key given twice"]
    if refused:
        assert data is None and all(p.line >= 1 for p in refused)
        refusable = (".nan", ".inf", ".Inf", "e+400", "!!binary", "!!set", "!!omap", "!!pairs")
        assert any(s in text for s in refusable)
    else:
        assert not_json(data) is None, data
        json.dumps(data, allow_nan=False)


def test_a_plain_yaml_date_is_its_iso_text():
    text = "a: 2026-12-01\nb: 2026-12-01 10:00:00\n2026-01-02: x\nc: 2026-12-1\n"
    data, _, problems = parse_yaml(text, "f.yaml")
    assert not problems  # "2026-12-1" is no YAML date: text as it stands
    assert data == {"a": "2026-12-01", "b": "2026-12-01T10:00:00", "2026-01-02": "x", "c": "2026-12-1"}


@pytest.mark.parametrize("value", [".nan", ".inf", "!!set {a, b}", "!!binary aGVsbG8="])
def test_a_value_json_cannot_hold_is_refused_at_its_line(value):
    _, _, problems = parse_yaml(f"id: T-1\nextra: {value}\n", "r.yaml", RECORD_FILE)
    assert [(p.line, p.column) for p in problems] == [(2, 8)]


# -- as real processes --


def _write(path, text):
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_date_in_a_step_programs_arguments_is_its_text(workspace):
    """A date in an echo script's tool arguments ended ``run start`` in a traceback
    (``date is not JSON serializable``) after ``worker validate`` passed, and the run
    was never recorded."""
    _write(
        workspace.workers_dir / "d1.yaml",
        """\
        name: d1
        status: active
        instructions: read the task
        context_sources: [tasks]
        tool_categories: [productivity]
        output_mode: review_note
        executor:
          name: echo
          script: [{tool: read_task, arguments: {task_id: T-1042, due: 2026-12-01}}]
        """,
    )
    assert run_workerctl("worker", "validate", "d1", workspace=workspace).returncode == 0
    result = run_workerctl("run", "start", "d1", "--task", "T-1042", "--json", workspace=workspace)
    assert "Traceback" not in result.stderr
    run = _strict(result.stdout)
    call = run["iterations"][0]["tool_calls"][0]
    assert call["arguments"]["due"] == "2026-12-01"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("- {id: T-5001, type: task, title: x, extra: !!set {a, b}}\n", ":1:"),
        ("- {id: T-5001, type: task, title: x, score: .nan}\n", ":1:"),
        ('[{"id": "T-5001", "type": "task", "title": "x", "score": 1e999}]', "record 1: score"),
        ('[{"id": "T-5001", "type": "task", "title": "x", "score": NaN}]', "record 1: score"),
        ("- {id: T-5001, type: task, title: x, links: {project: 5}}\n", "links.project"),
        ("- {id: T-5001, type: task, title: x, safe_for_testing: 'false'}\n", "safe_for_testing"),
    ],
)
def test_a_record_the_reader_would_refuse_is_refused_by_the_import(workspace, tmp_path, body, named):
    """Each was imported (exit 0) or ended in a traceback; a link of the wrong kind then
    made ``records.json`` read as damaged for every later command, and a
    ``safe_for_testing: "false"`` was kept as true (a draft wrote on that record)."""
    before = workspace.records_file.read_bytes()
    source = _write(tmp_path / ("r.json" if body.startswith("[") else "r.yaml"), body)
    result = run_workerctl("records", "import", str(source), workspace=workspace)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert named in result.stderr
    assert workspace.records_file.read_bytes() == before
    assert run_workerctl("records", "list", workspace=workspace).returncode == 0


def test_a_date_in_the_settings_is_its_text(workspace):
    """``description: 2026-01-01`` in workerctl.yaml: the first command worked, every
    later one ended in a traceback (the settings cache could not be written)."""
    settings_file = workspace.root / "workerctl.yaml"
    settings_file.write_text(settings_file.read_text(encoding="utf-8") + "description: 2026-01-01\n")
    for _ in range(3):
        result = run_workerctl("runs", "list", workspace=workspace)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


def test_a_nan_in_a_state_file_is_damage_and_json_output_stays_json(workspace):
    """A record stored with a NaN before this rule prints as null: ``--json`` is one
    JSON document; a state file the history reads with a NaN in it is damaged."""
    from workerctl.storage.atomic import DamagedFile, encode_json, parse_json

    with pytest.raises(ValueError):
        encode_json({"score": math.nan})
    with pytest.raises(DamagedFile):
        parse_json(workspace.records_file, b'{"records": {"1": {"score": NaN}}}')
    data = json.loads(workspace.records_file.read_text(encoding="utf-8"))
    first = next(iter(data["records"].values()))
    first["fields"]["score"] = 1.5
    text = json.dumps(data).replace("1.5", "Infinity")  # as an older workerctl wrote it
    workspace.records_file.write_text(text, encoding="utf-8")
    shown = run_workerctl("records", "show", first["id"], "--json", workspace=workspace)
    if shown.returncode == 0:  # read as the older file it is: printed as JSON
        assert _strict(shown.stdout)["fields"]["score"] is None
    else:  # or refused as damaged: one line, exit 4
        assert shown.returncode == 4 and "Traceback" not in shown.stderr


def test_a_worker_link_to_nothing_is_one_broken_file(workspace):
    """A link inside the workspace to a missing file stopped ``workers list`` (exit 3,
    nothing listed); the same link pointing outside was listed as broken."""
    (workspace.workers_dir / "gone.yaml").symlink_to("../shared/gone.yaml")
    listed = run_workerctl("workers", "list", workspace=workspace)
    assert listed.returncode == 0 and "overdue-task-review" in listed.stdout
    assert "1 broken: gone" in listed.stdout + listed.stderr
    checked = run_workerctl("worker", "validate", workspace=workspace)
    assert (
        "gone.yaml" in checked.stdout + checked.stderr and "does not exist" in checked.stdout + checked.stderr
    )


def test_an_endless_ids_input_is_refused(workspace):
    """``--records-from /dev/zero`` read until the kernel killed the process."""
    result = run_workerctl(
        "run", "start", "overdue-task-review", "--records-from", "/dev/zero", workspace=workspace, timeout=60
    )
    assert result.returncode == 2 and "more than 64 MB" in result.stderr, result.stderr
    assert json.loads(run_workerctl("runs", "list", "--json", workspace=workspace).stdout) == []


PLUGIN = """
import sys
from workerctl import hookimpl
from workerctl.api import Tool
from workerctl.engine.step import Step, ToolCall


class Bytes:
    name = "bytes-step"
    description = "returns bytes as its text"

    def step(self, request):
        return Step(text=b"not text")


class NanArgs:
    name = "nan-args"
    description = "asks for a tool with a NaN argument"

    def step(self, request):
        if request.iteration == 1:
            return Step(tool_calls=[ToolCall("read_task", {"task_id": "T-1042", "x": float("nan")}, "c1")])
        return Step(text="done")


class CallsEvil:
    name = "calls-evil"
    description = "calls the evil tool"

    def __init__(self, tool):
        self.name = f"calls-{tool}"
        self.tool = tool

    def step(self, request):
        if request.iteration == 1:
            return Step(tool_calls=[ToolCall(self.tool, {}, "c1")])
        return Step(text="done")


def evil_exit(ctx):
    sys.exit(3)


def evil_interrupt(ctx):
    raise KeyboardInterrupt


@hookimpl
def register_executors(register):
    for executor in (Bytes(), NanArgs(), CallsEvil("evil_exit"), CallsEvil("evil_interrupt")):
        register(executor)


@hookimpl
def register_tool_categories(register):
    register("evil", "tools that misbehave")


@hookimpl
def register_tools(register):
    register(Tool("evil_exit", "evil", "calls sys.exit(3)", evil_exit))
    register(Tool("evil_interrupt", "evil", "raises KeyboardInterrupt", evil_interrupt))
"""


@pytest.fixture
def plugin_env(tmp_path):
    return helpers.one_plugin_env(tmp_path, "jsonplugin", PLUGIN)


@pytest.mark.parametrize(
    ("executor", "said"),
    [
        ("bytes-step", "returned text of type bytes"),
        ("nan-args", "tool_calls[0].arguments.x: nan, not a finite number"),
        ("calls-evil_exit", "tool 'evil_exit' raised SystemExit(3)"),
        ("calls-evil_interrupt", "tool 'evil_interrupt' raised KeyboardInterrupt"),
    ],
)
def test_what_a_plugin_hands_back_that_is_no_json_value_is_its_error(workspace, plugin_env, executor, said):
    """Each ended in a traceback (exit 1, the run later marked crashed), in the plugin's
    exit status (``sys.exit(3)`` read as "not found"), or cancelled by a Ctrl-C nobody
    pressed."""
    _write(
        workspace.workers_dir / "p1.yaml",
        f"""\
        name: p1
        status: active
        instructions: do it
        context_sources: [tasks]
        tool_categories: [productivity, evil]
        output_mode: review_note
        executor: {{name: {executor}}}
        """,
    )
    result = run_workerctl(
        "run", "start", "p1", "--task", "T-1042", "--json", workspace=workspace, env=plugin_env
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, (result.returncode, result.stderr)
    run = _strict(result.stdout)
    assert run["status"] == "failed" and run["error"]["kind"] == "executor_error"
    assert said in run["error"]["message"]
    listed = _strict(run_workerctl("runs", "list", "--json", workspace=workspace).stdout)
    assert listed[0]["status"] == "failed"
