"""Every state file is checked for its shape as it is read, down to the parts the code
reads: a value of the wrong kind anywhere (a summary's ``preview`` of 5, a count of
"two", a duration bucket ``²``, a ``settled`` without ``by``, an id that names a path
elsewhere) is a damaged file, exit 4 naming it, never a traceback in whichever command
meets it first, and never a file touched outside the workspace.

The values are generated; the commands are the real ones, in process."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workerctl.errors import ClimbingPath
from workerctl.storage import fs
from workerctl.testing import CliRunnerBound
from workerctl.workspace import load_workspace

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["²", "٣", "../../../x", "running", "", "1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=5,
)

READERS = [
    ("runs", "list"),
    ("runs", "list", "--json"),
    ("runs", "list", "--worker", "overdue-task-review"),
    ("runs", "list", "--record", "T-1042"),
    ("runs", "stats"),
    ("workers", "list"),
    ("ledger", "list"),
    ("records", "list"),
    ("records", "show", "T-1042"),
    ("worker", "show", "overdue-task-review"),
    ("worker", "history", "overdue-task-review"),
    ("run", "inspect", "--id", "{run}"),
    ("run", "troubleshoot", "{run}"),
    ("run", "review", "--check", "{run}"),
]


def _state(root: Path) -> Path:
    return root / ".workerctl"


def _one_doc(path: Path) -> tuple[dict, dict]:
    """(the file's data, its first document; a run file is one document)."""
    data = json.loads(path.read_text())
    if path.parent.parent.name == "runs":
        return data, data
    table = next(iter(data))
    return data, next(iter(data[table].values()))


#: a state file of each kind, by where it is: (path below .workerctl, how to find a doc)
KINDS = {
    "shard": "history/index/000001.json",
    "worker counts": "history/indexes/workers.json",
    "hour counts": "history/indexes/hours/*.json",
    "day counts": "history/indexes/days/*.json",
    "refs": "history/indexes/by-worker/overdue-task-review/000001.json",
    "ledger record": "history/ledger/records/*.json",
    "ledger worker": "history/ledger/workers/*/*.json",
    "records": "records.json",
    "comments": "comments/+t-1042.json",
    "versions": "versions.json",
    "run file": "history/runs/*/*.json",
}


def _copy(one_run, tmp_path_factory) -> Path:
    ws, _ = one_run
    root = tmp_path_factory.mktemp("shape") / "ws"
    shutil.copytree(ws.root, root, symlinks=True)
    return root


def _read_everything(root: Path, planted: Path, run_id: str) -> None:
    """Every reader answers (exit 0) or names the damaged file (exit 4); none raises."""
    before = planted.read_bytes()
    cli = CliRunnerBound(load_workspace(root))
    for argv in READERS:
        result = cli(*(a.format(run=run_id) for a in argv))  # an exception it does not handle is raised here
        assert result.exit_code in (0, 4), (argv, result.output)
        if result.exit_code == 4:
            assert planted.name in result.output, (argv, result.output)
    after = planted.read_bytes()
    if after != before:  # a reader may add to a file (a worker edit seen: a new version), never lose
        old, new = json.loads(before), json.loads(after)
        for table, docs in old.items():
            for doc_id, doc in docs.items():
                assert new[table][doc_id] == doc, (planted, doc_id)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(KINDS)), data=st.data())
def test_a_value_of_any_kind_in_any_field_is_read_or_named_never_a_traceback(
    one_run, tmp_path_factory, kind, data
):
    root = _copy(one_run, tmp_path_factory)
    (path,) = sorted(_state(root).glob(KINDS[kind]))[:1]
    content, doc = _one_doc(path)
    field = data.draw(st.sampled_from(sorted(doc)), label="field")
    where = data.draw(st.sampled_from(["value", "inside"]), label="where")
    value = data.draw(JSON, label="value")
    if where == "inside" and isinstance(doc[field], dict) and doc[field]:
        doc[field][data.draw(st.sampled_from(sorted(doc[field])))] = value
    elif where == "inside" and isinstance(doc[field], list) and doc[field]:
        doc[field][0] = value
    else:
        doc[field] = value
    path.write_text(json.dumps(content))
    _read_everything(root, path, one_run[1])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_json_nested_thousands_deep_is_a_damaged_file(one_run, tmp_path_factory, kind):
    """Valid JSON nested 100,000 deep made ``json.loads`` raise ``RecursionError``, a
    traceback from every reader of that file."""
    root = _copy(one_run, tmp_path_factory)
    (path,) = sorted(_state(root).glob(KINDS[kind]))[:1]
    path.write_text("[" * 100_000 + "]" * 100_000)
    before = path.read_bytes()
    cli = CliRunnerBound(load_workspace(root))
    for argv in READERS:
        result = cli(*(a.format(run=one_run[1]) for a in argv))
        assert result.exit_code in (0, 4), (argv, result.output)
        assert result.exit_code == 0 or path.name in result.output, (argv, result.output)
    assert path.read_bytes() == before


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(["durations", "counts", "cost"]),
    bucket=st.one_of(st.text(min_size=1, max_size=4), st.integers(0, 10**25).map(str)),
)
def test_a_count_table_keyed_by_anything_is_read_or_named(one_run, tmp_path_factory, key, bucket):
    """The hour and day counts hold maps (``durations`` is keyed by whole-number
    buckets): a key ``²`` made ``runs stats`` end with a traceback."""
    root = _copy(one_run, tmp_path_factory)
    (path,) = sorted(_state(root).glob("history/indexes/days/*.json"))[:1]
    content, doc = _one_doc(path)
    doc[key] = {**doc[key], bucket: 1}
    path.write_text(json.dumps(content))
    _read_everything(root, path, one_run[1])


def test_a_ledger_entry_settled_without_who_is_named(one_run):
    ws, _ = one_run
    (path,) = sorted(_state(ws.root).glob("history/ledger/records/*.json"))[:1]
    content, doc = _one_doc(path)
    doc["settled"] = {"as": "written"}
    path.write_text(json.dumps(content))
    result = CliRunnerBound(ws)("ledger", "list")
    assert result.exit_code == 4 and path.name in result.output, result.output


@pytest.mark.parametrize("kind", ["climbing", "climbing inside", "a number", "null"])
def test_a_planted_prune_journal_never_removes_a_file_elsewhere(one_run, tmp_path, kind):
    """``pruning.json`` names the runs a prune removes; one planted with ids that climb
    out of the folder made the next command (any: ``runs list``) remove the file they
    named, outside the workspace."""
    ws, run_id = one_run
    victim = tmp_path / "victim.json"
    victim.write_text("kept")
    climb = "../" * 40 + str(victim.with_suffix("")).lstrip("/")
    ids = {
        "climbing": [climb],
        "climbing inside": [run_id, "ab/../../../" + climb],
        "a number": [5],
        "null": [run_id, None],
    }[kind]
    journal = _state(ws.root) / "history" / "pruning.json"
    journal.write_text(json.dumps({"ids": ids, "cutoff": "2020-01-01T00:00:00.000Z"}))
    for argv in READERS:
        result = CliRunnerBound(ws)(*(a.format(run=run_id) for a in argv))
        assert result.exit_code in (0, 4), result.output
        assert result.exit_code == 0 or "pruning.json" in result.output, result.output
        if argv == ("runs", "list"):
            assert result.exit_code == 4  # it finishes a prune first: named, not carried out
    assert victim.read_text() == "kept"


SEGMENTS = st.lists(st.sampled_from(["..", "runs", "ab", "x.json", ".", "history"]), min_size=1, max_size=6)


@given(below=SEGMENTS)
def test_no_state_path_climbs_out_of_the_state_folder(tmp_path_factory, below):
    """The file layer's own rule, whatever made the path: a ``..`` at or below
    ``.workerctl`` is refused before anything is opened, removed or renamed."""
    root = tmp_path_factory.mktemp("climb")
    (root / "x.json").write_text("outside")
    path = root / ".workerctl" / Path(*below)
    operations = [
        lambda: fs.read_bytes(path),
        lambda: fs.unlink(path, missing_ok=True),
        lambda: fs.exists(path),
        lambda: fs.replace(path, root / ".workerctl" / "y"),
        lambda: os.close(fs.create_new(path)),
    ]
    for operation in operations:
        if ".." in below:
            with pytest.raises(ClimbingPath):
                operation()
        else:
            with contextlib.suppress(OSError):  # missing, or a folder: the ordinary answers
                operation()
    assert (root / "x.json").read_text() == "outside"


SAMPLE = {
    "id": "a1b2c3d4",
    "worker": "w",
    "status": "completed",
    "created": "2026-12-05T00:00:00.000Z",
    "started": None,
    "finished": "2026-12-05T00:00:01.000Z",
    "duration": 1.5,
    "record_id": "T-1",
    "record_type": "task",
    "trigger": "manual",
    "executor": "echo",
    "config_hash": "abc",
    "preview": "text",
    "error_kind": None,
    "error_message": None,
    "needs_review": False,
    "review": None,
    "rerun_of": None,
    "iterations": 1,
    "tokens": 0,
    "side_effects": 1,
    "input_tokens": None,
    "output_tokens": 3,
    "model": "m",
    "cost": None,
    "currency": None,
    "failed_checks": ["answer"],
}
EDITS = st.lists(
    st.tuples(
        st.integers(0, 4),  # which document
        st.sampled_from([*SAMPLE, "extra"]),
        st.one_of(st.just("remove"), JSON),
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(
    edits=EDITS,
    ids=st.lists(st.sampled_from(["1", "2", "07", "²", "x", "3", "0", "", "١"]), min_size=1, max_size=5),
)
def test_the_column_check_and_the_one_by_one_check_agree(edits, ids):
    """The shard check's fast path (a column at a time, in C) says a table fits exactly
    when the message path (a document at a time) finds nothing wrong."""
    from workerctl.history.layout import SHARD_SHAPE, SUMMARY_ADDED, SUMMARY_FIELDS
    from workerctl.storage.shapes import fields_problem, is_doc_id

    docs = {doc_id: dict(SAMPLE) for doc_id in ids}
    keys = list(docs)
    for which, field, value in edits:
        doc = docs[keys[which % len(keys)]]
        if value == "remove":
            doc.pop(field, None)
        else:
            doc[field] = value
    one_by_one = all(
        is_doc_id(k) and fields_problem(d, SUMMARY_FIELDS, SUMMARY_ADDED) is None for k, d in docs.items()
    )
    assert (SHARD_SHAPE({"runs": docs}) is None) == one_by_one


def _set(path: Path, where: str, value: object) -> None:
    """Put ``value`` at ``where`` (``transitions.0.at``: keys, and list indexes as
    numbers) in the JSON file ``path``."""
    data = json.loads(path.read_text())
    *parents, last = [int(k) if k.isdigit() else k for k in where.split(".")]
    part = data
    for key in parents:
        part = part[key]
    part[last] = value
    path.write_text(json.dumps(data))


RUN_FILE_EDITS = [
    ("trigger", None),
    ("output", 5),
    ("usage", "x"),
    ("cost", 7),
    ("checks", 0),
    ("side_effects", ["x"]),
    ("context.sources", True),
    ("context.records", None),
    ("context.missing_links", 5),
    ("transitions.0.at", 1.5),
    ("transitions.0", {}),
    ("iterations.0.usage", "x"),
    ("iterations.0.usage.input_tokens", "lots"),
    ("side_effects.0.kind", 1.5),
    ("reads.0", {"type": 1}),
]


@pytest.mark.parametrize(("where", "value"), RUN_FILE_EDITS)
def test_a_run_file_holding_a_part_of_the_wrong_kind_is_named(one_run, where, value):
    """Run files are read into dataclasses (``Run.from_dict``) and checked against what
    they declare, down to the parts readers take by name (``runs.typed``); each of these
    (the second fresh-brief attack's, and more) ended ``run inspect`` or ``run diff``
    with a traceback."""
    ws, run_id = one_run
    again = CliRunnerBound(ws)("run", "start", "overdue-task-review", "--record", "T-1043", "--json")
    other = json.loads(again.stdout)["id"]
    (path,) = _state(ws.root).glob(f"history/runs/*/{run_id}.json")
    _set(path, where, value)
    before = path.read_bytes()
    cli = CliRunnerBound(ws)
    for argv in (("run", "inspect", run_id), ("run", "diff", run_id, other), ("run", "troubleshoot", run_id)):
        result = cli(*argv)
        assert result.exit_code == 4, (argv, result.output)
        assert path.name in result.output
    assert path.read_bytes() == before


def test_a_prune_journal_naming_a_shard_far_past_the_newest_is_finished_at_once(one_run):
    """A prune journal names the shards of the runs it removes; one naming shard
    99999999999999999999 made the next command (any: ``runs list``) walk every number up
    to it. Walks over shard numbers a state file names stop at the newest shard."""
    import subprocess
    import sys

    ws, run_id = one_run
    shard = json.loads((_state(ws.root) / "history" / "index" / "000001.json").read_text())["runs"]["1"]
    journal = {
        "ids": [run_id],
        "cutoff": "2026-12-05T01:00:00Z",
        "forget_effects": False,
        "shards": [1],
        "gone": [[shard, 10**17]],
        "token": "tok12345",
    }
    (_state(ws.root) / "history" / "pruning.json").write_text(json.dumps(journal))
    done = subprocess.run(
        [sys.executable, "-m", "workerctl", "-w", str(ws.root), "runs", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode in (0, 4), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("settings", True),
        ("settings.lock_timeout", "x"),
        ("settings.stale_after", None),
        ("settings.max_field_bytes", [1]),
        ("settings.lock_timeout", 1e300),
        ("settings.default_timeout", -1),
        ("stamp", [[[[]]]]),
    ],
)
def test_a_settings_cache_edited_by_hand_is_made_again_not_believed(one_run, where, value):
    """``settings.cache.json`` spares every command parsing ``workerctl.yaml``; one whose
    settings are not what that file may hold is parsed again (the one check both go
    through, ``workspace.settings_problem``), where it made every command a traceback."""
    ws, _ = one_run
    cache = _state(ws.root) / "settings.cache.json"
    CliRunnerBound(ws)("runs", "list")  # the cache is written
    _set(cache, where, value)
    for argv in (("runs", "list"), ("workers", "list"), ("runs", "stats")):
        result = CliRunnerBound(load_workspace(ws.root))(*argv)
        assert result.exit_code == 0, (argv, result.output)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("restricted_to", 3.5),
        ("restricted_to", ["x", 1, None]),
        ("safe_for_testing", "yes"),
        ("links", {"a": 5}),
    ],
)
def test_a_record_of_the_wrong_kind_in_records_json_is_named(one_run, field, value):
    ws, _ = one_run
    path = _state(ws.root) / "records.json"
    data = json.loads(path.read_text())
    (doc,) = [d for d in data["records"].values() if d["id"] == "T-1042"]
    doc[field] = value
    path.write_text(json.dumps(data))
    for argv in (
        ("records", "show", "T-1042"),
        ("run", "start", "overdue-task-review", "--record", "T-1042"),
    ):
        result = CliRunnerBound(load_workspace(ws.root))(*argv)
        assert result.exit_code == 4 and "records.json" in result.output, (argv, result.output)


def test_a_ledger_record_id_too_long_for_a_file_name_names_the_ledger_file(one_run):
    ws, _ = one_run
    (path,) = sorted(_state(ws.root).glob("history/ledger/workers/*/*.json"))[:1]
    data = json.loads(path.read_text())
    next(iter(data["records"].values()))["record_id"] = "x" * 3000
    path.write_text(json.dumps(data))
    result = CliRunnerBound(ws)("ledger", "list")
    assert result.exit_code == 4 and path.name in result.output, result.output


def test_a_step_program_printing_json_nested_thousands_deep_fails_its_run_in_one_line(workspace):
    """The run fails ``invalid_output`` saying why; before, its card held workerctl's own
    traceback (the command executor's ``json.loads`` raised ``RecursionError``)."""
    import sys

    from helpers import make_worker, run_workerctl

    program = workspace.root / "deep.py"
    program.write_text('import sys; sys.stdin.read(); sys.stdout.write("[" * 100000 + "]" * 100000)\n')
    argv = json.dumps([sys.executable, str(program)])
    make_worker(workspace, "deep", output_mode="review_note", executor=f"{{name: command, argv: {argv}}}")
    done = run_workerctl("run", "start", "deep", "--json", workspace=workspace)
    run = json.loads(done.stdout)
    assert run["status"] == "failed" and run["error"]["kind"] == "invalid_output", run["error"]
    assert "nested deeper" in run["error"]["message"]
    assert "Traceback" not in json.dumps(run)


def test_a_missing_link_that_is_no_link_is_a_damaged_run_file(one_run):
    """context.missing_links holding null (or a link without its id) ended run inspect
    and run troubleshoot in a TypeError traceback; found by the generated test above in
    CI. The run file's shape now holds each missing link to its fields."""
    import json

    from helpers import run_workerctl
    from workerctl.history.store import History

    workspace, run_id = one_run
    path = History(workspace).body_path(run_id)
    for bad in (None, {"link": "project"}):
        data = json.loads(path.read_text())
        data["context"]["missing_links"] = [bad]
        path.write_text(json.dumps(data))
        for argv in (("run", "inspect", "--id", run_id), ("run", "troubleshoot", "--id", run_id)):
            shown = run_workerctl(*argv, workspace=workspace)
            assert shown.returncode == 4 and "context.missing_links[0]" in shown.stderr, shown.stderr
            assert "Traceback" not in shown.stderr


USED = {"input_tokens": 1, "output_tokens": 2, "models": {"m": {"input_tokens": 1, "output_tokens": 2}}}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("usage", {"": None}),  # found by the generated test above: run inspect raised KeyError
        ("usage", {"output_tokens": 3}),
        ("usage", {"input_tokens": 1, "output_tokens": 2, "models": {"m": 5}}),
        ("usage", {"input_tokens": 1, "output_tokens": 2, "models": {"m": {"input_tokens": 1}}}),
        ("cost", {"amount": 0.5}),
        ("cost", {"amount": 0.5, "unpriced_models": 5}),
        ("cost", {"amount": 0.5, "currency": "EUR", "price_table": ["v1"]}),
        ("cost", {"estimate": True, "amount": None, "error": {"why": 1}}),
        ("iteration usage", {"ignored": 7}),
    ],
)
def test_usage_and_cost_that_leave_out_or_bend_a_part_are_read_or_named(
    one_run, tmp_path_factory, field, value
):
    """Usage and cost are objects whose parts are read by name: each part a run file may
    leave out is shown as unknown, and one of the wrong kind makes the file damaged
    (exit 4 naming it); a reindex over the file says the same, never a traceback."""
    root = _copy(one_run, tmp_path_factory)
    (path,) = sorted(_state(root).glob(KINDS["run file"]))[:1]
    doc = json.loads(path.read_text())
    if field == "iteration usage":
        doc["iterations"][0]["usage"] = value
    else:
        doc["usage"] = USED  # the card shows cost only beside the tokens
        doc[field] = value
    path.write_text(json.dumps(doc))
    _read_everything(root, path, one_run[1])
    result = CliRunnerBound(load_workspace(root))("runs", "reindex")
    assert result.exit_code in (0, 4), result.output
    assert result.exit_code == 0 or path.name in result.output, result.output
