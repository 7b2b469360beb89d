"""Private by default: the state folder 0700, everything in it 0600, whatever the umask.

Run files hold outputs, record contents and the context of every run; records
and comments hold business data. Like ~/.ssh, they are readable by their owner
only, and a workspace made before this is tightened (and told) on first use.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import run_workerctl, wait_for
from workerctl.workspace import load_workspace


def modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.lstat().st_mode) for p in [folder, *folder.rglob("*")]}


def exercise(root: Path, umask: int) -> None:
    """Every kind of state file: init, a run, a detached run (log, heartbeat), a
    comment, versions, the settings cache."""
    result = run_workerctl("init", str(root), umask=umask)
    assert result.returncode == 0, result.stderr
    workspace = load_workspace(root)
    for args in (
        ("run", "start", "overdue-task-review", "--task", "T-1042"),
        ("run", "start", "overdue-task-review", "--task", "T-1042", "--detach", "--allow-repeat"),
        ("worker", "pause", "overdue-task-review"),
    ):
        result = run_workerctl(*args, workspace=workspace, umask=umask)
        assert result.returncode == 0, result.stderr
    wait_for(
        lambda: all(
            r["status"] == "completed"
            for r in json.loads(
                run_workerctl("runs", "list", "--json", workspace=workspace, umask=umask).stdout
            )
        )
    )


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o022, 0o277])
def test_everything_in_the_state_folder_is_private(tmp_path, umask):
    root = tmp_path / "ws"
    exercise(root, umask)
    found = modes(root / ".workerctl")
    kinds = {name.split("/")[1] if "/" in name else name for name in found}
    assert {"history", "records.json", "versions.json", "comments", "logs"} <= kinds
    assert any(name.startswith("history/runs/") for name in found)
    opened = {name: oct(mode) for name, mode in found.items() if mode not in (0o700, 0o600)}
    assert not opened, opened
    for name, mode in found.items():
        is_dir = (root / ".workerctl" / name).is_dir()
        assert mode == (0o700 if is_dir else 0o600), name


@pytest.mark.slow
def test_an_old_open_workspace_is_tightened_and_told(tmp_path):
    root = tmp_path / "ws"
    exercise(root, 0o022)
    state = root / ".workerctl"
    for path in [state, *state.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    result = run_workerctl("runs", "list", workspace=load_workspace(root))
    assert result.returncode == 0
    assert f"made {state} private" in result.stderr and "755" in result.stderr
    assert set(modes(state).values()) == {0o700, 0o600}
    again = run_workerctl("runs", "list", workspace=load_workspace(root))
    assert "private" not in again.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
@pytest.mark.slow
def test_another_user_cannot_read_a_run(tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="workerctl-priv-"))
    try:
        os.chmod(folder, 0o755)
        exercise(folder / "ws", 0o022)
        run_file = next((folder / "ws" / ".workerctl" / "history" / "runs").glob("*/*.json"))
        peek = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-c",
                f"open({str(run_file)!r}).read()",
            ],
            capture_output=True,
            text=True,
        )
        assert peek.returncode != 0 and "Permission denied" in peek.stderr
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=True)
