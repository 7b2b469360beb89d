"""The one YAML loader: limits hold with libyaml and with PyYAML's own parser, for
worker files, record files and the settings file alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import make_worker
from workerctl.workers.yaml_positions import RECORD_FILE, WORKER_FILE, parse_yaml

HOSTILE = Path(__file__).parent / "data" / "hostile"


def bomb(levels: int = 9, width: int = 10) -> str:
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        (bomb(), (5, 25), "aliases expand to more than 10,000 nodes"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", None, "nested deeper than 64 levels"),
        ("a: &x [1, *x]\n", (1, 11), "the alias *x is inside the node it refers to"),
        ("a: b\x00c\n", (1, 5), "a NUL character (U+0000) is not allowed"),
        ("n: " + "7" * 2000 + "\n", (1, 4), "a number with more than 1000 digits"),
        ("[" + "1," * 30000 + "1]\n", None, "more than 20,000 values"),
    ],
)
def test_limits_hold_with_either_parser(libyaml, text, where, words):
    data, _, problems = parse_yaml(text, "f.yaml", WORKER_FILE, libyaml=libyaml)
    assert data is None
    [problem] = problems
    assert words in problem.message
    if where:
        assert (problem.line, problem.column) == where


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
def test_an_unclosed_quote_is_reported_where_it_opens(libyaml):
    text = (HOSTILE / "unclosed-quote.yaml").read_text()
    _, _, [problem] = parse_yaml(text, "w.yaml", libyaml=libyaml)
    assert (problem.line, problem.column) == (10, 15)  # the opening quote
    assert "the quoted scalar that starts here" in problem.message
    assert problem.message.endswith("at line 14, column 1")  # where the parser gave up


def test_plain_aliases_within_the_limit_still_load():
    text = "base: &b {timeout: 60, tags: [a, b]}\none: *b\ntwo: *b\n"
    data, locs, problems = parse_yaml(text, "f.yaml")
    assert not problems and data["one"] == data["two"] == {"timeout": 60, "tags": ["a", "b"]}
    assert locs[("two",)][0] == (3, 1)


def test_duplicate_keys_in_records_are_refused(workspace, wcli, tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("- id: T-1\n  type: task\n  title: one\n  id: T-2\n")
    result = wcli("records", "import", str(path))
    assert result.exit_code == 2
    assert f"{path}:4:3: [0].id: key given twice" in result.output
    assert wcli("records", "show", "T-2").exit_code == 3


def test_a_bomb_in_the_records_folder_is_refused_quickly(workspace, wcli):
    workspace.records_file.unlink(missing_ok=True)  # records/ is read on first use
    folder = workspace.root / "records"
    folder.mkdir(exist_ok=True)
    (folder / "bomb.yaml").write_text(
        "- id: T-1\n  type: task\n  title: t\n  x:\n"
        + "".join("    " + line + "\n" for line in bomb().splitlines())
    )
    result = wcli("records", "list")
    assert result.exit_code == 2
    assert "records/bomb.yaml:" in result.output
    assert "aliases expand to more than 100,000 nodes" in result.output
    make_worker(workspace, "good", output_mode="review_note")
    workers = json.loads(wcli("workers", "list", "--json").output)  # workers unaffected
    assert [w["valid"] for w in workers if w["name"] == "good"] == [True]


def test_record_file_limits_are_larger_than_worker_file_limits():
    assert RECORD_FILE.max_bytes > WORKER_FILE.max_bytes
    assert RECORD_FILE.max_nodes > WORKER_FILE.max_nodes


def test_a_bomb_in_the_settings_file_is_refused(workspace, wcli):
    workspace.settings_file.write_text("name: ws\n" + bomb())
    result = wcli("workers", "list")
    assert result.exit_code == 2
    assert "aliases expand to more than 1,000 nodes" in result.output


def test_a_fifo_is_not_read_as_a_worker(workspace, wcli):
    import os

    make_worker(workspace, "good", output_mode="review_note")
    os.mkfifo(workspace.workers_dir / "stuck.yaml")
    rows = {r["name"]: r for r in json.loads(wcli("workers", "list", "--json").output)}
    assert rows["good"]["valid"] and not rows["stuck"]["valid"]
    assert "not a regular file" in rows["stuck"]["problems"][0]["message"]
