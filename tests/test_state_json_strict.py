"""State files are JSON as workerctl writes it: an object naming one key twice is a
damaged file (exit 4, naming it), never read one way by us and another by the next
reader; and a ledger record file that lost its entries (deleted, emptied, rolled back)
is damage the duplicate guard names, not "this worker never wrote here". Before, a
shard repeating a document key hid a run and the next write dropped it; a ledger file
with "effects" twice, deleted or emptied, let a repeat post a second comment (the
fresh-brief round's C05 and C06)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import run_workerctl, started_on
from workerctl.storage.atomic import DuplicateKey, loads_state
from workerctl.storage.filenames import file_name

START = ("run", "start", "overdue-task-review", "--task", "T-1042")


def _comments(workspace) -> int:
    shown = json.loads(run_workerctl("records", "show", "T-1042", "--json", workspace=workspace).stdout)
    return sum(1 for c in shown["comments"] if c.get("run_id"))


def test_a_shard_naming_a_document_twice_is_damaged_not_half_read(workspace):
    started_on(workspace, "T-1042", "T-1043")
    shard = workspace.history_dir / "index" / "000001.json"
    docs = json.loads(shard.read_text())["runs"]
    one, two = json.dumps(docs["1"]), json.dumps(docs["2"])
    shard.write_text(f'{{"runs": {{"1": {one}, "2": {two}, "2": {one}}}}}')
    before = shard.read_bytes()
    listed = run_workerctl("runs", "list", workspace=workspace)
    assert listed.returncode == 4 and f"{shard}: damaged state file" in listed.stderr
    assert "'2' appears twice" in listed.stderr
    assert (
        run_workerctl(
            "run", "start", "overdue-task-review", "--task", "T-1044", workspace=workspace
        ).returncode
        == 4
    )
    assert shard.read_bytes() == before  # never written over


def test_a_ledger_record_file_rolled_back_to_an_older_copy_never_lets_a_repeat_write(workspace):
    """Restored from a copy taken after the first comment, before the second (the worker
    changed between them): it still holds one entry of the worker, so the guard took
    the second comment for never written, and a repeat posted a third (the fresh-brief
    round's second pass). The worker's summary counts two: damage, named."""
    import re

    record = workspace.history_dir / "ledger" / "records" / f"{file_name('T-1042')}.json"
    assert run_workerctl(*START, workspace=workspace).returncode == 0
    older = record.read_bytes()
    worker = workspace.workers_dir / "overdue-task-review.yaml"
    worker.write_text(re.sub(r"(?m)^description: .*$", "description: v2", worker.read_text()))
    assert run_workerctl(*START, workspace=workspace).returncode == 0
    assert run_workerctl(*START, workspace=workspace).returncode == 5
    record.write_bytes(older)
    again = run_workerctl(*START, workspace=workspace)
    assert again.returncode == 4 and str(record) in again.stderr, again.stdout + again.stderr
    assert _comments(workspace) == 2


@pytest.mark.parametrize("damage", ["effects twice", "deleted", "emptied"])
def test_a_lost_ledger_record_file_never_lets_a_repeat_write_again(workspace, damage):
    assert run_workerctl(*START, workspace=workspace).returncode == 0
    record = workspace.history_dir / "ledger" / "records" / f"{file_name('T-1042')}.json"
    text = record.read_text()
    if damage == "effects twice":
        effects = json.dumps(json.loads(text)["effects"])
        record.write_text(f'{{"effects": {effects}, "effects": {{}}}}')
    elif damage == "deleted":
        record.unlink()
    else:
        record.write_text('{"effects": {}}')
    again = run_workerctl(*START, workspace=workspace)
    assert again.returncode == 4, again.stdout + again.stderr
    assert str(record) in again.stderr and _comments(workspace) == 1
    if damage != "effects twice":  # the reindex rebuilds the ledger from the run files
        assert run_workerctl("runs", "reindex", workspace=workspace).returncode == 0
        assert run_workerctl(*START, workspace=workspace).returncode == 5
        assert _comments(workspace) == 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12,
)


def _paths(value, at=()):
    if isinstance(value, dict):
        yield at
        for key, item in value.items():
            yield from _paths(item, (*at, key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _paths(item, (*at, n))


def _with_repeat(value, path, key):
    """``value`` encoded with the object at ``path`` naming ``key`` twice."""
    if not path:
        if isinstance(value, dict):
            parts = [f"{json.dumps(k)}:{_with_repeat(v, (), None)}" for k, v in value.items()]
            if key is not None:
                parts.append(f"{json.dumps(key)}:null")
            return "{" + ",".join(parts) + "}"
        return json.dumps(value)
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        items = [
            f"{json.dumps(k)}:{_with_repeat(v, rest if k == head else (), key if k == head else None)}"
            for k, v in value.items()
        ]
        return "{" + ",".join(items) + "}"
    items = [
        _with_repeat(v, rest if n == head else (), key if n == head else None) for n, v in enumerate(value)
    ]
    return "[" + ",".join(items) + "]"


@given(JSON, st.data())
def test_a_key_named_twice_anywhere_is_refused_and_nothing_else_is(value, data):
    assert loads_state(json.dumps(value)) == value
    objects = [p for p in _paths(value) if _at(value, p)]
    if not objects:
        return
    path = data.draw(st.sampled_from(objects))
    key = data.draw(st.sampled_from(sorted(_at(value, path))))
    with pytest.raises(DuplicateKey, match="appears twice"):
        loads_state(_with_repeat(value, path, key))


def _at(value, path):
    for step in path:
        value = value[step]
    return value


def test_the_settings_cache_naming_a_key_twice_is_remade_not_half_believed(workspace):
    """settings.cache.json with "settings" twice (the second saying lock_timeout 1): the
    cache was read with the last copy winning, so a writer gave up after 1 s though
    workerctl.yaml says 10 (the fresh-brief round's second pass). It is remade instead."""
    from workerctl.workspace import load_workspace

    assert run_workerctl("runs", "list", workspace=workspace).returncode == 0  # the cache made
    cache = workspace.state_dir / "settings.cache.json"
    cached = json.loads(cache.read_text())
    forged = {**cached["settings"], "lock_timeout": 1}
    cache.write_text(
        f'{{"stamp": {json.dumps(cached["stamp"])}, "settings": {json.dumps(cached["settings"])}, '
        f'"settings": {json.dumps(forged)}}}'
    )
    assert load_workspace(workspace.root).setting("lock_timeout") == cached["settings"]["lock_timeout"]


@pytest.mark.parametrize(
    "where",
    ["indexes/workers.json", "index/000001.json", "ledger/records/+t-1042.json"],
)
def test_a_number_that_reads_as_infinity_is_damage_named_not_a_traceback_at_the_next_write(workspace, where):
    """``1e400`` is valid JSON that Python reads as infinity: a state file holding one
    (in a field of a newer version, which the shape does not check) was accepted, and
    the next write of it raised, at every command after (the fresh-brief round's
    inf_number cases). Now it is damage: exit 4 naming the file, which stays as it was."""
    assert run_workerctl(*START, workspace=workspace).returncode == 0
    path = workspace.history_dir / where
    text = path.read_text()
    damaged = text.replace('"1":{"', '"1":{"extra":1e400,"', 1)  # a field no shape checks
    assert damaged != text
    path.write_text(damaged)
    for args in (
        ("run", "start", "overdue-task-review", "--task", "T-1043"),
        ("run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat"),
        ("runs", "stats"),
        ("runs", "list", "--record", "T-1042"),
        ("ledger", "list"),
    ):
        done = run_workerctl(*args, workspace=workspace)
        assert "Traceback" not in done.stderr, done.stderr
        if done.returncode != 0:  # a command that reads the file
            assert done.returncode == 4 and f"{path}: damaged state file" in done.stderr, (args, done.stderr)
            assert "1e400 is too large to be read" in done.stderr
    assert path.read_text() == damaged


@given(
    mantissa=st.integers(1, 99999),
    exponent=st.integers(-400, 400),
    sign=st.sampled_from(["", "-"]),
    form=st.sampled_from(["{m}e{e}", "{m}E+{e}", "{m}.5e{e}", "0.{m}e{e}"]),
)
def test_a_state_number_is_read_as_its_float_or_refused_when_it_reads_as_infinity(
    mantissa, exponent, sign, form
):
    from workerctl.storage.atomic import OutOfRange

    text = sign + form.format(m=mantissa, e=exponent).replace("e-", "e-").replace("E+-", "E-")
    expected = float(text)
    if expected in (float("inf"), float("-inf")):
        with pytest.raises(OutOfRange):
            loads_state(f'{{"n": {text}}}')
    else:
        assert loads_state(f'{{"n": {text}}}') == {"n": expected}
