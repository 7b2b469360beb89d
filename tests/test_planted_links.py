"""No write follows a link out of the workspace: a link planted at any state path
(file or folder, ``.workerctl`` itself included) is reported as damage (exit 4,
naming the path) or left behind, and the file or folder it points to is never
changed.

The paths are not listed by hand: every file and folder a workspace's state holds
after real commands (history, run files, markers, ledger, comments, cross-run
indexes, versions, logs, locks) is found on disk, and each one in turn is replaced
by a link into a folder outside the workspace before the same commands run again
as real processes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import run_workerctl

#: commands that between them touch every kind of state (each a real process)
COMMANDS = [
    ("run", "start", "overdue-task-review", "--task", "T-1043", "--allow-repeat"),
    ("runs", "list", "--worker", "overdue-task-review"),
    ("worker", "pause", "handoff-preparation"),
]
HISTORY_COMMANDS = [("runs", "reindex")]


def _snapshot(folder: Path) -> dict[str, tuple]:
    out = {}
    for path in sorted(folder.rglob("*")):
        st = os.lstat(path)
        digest = (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
        )
        out[str(path.relative_to(folder))] = (st.st_mode, st.st_size, digest, st.st_mtime_ns)
    return out


def _run_all(root: Path, commands) -> list:
    ws = SimpleNamespace(root=root)  # not loaded here: the commands meet the link themselves
    return [run_workerctl(*cmd, workspace=ws, timeout=120) for cmd in commands]


@pytest.fixture(scope="module")
def used_workspace(tmp_path_factory):
    """A workspace after the commands have run once: every state path they use exists."""
    from workerctl.plugins.manager import get_registry
    from workerctl.workspace import init_workspace

    base = tmp_path_factory.mktemp("base")
    ws = init_workspace(base / "ws", get_registry())
    first = [
        ("worker", "activate", "handoff-preparation"),
        ("run", "start", "handoff-preparation", "--task", "T-1042"),
    ]
    for result in _run_all(ws.root, [*first, *COMMANDS, *HISTORY_COMMANDS, *COMMANDS]):
        assert result.returncode in (0, 1), result.stderr
    return ws.root


def _state_paths(root: Path) -> list[str]:
    state = root / ".workerctl"
    return [".workerctl", *sorted(str(p.relative_to(root)) for p in state.rglob("*"))]


@pytest.mark.slow
def test_the_walk_covers_every_kind_of_state(used_workspace):
    paths = _state_paths(used_workspace)
    for kind in ("history/lock", "history/index/", "history/runs/", "history/ledger/records/",
                 "history/ledger/workers/", "history/indexes/", "comments/", "versions.json",
                 ".workerctl/lock", "records.json"):  # fmt: skip
        assert any(kind in p for p in paths), kind


@pytest.mark.parametrize("part", range(4))  # four parts, so that xdist shares them out
@pytest.mark.slow
def test_a_link_at_any_state_path_is_never_written_through(used_workspace, tmp_path, part):
    failures, refusals = [], 0
    for number, rel in enumerate(_state_paths(used_workspace)):
        if number % 4 != part:
            continue
        case = tmp_path / f"case{number}"
        shutil.copytree(used_workspace, case / "ws", symlinks=True)
        outside = case / "outside"
        outside.mkdir()
        target = case / "ws" / rel
        moved = outside / "moved"
        if target.is_dir():
            shutil.copytree(target, moved)  # the link leads to a look-alike of the folder
            shutil.rmtree(target)
        elif target.exists():
            shutil.copy2(target, moved)
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            moved.write_text('{"comments": {}}', encoding="utf-8")
        os.chmod(moved, 0o755 if moved.is_dir() else 0o644)
        (outside / "bystander.txt").write_text("do not touch\n", encoding="utf-8")
        target.symlink_to(moved)
        before = _snapshot(outside)
        commands = COMMANDS + (HISTORY_COMMANDS if "/history" in rel else [])
        results = _run_all(case / "ws", commands)
        after = _snapshot(outside)
        if after != before:
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            failures.append(f"{rel}: wrote outside the workspace: {changed}")
        for cmd, result in zip(commands, results, strict=True):
            if "Traceback" in result.stderr or result.returncode not in (0, 1, 4):
                failures.append(f"{rel}: {' '.join(cmd)} exited {result.returncode}: {result.stderr[-300:]}")
            elif result.returncode == 4 and "symbolic link" not in result.stderr:
                failures.append(f"{rel}: {' '.join(cmd)} exit 4 without naming the link: {result.stderr}")
        refused = [r for r in results if r.returncode == 4]
        refusals += bool(refused)  # a link at a path these commands never open just stays
        if (
            refused
            and rel not in refused[0].stderr
            and not any(str(case / "ws" / rel) in r.stderr for r in refused)
        ):
            failures.append(f"{rel}: exit 4 does not name the path: {refused[0].stderr}")
    assert not failures, "\n".join(failures)
    assert refusals >= 3  # most paths are used by these commands, and their links refused


def test_runs_list_leaves_a_linked_lock_target_alone(workspace, tmp_path):
    """The reported case: the lock linked to a file outside; runs list used to overwrite
    its first 240 bytes and make it 0600."""
    outside = tmp_path / "precious.txt"
    outside.write_text("x" * 1000, encoding="utf-8")
    os.chmod(outside, 0o644)
    lock = workspace.history_dir / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.unlink(missing_ok=True)
    lock.symlink_to(outside)
    result = run_workerctl("runs", "list", workspace=workspace)
    assert result.returncode == 4
    assert f"{lock}: damaged state file (a symbolic link" in result.stderr
    assert outside.read_text(encoding="utf-8") == "x" * 1000
    assert outside.stat().st_mode & 0o777 == 0o644


def test_a_hard_link_at_the_lock_is_never_written_through(workspace, tmp_path):
    """The lock file is the one file written in place (its holder note). A second name
    of it (planted, or made by a backup of hard links, ``cp -al``) is locked as it is,
    read-only, and the note is not written: the other file keeps its bytes, and the
    workspace stays usable (before, every command exited 4, which locked a workspace
    with a hard-link backup out)."""
    outside = tmp_path / "precious.txt"
    outside.write_text("y" * 500, encoding="utf-8")
    lock = workspace.history_dir / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.unlink(missing_ok=True)
    os.link(outside, lock)
    for argv in (("runs", "list"), ("run", "start", "overdue-task-review", "--task", "T-1042")):
        result = run_workerctl(*argv, workspace=workspace)
        assert result.returncode == 0, (argv, result.stderr)
    assert outside.read_text(encoding="utf-8") == "y" * 500


def test_a_fifo_at_a_state_path_does_not_hang(workspace):
    comments = workspace.state_dir / "comments"
    comments.mkdir(exist_ok=True)
    fifo = comments / "+t-1042.json"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    result = run_workerctl("records", "show", "T-1042", workspace=workspace, timeout=30)
    assert result.returncode == 4 and "not a plain file" in result.stderr


def test_a_linked_log_folder_is_refused_by_a_detached_start(workspace, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    workspace.logs_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workspace.logs_dir, ignore_errors=True)
    workspace.logs_dir.symlink_to(outside)
    result = run_workerctl(
        "run", "start", "overdue-task-review", "--task", "T-1042", "--detach", workspace=workspace
    )
    assert result.returncode == 4 and "symbolic link" in result.stderr
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    "where",
    [
        "comments/+t-1044.json",
        "history/ledger/records/+t-1044.json",
        # where an earlier version put them (``filenames.legacy_names``): looked up too
        "comments/T-1044.json",
        "history/ledger/records/T-1044.json",
    ],
)
@pytest.mark.parametrize("dangling", [True, False])
def test_a_link_where_a_new_file_would_be_made(workspace, tmp_path, where, dangling):
    """A link planted where the first comment or ledger entry of a record would go, or
    where an older version put it: the write is refused, neither the target nor a file
    at a dangling link's target appears."""
    outside = tmp_path / "outside.json"
    if not dangling:
        outside.write_text('{"comments": {}}', encoding="utf-8")
    before = outside.read_bytes() if outside.exists() else None
    link = workspace.state_dir / where
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    result = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1044", workspace=workspace)
    assert result.returncode == 4 and f"{link}: damaged state file (a symbolic link" in result.stderr
    assert (outside.read_bytes() if outside.exists() else None) == before


@pytest.mark.parametrize(
    "rel",
    [".workerctl/comments", ".workerctl/history/ledger/records", ".workerctl/history/ledger/workers"],
)
def test_a_link_met_mid_run_is_the_state_not_the_executor(workspace, tmp_path, rel):
    """A run that meets a planted link while it goes on ends ``state_unusable`` (it was
    recorded ``executor_error``: troubleshooting told the user to fix the echo executor),
    and once the link is gone the same start runs again (the duplicate guard refused it:
    "a new run would fail the same way"). Found by a fresh-brief attack."""
    import json

    first = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace)
    assert first.returncode == 0, first.stderr
    target = workspace.root / rel
    aside = tmp_path / "outside"
    shutil.copytree(target, aside)
    real = target.with_name(target.name + ".real")
    target.rename(real)
    target.symlink_to(aside)
    met = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1043", workspace=workspace)
    assert met.returncode == 4 and "symbolic link" in met.stderr, met.stderr
    target.unlink()
    real.rename(target)
    newest = json.loads(run_workerctl("runs", "list", "--json", workspace=workspace).stdout)[0]
    if newest["record_id"] == "T-1043":  # recorded (the link was met after the run existed)
        assert newest["status"] == "failed" and newest["error_kind"] == "state_unusable", newest
        walk = run_workerctl("run", "troubleshoot", newest["id"], workspace=workspace).stdout
        assert "fix the executor" not in walk and "state file" in walk, walk
    again = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1043", workspace=workspace)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("rel", [".workerctl/comments", ".workerctl/history/runs"])
def test_a_batch_that_meets_a_link_reports_every_record_and_exits_4(workspace, tmp_path, rel):
    """A batch whose records meet a planted link: the report names each record's end
    (a run that met it failed ``state_unusable``, a record never started says why),
    then the batch exits 4 as a single start does. It ended with exit 3 or 4 and
    nothing printed, or exit 1 as if runs had merely failed (fresh-brief attack)."""
    import json

    assert (
        run_workerctl(
            "run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace
        ).returncode
        == 0
    )
    target = workspace.root / rel
    aside = tmp_path / "outside"
    shutil.copytree(target, aside)
    shutil.rmtree(target)
    target.symlink_to(aside)
    before = _snapshot(aside)
    ids = tmp_path / "ids.txt"
    ids.write_text("T-1043\nT-1044\nT-1042\n")
    result = run_workerctl(
        "run", "start", "overdue-task-review", "--records-from", str(ids), "--jobs", "2", "--allow-repeat",
        "--json", workspace=workspace,
    )  # fmt: skip
    assert result.returncode == 4, result.stderr
    report = json.loads(result.stdout)
    assert [r["record_id"] for r in report["runs"]] == ["T-1043", "T-1044", "T-1042"]
    assert all(
        r["status"] in ("failed", "not_started") and "symbolic link" in r["message"] for r in report["runs"]
    )
    assert _snapshot(aside) == before


def test_a_batch_beside_a_linked_folder_of_files_written_ahead_writes_in_place(workspace, tmp_path):
    """``history/ahead`` (where a batch writes files ahead of the lock, swaps index files
    in and keeps removed markers) planted as a link: nothing is written through it, and
    the batch writes in place instead, every run completed. Its flushes went through
    that folder and failed four runs in thirty ("its creation was cut")."""
    import json

    from workerctl.records.builtin_store import BuiltinRecordStore

    tasks = [f"T-{n}" for n in range(7000, 7030)]
    BuiltinRecordStore(workspace).import_records(
        [
            {"id": t, "type": "task", "title": f"Task {t}", "status": "todo", "due": "2026-01-01"}
            for t in tasks
        ],
        "test",
    )
    assert (
        run_workerctl(
            "run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace
        ).returncode
        == 0
    )
    ahead = workspace.state_dir / "history" / "ahead"
    shutil.rmtree(ahead, ignore_errors=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    ahead.symlink_to(outside)
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(tasks) + "\n")
    result = run_workerctl(
        "run", "start", "overdue-task-review", "--records-from", str(ids), "--jobs", "4", "--json=counts",
        workspace=workspace,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["counts"] == {"completed": 30}
    assert list(outside.iterdir()) == [] and ahead.is_symlink()
    assert not list((workspace.state_dir / "history" / "active").iterdir())
