"""--json FIELD,…, --jq and --format ndjson: the same on every command that prints JSON."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ROOT
from workerctl.cli.shape import known_fields


def two_runs(wcli) -> list[str]:
    ids = []
    for task in ("T-1042", "T-3001"):  # T-3001 fails: record_access_denied
        out = wcli("run", "start", "overdue-task-review", "--task", task, "--json=id").output
        ids.append(json.loads(out)["id"])
    return ids


def test_json_fields_pick_from_each_object_in_order(wcli):
    ok, failed = two_runs(wcli)
    rows = json.loads(wcli("runs", "list", "--json", "status,id").output)
    assert rows == [{"status": "failed", "id": failed}, {"status": "completed", "id": ok}]
    assert list(rows[0]) == ["status", "id"]
    whole = json.loads(wcli("runs", "list", "--json").output)  # bare --json: everything
    assert "config_hash" in whole[0] and "preview" in whole[0]


def test_bare_json_before_an_argument_is_not_a_field_list(wcli):
    ok, _ = two_runs(wcli)
    whole = json.loads(wcli("run", "inspect", "--json", ok).output)
    assert whole["id"] == ok and "iterations" in whole
    one = json.loads(wcli("run", "inspect", "--json", "status", ok).output)
    assert one == {"status": "completed"}
    explicit = json.loads(wcli("run", "inspect", ok, "--json=worker").output)
    assert explicit == {"worker": "overdue-task-review"}
    shown = json.loads(wcli("worker", "show", "--json", "overdue-task-review").output)
    assert shown["name"] == "overdue-task-review"
    record = json.loads(wcli("records", "show", "T-1042", "--json", "id,title").output)
    assert set(record) == {"id", "title"}


def test_unknown_field_is_a_usage_error_naming_the_fields(wcli):
    ok, _ = two_runs(wcli)
    result = wcli("run", "inspect", ok, "--json", "status,nosuch")
    assert result.exit_code == 2 and "unknown JSON field 'nosuch'" in result.output
    assert "available:" in result.output and "config_hash" in result.output


def test_jq_filters_with_real_jq(wcli):
    _, failed = two_runs(wcli)
    ids = wcli("runs", "list", "--jq", '.[] | select(.status == "failed") | .id')
    assert ids.output.splitlines() == [failed]  # strings raw, one per line
    counted = wcli("runs", "list", "--jq", "group_by(.status) | map({(.[0].status): length}) | add")
    assert json.loads(counted.output) == {"completed": 1, "failed": 1}
    kind = wcli("run", "inspect", failed, "--jq", ".error.kind")
    assert kind.output.strip() == "record_access_denied"
    picked_then_jq = wcli("runs", "list", "--json", "id", "--jq", "map(keys) | add | unique")
    assert json.loads(picked_then_jq.output) == ["id"]
    bad = wcli("runs", "list", "--jq", ".[")
    assert bad.exit_code == 2 and "--jq:" in bad.output and "Traceback" not in bad.output
    assert wcli("runs", "list", "--jq", " ").exit_code == 2


def test_ndjson_streams_one_object_per_line(wcli):
    ok, failed = two_runs(wcli)
    lines = wcli("runs", "list", "--format", "ndjson").output.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [failed, ok]
    picked = wcli("records", "list", "--format", "ndjson", "--json", "id").output.splitlines()
    assert json.loads(picked[0]) == {"id": sorted(json.loads(p)["id"] for p in picked)[0]}


def test_jq_is_imported_only_when_used(workspace):
    import subprocess
    import sys

    code = (
        "import sys; from workerctl.cli import cli\n"
        "try:\n cli(['-w', sys.argv[1], 'runs', 'list', '--json', 'id'])\n"
        "except SystemExit: pass\n"
        "assert 'jq' not in sys.modules, 'jq imported without --jq'"
    )
    done = subprocess.run([sys.executable, "-c", code, str(workspace.root)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_documented_field_is_known_to_the_parser():
    doc = (ROOT / "docs" / "json.md").read_text()
    rows = re.findall(r"^\| `(\w+)`", doc, re.M)
    missing = set(rows) - {"json", "jq", "format"} - known_fields()
    assert not missing, (
        f"declare {sorted(missing)} beside the type that has them (workerctl.cli.shape.FIELD_SOURCES), "
        "so that '--json FIELD' after a bare --json is read as a field"
    )


def keys_of(data: object) -> set[str]:
    """The fields ``--json FIELDS`` picks from: a document's keys, or the keys of
    each object of a list."""
    if isinstance(data, list):
        return set().union(*(keys_of(item) for item in data if isinstance(item, dict))) if data else set()
    return set(data) if isinstance(data, dict) else set()


def test_every_field_printed_is_declared(workspace, wcli):
    """The declarations beside the types cover what the commands really print: every
    field ``--json FIELDS`` could pick from every JSON document a session of commands
    prints."""
    ok, failed = two_runs(wcli)
    documents = []
    for argv in (
        ("runs", "list", "--json"),
        ("run", "inspect", ok, "--json"),
        ("run", "inspect", failed, "--json"),
        ("run", "review", ok, "--json"),
        ("run", "troubleshoot", failed, "--json"),
        ("run", "diff", ok, failed, "--json"),
        ("workers", "list", "--json"),
        ("worker", "show", "overdue-task-review", "--json"),
        ("worker", "validate", "--json"),
        ("worker", "history", "overdue-task-review", "--json"),
        ("records", "list", "--json"),
        ("records", "show", "T-1042", "--json"),
        ("records", "sources", "--json"),
        ("templates", "list", "--json"),
        ("tools", "list", "--json"),
        ("executors", "list", "--json"),
        ("plugins", "list", "--json"),
        ("ledger", "list", "--json"),
        ("runs", "prune", "--older-than", "90d", "--dry-run", "--json"),
        ("runs", "rerun", "--failed", "--dry-run", "--json"),
        ("runs", "cancel", "--all", "--json", "--yes"),
    ):
        result = wcli(*argv)
        assert result.exit_code in (0, 1), (argv, result.output)
        documents.append(json.loads(result.stdout))
    stats = json.loads(wcli("runs", "stats", "--json").stdout)
    documents += list(stats.values())
    printed = set().union(*(keys_of(d) for d in documents))
    missing = sorted(n for n in printed - known_fields() if re.fullmatch(r"[a-z][a-z_]*", n))
    assert missing == [], f"declare {missing} beside their types (workerctl.cli.shape.FIELD_SOURCES)"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picked=st.lists(
        st.sampled_from(["id", "status", "worker", "record_id"]), min_size=1, max_size=3, unique=True
    ),
    before=st.integers(0, 2),
    after=st.integers(0, 2),
    twice=st.booleans(),
)
def test_a_word_holding_a_comma_is_read_as_the_equals_form_reads_it(wcli, picked, before, after, twice):
    """``--json WORD`` reads a word of field names and commas as ``--json=WORD`` does,
    stray commas included, before an argument and on a command without one (a fresh-brief
    attack found ``--json ,id`` and ``--json id,status,`` refused as extra arguments)."""
    if wcli("runs", "list", "--json=id").output.strip() == "[]":  # one run, kept across examples
        wcli("run", "start", "overdue-task-review", "--task", "T-1042")
    word = "," * before + ("," * (1 + twice)).join(picked) + "," * after
    if "," not in word:
        word += ","
    listed = wcli("runs", "list", "--json", word)
    assert listed.exit_code == 0, listed.output
    assert listed.output == wcli("runs", "list", f"--json={word}").output
    run_id = json.loads(wcli("runs", "list", "--json=id").output)[0]["id"]
    for empty in (",", ",,"):  # the empty list: everything, as --json=, reads it
        assert wcli("runs", "list", "--json", empty).output == wcli("runs", "list", "--json").output
    inspected = wcli("run", "inspect", "--json", word, run_id)
    assert inspected.exit_code == 0 and list(json.loads(inspected.output)) == picked
