"""A state file written ahead into a process's own folder (``prepare_text(folder=)``: a
run file, a ledger file) replaces the file by swapping names with it, and the old inode
is written again by that file's next write (``storage.atomic._Spares``, ``fs.exchange``).
The rules that must hold whatever the writes:

- generated: after any sequence of writes to a few state files (new and existing,
  fsynced or not, in two folders), each file holds exactly its last content, no temp
  file is ever visible under a state file's own name, and the inodes in use stay
  bounded by the files and the temp files kept, not by the number of writes;
- a reader in another process reading a file a writer rewrites in a loop never meets a
  damaged file (a real writer and a real reader);
- bytes read while the file was written anew are read again, not called damaged; a file
  that is damaged on disk still is;
- a kept temp file removed meanwhile (a maintenance command) or replaced by a link is
  made anew: nothing is written through the link;
- the kept temp files are gone when the process ends, and a forked child has none of
  its parent's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workerctl.errors import DamagedFile
from workerctl.storage import atomic
from workerctl.storage.atomic import encode_json, keeping_old_inodes, parse_json, prepare_text, read_json


@pytest.fixture(autouse=True)
def as_in_a_batch():
    """Inodes are kept only while a batch takes turns (``History.taking_turns``)."""
    with keeping_old_inodes():
        yield


def write_json(path: Path, data: object, *, sync_data: bool = True) -> None:
    """Written ahead into the state folder's ``ahead`` folder, then put in place."""
    prepare_text(path, encode_json(data), sync_data=sync_data, folder=path.parents[1] / "ahead").publish()


def _state(tmp_path: Path) -> Path:
    state = tmp_path / ".workerctl"
    (state / "a").mkdir(parents=True, exist_ok=True)
    (state / "b").mkdir(exist_ok=True)
    (state / "ahead").mkdir(exist_ok=True)
    return state


def _inodes(state: Path) -> set[int]:
    return {p.stat().st_ino for p in state.rglob("*") if p.is_file()}


WRITES = st.lists(
    st.tuples(
        st.sampled_from(["a/x.json", "a/y.json", "b/z.json"]),
        st.integers(min_value=0, max_value=10**6),
        st.booleans(),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=WRITES)
def test_each_file_holds_its_last_write_and_inodes_stay_bounded(tmp_path_factory, writes, monkeypatch):
    monkeypatch.setattr(atomic._Spares, "REST", 0.0)  # every kept file at once: the most reuse
    state = _state(tmp_path_factory.mktemp("w"))
    last: dict[str, int] = {}
    seen_inodes: set[int] = set()
    for name, value, durable in writes:
        write_json(state / name, {"value": value, "pad": "x" * (value % 500)}, sync_data=durable)
        last[name] = value
        for written, expected in last.items():
            assert read_json(state / written)["value"] == expected
        seen_inodes |= _inodes(state)
    # three files, a kept temp file per write at most in flight: never one inode per write
    assert len(seen_inodes) <= len(last) + 2 * 3, (len(seen_inodes), len(writes))
    atomic._SPARES.clear()
    assert sorted(p.name for p in state.rglob("*") if p.is_file()) == sorted(Path(n).name for n in last)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["write", "write", "remove"]),
        st.sampled_from(["a/x.json", "a/y.json", "b/z.json"]),
        st.integers(min_value=0, max_value=10**6),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_inside_a_batch_no_inode_is_freed_until_it_ends(tmp_path_factory, ops):
    """Writes (swapped in) and removals (``discard(keep_in=)``, as a finished run's marker
    and a batch's notes go) in any order: each file holds its last write or is gone, and
    every inode any file had stays in use until the block ends; then only the files
    remain."""
    from workerctl.storage.atomic import discard

    state = _state(tmp_path_factory.mktemp("w"))
    ahead = state / "ahead"
    live: dict[str, int] = {}
    ever: set[int] = set()
    with keeping_old_inodes():  # nested in the fixture's: what counts is the outermost
        for op, name, value in ops:
            if op == "write":
                write_json(state / name, {"value": value})
                live[name] = value
            else:
                discard(state / name, keep_in=ahead)
                live.pop(name, None)
            for written, expected in live.items():
                assert read_json(state / written)["value"] == expected
            for gone in {"a/x.json", "a/y.json", "b/z.json"} - live.keys():
                assert not (state / gone).exists()
            ever |= _inodes(state)
            assert ever <= _inodes(state), "an inode was freed inside the batch"
    atomic._SPARES.clear()
    assert sorted(str(p.relative_to(state)) for p in state.rglob("*") if p.is_file()) == sorted(live)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    writes=st.lists(
        st.tuples(st.sampled_from(["a/x.json", "a/y.json", "b/z.json", "b/w.json"]), st.integers(0, 60_000)),
        min_size=12,
        max_size=30,
    )
)
def test_the_old_content_kept_in_a_batch_stays_within_its_bound(tmp_path_factory, writes, monkeypatch):
    """A batch of runs with large outputs keeps their old versions until it ends: what
    the kept files hold stays within ``_Spares.BYTES`` (a file's first old content,
    written before, is taken to be as large as its new one), the oldest going first."""
    monkeypatch.setattr(atomic._Spares, "BYTES", 100_000)
    state = _state(tmp_path_factory.mktemp("w"))
    sizes: dict[str, int] = {}
    for name in ("a/x.json", "a/y.json", "b/z.json", "b/w.json"):  # written before the batch
        (state / name).write_text("{}")
    for name, size in writes:
        write_json(state / name, {"pad": "x" * size})
        sizes[name] = size
        kept = sum(p.stat().st_size for p in _kept(state))
        assert kept <= 100_000, kept
        for written, expected in sizes.items():
            assert len(read_json(state / written)["pad"]) == expected
    atomic._SPARES.clear()


@pytest.mark.parametrize("planted", ["file", "link"])
def test_a_removed_file_goes_when_its_keeping_folder_is_planted(tmp_path, planted):
    """Inside a batch a removed file is moved into the process's folder; a file or a
    link planted where that folder goes makes it removed as outside a batch, and
    nothing is written through the link."""
    from workerctl.storage.atomic import discard

    state = _state(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    keep_in = state / "ahead" / "mine"
    if planted == "file":
        keep_in.write_text("")
    else:
        keep_in.symlink_to(outside)
    path = state / "a" / "m.json"
    path.write_text("{}")
    discard(path, keep_in=keep_in)
    assert not path.exists() and list(outside.iterdir()) == []


def test_outside_a_batch_a_removed_file_is_unlinked(tmp_path):
    from workerctl.storage.atomic import discard

    state = _state(tmp_path)
    path = state / "a" / "m.json"
    path.write_text("{}")
    atomic._SPARES.close()  # the fixture's block: as outside any batch
    try:
        discard(path, keep_in=state / "ahead")
        assert not path.exists() and list((state / "ahead").iterdir()) == []
    finally:
        atomic._SPARES.open()


_WRITER = """
import json, sys, time
from pathlib import Path
from workerctl.storage.atomic import encode_json, keeping_old_inodes, prepare_text
folder = Path(sys.argv[1])
end = time.monotonic() + float(sys.argv[2])
n = 0
with keeping_old_inodes():
    while time.monotonic() < end:
        n += 1
        for name in ("a.json", "b.json"):  # two files of one folder, rewritten in turn
            data = encode_json({"name": name, "n": n, "pad": "x" * (n % 4000)})
            prepare_text(folder / name, data, sync_data=False, folder=folder.parent / "ahead").publish()
print(n)
"""

_READER = """
import os, random, sys, time
from pathlib import Path
from workerctl.errors import DamagedFile
from workerctl.storage.atomic import parse_json
path = Path(sys.argv[1])
end = time.monotonic() + float(sys.argv[2])
reads = damaged = others = 0
while time.monotonic() < end:
    fd = os.open(path, os.O_RDONLY)
    time.sleep(random.choice([0, 0, 0.001, 0.3, 0.6]))  # a reader the system set aside
    data = os.read(fd, 1 << 20)
    os.close(fd)
    try:
        value = parse_json(path, data)
        reads += 1
        others += value["name"] != path.name
    except DamagedFile as exc:
        damaged += 1
        print("damaged:", exc.message, file=sys.stderr)
print(reads, damaged, others)
"""


def test_a_reader_beside_a_writer_reads_only_that_file_whole(tmp_path):
    """Readers that open a file and read it late (up to 0.6 s, past the 0.25 s a kept
    inode rests) while a writer rewrites it and its neighbour thousands of times a
    second: never a damaged file, never the neighbour's content."""
    folder = _state(tmp_path) / "a"
    for name in ("a.json", "b.json"):
        write_json(folder / name, {"name": name, "n": 0, "pad": ""})
    seconds = "4"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(folder), seconds], stdout=subprocess.PIPE, text=True
    )
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", _READER, str(folder / name), seconds], stdout=subprocess.PIPE, text=True
        )
        for name in ("a.json", "b.json", "a.json")
    ]
    assert int(writer.communicate(60)[0]) > 100
    for reader in readers:
        reads, damaged, others = map(int, reader.communicate(60)[0].split())
        assert reads > 5 and damaged == 0 and others == 0, (reads, damaged, others)


def test_bytes_read_while_the_file_was_written_are_read_again(tmp_path):
    path = _state(tmp_path) / "a" / "f.json"
    write_json(path, {"whole": True})
    torn = path.read_bytes()[:5]
    assert parse_json(path, torn, again=True) == {"whole": True}
    assert parse_json(path, b"", again=True) == {"whole": True}
    with pytest.raises(DamagedFile):  # bytes given, not read from the file: judged as given
        parse_json(path, torn)


def test_a_file_damaged_on_disk_is_still_damaged(tmp_path):
    path = _state(tmp_path) / "a" / "f.json"
    path.write_bytes(b'{"cut": ')
    with pytest.raises(DamagedFile):
        parse_json(path, path.read_bytes())
    with pytest.raises(DamagedFile):
        read_json(path)


def _kept(state: Path) -> list[Path]:
    return sorted(state.rglob(".*.tmp"))


def test_a_kept_temp_file_removed_meanwhile_is_made_anew(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic._Spares, "REST", 0.0)
    state = _state(tmp_path)
    path = state / "a" / "f.json"
    write_json(path, {"n": 1})
    write_json(path, {"n": 2})  # swapped: the first inode is kept
    kept = _kept(state)
    assert kept
    for tmp in kept:
        tmp.unlink()  # as a reindex removes stray temp files under the lock
    write_json(path, {"n": 3})
    assert read_json(path) == {"n": 3}
    atomic._SPARES.clear()


def test_a_link_planted_at_a_kept_temp_file_is_never_written_through(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic._Spares, "REST", 0.0)
    state = _state(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("mine")
    path = state / "a" / "f.json"
    write_json(path, {"n": 1})
    write_json(path, {"n": 2})
    for tmp in _kept(state):
        tmp.unlink()
        tmp.symlink_to(outside)
    hard = tmp_path / "hard.txt"
    hard.write_text("also mine")
    write_json(path, {"n": 3})
    assert read_json(path) == {"n": 3}
    assert outside.read_text() == "mine"
    for tmp in _kept(state):
        if not tmp.is_symlink():
            tmp.unlink()
            os.link(hard, tmp)  # a second name of a file elsewhere
    write_json(path, {"n": 4})
    write_json(path, {"n": 5})
    assert read_json(path) == {"n": 5}
    assert hard.read_text() == "also mine"
    atomic._SPARES.clear()


_ENDS = """
import sys
from pathlib import Path
from workerctl.storage import atomic
from workerctl.storage.atomic import encode_json, keeping_old_inodes, prepare_text
path = Path(sys.argv[1])
keeping = keeping_old_inodes()
keeping.__enter__()  # never left: the process's end removes what it kept
for n in range(20):
    prepare_text(path, encode_json({"n": n}), folder=path.parents[1] / "ahead").publish()
assert atomic._SPARES._count
"""


def test_the_kept_temp_files_go_with_the_process(tmp_path):
    state = _state(tmp_path)
    done = subprocess.run([sys.executable, "-c", _ENDS, str(state / "a" / "f.json")], capture_output=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((state / "a" / "f.json").read_text()) == {"n": 19}
    assert _kept(state) == []


_MANY = """
import sys
from pathlib import Path
from workerctl.storage import atomic
from workerctl.storage.atomic import discard, encode_json, keeping_old_inodes, prepare_text
state = Path(sys.argv[1])
def write(path, n):
    prepare_text(path, encode_json({"n": n}), folder=state / "ahead").publish()
with keeping_old_inodes():  # left: its end removes them, several threads at once
    for n in range(120):
        write(state / "a" / f"f{n}.json", 1)
        write(state / "a" / f"f{n}.json", 2)
    for n in range(0, 120, 3):
        discard(state / "a" / f"f{n}.json", keep_in=state / "ahead")
    assert atomic._SPARES._count > atomic._Spares.TOGETHER
print((state / "ahead").exists())  # emptied, it went too
keeping = keeping_old_inodes()
keeping.__enter__()  # never left: the process's end removes them
for n in range(120):
    write(state / "b" / f"g{n}.json", 1)
    write(state / "b" / f"g{n}.json", 2)
"""


def test_many_kept_files_go_at_the_batchs_end_and_at_the_processs(tmp_path):
    state = _state(tmp_path)
    done = subprocess.run([sys.executable, "-c", _MANY, str(state)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # the block's end: none left, nor their folder
    assert _kept(state) == [] and not (state / "ahead").exists()  # the process's end: the same
    assert len(list((state / "a").iterdir())) == 80 and len(list((state / "b").iterdir())) == 120


def test_a_forked_child_keeps_none_of_its_parents(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic._Spares, "REST", 0.0)
    state = _state(tmp_path)
    path = state / "a" / "f.json"
    write_json(path, {"n": 1})
    write_json(path, {"n": 2})
    parents = _kept(state)
    assert parents
    pid = os.fork()
    if pid == 0:  # the child: its writes never take the parent's kept files
        code = 0
        try:
            write_json(state / "a" / "child.json", {"child": 1})
            write_json(state / "a" / "child.json", {"child": 2})
            if any(not p.exists() for p in parents):
                code = 1
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    write_json(path, {"n": 3})
    assert read_json(path) == {"n": 3}
    atomic._SPARES.clear()


def test_a_killed_batch_leaves_no_temp_file_after_the_next_start(workspace):
    """A batch SIGKILLed mid-way leaves its runs' files in flight and the inodes it kept
    in its own folder under ``history/ahead/``; the next command that finds its dead runs
    settles them and removes that folder (a reindex or a prune did before; a plain start
    left them for ever). (A comment's temp file beside its file, cut by the kill, is not
    this folder's: see the closing note.)"""
    from helpers import make_worker, run_workerctl, start_workerctl, wait_for
    from workerctl.history.store import History
    from workerctl.records.builtin_store import BuiltinRecordStore

    tasks = [{"id": f"T-{8400 + n}", "type": "task", "title": f"Task {n}"} for n in range(41)]
    BuiltinRecordStore(workspace).import_records(tasks, "test")
    make_worker(
        workspace, "paced", executor="{name: echo, script: [{sleep: 0.05, output: 'Blocker: none.'}]}"
    )
    ids = workspace.root / "ids.txt"
    ids.write_text("\n".join(t["id"] for t in tasks[:40]) + "\n")
    batch = start_workerctl(
        "run", "start", "paced", "--records-from", str(ids), "--jobs", "4", workspace=workspace
    )
    wait_for(lambda: len(History(workspace).list(None, limit=12)) >= 12, 60)
    batch.kill()
    batch.communicate(30)
    ahead = workspace.state_dir / "history" / "ahead"
    left = [p for p in ahead.iterdir() if p.name.split(".")[1] == str(batch.pid)]
    assert left and any(left[0].iterdir())  # its folder, with what it left
    after = run_workerctl("run", "start", "paced", "--task", tasks[40]["id"], workspace=workspace)
    assert after.returncode == 0, after.stderr
    assert not list(workspace.state_dir.rglob("*.next.tmp"))  # what it wrote ahead or kept
    assert not left[0].exists()


def test_a_killed_writers_temp_files_go_with_its_runs(workspace):
    """A process killed between a temp file and its rename (a comment, an index file, a
    ledger file) left that file for ever: nothing looked in ``comments/``. Once the
    sweep settles the dead process's runs, its temp files go, under the lock their
    writer held; another process's stay."""
    from helpers import make_worker, run_workerctl, start_workerctl, wait_for
    from workerctl.history.store import History
    from workerctl.records.builtin_store import BuiltinRecordStore

    tasks = [{"id": f"T-{8500 + n}", "type": "task", "title": f"Task {n}"} for n in range(2)]
    BuiltinRecordStore(workspace).import_records(tasks, "test")
    make_worker(workspace, "slow", executor="{name: echo, script: [{sleep: 30, output: 'Blocker: none.'}]}")
    run = start_workerctl("run", "start", "slow", "--task", tasks[0]["id"], workspace=workspace)
    wait_for(lambda: History(workspace).list(None, limit=1), 60)
    run.kill()
    run.communicate(30)
    state = workspace.state_dir
    (state / "comments").mkdir(exist_ok=True)
    planted = [
        state / "comments" / f".+t-{8500}.json.{run.pid}.1407.tmp",
        state / f".records.json.{run.pid}.1407.tmp",
        state / "history" / "index" / f".000001.json.{run.pid}.1407.tmp",
        state / "history" / "indexes" / f".workers.json.{run.pid}.1407.tmp",
        *(  # the killed run's own file, cut mid-write
            (folder / f".{folder.name}xxxxxx.json.{run.pid}.1407.tmp")
            for folder in (state / "history" / "runs").iterdir()
        ),
    ]
    alive = state / "comments" / f".+t-{8500}.json.{os.getpid()}.1407.tmp"  # a live writer's
    for path in [*planted, alive]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    after = run_workerctl(
        "run", "start", "overdue-task-review", "--task", tasks[1]["id"], workspace=workspace
    )
    assert after.returncode == 0, after.stderr
    assert [p for p in planted if p.exists()] == []
    assert alive.exists()


@given(
    name=st.text(
        st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1, max_size=30
    ),
    pid=st.integers(min_value=1, max_value=2**22),
    thread=st.integers(min_value=1, max_value=2**63),
    n=st.integers(min_value=0, max_value=10**6),
)
def test_a_temp_files_writer_is_read_from_its_name_and_nothing_else(name, pid, thread, n):
    assert atomic.writer_of(f".{name}.{pid}.{thread}.tmp") == pid
    # what is written ahead or kept (``.next.tmp``) is never taken for such a file
    assert atomic.writer_of(f".{name}.{pid}.{thread}.{n}.next.tmp") is None
    assert atomic.writer_of(f".{name}.{pid}.{n}.next.tmp") is None
    assert atomic.writer_of(f"{name}.json") is None


def test_outside_a_batch_a_file_written_ahead_is_renamed_and_nothing_is_kept(tmp_path):
    """A single start, a cancel, a sweep: no kept inode, no temp file after a write (a
    reader's check of stray temp files saw one between a save's swap and its end)."""
    state = _state(tmp_path)
    path = state / "a" / "f.json"
    keeping = atomic._SPARES.keeping
    atomic._SPARES.keeping = 0  # as outside every batch (this module's fixture opens one)
    try:
        write_json(path, {"n": 1})
        first = path.stat().st_ino
        write_json(path, {"n": 2})
        assert path.stat().st_ino != first  # renamed: a new inode, the old one freed
        assert _kept(state) == []
    finally:
        atomic._SPARES.keeping = keeping


def test_a_start_leaves_no_folder_of_files_written_ahead(workspace):
    """Each process writes ahead into its own folder under ``history/ahead/``; every
    ``run start`` left it behind, empty, until a reindex or a prune (a cron job's
    minute-by-minute starts piled them up). It goes with the process now."""
    from helpers import started_on

    started_on(workspace, "T-1042", "T-1043")
    ahead = workspace.state_dir / "history" / "ahead"
    assert not ahead.exists() or list(ahead.iterdir()) == []


def test_a_writer_killed_with_no_run_in_hand_leaves_no_folder_after_the_next_start(workspace):
    """A batch killed at its end, while it removed the files it kept, had no run left for
    the next command to settle, so nothing removed its folder under ``history/ahead/``
    (found by rerunning this session's fresh-brief round: a SIGKILLed 16-job batch, then
    a single start). The next start removes a dead writer's folder; a live one's stays."""
    from helpers import started_on
    from workerctl.history.store import _host_key
    from workerctl.storage.lock import hostname

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    pid = int(gone.stdout)
    ahead = workspace.state_dir / "history" / "ahead"
    dead = ahead / f"{_host_key(hostname())}.{pid}.12345"
    live = ahead / f"{_host_key(hostname())}.{os.getpid()}.None"
    for folder in (dead, live):
        folder.mkdir(parents=True)
        (folder / f".x.json.{pid}.7.next.tmp").write_text("{}")
    started_on(workspace, "T-1042")
    assert not dead.exists() and live.exists()
