"""The two ways ``storage.fs`` reaches a state folder give the same answer.

A short command walks a path one component at a time; a process that walks many
(a batch) resolves it in one ``openat2`` call with ``RESOLVE_NO_SYMLINKS``, and falls
back to the walk on any refusal. Generated here: state trees with a link (to a folder
outside, dangling), a file where a folder belongs, or a missing folder at any
component, and every kind of operation; each is done once with the walk alone and
once with ``openat2`` first, on copies of the same tree, and must end the same way
(the same result, or the same error naming the same path) and leave the same tree,
with nothing outside it touched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workerctl.storage import fs

FAST = fs._load_openat2()
pytestmark = pytest.mark.skipif(FAST is fs._declined, reason="no openat2 on this kernel")

PATH = [".workerctl", "history", "runs", "ab"]  # the folders above a run file
DAMAGE = st.sampled_from(["none", "link", "dangling", "file", "missing"])
FILE_DAMAGE = st.sampled_from(["none", "link", "fifo", "hardlink", "folder", "missing"])


def _tree(base: Path, where: int, damage: str, file_damage: str = "none") -> Path:
    ws = base / "ws"
    folder = ws.joinpath(*PATH)
    folder.mkdir(parents=True)
    run_file = folder / "R1.json"
    run_file.write_text('{"id": "R1"}')
    outside = base / "outside"
    shutil.copytree(ws / ".workerctl", outside / ".workerctl")  # a look-alike the link leads to
    (outside / "bystander.txt").write_text("do not touch\n")
    if file_damage != "none":
        run_file.unlink()
        if file_damage == "link":
            run_file.symlink_to(outside / "bystander.txt")
        elif file_damage == "fifo":
            os.mkfifo(run_file)
        elif file_damage == "hardlink":
            os.link(outside / "bystander.txt", run_file)
        elif file_damage == "folder":
            run_file.mkdir()
    target = ws.joinpath(*PATH[: where + 1])
    if damage != "none":
        shutil.rmtree(target)
        if damage == "link":
            target.symlink_to(outside.joinpath(*PATH[: where + 1]))
        elif damage == "dangling":
            target.symlink_to(base / "nowhere")
        elif damage == "file":
            target.write_text("not a folder")
    return ws


def _state(base: Path) -> list[tuple[str, int, bytes]]:
    out = []
    for p in sorted(base.rglob("*")):
        st_ = os.lstat(p)
        body = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
        out.append((str(p.relative_to(base)), st_.st_mode, body))
    return out


OPERATIONS = {
    "read": lambda f: fs.read_bytes(f / "R1.json"),
    "exists": lambda f: fs.exists(f / "R1.json"),
    "listdir": lambda f: sorted(fs.listdir(f)),
    "create": lambda f: os.close(fs.create_new(f / "new.tmp")),
    "replace": lambda f: fs.replace(f / "R1.json", f / "R2.json"),
    "mkdir": lambda f: fs.mkdir(f / "cd", parents=True, exist_ok=True),
    "unlink": lambda f: fs.unlink(f / "R1.json", missing_ok=True),
    "lstat": lambda f: fs.lstat(f / "R1.json").st_size,
    "touch": lambda f: fs.touch(f / "R1.json"),
    "chmod": lambda f: fs.chmod(f / "R1.json", 0o600),
    "write": lambda f: os.close(fs.open_file(f / "R1.json", os.O_WRONLY)),
}


def _outcome(resolver, base: Path, operation: str) -> tuple[str, object, list]:
    fs._openat2 = resolver
    folder = (base / "ws").joinpath(*PATH)
    try:
        result: object = ("ok", OPERATIONS[operation](folder))
    except (OSError, fs.PlantedLink) as exc:
        result = (type(exc).__name__, str(exc).replace(str(base), "BASE"))
    finally:
        _forget_anchors()
    return result, _state(base)


def _forget_anchors() -> None:
    """The process keeps a descriptor of at most 16 workspaces (``fs._kept_anchor``), and
    ``openat2`` starts from one: without this, every example after the eighth walked."""
    for fd in fs._ANCHORS.values():
        os.close(fd)
    fs._ANCHORS.clear()


def _same_end(fast: object, walked: object) -> bool:
    """The same result, or the same error naming the same path; except that a missing
    path is named as asked for by ``openat2`` (it answers ENOENT at once: no link can lie
    before the missing component, or it would have refused first) and by its first
    missing component by the walk."""
    if fast == walked:
        return True
    missing = "FileNotFoundError"
    if not (isinstance(fast, tuple) and isinstance(walked, tuple) and fast[0] == walked[0] == missing):
        return False
    named = lambda text: str(text).rsplit(": ", 1)[-1].strip("'")  # noqa: E731
    return (named(fast[1]) + "/").startswith(named(walked[1]) + "/")


@settings(max_examples=200, deadline=None)
@given(
    where=st.integers(0, len(PATH) - 1),
    damage=DAMAGE,
    file_damage=FILE_DAMAGE,
    operation=st.sampled_from(sorted(OPERATIONS)),
)
def test_openat2_and_the_walk_end_the_same_way(where, damage, file_damage, operation):
    kept = fs._openat2
    try:
        with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
            walked_base, fast_base = Path(one), Path(two)
            _tree(walked_base, where, damage, file_damage)
            _tree(fast_base, where, damage, file_damage)
            outside_before = _state(fast_base / "outside")
            walked = _outcome(fs._declined, walked_base, operation)
            fast = _outcome(FAST, fast_base, operation)
            assert fast[1] == walked[1]  # the same tree
            assert _same_end(fast[0], walked[0])
            assert _state(fast_base / "outside") == outside_before
    finally:
        fs._openat2 = kept


def test_a_link_at_any_folder_is_refused_by_openat2_itself(tmp_path):
    """The fast path refuses on its own (it does not lean on the walk to see a link):
    the call returns -1 for a link at each component."""
    for where in range(len(PATH)):
        base = tmp_path / str(where)
        ws = _tree(base, where, "link")
        anchor = os.open(ws, os.O_RDONLY | os.O_DIRECTORY)
        above = -1
        try:
            assert FAST(anchor, "/".join(PATH)) in (-errno.ELOOP, -errno.ENOTDIR)  # refused, not MISSING
            above = FAST(anchor, "/".join(PATH[:where]))  # the folders above the link open
            assert (above >= 0) == (where > 0), where
        finally:
            os.close(anchor)
            if above >= 0:
                os.close(above)


def test_a_batch_switches_to_openat2_and_a_short_command_does_not(monkeypatch):
    """A read counts once or twice (the call tried, then the walk's own try)."""
    monkeypatch.setattr(fs, "_openat2", None)
    monkeypatch.setattr(fs, "_walks", 0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp).joinpath(*PATH)
        folder.mkdir(parents=True)
        (folder / "R1.json").write_text("{}")
        for _ in range(fs.FAST_AFTER // 2 - 1):  # more than a 'run start' walks (about 220)
            assert fs.read_bytes(folder / "R1.json") == b"{}"
        assert fs._openat2 is None
        for _ in range(fs.FAST_AFTER // 2 + 1):
            assert fs.read_bytes(folder / "R1.json") == b"{}"
        assert fs._openat2 is not None and fs._openat2.__name__ == FAST.__name__


@pytest.mark.parametrize("at", [False, True])
def test_a_hard_link_opened_to_be_emptied_is_refused_before_it_is_emptied(tmp_path, at):
    """``O_TRUNC`` empties a file as it opens it, before its links can be counted: a hard
    link planted at a state file opened that way (the reindex journal's notes, the search
    index's write note) emptied the outside file, then was refused. It is refused first."""
    from workerctl.errors import PlantedLink
    from workerctl.storage import fs

    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"kept\n" * 10)
    state = tmp_path / "ws" / ".workerctl"
    state.mkdir(parents=True)
    os.link(outside, state / "note")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with pytest.raises(PlantedLink):
        if at:
            dir_fd = fs.open_dir(state)
            try:
                fs.open_file_at(dir_fd, "note", flags, path=state / "note")
            finally:
                os.close(dir_fd)
        else:
            fs.open_file(state / "note", flags)
    assert outside.read_bytes() == b"kept\n" * 10
    (state / "note").unlink()
    (state / "note").write_bytes(b"old")  # a plain file of its own is still emptied
    fd = fs.open_file(state / "note", flags)
    os.close(fd)
    assert (state / "note").read_bytes() == b""


def test_held_as_finds_a_hard_link_swapped_in_and_back(tmp_path):
    """What a library opened by name after the check (SQLite, the search index) is the
    file checked: a hard link to an outside file swapped in before its open, and the
    checked file put back after, is found by the descriptor the library holds."""
    state = tmp_path / "ws" / ".workerctl"
    state.mkdir(parents=True)
    checked, outside = state / "search.db", tmp_path / "outside.txt"
    checked.write_bytes(b"index")
    outside.write_bytes(b"kept")
    st = checked.stat()
    ident = (st.st_dev, st.st_ino)
    held = os.open(checked, os.O_RDONLY)  # the library's own open, of the checked file
    try:
        assert fs.held_as(checked, ident)
    finally:
        os.close(held)
    os.link(checked, state / "aside")  # the checked file kept aside
    os.link(outside, state / "swap")
    os.replace(state / "swap", checked)  # swapped in ...
    held = os.open(checked, os.O_RDONLY)  # ... when the library opens the name ...
    try:
        os.replace(state / "aside", checked)  # ... and put back after
        assert checked.stat().st_ino == ident[1]
        assert not fs.held_as(checked, ident)
    finally:
        os.close(held)


@settings(max_examples=60, deadline=None)
@given(body=st.one_of(st.binary(max_size=64), st.integers(0, 3).map(lambda n: b"x" * (4095 + n) * (1 + n))))
def test_a_state_file_is_read_whole_in_as_few_reads_as_it_needs(body):
    """One read for the whole file and a byte more; a short read of the size the file
    had when it was opened is its end. Whatever the size, every byte comes back."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp).joinpath(*PATH)
        folder.mkdir(parents=True)
        (folder / "R1.json").write_bytes(body)
        assert fs.read_bytes(folder / "R1.json") == body


@pytest.mark.parametrize("made_again", ["opened again", "not opened again", "not made again"])
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("resolver", ["walk", "openat2"])
def test_a_workspace_made_again_under_a_long_lived_process_is_met_as_a_new_process_meets_it(
    resolver, operation, made_again
):
    """A process keeps a descriptor of each workspace folder it works in (``_kept_anchor``);
    a long-lived one (an rq worker, a program driving the engine) may outlive that folder:
    removed, and perhaps made again at the same path. Once it opens the workspace again
    (``load_workspace`` calls ``fs.renew``), every operation ends as it would in a process
    that never saw the old folder; until then, nothing reaches the new folder (the
    operations fail as in the removed one)."""
    kept = fs._openat2
    try:
        with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
            long_lived, fresh = Path(one), Path(two)
            fs._openat2 = {"walk": fs._declined, "openat2": FAST}[resolver]
            _forget_anchors()  # room to keep one (at most 16 a process)
            _tree(long_lived, 0, "none")
            assert fs.read_bytes(long_lived.joinpath("ws", *PATH, "R1.json")) == b'{"id": "R1"}'
            anchor = fs._ANCHORS[str(long_lived / "ws")]
            shutil.rmtree(long_lived / "ws")  # the anchor the process keeps is now a removed folder
            shutil.rmtree(long_lived / "outside")
            if made_again != "not made again":
                for base in (long_lived, fresh):
                    _tree(base, 0, "none")
                    base.joinpath("ws", *PATH, "R1.json").write_text('{"id": "R1", "new": true}')
            if made_again == "opened again":
                fs.renew(long_lived / "ws")
                assert fs._ANCHORS[str(long_lived / "ws")] == anchor  # the same number, now the new folder
            before = _state(long_lived)
            folder = long_lived.joinpath("ws", *PATH)
            try:
                result: object = ("ok", OPERATIONS[operation](folder))
            except (OSError, fs.PlantedLink) as exc:
                result = (type(exc).__name__, str(exc).replace(str(long_lived), "BASE"))
            if made_again == "not opened again":  # as in the removed folder: nothing there
                assert result[0] == "FileNotFoundError" or result in (("ok", False), ("ok", None)), result
                assert _state(long_lived) == before  # the new folder untouched
            else:
                expected = _outcome(fs._openat2, fresh, operation)  # anchors forgotten: a new process
                assert _same_end(result, expected[0])
                assert _state(long_lived) == expected[1]
    finally:
        fs._openat2 = kept
        _forget_anchors()


LONG_LIVED = """
import json, shutil, sys
from pathlib import Path
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.plugins.manager import get_registry
from workerctl.workspace import init_workspace

root, out = Path(sys.argv[1]), []
for _ in range(2):
    workspace = init_workspace(root, get_registry())
    engine = Engine(workspace, get_registry())
    for _ in range(int(sys.argv[2])):  # past fs.FAST_AFTER walks: openat2 resolves from the kept folder
        run = engine.start("overdue-task-review", StartOptions(record_id="T-1042", allow_repeat=True))
        out.append([run.id, run.status])
    shutil.rmtree(root)  # the workspace removed under the process, then made again
print(json.dumps(out[-1:] + out[:1]))
"""


@pytest.mark.parametrize("runs", [1, 4])
def test_an_engine_in_a_long_lived_process_runs_in_a_workspace_made_again_at_its_path(tmp_path, runs):
    """The report: a program driving the engine removed its workspace and made it again at
    the same path; its next run failed with "cannot create the folder ... No such file or
    directory" (the process still held the removed folder)."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", LONG_LIVED, str(tmp_path / "ws"), str(runs)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    (last_id, last_status), (first_id, _) = json.loads(done.stdout)
    assert last_status == "completed" and last_id != first_id


def _workspace_with_history(root: Path) -> Path:
    history = root / ".workerctl" / "history"
    history.mkdir(parents=True)
    return history


def _held_elsewhere(lock_file: Path) -> bool:
    other = os.open(lock_file, os.O_RDONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(other)
    return False


@pytest.mark.parametrize("resolver", ["walk", "openat2"])
def test_nothing_written_under_a_lock_goes_to_a_workspace_made_again_while_it_is_held(tmp_path, resolver):
    """The rule the new folder is taken under: what is written under a lock goes beside
    that lock. While a lock taken in the removed folder is held, opening the workspace
    again does not move the process to the new folder (its writes fail, as in the removed
    one); once the lock is let go it does, and the next lock is the new folder's."""
    from workerctl.errors import WorkerctlError
    from workerctl.storage.atomic import write_json
    from workerctl.storage.lock import FileLock

    kept = fs._openat2
    fs._openat2 = {"walk": fs._declined, "openat2": FAST}[resolver]
    _forget_anchors()  # room to keep one (at most 16 a process)
    try:
        history = _workspace_with_history(tmp_path / "ws")
        lock = FileLock(history / "lock", timeout=1)
        with lock:
            write_json(history / "a.json", {"n": 1})
            shutil.rmtree(tmp_path / "ws")
            _workspace_with_history(tmp_path / "ws")
            fs.renew(tmp_path / "ws")  # another thread opens the workspace again: not yet
            with pytest.raises((OSError, WorkerctlError)):
                write_json(history / "b.json", {"n": 2})
            assert not (history / "b.json").exists()
        fs.renew(tmp_path / "ws")
        with lock:
            write_json(history / "b.json", {"n": 2})
            assert json.loads((history / "b.json").read_text()) == {"n": 2}
            assert _held_elsewhere(history / "lock")  # the new folder's lock file is the one held
        assert fs._PINNED == {}
    finally:
        fs._openat2 = kept
        _forget_anchors()


def test_a_lock_file_made_again_as_it_is_opened_is_taken_in_the_new_folder(tmp_path, monkeypatch):
    """The window between opening the lock file and pinning its folder, held open (it
    cannot be hit on purpose otherwise): the workspace is removed, made again, and opened
    again by another thread of the process, which goes on in the new folder."""
    from workerctl.storage.atomic import write_json
    from workerctl.storage.lock import FileLock

    _forget_anchors()  # room to keep one (at most 16 a process)
    history = _workspace_with_history(tmp_path / "ws")
    write_json(history / "a.json", {"n": 1})  # the folder kept by the process
    pin, calls = fs.pin, []

    def made_again_first(path):
        calls.append(path)
        if len(calls) == 1:
            shutil.rmtree(tmp_path / "ws")
            _workspace_with_history(tmp_path / "ws")
            fs.renew(tmp_path / "ws")
        return pin(path)

    monkeypatch.setattr(fs, "pin", made_again_first)
    try:
        with FileLock(history / "lock", timeout=1):
            write_json(history / "b.json", {"n": 2})
            assert _held_elsewhere(history / "lock")
        assert len(calls) == 2 and (history / "b.json").exists() and not (history / "a.json").exists()
        assert fs._PINNED == {}
    finally:
        _forget_anchors()


def test_a_thread_waiting_for_a_lock_does_not_keep_the_process_from_a_workspace_made_again(tmp_path):
    """Only a lock held pins its folder: a thread still waiting for one (another process
    holds it) lets the process go on in the new folder, and the lock it then gets is the
    new folder's (the old one's file, once held, is found not to be at the path)."""
    import subprocess
    import sys
    import threading

    from workerctl.storage.lock import FileLock

    _forget_anchors()  # room to keep one (at most 16 a process)
    try:
        history = _workspace_with_history(tmp_path / "ws")
        fs.exists(history / "a.json")  # the folder kept by the process
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(history / "lock")], stdout=subprocess.PIPE, stdin=subprocess.PIPE
        )
        assert holder.stdout.readline() == b"held\n"
        got = threading.Event()
        lock = FileLock(history / "lock", timeout=30)

        def wait_for_it() -> None:
            with lock:
                got.set()
                assert _held_elsewhere(history / "lock")
                done.set()

        done = threading.Event()
        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        while not _opened_here(history / "lock"):  # the thread waits on the old folder's file
            time.sleep(0.01)
        shutil.rmtree(tmp_path / "ws")
        _workspace_with_history(tmp_path / "ws")
        fs.renew(tmp_path / "ws")  # opened again while the thread waits: taken up at once
        new = os.stat(tmp_path / "ws")
        assert os.fstat(fs._ANCHORS[str(tmp_path / "ws")]).st_ino == new.st_ino
        holder.stdin.close()  # the old folder's holder lets go
        holder.wait(10)
        waiter.join(30)
        assert got.is_set() and done.is_set()
    finally:
        _forget_anchors()


def _opened_here(path: Path) -> bool:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
    return str(path) in links


HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("resolver", ["walk", "openat2"])
def test_a_workspace_kept_in_a_folder_named_like_a_state_folder_is_anchored_at_its_own(tmp_path, resolver):
    """``~/.workerctl/projects/acme``: the workspace's own ``.workerctl`` is the state folder,
    not the outer one. Anchored at the outer one, a workspace made again there was written
    by objects made before it was opened again, and under a lock taken in the old folder
    (the second fresh-brief round, c48 and c69); links inside its state are still refused."""
    kept = fs._openat2
    fs._openat2 = {"walk": fs._declined, "openat2": FAST}[resolver]
    _forget_anchors()  # room to keep one (at most 16 a process)
    try:
        base = tmp_path / ".workerctl" / "projects"
        base.mkdir(parents=True)
        _tree(base, 0, "none")
        run_file = base.joinpath("ws", *PATH, "R1.json")
        assert fs._split(run_file) == (str(base / "ws"), [*PATH, "R1.json"])
        assert fs.read_bytes(run_file) == b'{"id": "R1"}'
        shutil.rmtree(base / "ws")
        shutil.rmtree(base / "outside")
        _tree(base, 0, "none")  # made again, not opened again: nothing reaches it
        before = _state(base / "ws")
        with pytest.raises(FileNotFoundError):
            fs.read_bytes(run_file)
        with pytest.raises(OSError):
            os.close(fs.create_new(run_file.with_name("new.tmp")))
        assert _state(base / "ws") == before
        fs.renew(base / "ws")
        assert fs.read_bytes(run_file) == b'{"id": "R1"}'
        history = base / "ws" / ".workerctl" / "history"
        shutil.rmtree(history)
        history.symlink_to(base / "outside" / ".workerctl" / "history")
        with pytest.raises(fs.PlantedLink):
            fs.read_bytes(run_file)
    finally:
        fs._openat2 = kept
        _forget_anchors()
