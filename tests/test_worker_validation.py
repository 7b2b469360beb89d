"""The corpus of broken worker files: each names its file, line, column and field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from workerctl.plugins.manager import get_registry
from workerctl.workers.files import load_file

CORPUS = Path(__file__).parent / "data" / "broken_workers"

# file, line, column, field, words the message must contain
EXPECTED = [
    ("Not_A_Slug", 1, 7, "name", "is not a slug"),
    ("a-list", 1, 1, "(file)", "must be a mapping"),
    ("bad-category", 8, 5, "tool_categories[1]", "unknown tool category 'payroll'"),
    ("bad-output-mode", 7, 14, "output_mode", "unknown output mode 'email'"),
    ("bad-source", 5, 26, "context_sources[1]", "unknown context source 'emails'"),
    ("bad-template", 10, 11, "template", "unknown template 'world-domination'"),
    (
        "bad-yaml",
        3,
        15,
        "(yaml)",
        "the flow sequence that starts here is not closed or "
        "continued correctly: did not find expected ',' or ']' at "
        "line 4, column 12",
    ),
    ("command-no-argv", 10, 3, "executor.argv", "needs 'argv'"),
    ("contract-bad-section", 10, 23, "output_contract.sections[1]", "without ':'"),
    ("contract-empty", 9, 18, "output_contract", "states no rule"),
    ("contract-max-length", 11, 15, "output_contract.max_length", "0 is outside 1..100000"),
    ("contract-names-text", 10, 17, "output_contract.names_record", "must be true or false"),
    ("contract-not-mapping", 9, 18, "output_contract", "must be a mapping of rules"),
    ("contract-unknown-rule", 11, 3, "output_contract.tone", "unknown contract rule"),
    ("description-list", 10, 14, "description", "must be text"),
    ("dup-key", 10, 1, "status", "key given twice"),
    ("dup-source", 5, 36, "context_sources[2]", "listed twice"),
    ("echo-setting", 11, 16, "executor.temperature", "unknown echo setting"),
    ("empty-file", 1, 1, "(file)", "the file is empty"),
    ("empty-instructions", 3, 15, "instructions", "must not be empty"),
    ("executor-number", 9, 11, "executor", "must be a name or a mapping"),
    ("iter-big", 8, 17, "max_iterations", "51 is outside 1..50"),
    ("iter-bool", 8, 17, "max_iterations", "must be a whole number"),
    ("iter-text", 8, 17, "max_iterations", "must be a whole number"),
    ("iter-zero", 8, 17, "max_iterations", "0 is outside 1..50"),
    ("name-number", 1, 7, "name", "must be text"),
    ("no-executor", 1, 1, "executor", "missing required field"),
    ("no-instructions", 1, 1, "instructions", "missing required field"),
    ("other-name", 1, 7, "name", "does not match the file name other-name.yaml"),
    ("python-tag", 10, 14, "(yaml)", "unsupported YAML"),
    ("review-text", 10, 18, "review_required", "must be true or false"),
    ("script-bad-step", 13, 7, "executor.script[1]", "unknown step key(s) explode"),
    ("sources-not-list", 5, 18, "context_sources", "must be a list"),
    ("tab-indent", 6, 1, "(yaml)", "invalid YAML"),
    ("timeout-negative", 10, 10, "timeout", "-5 is outside 1..86400"),
    ("unknown-executor", 10, 9, "executor.name", "unknown executor 'gpt-magic'"),
    ("unknown-key", 10, 1, "colour", "unknown field"),
    ("wrong-status", 2, 9, "status", "unknown status 'running'"),
]


def test_corpus_is_complete():
    assert len(EXPECTED) >= 25
    assert {e[0] for e in EXPECTED} == {p.stem for p in CORPUS.glob("*.yaml")}


@pytest.mark.parametrize(("stem", "line", "column", "field", "words"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_broken_worker_is_located(workspace, wcli, stem, line, column, field, words):
    shutil.copy(CORPUS / f"{stem}.yaml", workspace.workers_dir / f"{stem}.yaml")
    # a file whose name breaks the name rule is reached through the whole workspace
    result = wcli("worker", "validate", *([stem] if stem != "Not_A_Slug" else []))
    assert result.exit_code == 2
    prefix = f"workers/{stem}.yaml:{line}:{column}: {field}: "
    lines = [ln for ln in result.output.splitlines() if ln.startswith(prefix)]
    assert lines, f"expected a line starting {prefix!r} in:\n{result.output}"
    assert words in lines[0]
    assert lines[0].endswith(")")  # ends with what would fix it


def test_every_problem_of_every_file_at_once(workspace, wcli):
    for path in CORPUS.glob("*.yaml"):
        shutil.copy(path, workspace.workers_dir / path.name)
    result = wcli("worker", "validate", "--json")
    assert result.exit_code == 2
    report = json.loads(result.output)
    files_with_problems = {Path(p["file"]).stem for p in report["problems"]}
    assert files_with_problems == {e[0] for e in EXPECTED}
    assert report["valid"] == 5  # the sample workers stay valid beside the broken ones


def test_several_problems_in_one_file_are_all_reported(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text(
        "name: many\nstatus: sleeping\ninstructions: ''\nmax_iterations: 99\n"
        "output_mode: fax\nexecutor: {name: nope}\nfoo: 1\n"
    )
    problems = load_file(path, get_registry()).problems
    fields = {p.field for p in problems}
    assert {"status", "instructions", "max_iterations", "output_mode", "executor.name", "foo"} <= fields


def test_broken_worker_still_lists_the_others(workspace, wcli):
    shutil.copy(CORPUS / "wrong-status.yaml", workspace.workers_dir / "wrong-status.yaml")
    result = wcli("workers", "list", "--json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["wrong-status"]["status"] == "broken"
    assert rows["wrong-status"]["problems"][0]["line"] == 2
    assert rows["overdue-task-review"]["status"] == "active"
    table = wcli("workers", "list")
    assert "broken" in table.output and "overdue-task-review" in table.output


def test_safe_loading_never_runs_python_tags(workspace, wcli, tmp_path):
    marker = tmp_path / "pwned"
    (workspace.workers_dir / "evil.yaml").write_text(
        f'name: evil\ndescription: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    result = wcli("worker", "validate")
    assert result.exit_code == 2
    assert not marker.exists()


def test_valid_sample_workers_pass(wcli):
    result = wcli("worker", "validate")
    assert result.exit_code == 0, result.output
    assert "5 of 5 worker file(s) valid" in result.output
