"""A backup made of hard links (``cp -al``, rsnapshot) gives every state file of the
live workspace a second name. It must not make the workspace unusable, nor be changed
by it. Before, every write command exited 4 on the lock files ("a hard link to a file
elsewhere"), and ``runs search`` on ``search.db`` (the fresh-brief round's C01)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from helpers import run_workerctl
from workerctl.workspace import load_workspace


def _link_copy(src: Path, dst: Path) -> None:
    """``cp -al``: the folders made anew, every file a second name of the original."""
    for folder, _dirs, files in os.walk(src):
        target = dst / Path(folder).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.link(Path(folder) / name, target / name)


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def test_a_backup_of_hard_links_leaves_the_live_workspace_usable_and_itself_untouched(one_run, tmp_path):
    workspace, first = one_run
    assert run_workerctl("runs", "search", "glossary", workspace=workspace).returncode == 0  # search.db made
    backup = tmp_path / "backup"
    _link_copy(workspace.root, backup)
    assert (workspace.history_dir / "lock").stat().st_nlink == 2
    before = _digests(backup)
    for argv in (
        ("run", "start", "overdue-task-review", "--task", "T-1043", "--json", "id"),
        ("runs", "search", "glossary", "--json"),
        ("runs", "reindex"),
        ("worker", "pause", "overdue-task-review"),
        ("worker", "activate", "overdue-task-review"),
        ("runs", "prune", "--older-than", "0s"),
    ):
        done = run_workerctl(*argv, workspace=workspace)
        assert done.returncode == 0, (argv, done.stderr)
    assert json.loads(run_workerctl("runs", "list", "--json", "id", workspace=workspace).stdout) == []
    assert _digests(backup) == before  # nothing written through a second name
    kept = run_workerctl("runs", "list", "--json", "id", workspace=load_workspace(backup))
    assert [r["id"] for r in json.loads(kept.stdout)] == [first]


def test_a_symbolic_link_at_a_lock_file_is_still_refused(workspace, tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("")
    lock = workspace.history_dir / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.symlink_to(outside)
    done = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace)
    assert done.returncode == 4 and "symbolic link" in done.stderr


def test_a_backup_of_a_state_folder_opened_up_by_hand_is_left_as_it_is(one_run, tmp_path):
    """State made readable by others by hand, then a ``cp -al`` backup: tightening the
    modes would change the backup's files too (one inode, two names). Those files are
    left as they are and the command answers (the first ``runs list`` exited 4 calling
    the hard link damage)."""
    workspace, first = one_run
    for folder, dirs, files in os.walk(workspace.state_dir):
        for name in dirs:
            os.chmod(Path(folder) / name, 0o755)
        for name in files:
            os.chmod(Path(folder) / name, 0o644)
    os.chmod(workspace.state_dir, 0o755)
    backup = tmp_path / "backup"
    _link_copy(workspace.root, backup)
    modes = {p: p.stat().st_mode for p in backup.rglob("*") if p.is_file()}
    listed = run_workerctl("runs", "list", "--json", "id", workspace=workspace)
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [first]
    assert "second name" in listed.stderr
    assert {p: p.stat().st_mode for p in modes} == modes  # the backup's modes unchanged
