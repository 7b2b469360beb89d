"""A batch that meets a full disk reports, per record, what the history holds.

A run created before the disk filled exists: the batch must never call it "not
started" (which the docs say means nothing was written). The disk fills at a
write point chosen from every write point a batch passes (``storage/faults.py``):
the full disk is real to the process (ENOSPC from then on).
"""

from __future__ import annotations

import json

import pytest

from helpers import run_workerctl
from workerctl.history.store import History
from workerctl.records.builtin_store import BuiltinRecordStore

TASKS = ["T-31001", "T-31002", "T-31003"]


def _batch(workspace, ids, env=None):
    return run_workerctl(
        "run",
        "start",
        "overdue-task-review",
        "--records-from",
        str(ids),
        "--jobs",
        "2",
        "--json",
        workspace=workspace,
        env=env,
    )


def _write_points(workspace, tmp_path) -> int:
    trace = tmp_path / "trace"
    probe = workspace.root.parent / "probe"
    import shutil

    shutil.copytree(workspace.root, probe)
    from workerctl.workspace import load_workspace

    copy = load_workspace(probe)
    result = _batch(copy, tmp_path / "ids.txt", env={"WORKERCTL_TEST_FAULT": f"trace:{trace}"})
    assert result.returncode == 0, result.stderr
    return len(trace.read_text().splitlines())


@pytest.fixture
def tasks_workspace(workspace, tmp_path):
    BuiltinRecordStore(workspace).import_records(
        [{"id": t, "type": "task", "title": t, "status": "todo", "due": "2026-01-01"} for t in TASKS], "t"
    )
    (tmp_path / "ids.txt").write_text("\n".join(TASKS) + "\n")
    return workspace


@pytest.mark.slow
def test_batch_on_a_full_disk_reports_what_the_history_holds(tasks_workspace, tmp_path):
    total = _write_points(tasks_workspace, tmp_path)
    assert total > 10
    import shutil

    from workerctl.workspace import load_workspace

    for point in sorted({2, total // 4, total // 2, (3 * total) // 4, total - 1}):
        root = tmp_path / f"ws-{point}"
        shutil.copytree(tasks_workspace.root, root)
        workspace = load_workspace(root)
        result = _batch(workspace, tmp_path / "ids.txt", env={"WORKERCTL_TEST_FAULT": f"enospc:{point}"})
        assert "Traceback" not in result.stderr
        report = json.loads(result.stdout)
        # read afterwards by a process that can write: dead runs are settled (crashed)
        listed = run_workerctl("runs", "list", "--limit", "0", "--json", workspace=workspace)
        assert listed.returncode == 0, listed.stderr
        held = {r["record_id"]: r for r in json.loads(listed.stdout)}
        for item in report["runs"]:
            stored = held.get(item["record_id"])
            if item["status"] == "not_started":
                assert stored is None, (point, item, stored)
            else:
                assert stored is not None, (point, item)
                assert item["run_id"] == stored["id"]
                # the end as the batch knew it, kind included: never a death it did not die
                seen = (item["status"], item["error_kind"])
                assert seen == (stored["status"], stored["error_kind"]), (point, item, stored)
        assert len(History(workspace).list(None, limit=None)) == len(held)
        # a write the batch knew the end of is never left for a person to settle
        unknown = run_workerctl("ledger", "list", "--state", "unknown", "--json", workspace=workspace)
        assert unknown.returncode == 0 and json.loads(unknown.stdout) == [], (point, unknown.stdout)
