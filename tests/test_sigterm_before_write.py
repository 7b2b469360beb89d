"""A SIGTERM that stops a run while it stores the intent of a write, before the write is
sent, leaves that effect ``not_written``, not ``unknown``: nothing is for a person to
settle, and the next run on the record is not blocked. (A SIGTERM once the write may
have been sent still leaves it ``unknown``: that case is unchanged.)"""

from __future__ import annotations

import json
import signal

from helpers import run_workerctl, signalled_at_write_point
from workerctl.history.store import History
from workerctl.storage.faults import FAULT_ENV

START = ["run", "start", "overdue-task-review", "--task", "T-1042", "--json"]


def test_a_sigterm_while_the_intent_is_stored_leaves_the_write_not_written(workspace, tmp_path):
    trace = tmp_path / "points"
    probe = tmp_path / "probe"
    import shutil

    shutil.copytree(workspace.root, probe, symlinks=True)
    done = run_workerctl("-w", str(probe), *START, env={FAULT_ENV: f"trace:{trace}"})
    assert done.returncode == 0, done.stderr
    points = [line.split(" ", 1) for line in trace.read_text().splitlines()]
    first_comment = next(int(n) for n, p in points if "/comments/" in p)
    intent = max(int(n) for n, p in points if "/history/runs/" in p and int(n) < first_comment)
    err = signalled_at_write_point(workspace.root, START, intent, signal.SIGTERM).stderr
    history = History(workspace)
    (run,) = [history.get(s["id"]) for s in history.list(None, limit=None)]
    assert run.status == "cancelled", (run.status, err)
    assert [e["state"] for e in run.side_effects] == ["not_written"], run.side_effects
    assert [e.state for e in history.ledger.effects("T-1042")] == ["not_written"]
    comments = workspace.root / ".workerctl" / "records" / "comments"
    written = list(comments.glob("*.json")) if comments.exists() else []
    assert all(run.id not in p.read_text() for p in written), "no comment of the cancelled run"
    again = run_workerctl(*START, workspace=workspace)
    assert again.returncode == 0, again.stderr  # not refused over an unknown effect
    assert json.loads(again.stdout)["status"] == "completed"
