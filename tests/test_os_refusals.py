"""Full disk, read-only folders, permission errors: caused for real.

A small tmpfs really fills up, a read-only bind mount really refuses writes, and
an unprivileged user (root ignores permission bits) really gets EACCES. Each
must give one line naming the path and the cause, exit 4, no traceback, and
leave a history the next command reads as one consistent state. These need
root (mount, setpriv); elsewhere they are skipped, and the injected-ENOSPC
tests in test_durability.py still cover every write point.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import ROOT, make_worker, run_workerctl, started_on
from workerctl.history.store import History
from workerctl.plugins.manager import get_registry
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.workspace import init_workspace

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, setpriv)")
NOBODY = 65534


def one_line_error(result, cause: str, path: Path) -> None:
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert cause in lines[0] and str(path) in lines[0], lines[0]


@pytest.fixture
def small_disk():
    folder = Path(tempfile.mkdtemp(prefix="workerctl-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.rmdir()


FILL_AND_ANSWER = """
import json, sys
sys.stdin.read()
with open(sys.argv[1], "wb") as out:
    try:
        while True:
            out.write(b"x" * 4096)
            out.flush()
    except OSError:
        pass
print(json.dumps({"text": "a long answer " * 20000}))
"""


@needs_root
def test_a_disk_that_fills_during_a_run(small_disk):
    workspace = init_workspace(small_disk / "ws", get_registry())
    filler = small_disk / "filler"
    (small_disk / "fill.py").write_text(FILL_AND_ANSWER)
    argv = json.dumps([sys.executable, str(small_disk / "fill.py"), str(filler)])
    make_worker(workspace, "filler", output_mode="review_note", executor=f"{{name: command, argv: {argv}}}")
    result = run_workerctl("run", "start", "filler", workspace=workspace)
    assert result.returncode == 4 and "No space left on device" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    # the run ended, and its run file says so: never "nothing was half-written, run again"
    assert "ended failed, and its run file says so" in result.stderr
    assert not list(workspace.state_dir.rglob(".*.tmp")), "temp files removed"
    # still full: the list is answered (#21: reading never needs to write), and the run
    # ended as its process knew it: the program it ran met the full disk and exited 1.
    # That end was written into the space the process set aside for it before the run
    # was made (storage.atomic._Reserve); before, the run file still said running, and
    # the sweep recorded a death ("crashed") the process had not died
    for _ in ("full", "freed"):
        listed = run_workerctl("runs", "list", "--json", workspace=workspace)
        assert listed.returncode == 0, listed.stderr
        [run] = json.loads(listed.stdout)
        card = json.loads(run_workerctl("run", "inspect", run["id"], "--json", workspace=workspace).stdout)
        assert run["status"] == card["status"] == "failed"
        assert run["error_kind"] == card["error"]["kind"] == "executor_error"
        assert "No space left on device" in card["error"]["detail"]
        filler.unlink(missing_ok=True)
    assert not list((workspace.history_dir / "active").glob("*.json"))


@needs_root
@pytest.mark.slow
def test_a_detached_run_whose_program_fills_the_disk_is_not_called_dead(small_disk):
    """A ``--detach`` run's background process set space aside for the run's end only
    at its first save after a step, so a step that filled the disk left nothing to
    record the end in: the sweep recorded a death ("crashed") the process had not died
    (a fresh-brief case). It now sets it aside when it takes the run up."""
    import time

    workspace = init_workspace(small_disk / "ws", get_registry())
    filler = small_disk / "filler"
    (small_disk / "fill.py").write_text(FILL_AND_ANSWER)
    argv = json.dumps([sys.executable, str(small_disk / "fill.py"), str(filler)])
    make_worker(workspace, "filler", output_mode="review_note", executor=f"{{name: command, argv: {argv}}}")
    started = run_workerctl("run", "start", "filler", "--detach", workspace=workspace)
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    history = History(workspace)
    deadline = time.monotonic() + 60
    # its process ends (the marker stays on a full disk: the next writer settles the run)
    while time.monotonic() < deadline and not history.get(run_id).finished:
        time.sleep(0.1)
    time.sleep(0.5)
    filler.unlink()
    listed = run_workerctl("runs", "list", "--json", workspace=workspace)
    assert listed.returncode == 0, listed.stderr
    [run] = json.loads(listed.stdout)
    assert run["id"] == run_id and run["status"] == "failed"
    assert run["error_kind"] != "crashed", run


@needs_root
@pytest.mark.slow
def test_a_full_disk_before_a_run_changes_nothing(small_disk):
    workspace = init_workspace(small_disk / "ws", get_registry())
    started_on(workspace, "T-1042")
    before = {p: p.read_bytes() for p in workspace.state_dir.rglob("*") if p.is_file()}
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"x" * 4096)
            out.flush()
    result = run_workerctl(
        "run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat", workspace=workspace
    )
    assert result.returncode == 4 and "No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    after = {p: p.read_bytes() for p in workspace.state_dir.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if p.name != "lock"} == {
        p: b for p, b in before.items() if p.name != "lock"
    }
    assert run_workerctl("runs", "list", workspace=workspace).returncode == 0


@pytest.fixture
def read_only(tmp_path):
    """A workspace with one run, then its folder bind-mounted read-only on itself."""
    workspace = init_workspace(tmp_path / "ws", get_registry())
    started_on(workspace, "T-1042")
    with _mounted_read_only(workspace):
        yield workspace


@contextlib.contextmanager
def _mounted_read_only(workspace):
    """The workspace's folder bind-mounted read-only on itself (skips where it cannot be)."""
    root = str(workspace.root)
    bound = subprocess.run(["mount", "--bind", root, root], capture_output=True, text=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", root], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", root], check=False)


@needs_root
def test_a_read_only_workspace_reads_and_refuses_writes_in_one_line(read_only):
    listed = run_workerctl("runs", "list", "--json", workspace=read_only)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 1
    started = run_workerctl(
        "run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat", workspace=read_only
    )
    assert started.returncode == 4, started.stderr
    assert "Read-only file system" in started.stderr and "Traceback" not in started.stderr
    assert len(started.stderr.strip().splitlines()) == 1


def _read_only_and_a_writable_copy(
    workspace, tmp_path: Path, asks: tuple[tuple[str, ...], ...]
) -> tuple[list[subprocess.CompletedProcess], list[subprocess.CompletedProcess]]:
    """Each command of ``asks`` run on ``workspace`` bind-mounted read-only on itself,
    and on a writable copy of it (``tmp_path/copy``, made first), which may repair."""
    copy = tmp_path / "copy"
    shutil.copytree(workspace.root, copy, symlinks=True)
    with _mounted_read_only(workspace):
        read = [run_workerctl(*ask, workspace=workspace) for ask in asks]
    written = [
        subprocess.run(
            [sys.executable, "-m", "workerctl", "-w", str(copy), *ask], capture_output=True, text=True
        )
        for ask in asks
    ]
    return read, written


@needs_root
def test_a_reindex_killed_between_its_renames_is_read_on_a_read_only_mount(tmp_path):
    """A reindex SIGKILLed between its two renames (the new index in, its cross-run
    indexes not), then the workspace mounted read-only: finishing the swap needs a
    rename, which is refused, so the readers answer from the shards (they exited 4,
    "indexes: Permission denied", found by a fresh-brief attack), as a writable copy
    answers after it finished the swap."""
    from workerctl.storage.faults import FAULT_ENV

    workspace = init_workspace(tmp_path / "ws", get_registry())
    for task in ("T-1042", "T-1043", "T-1044"):
        assert (
            run_workerctl(
                "run", "start", "overdue-task-review", "--task", task, workspace=workspace
            ).returncode
            == 0
        )
    killed = run_workerctl(
        "runs", "reindex", workspace=workspace, env={FAULT_ENV: "kill-at:1:/history/indexes"}
    )
    assert killed.returncode == -9
    asks = (
        ("runs", "stats", "--json"),
        ("workers", "list", "--json"),
        ("runs", "list", "--worker", "overdue-task-review", "--json"),
    )
    read, written = _read_only_and_a_writable_copy(workspace, tmp_path, asks)
    root, copy = str(workspace.root), str(tmp_path / "copy")
    for ask, ro, rw in zip(asks, read, written, strict=True):
        assert ro.returncode == 0 and rw.returncode == 0, (ask, ro.stderr, rw.stderr)
        assert json.loads(ro.stdout) == json.loads(rw.stdout.replace(copy, root)), ask


@needs_root
def test_a_start_killed_before_its_index_entry_is_listed_and_counted_on_a_read_only_mount(tmp_path):
    """A ``run start`` SIGKILLed after its run file and marker, before its index entry;
    then the workspace mounted read-only. The reader cannot settle the run, but lists
    and counts it as crashed at its slot, as a writable copy does once it settled it
    (it was left out of runs list, runs stats and workers list while run inspect showed
    it crashed: a fresh-brief attack)."""
    from workerctl.storage.faults import FAULT_ENV

    workspace = init_workspace(tmp_path / "ws", get_registry())
    started_on(workspace, "T-1042", "T-1043")
    start = ("run", "start", "overdue-task-review", "--task", "T-1044")
    killed = run_workerctl(*start, workspace=workspace, env={FAULT_ENV: "kill-at:1:/history/index/"})
    assert killed.returncode == -9
    asks = (("runs", "list", "--json"), ("runs", "stats", "--json"), ("workers", "list", "--json"))
    read, written = _read_only_and_a_writable_copy(workspace, tmp_path, asks)
    listed, settled = json.loads(read[0].stdout), json.loads(written[0].stdout)
    assert len(listed) == 3, "the killed start's run is listed"
    assert [(r["id"], r["status"], r["error_kind"]) for r in listed] == [
        (r["id"], r["status"], r["error_kind"]) for r in settled
    ]
    assert listed[0]["error_kind"] == "crashed"
    stats_ro, stats_rw = json.loads(read[1].stdout), json.loads(written[1].stdout)
    differ = {
        (w, k): (stats_ro[w].get(k), stats_rw[w].get(k))
        for w in stats_rw
        for k in stats_rw[w]
        if stats_ro.get(w, {}).get(k) != stats_rw[w][k] and not k.endswith("_seconds")
    }  # a crashed run's duration runs to when its crash was found, by each reader
    assert stats_ro.keys() == stats_rw.keys() and not differ, differ
    workers = lambda out: {w["name"]: (w["last_run"], w["last_status"]) for w in json.loads(out)}  # noqa: E731
    assert workers(read[2].stdout) == workers(written[2].stdout)


def _nobody(workspace, args: tuple[str, ...]) -> tuple[list[str], dict]:
    """The command line and the environment of workerctl run as an unprivileged user."""
    argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-m"]
    env = {**os.environ, "NO_COLOR": "1", "HOME": "/", "PYTHONPATH": str(ROOT / "src")}
    return [*argv, "workerctl", "-w", str(workspace.root), *args], env


def as_nobody(workspace, *args: str) -> subprocess.CompletedProcess:
    argv, env = _nobody(workspace, args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/", env=env)


def as_nobody_in_background(workspace, *args: str) -> subprocess.Popen:
    argv, env = _nobody(workspace, args)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/", env=env)


@pytest.fixture
def nobodys_workspace():
    """A workspace owned by an unprivileged user, in a folder that user can reach."""
    folder = Path(tempfile.mkdtemp(prefix="workerctl-perm-"))
    try:  # the folder goes whatever happens, a failed setup included
        os.chmod(folder, 0o755)
        workspace = init_workspace(folder / "ws", get_registry())
        started_on(workspace, "T-1042")
        for path in [folder / "ws", *(folder / "ws").rglob("*")]:
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
        probe = as_nobody(workspace, "runs", "list")
        if probe.returncode != 0:
            pytest.skip(f"cannot run workerctl as an unprivileged user: {probe.stderr[-300:]}")
        yield workspace
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@needs_root
def test_an_unreadable_file_is_one_line_exit_4(nobodys_workspace):
    records = nobodys_workspace.records_file
    os.chown(records, 0, 0)
    result = as_nobody(nobodys_workspace, "records", "list")
    one_line_error(result, "Permission denied", records)


@needs_root
def test_an_unwritable_index_folder_is_one_line_and_leaves_one_consistent_state(nobodys_workspace):
    index = nobodys_workspace.history_dir / "index"
    for path in [index, *index.iterdir()]:
        os.chown(path, 0, 0)
        os.chmod(path, 0o755 if path == index else 0o644)  # readable, not writable
    result = as_nobody(
        nobodys_workspace, "run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat"
    )
    assert result.returncode == 4 and "Permission denied" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert str(index) in result.stderr
    for path in [index, *index.iterdir()]:
        os.chown(path, NOBODY, NOBODY)
    listed = as_nobody(nobodys_workspace, "runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    bodies = list((nobodys_workspace.history_dir / "runs").glob("*/*.json"))
    assert len(runs) == len(bodies) == 2
    history = History(nobodys_workspace)
    for summary in runs:
        assert history.get(summary["id"]).status == summary["status"] != "running"


@needs_root
@pytest.mark.slow
def test_a_state_folder_refused_mid_run_is_the_state_not_the_executor(nobodys_workspace):
    """The system refusing a state path while a run goes on (here its comments folder,
    unreadable) ends the run ``state_unusable``: it ended ``executor_error`` with a
    PermissionError traceback, troubleshooting blamed the executor, and the duplicate
    guard refused the same start once the folder was readable again (second fresh-brief
    attack)."""
    comments = nobodys_workspace.state_dir / "comments"
    os.chown(comments, 0, 0)
    os.chmod(comments, 0o700)
    met = as_nobody(nobodys_workspace, "run", "start", "overdue-task-review", "--task", "T-1043")
    assert met.returncode == 4 and "Permission denied" in met.stderr, met.stderr
    assert "Traceback" not in met.stderr and len(met.stderr.strip().splitlines()) == 1
    os.chown(comments, NOBODY, NOBODY)
    newest = json.loads(as_nobody(nobodys_workspace, "runs", "list", "--json").stdout)[0]
    assert (newest["record_id"], newest["status"], newest["error_kind"]) == (
        "T-1043",
        "failed",
        "state_unusable",
    )
    walk = as_nobody(nobodys_workspace, "run", "troubleshoot", newest["id"]).stdout
    assert "fix the executor" not in walk and "state file" in walk, walk
    again = as_nobody(nobodys_workspace, "run", "start", "overdue-task-review", "--task", "T-1043")
    assert again.returncode == 0, again.stderr


def _wait_until_stored_and_running(workspace, worker: str, timeout: float = 30) -> None:
    """Until the run's creation is committed whole (its marker there, its worker counted,
    no index write pending): a fixed sleep missed it on a loaded machine, where a process
    that cannot write its bytecode (nobody, in a root's checkout) starts slowly."""
    import time

    history = workspace.history_dir
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        markers = list((history / "active").glob("*.json"))
        workers = history / "indexes" / "workers.json"
        if (
            markers
            and workers.exists()
            and f'"{worker}"' in workers.read_text()
            and not (history / "indexes" / "pending" / markers[0].stem).exists()
        ):
            return
        time.sleep(0.02)
    raise AssertionError(f"no run of {worker} was stored within {timeout} s")


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize(
    ("folder", "mode"),
    [
        *((f"history/{f}", 0) for f in ("active", "indexes", "index", "ledger", "runs")),
        ("comments", 0o500),  # readable, not writable: the comment cannot be written
        ("the run's own folder", 0o500),  # history/runs/XX: its run file cannot be written
    ],
)
def test_a_history_folder_refused_mid_run_leaves_what_happened(nobodys_workspace, folder, mode):
    """A history folder refused while a run works (here made unreadable during its
    step): the run's end is what happened, not a death. Before, a refusal met by the
    final save left the run ``running`` on disk: it was marked ``crashed`` later, the
    comment it had written was ``unknown`` in the ledger (a person had to settle it)
    while ``run inspect`` said ``intended``, and the repaired start was refused. Now
    the run file alone is kept when the commit cannot be made, and the next command
    that can write settles the rest from it. Whatever the folder: the run is finished,
    ledger and run agree, a comment written is ``committed`` (a repeat refused as a
    repeat, not for an unknown write), and a write never made leaves the record free."""
    make_worker(
        nobodys_workspace,
        "slow",
        executor="{name: echo, script: [{sleep: 1.2, tool: read_task, arguments: {task_id: T-1043}}, "
        '{output: "Blocker: T-1043 waits on the vendor."}]}',
    )
    os.chown(nobodys_workspace.workers_dir / "slow.yaml", NOBODY, NOBODY)
    target = nobodys_workspace.state_dir / folder
    started = as_nobody_in_background(nobodys_workspace, "run", "start", "slow", "--task", "T-1043")
    try:
        _wait_until_stored_and_running(nobodys_workspace, "slow")  # then inside the step's sleep
        if folder == "the run's own folder":
            newest = max((nobodys_workspace.history_dir / "runs").glob("*/*.json"), key=os.path.getmtime)
            target = newest.parent
        os.chmod(target, mode)
        _out, err = started.communicate(timeout=60)
        reader = as_nobody(nobodys_workspace, "runs", "list")  # while it is still refused (it may settle)
        assert reader.returncode in (0, 4) and len(reader.stderr.strip().splitlines()) <= 1, reader.stderr
    finally:
        os.chmod(target, 0o700)
    assert started.returncode in (0, 4), err
    assert "Traceback" not in err
    runs = json.loads(as_nobody(nobodys_workspace, "runs", "list", "--json", "--worker", "slow").stdout)
    assert len(runs) == 1 and runs[0]["status"] != "running", runs
    counts = json.loads(as_nobody(nobodys_workspace, "runs", "stats", "--json").stdout)["slow"]["counts"]
    assert {k: v for k, v in counts.items() if v} == {runs[0]["status"]: 1}, counts  # as the list says
    run = json.loads(as_nobody(nobodys_workspace, "run", "inspect", runs[0]["id"], "--json").stdout)
    shown = json.loads(as_nobody(nobodys_workspace, "records", "show", "T-1043", "--json").stdout)
    comments = shown["comments"]
    written = [c for c in comments if c.get("run_id") == run["id"]]
    ledger = json.loads(as_nobody(nobodys_workspace, "ledger", "list", "--run", run["id"], "--json").stdout)
    assert [e["state"] for e in ledger] == [e["state"] for e in run["side_effects"]], (ledger, run)
    again = as_nobody(nobodys_workspace, "run", "start", "slow", "--task", "T-1043")
    assert (run["error"] or {}).get("kind") != "crashed", run["error"]  # it ended; it did not die
    if written:
        assert run["status"] == "completed", run["error"]
        assert [e["state"] for e in run["side_effects"]] == ["committed"]
        assert again.returncode == 5 and "already wrote" in again.stderr, again.stderr
    else:
        assert run["status"] == "failed" and all(e["state"] != "committed" for e in run["side_effects"])
        assert again.returncode == 0, again.stderr


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize(("folder", "unreadable"), [("indexes", False), ("ledger", False), ("ledger", True)])
def test_a_batch_that_meets_a_refused_folder_reports_what_the_history_holds(
    nobodys_workspace, tmp_path, folder, unreadable
):
    """A history folder refused in the middle of a ``--jobs 4`` batch: the report names
    every record, with the status and kind the history holds for its run (a run whose
    creation was cut is ``failed state_unusable`` in both, never ``crashed`` in the
    history while the report said otherwise), a record reported not started has no run,
    and the batch exits 4 (second fresh-brief attack, F and B)."""
    make_worker(
        nobodys_workspace,
        "slow",
        executor='{name: echo, script: [{sleep: 0.4}, {output: "Blocker: T-1043 waits on the vendor."}]}',
    )
    tasks = [
        {"id": f"T-{n}", "type": "task", "title": f"Task {n}", "due": "2026-01-01"} for n in range(9000, 9012)
    ]
    BuiltinRecordStore(nobodys_workspace).import_records(tasks, "t")
    ids = nobodys_workspace.root / "ids.txt"
    ids.write_text("\n".join(t["id"] for t in tasks) + "\n")
    for path in [nobodys_workspace.root, *nobodys_workspace.root.rglob("*")]:
        os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    target = nobodys_workspace.history_dir / folder
    batch = as_nobody_in_background(
        nobodys_workspace, "run", "start", "slow", "--records-from", str(ids), "--jobs", "4", "--json"
    )
    try:
        import time

        time.sleep(0.6)
        if unreadable:
            os.chmod(target, 0)  # its troubleshooting cannot read the ledger either
        else:
            os.chown(target, 0, 0)
            os.chmod(target, 0o755)  # readable, not writable by the batch's user
        out, err = batch.communicate(timeout=120)
    finally:
        os.chown(target, NOBODY, NOBODY)
        os.chmod(target, 0o700)
    assert "Traceback" not in err, err
    report = json.loads(out)
    assert batch.returncode in (0, 4), err
    assert (batch.returncode == 4) == any(r["error_kind"] == "state_unusable" for r in report["runs"])
    held = {
        r["record_id"]: r
        for r in json.loads(as_nobody(nobodys_workspace, "runs", "list", "--json", "--limit", "0").stdout)
    }
    assert [r["record_id"] for r in report["runs"]] == [t["id"] for t in tasks]
    for item in report["runs"]:
        stored = held.get(item["record_id"])
        if item["status"] == "not_started":
            assert stored is None, (item, stored)
            continue
        assert stored is not None and stored["id"] == item["run_id"], (item, stored)
        assert (stored["status"], stored["error_kind"]) == (item["status"], item["error_kind"]), (
            item,
            stored,
        )
