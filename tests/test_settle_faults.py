"""``ledger settle`` cut at each of its write points (a real SIGKILL, then a full disk
from that point on): the run file and the ledger never disagree once the next command
has run, and the write is either settled in both or still unknown in both, to be
settled again. (A settlement is kept on the run's effect, written through the one
commit path that brings the ledger in line: ``history.ledger.Ledger.settle``.)"""

from __future__ import annotations

import json
import shutil
import signal

import pytest

from helpers import run_workerctl
from test_duplicate_guard import _killed_in_write
from workerctl.storage.faults import FAULT_ENV
from workerctl.workspace import load_workspace


@pytest.fixture
def unknown_write(tmp_path, _workspace_template):
    """A workspace whose run ``dier`` was killed inside its comment write (the comment is
    on T-1042, the ledger says unknown), swept once; and the run's id."""
    root = tmp_path / "template"
    shutil.copytree(_workspace_template.root, root, symlinks=True)
    workspace = load_workspace(root)
    assert _killed_in_write(workspace).returncode == -signal.SIGKILL
    listed = run_workerctl("runs", "list", "--json", workspace=workspace)
    return root, json.loads(listed.stdout)[0]["id"]


def _states(workspace, run_id: str) -> tuple[list[str], list[str]]:
    """The write's state as the run file gives it (``run inspect``) and as the ledger does."""
    shown = run_workerctl("run", "inspect", run_id, "--json", workspace=workspace)
    assert shown.returncode == 0, shown.stderr
    entries = run_workerctl("ledger", "list", "--record", "T-1042", "--json", workspace=workspace)
    assert entries.returncode == 0, entries.stderr
    ledger = [e["state"] for e in json.loads(entries.stdout) if e["run_id"] == run_id]
    return [e["state"] for e in json.loads(shown.stdout)["side_effects"]], ledger


@pytest.mark.parametrize("mode", ["kill", "enospc"])
def test_a_settle_cut_anywhere_leaves_run_and_ledger_agreeing(tmp_path, unknown_write, mode):
    root, run_id = unknown_write
    settle = ("ledger", "settle", run_id, "--written")
    traced = tmp_path / "traced"
    shutil.copytree(root, traced, symlinks=True)
    points_file = tmp_path / "points"
    done = run_workerctl(*settle, workspace=load_workspace(traced), env={FAULT_ENV: f"trace:{points_file}"})
    assert done.returncode == 0, done.stderr
    points = points_file.read_text().splitlines()
    assert any("/history/runs/" in p for p in points) and any("/ledger/" in p for p in points)
    for n in range(1, len(points) + 1):
        where = f"{mode} at {n}: {points[n - 1]}"
        copy = tmp_path / f"{mode}-{n}"
        shutil.copytree(root, copy, symlinks=True)
        workspace = load_workspace(copy)
        cut = run_workerctl(*settle, workspace=workspace, env={FAULT_ENV: f"{mode}:{n}"})
        assert cut.returncode == (-signal.SIGKILL if mode == "kill" else 4), (where, cut.stderr)
        assert "Traceback" not in cut.stderr, where
        run_file, ledger = _states(workspace, run_id)
        assert run_file == ledger, where
        # the person (or the script) makes the settle again: settled now, or settled
        # already by the cut one (exit 0 either way, where it said "no unknown side
        # effect matches", exit 3); the opposite verdict names the settlement there is
        again = run_workerctl(*settle, workspace=workspace)
        assert again.returncode == 0, (where, again.stderr)
        if run_file != ["unknown"]:
            assert "settled already" in again.stdout, (where, again.stdout)
            other = run_workerctl("ledger", "settle", run_id, "--not-written", workspace=workspace)
            assert other.returncode == 3, (where, other.stderr)
            assert "was settled already as written by" in other.stderr, (where, other.stderr)
        assert _states(workspace, run_id) == (["committed"], ["committed"]), where
