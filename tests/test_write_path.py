"""The history's write path: what one run writes, in which order, and the files a
process keeps parsed (``history.tables.KnownTables``) never hiding another writer."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpers import flock_free, run_workerctl
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.errors import DamagedFile
from workerctl.history.store import History, RunFinishedElsewhere
from workerctl.history.tables import KnownTables
from workerctl.plugins.manager import get_registry
from workerctl.storage.atomic import encode_json
from workerctl.storage.faults import FAULT_ENV
from workerctl.storage.shapes import tinydb_file


def test_a_comment_writing_run_writes_each_file_once_per_step_in_crash_order(workspace, tmp_path):
    """Created (marker, run file, index, cross-run indexes), the write intended (run
    file, index, ledger), the comment, then the end with the write confirmed (run file,
    index, ledger, cross-run indexes) and the marker removed: the write's confirmation
    is no separate save, and no file is written when its content would not change."""
    points = tmp_path / "points"
    done = run_workerctl(
        "run",
        "start",
        "overdue-task-review",
        "--task",
        "T-1042",
        workspace=workspace,
        env={FAULT_ENV: f"trace:{points}"},
    )
    assert done.returncode == 0, done.stderr
    state = str(workspace.state_dir) + "/"
    written = []
    for line in points.read_text().splitlines():
        path = line.split(" ", 1)[1].removeprefix(state).split("/")
        written.append("/".join(path[:2]) if path[0] == "comments" else "/".join(path[1:3]))
    # the history's first run builds its (empty) cross-run indexes first, and each
    # status change then keeps them: the run's refs and the counts of its hour and day
    first = ["indexes/meta.json"]
    counts = ["indexes/workers.json", "indexes/hours", "indexes/days"]
    created = ["active/", "runs/", "index/000001.json", "indexes/by-worker", "indexes/by-record", *counts]
    intended = ["runs/", "index/000001.json", "ledger/records", "ledger/workers"]
    run_end = [
        "runs/",
        "index/000001.json",
        "ledger/records",
        "ledger/workers",
        "indexes/by-status",
        *counts,
        "active/",
    ]
    assert [w if not w.startswith(("active/", "runs/")) else w[: w.index("/") + 1] for w in written] == [
        *first,
        *created,
        *intended,
        "comments/+t-1042.json",
        *run_end,
    ]
    ledger = json.loads(run_workerctl("ledger", "list", "--json", workspace=workspace).stdout)
    assert [e["state"] for e in ledger] == ["committed"]


def _edit_in_place(path, old: bytes, new: bytes) -> None:
    """Another writer's change that keeps the file's inode, size and modification
    time: only its content tells it apart."""
    assert len(old) == len(new)
    before = os.stat(path)
    data = path.read_bytes()
    assert data.count(old) == 1
    with open(path, "r+b") as handle:
        handle.seek(data.index(old))
        handle.write(new)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


def test_a_shard_another_writer_changed_is_read_again_even_with_the_same_stat(workspace):
    engine = Engine(workspace, get_registry())
    first = engine.start("overdue-task-review", StartOptions(record_id="T-1042"))
    history = engine.history
    assert history.list()[0]["trigger"] == "manual"
    _edit_in_place(history.shard_path(1), b'"trigger":"manual"', b'"trigger":"cron!!"')
    assert history.list()[0]["trigger"] == "cron!!"
    # and a write of this process keeps the other writer's change
    second = engine.start("overdue-task-review", StartOptions(record_id="T-1043"))
    shard = json.loads(history.shard_path(1).read_text())["runs"]
    assert {d["id"]: d["trigger"] for d in shard.values()} == {first.id: "cron!!", second.id: "manual"}


def test_a_shard_damaged_after_this_process_wrote_it_is_reported_not_written_over(workspace):
    engine = Engine(workspace, get_registry())
    run = engine.start("overdue-task-review", StartOptions(record_id="T-1042"))
    path = engine.history.shard_path(1)
    _edit_in_place(path, b'"status":"completed"', b'"status":"complet3d"')
    damaged = path.read_bytes()
    with pytest.raises(DamagedFile) as found:
        engine.history.update(run.id, lambda r: setattr(r, "needs_review", True))
    assert "complet3d" in str(found.value) or "status" in str(found.value)
    assert path.read_bytes() == damaged
    with pytest.raises(DamagedFile):
        History(workspace).list()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
_DOC_IDS = st.integers(1, 12).map(str)
_DOCS = st.dictionaries(st.text(max_size=3), _JSON, max_size=3)
_STEPS = st.lists(
    st.dictionaries(_DOC_IDS, st.none() | _DOCS, max_size=4),
    min_size=1,
    max_size=8,
)


@example([{"1": {"a": "é ✓ \u2028", "n": 1.5, "x": None}}, {"2": {"b": [1, {"c": True}]}}], [])
@example([{"1": {"a": 1}, "2": {"a": 2}}, {"1": None}, {"3": {"a": "three"}}, {"2": None}], [])
@example([{"1": {"a": "\udc80"}}, {"2": {"b": "x"}}], [])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_STEPS, foreign=st.lists(st.integers(0, 7), max_size=2))
def test_a_table_written_through_the_cache_is_byte_for_byte_what_write_json_writes(tmp_path, steps, foreign):
    """Whatever documents are added, replaced (by other objects, equal or not) or removed,
    and whatever another process writes in between (``foreign``: the steps before which
    the file is replaced behind the cache's back), the file is what ``write_json`` would
    write (a lone surrogate as its escape), and reads back as the documents."""
    known = KnownTables()
    path = tmp_path / "t.json"
    path.unlink(missing_ok=True)
    shape = tinydb_file("t", {})
    docs: dict[str, dict] = {}
    for number, step in enumerate(steps):
        if number in foreign:
            path.write_bytes(json.dumps({"t": {"5": {"by": "another process"}}}).encode())
        docs = known.read(path, "t", shape)
        for key, doc in step.items():
            if doc is None:
                docs.pop(key, None)
            else:
                docs[key] = doc
        known.write(path, "t", docs)
        assert path.read_bytes() == encode_json({"t": docs}).encode("utf-8", "backslashreplace")
    assert known.read(path, "t", shape) == docs == json.loads(path.read_text(errors="surrogateescape"))["t"]


def test_a_failed_write_leaves_the_cache_as_the_file_is(tmp_path):
    import threading

    from workerctl.errors import StorageError

    known = KnownTables()
    path = tmp_path / "t.json"
    shape = tinydb_file("t", {})
    known.write(path, "t", {"1": {"a": 1}})
    docs = known.read(path, "t", shape)
    docs["2"] = {"a": 2}
    # the temp file's name taken by a folder: the write fails (for root too)
    (tmp_path / f".t.json.{os.getpid()}.{threading.get_ident()}.tmp").mkdir()
    with pytest.raises(StorageError):
        known.write(path, "t", docs)
    assert json.loads(path.read_text()) == {"t": {"1": {"a": 1}}}
    assert known.read(path, "t", shape) == {"1": {"a": 1}}


def _stored_running(workspace, history: History):
    engine = Engine(workspace, get_registry(), history=history)
    _, run = engine.prepare("overdue-task-review", StartOptions(record_id="T-1042"))
    run.move("queued")
    run.move("running")
    return history.create(run)


def test_a_run_cancelled_by_another_process_is_not_written_over_and_leaves_no_temp_file(workspace):
    """The executing process writes its next run file ahead, outside the lock; when
    another process finished the run meanwhile, that content is thrown away."""
    mine = History(workspace)
    run = _stored_running(workspace, mine)
    other = History(workspace)  # another process's view: its own caches
    other.update(run.id, lambda r: r.move("cancelled"))
    run.output = "late"
    with pytest.raises(RunFinishedElsewhere):
        mine.save(run, executing=True)
    assert History(workspace).get(run.id).status == "cancelled"
    assert not list(workspace.state_dir.rglob(".*.tmp"))


def _as_committed(stored: dict | None) -> dict | None:
    """What a commit reads of a stored run file (``History._stored``)."""
    if stored is None:
        return None
    return {k: stored.get(k) for k in ("status", "_shard", "_doc", "side_effects", "usage")}


def test_the_run_file_this_process_wrote_last_is_not_read_again(workspace, monkeypatch):
    """A save knows the run file it wrote by its stamp (inode, size, modification time)
    and reads it only when another writer replaced it, even with bytes of the same size."""
    from workerctl.history.reader import Reader

    mine = History(workspace)
    run = _stored_running(workspace, mine)
    reads: list[str] = []
    real = Reader.run_file

    def counted(self, run_id, dir_fd=None):
        reads.append(run_id)
        return real(self, run_id, dir_fd)

    monkeypatch.setattr(Reader, "run_file", counted)
    run.output = "first"
    mine.save(run, executing=True)
    mine.save(run, executing=True)
    assert reads == []
    path = mine.body_path(run.id)
    same_size = path.read_bytes()
    other = History(workspace)
    from workerctl.storage.atomic import write_text_atomic

    write_text_atomic(path, same_size)  # another writer: the same bytes, a new file
    mine.save(run, executing=True)
    assert reads == [run.id]
    mine.save(run, executing=True)
    assert reads == [run.id]  # written by this process again: known again
    other.update(run.id, lambda r: r.move("cancelled"))
    with pytest.raises(RunFinishedElsewhere):
        mine.save(run, executing=True)


def _effect(key: str) -> dict:
    return {"kind": "comment", "key": f"k{key:>3}", "record_id": "T-1042", "state": "committed"}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["mine", "other", "same-bytes", "effect"]),
            st.text(alphabet="ab", min_size=0, max_size=3),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_what_a_save_takes_for_the_stored_run_is_what_the_file_holds(workspace, steps):
    """Whatever writes interleave (this process's saves, another writer's changes,
    the same bytes written anew, a write's record changed to one of the same length),
    what a commit takes for the stored run is what a fresh read of the file says."""
    from workerctl.storage.atomic import write_text_atomic

    mine = History(workspace)
    run = _stored_running(workspace, mine)
    for who, text in steps:
        if who == "mine":
            run.side_effects = [_effect(text)]
            mine.save(run, executing=True)
        elif who == "same-bytes":
            path = mine.body_path(run.id)
            write_text_atomic(path, path.read_bytes())
        elif who == "effect":  # the file keeps its size; what the ledger must hear of changes
            History(workspace).update(run.id, lambda r, e=_effect(text): setattr(r, "side_effects", [e]))
        else:
            History(workspace).update(run.id, lambda r, t=text: setattr(r, "output", t))
        assert _as_committed(mine._stored(run.id)) == _as_committed(History(workspace)._read_body(run.id))


def _running_on(workspace, history: History, record: str):
    engine = Engine(workspace, get_registry(), history=history)
    _, run = engine.prepare("overdue-task-review", StartOptions(record_id=record))
    run.move("queued")
    run.move("running")
    return history.create(run)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["mine", "other", "finish", "unmark"]),
            st.sampled_from(["T-1042", "T-1043", "T-1044", "T-2001"]),
            st.integers(min_value=0, max_value=100),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_the_runs_executing_are_known_by_their_markers_however_they_come_and_go(workspace, steps):
    """What the duplicate guard takes for the runs executing (each one's worker and
    record, known once per process) is what the markers on disk say now: runs this
    process or another started, finished, or whose marker another process removed."""
    mine = History(workspace)
    runs: list[str] = []
    for who, record, pick in steps:
        if who in ("mine", "other"):
            runs.append(_running_on(workspace, mine if who == "mine" else History(workspace), record).id)
        elif runs and who == "finish":
            History(workspace).update(
                runs[pick % len(runs)], lambda r: r.status == "running" and r.move("cancelled")
            )
        elif runs:
            (mine.root / "active" / f"{runs[pick % len(runs)]}.json").unlink(missing_ok=True)
        fresh = History(workspace).unfinished()
        assert mine.unfinished_identities() == {
            rid: {"worker": m["worker"], "record_id": m["record_id"]} for rid, m in fresh.items()
        }


def test_a_run_whose_slot_moved_is_written_where_its_summary_now_is(workspace):
    """A repair may move a run's summary to another slot; the run file written ahead
    for the old slot is then not used, and the run file names the new one."""
    mine = History(workspace)
    run = _stored_running(workspace, mine)
    stored = json.loads(mine.body_path(run.id).read_text())
    assert (stored["_shard"], stored["_doc"]) == (1, 1)
    shard = mine.shard_path(1)
    shard.write_text(
        json.dumps({"runs": {"1": {**json.loads(shard.read_text())["runs"]["1"], "id": "zzzzzzzz"}}})
    )
    run.output = "moved"
    mine.save(run, executing=True)
    stored = json.loads(mine.body_path(run.id).read_text())
    assert (stored["_shard"], stored["_doc"]) == (1, 2)
    assert json.loads(shard.read_text())["runs"]["2"]["id"] == run.id
    assert not list(workspace.state_dir.rglob(".*.tmp"))


def test_a_ledger_file_another_writer_changed_after_it_was_written_ahead_is_written_afresh(workspace):
    """The record file's next content is written ahead, outside the lock; another
    run writing to the same record in between means it is not what is to be written
    any more: the ledger then holds both runs' effects, not the stale prediction."""
    import threading
    import time

    from workerctl.runs.model import now_iso

    mine = History(workspace)
    run = _stored_running(workspace, mine)
    other = History(workspace)  # another writer, with its own caches
    theirs = _stored_running(workspace, other)
    theirs.side_effects.append(
        {
            "kind": "comment",
            "key": f"{theirs.id}:output",
            "record_id": "T-1042",
            "state": "committed",
            "at": now_iso(),
        }
    )
    record = mine.ledger.record_path("T-1042")
    ahead_seen = []

    def other_writer(holding: threading.Event) -> None:
        with mine.lock:  # the lock is held: this process's save waits for it
            holding.set()
            deadline = time.monotonic() + 10
            while not ahead_seen and time.monotonic() < deadline:
                ahead_seen.extend(mine.ahead_dir().glob(f".{record.name}.*.next.tmp"))
                time.sleep(0.001)
            other.ledger.sync(theirs, None)

    holding = threading.Event()
    thread = threading.Thread(target=other_writer, args=(holding,))
    thread.start()
    holding.wait(10)
    run.side_effects.append(
        {
            "kind": "write",
            "key": f"{run.id}:output",
            "record_id": "T-1042",
            "state": "intended",
            "at": now_iso(),
            "by": "test",
        }
    )
    mine.save(run, executing=True)
    thread.join(10)
    assert ahead_seen, "the record file was written ahead while the lock was held"
    effects = json.loads(record.read_text())["effects"].values()
    assert sorted((e["run_id"], e["state"]) for e in effects) == sorted(
        [(run.id, "intended"), (theirs.id, "committed")]
    )
    assert not list(workspace.state_dir.rglob(".*.tmp"))


def _batch(workspace, tasks: list[str], env: dict):
    from helpers import run_workerctl as run

    ids = workspace.root / "ids.txt"
    ids.write_text("\n".join(tasks) + "\n")
    return run(
        "run",
        "start",
        "overdue-task-review",
        "--records-from",
        str(ids),
        "--jobs",
        "4",
        "--json=counts",
        workspace=workspace,
        env=env,
        timeout=120,
    )


def _tasks(workspace, count: int) -> list[str]:
    from workerctl.records.builtin_store import BuiltinRecordStore

    tasks = [f"T-{n}" for n in range(20000, 20000 + count)]
    BuiltinRecordStore(workspace).import_records(
        [{"id": t, "type": "task", "title": f"Task {t}", "status": "todo"} for t in tasks], "test"
    )
    return tasks


@pytest.mark.slow
def test_a_batch_killed_while_its_threads_hand_the_lock_over_is_settled(tmp_path):
    """With --jobs 4 the index shard (and the cross-run indexes, when built) is
    written once per hand-over chain, not per commit, and finished runs keep their
    markers until it is. A SIGKILL anywhere in the batch leaves a history the next
    command settles: every run file listed with the status inspect shows, the
    indexes agreeing, no unfinished run, no marker left, and every ledger entry
    written or unknown, as ``test_durability`` asks of single runs."""
    from test_durability import assert_consistent, fresh

    workspace = fresh(tmp_path, 0)
    tasks = _tasks(workspace, 12)
    points = tmp_path / "points"
    done = _batch(workspace, tasks, {FAULT_ENV: f"trace:{points}"})
    assert json.loads(done.stdout)["counts"] == {"completed": 12}, done.stderr
    written = points.read_text().splitlines()
    shard_writes = sum("/history/index/" in line for line in written)
    assert shard_writes < 3 * 12, f"{shard_writes} shard writes: no commit was grouped"
    assert_consistent(workspace)
    kills = 0
    step = len(written) // 6  # the count varies with how the threads meet: stay well inside
    for n, point in enumerate(range(step, 5 * step + 1, step), 1):
        workspace = fresh(tmp_path, n)
        tasks = _tasks(workspace, 12)
        if n % 2:  # the cross-run indexes built: they are staged too
            History(workspace).indexes.ensure()
        killed = _batch(workspace, tasks, {FAULT_ENV: f"kill:{point}"})
        assert killed.returncode in (-9, 0), (point, killed.stderr)
        kills += killed.returncode == -9
        runs = assert_consistent(workspace)
        by_worker = json.loads(
            run_workerctl(
                "runs",
                "list",
                "--worker",
                "overdue-task-review",
                "--limit",
                "0",
                "--json",
                workspace=workspace,
            ).stdout
        )
        assert [(r["id"], r["status"]) for r in by_worker] == [(r["id"], r["status"]) for r in runs], (
            point
        )  # from the cross-run indexes
        ledger = json.loads(run_workerctl("ledger", "list", "--json", workspace=workspace).stdout)
        states = {e["run_id"]: e["state"] for e in ledger}
        for run in runs:
            if run["status"] == "completed":
                assert states.get(run["id"]) == "committed", (point, run)
        assert set(states.values()) <= {"committed", "unknown"}, (point, states)
    assert kills >= 3


@pytest.mark.slow
def test_a_kill_between_the_run_file_and_the_ledger_leaves_the_write_committed_once(workspace, tmp_path):
    """The run's end is stored in the run file (the comment confirmed) and the
    process dies before the ledger's record file: the sweep brings the ledger in
    line with the run file, and the placeholder the comment replaced does not stay
    behind as an ``intended`` (that is, unknown) write beside it."""
    points = tmp_path / "points"
    traced = run_workerctl(
        "run",
        "start",
        "overdue-task-review",
        "--task",
        "T-1043",
        workspace=workspace,
        env={FAULT_ENV: f"trace:{points}"},
    )
    assert traced.returncode == 0
    ledger_writes = [
        int(line.split()[0]) for line in points.read_text().splitlines() if "/ledger/records/" in line
    ]
    assert len(ledger_writes) == 2  # intended, then committed with the run's end
    killed = run_workerctl(
        "run",
        "start",
        "overdue-task-review",
        "--task",
        "T-1042",
        workspace=workspace,
        env={FAULT_ENV: f"kill:{ledger_writes[1]}"},
    )
    assert killed.returncode == -9
    listed = json.loads(run_workerctl("runs", "list", "--json", workspace=workspace).stdout)
    run = next(r for r in listed if r["record_id"] == "T-1042")
    assert run["status"] == "completed"
    ledger = json.loads(
        run_workerctl("ledger", "list", "--record", "T-1042", "--json", workspace=workspace).stdout
    )
    assert [(e["run_id"], e["state"], e["kind"]) for e in ledger] == [(run["id"], "committed", "comment")]


def test_the_lock_is_handed_between_threads_and_the_left_work_done_before_it_is_let_go(tmp_path):
    """Work a holder leaves (``before_release``) is done once, by the last thread of
    a hand-over chain, before the flock goes; another process meanwhile cannot
    take the lock."""
    import threading
    import time

    from workerctl.storage.lock import FileLock

    lock = FileLock(tmp_path / "lock", timeout=5)
    done: list[str] = []
    others_could_lock: list[bool] = []

    def probe() -> bool:  # a separate open file: what another process would see
        return flock_free(tmp_path / "lock")

    second_waits = threading.Event()

    def second() -> None:
        second_waits.set()
        with lock:
            others_could_lock.append(probe())
            assert done == []  # handed over: the first holder's work not done yet

    with lock:
        lock.before_release("k", lambda: done.append("flushed"))
        lock.before_release("k", lambda: done.append("twice"))  # one per key
        thread = threading.Thread(target=second)
        thread.start()
        second_waits.wait(5)
        deadline = time.monotonic() + 5
        while not lock.waited_for and time.monotonic() < deadline:
            time.sleep(0.001)
        assert lock.waited_for
    thread.join(5)
    assert others_could_lock == [False]
    assert done == ["flushed"]
    assert probe()  # let go at the end of the chain


def test_cross_run_indexes_kept_by_a_batch_equal_a_rebuild(workspace, monkeypatch):
    """In a --jobs 4 batch the cross-run index files are staged with the shard and
    written once per hand-over chain (ref logs rolling over to new shards inside a
    chain included): what they say afterwards equals what a rebuild from the
    shards says, and no note is left saying a write is under way."""
    from workerctl.engine.batch import BatchRunner
    from workerctl.history import indexes as indexes_module
    from workerctl.history.store import RunFilter

    monkeypatch.setattr(indexes_module, "REFS_PER_SHARD", 5)
    tasks = _tasks(workspace, 40)
    history = History(workspace)
    history.indexes.ensure()  # built: every status change now updates them
    engine = Engine(workspace, get_registry(), history=history)
    staged = []
    flush = History._flush

    def counting_flush(self):
        staged.append(len(self._staged))
        flush(self)

    monkeypatch.setattr(History, "_flush", counting_flush)
    result = BatchRunner(engine, jobs=4).run("overdue-task-review", tasks, StartOptions())
    assert result.counts == {"completed": 40}
    assert staged and max(staged) > 1, "some commits' index files were grouped"
    assert not list((history.indexes.root / "pending").iterdir())

    def answers(h: History) -> list:
        return [
            h.indexes.worker_stats(),
            h.indexes.counts(),
            [r["id"] for r in h.list(RunFilter(workers=("overdue-task-review",)), None)],
            # refs by status are added as runs finish, and read shard by shard:
            # threads finish out of creation order, so only the set is compared
            sorted(r["id"] for r in h.list(RunFilter(statuses=("completed",)), None)),
            [[r["id"] for r in h.list(RunFilter(record_id=t), None)] for t in tasks],
        ]

    kept = answers(History(workspace))
    History(workspace).indexes.rebuild()
    assert answers(History(workspace)) == kept


_TAMPER = st.sampled_from(
    [
        b"",  # none
        b',"3":{"by":"a repeat"}',  # a key the file already has (when it has "3")
        b",",  # a trailing comma
        b',"x":1',  # a document that is not an object
        b',"04":{}',  # an id that is no doc id
        b',"9":{"a":NaN}',  # no JSON value
        b',"9":{"a":1}}',  # a brace too many
    ]
)


def _whole(path, shape):
    """What a process that never saw the file reads: the answer or the damage."""
    try:
        return KnownTables().read(path, "t", shape)
    except DamagedFile as exc:
        return ("damaged", exc.detail)


@example([(0, {"1": {"a": 1}, "2": {"a": 2}}, b""), (1, {"3": {"a": 3}}, b""), (0, {}, b"")])
@example([(0, {"1": {"a": 1}, "3": {"a": 3}}, b""), (1, {"4": {}}, b',"3":{"by":"a repeat"}'), (0, {}, b"")])
@example([(0, {"1": {"a": 1}}, b""), (1, {"2": {"b": 2}}, b","), (0, {}, b"")])
@example([(0, {"1": {"a": 1}, "2": {"a": 2}}, b""), (1, {"1": {"a": "changed"}}, b""), (0, {}, b"")])
@example([(0, {"1": {"a": 1}, "2": {"a": 2}}, b""), (1, {"1": {"a": 3}}, b""), (0, {}, b"")])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    turns=st.lists(
        st.tuples(st.integers(0, 1), st.dictionaries(_DOC_IDS, st.none() | _DOCS, max_size=3), _TAMPER),
        min_size=1,
        max_size=10,
    )
)
def test_two_processes_writing_one_table_in_turn_each_read_what_a_fresh_reader_reads(tmp_path, turns):
    """Two processes' caches take turns: each reads the table (the other's last write,
    perhaps tampered with after it), changes documents and writes it. Every read, the
    one that parses only what follows its own last write's documents included, gives
    exactly what a process that never saw the file reads: the same documents, or the
    same damage."""
    caches = (KnownTables(), KnownTables())
    path = tmp_path / "t.json"
    path.unlink(missing_ok=True)
    shape = tinydb_file("t", {})
    for who, changes, tamper in turns:
        if tamper and path.exists():
            path.write_bytes(path.read_bytes()[:-2] + tamper + b"}}")
        expected = _whole(path, shape)
        try:
            docs = caches[who].read(path, "t", shape)
        except DamagedFile as exc:
            assert expected == ("damaged", exc.detail)
            path.unlink()
            continue
        assert docs == expected
        for key, doc in changes.items():
            if doc is None:
                docs.pop(key, None)
            else:
                docs[key] = doc
        caches[who].write(path, "t", docs)


def test_a_table_another_process_added_to_is_read_from_this_process_own_documents(tmp_path):
    """Only what follows this process's own last write is parsed: the documents before
    it are the very objects it wrote (so its next write encodes only the new ones)."""
    mine, other = KnownTables(), KnownTables()
    path = tmp_path / "t.json"
    shape = tinydb_file("t", {})
    first = {"1": {"a": [1, 2]}, "2": {"b": "two"}}
    mine.write(path, "t", first)
    theirs = other.read(path, "t", shape)
    theirs["3"] = {"c": None}
    other.write(path, "t", theirs)
    again = mine.read(path, "t", shape)
    assert again == {**first, "3": {"c": None}}
    assert again["1"] is first["1"] and again["2"] is first["2"]
    theirs["2"] = {"b": "changed"}  # a document changed before the end: read whole
    other.write(path, "t", theirs)
    assert mine.read(path, "t", shape)["2"] == {"b": "changed"}


def test_files_staged_in_a_chain_never_push_out_the_files_it_reads(tmp_path):
    """A batch's hand-over chain stages every file its commits touch (about 20 in a
    0.2 s chain); the files kept for reading are bounded apart from them, so a file
    read before the chain is still known after it (its documents the very objects
    read then, not parsed again), and the staged ones are all written by the flush."""
    known = KnownTables(size=2)
    shape = tinydb_file("t", {})
    read_first = tmp_path / "read.json"
    read_first.write_text(json.dumps({"t": {"1": {"a": 1}}}))
    before = known.read(read_first, "t", shape)
    staged = [tmp_path / f"staged-{n}.json" for n in range(6)]
    for n, path in enumerate(staged):
        known.stage(path, "t", {"1": {"n": n}})
    after = known.read(read_first, "t", shape)
    assert after["1"] is before["1"]
    for path in staged:
        known.flush(path)
    assert [json.loads(p.read_text())["t"]["1"]["n"] for p in staged] == list(range(6))
