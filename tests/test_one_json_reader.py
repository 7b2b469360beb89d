"""One reader of JSON text (``jsonvalues.loads``; ``read_json`` for plugins): JSON
nested too deeply to read is a ``ValueError`` (``TooDeep``) wherever it comes in,
never a ``RecursionError`` that a caller catching ``ValueError`` lets through.

Before, each reader caught ``RecursionError`` on its own, and one that did not (the
test of whether a records file is JSON lines) ended ``records import`` and every
command that loaded a seed file in a traceback (a fresh-brief case, adv71 c25).
"""

from __future__ import annotations

import ast
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import ROOT, run_workerctl
from workerctl.jsonvalues import TooDeep, loads

SOURCES = [ROOT / "src" / "workerctl", *sorted((ROOT / "plugins").glob("*/src"))]


def _json_loads_calls(path) -> list[int]:
    """Lines of ``path`` that call ``json.loads`` or ``json.load``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("loads", "load")
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "json"
    ]


def test_json_text_is_read_in_one_place():
    found = {
        f"{path.relative_to(ROOT)}:{line}"
        for source in SOURCES
        for path in source.rglob("*.py")
        if path.name != "jsonvalues.py"
        for line in _json_loads_calls(path)
    }
    assert not found, (
        f"read JSON through workerctl.jsonvalues.loads (plugins: api.read_json): {sorted(found)}"
    )


def _deep(depth: int) -> str:
    return (
        '{"id": "T-77", "type": "task", "title": "deep", "fields": {"deep": '
        + '{"a": ' * depth
        + '"x"'
        + "}" * depth
        + "}}"
    )


TWO_LINES = _deep(2000) + "\n" + '{"id": "T-78", "type": "task", "title": "ok"}\n'


@pytest.mark.parametrize("how", ["file", "stdin", "seed"])
def test_json_lines_nested_too_deep_are_a_usage_error(workspace, tmp_path, how):
    if how == "file":  # a .json file holding JSON lines
        (tmp_path / "two.json").write_text(TWO_LINES)
        result = run_workerctl("records", "import", str(tmp_path / "two.json"), workspace=workspace)
    elif how == "stdin":
        result = run_workerctl("records", "import", "-", workspace=workspace, input=TWO_LINES)
    else:  # a seed file of a new workspace (records/, read by the first command that loads records)
        from workerctl.workspace import load_workspace

        (tmp_path / "new" / "workers").mkdir(parents=True)
        (tmp_path / "new" / "workerctl.yaml").write_text("name: new\n")
        (tmp_path / "new" / "records").mkdir()
        (tmp_path / "new" / "records" / "seed.json").write_text(TWO_LINES)
        result = run_workerctl("records", "list", workspace=load_workspace(tmp_path / "new"))
    assert result.returncode == 2, (result.returncode, result.stderr[-500:])
    assert "Traceback" not in result.stderr and "nested" in result.stderr
    if how != "seed":
        assert (
            run_workerctl("records", "show", "T-78", workspace=workspace).returncode == 3
        )  # nothing imported


@settings(max_examples=200, deadline=None)
@given(
    depth=st.integers(1, 3 * sys.getrecursionlimit()),
    opener=st.sampled_from(["[", '{"a":', '{"a": [']),
    closed=st.booleans(),
)
def test_loads_answers_a_value_or_a_value_error(depth, opener, closed):
    closer = {"[": "]", '{"a":': "}", '{"a": [': "]}"}[opener]
    text = opener * depth + "1" + (closer * depth if closed else "")
    try:
        value = loads(text)
    except TooDeep:  # found before the end: whether it is closed or not
        assert depth > 100
    except ValueError:
        assert not closed
    else:
        assert closed
        for _ in range(depth):  # the value is what the text says, all the way down
            value = value[0] if isinstance(value, list) else value["a"]
            if isinstance(value, list) and opener == '{"a": [':
                value = value[0]
        assert value == 1
