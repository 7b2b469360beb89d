"""Writers beside maintenance, as real processes: ``runs reindex`` and ``runs prune``
looping while a ``--jobs 4`` batch and eight cron-style ``run start`` processes write.

Files a writer prepares ahead of the history lock live in its own folder under
``history/ahead/``, which a maintenance command removes only once that process is
gone; every maintenance command holds the lock for what it changes. These tests
fail (runs ``cannot write: No such file or directory``, a batch reporting "not
started" for runs that exist) when either rule is broken.
"""

from __future__ import annotations

import json
import threading

import pytest

from helpers import run_workerctl
from workerctl.history.store import History
from workerctl.records.builtin_store import BuiltinRecordStore


def _tasks(workspace, count: int) -> list[str]:
    tasks = [f"T-{n}" for n in range(20000, 20000 + count)]
    BuiltinRecordStore(workspace).import_records(
        [
            {"id": t, "type": "task", "title": f"Task {t}", "status": "todo", "due": "2026-01-01"}
            for t in tasks
        ],
        "race-test",
    )
    return tasks


class Maintenance:
    """``runs reindex``, ``runs prune`` and ``runs list`` in a loop on a thread, each a
    real process, until stopped; every failure kept."""

    COMMANDS = (("runs", "reindex"), ("runs", "prune", "--older-than", "30d"), ("runs", "list"))

    def __init__(self, workspace) -> None:
        self.workspace = workspace
        self.failures: list[tuple[tuple[str, ...], int, str]] = []
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for command in self.COMMANDS:
                result = run_workerctl(*command, workspace=self.workspace, timeout=120)
                if result.returncode:
                    self.failures.append((command, result.returncode, result.stderr))
                self.done += 1

    def __enter__(self) -> Maintenance:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=180)


def _one_run_per_record(workspace, tasks: list[str]) -> list[dict]:
    runs = History(workspace).list(None, limit=None)
    assert sorted(r["record_id"] for r in runs) == sorted(tasks)  # none lost, none duplicated
    assert History(workspace).unfinished() == {}
    return runs


@pytest.mark.slow
def test_batch_beside_looping_reindex_and_prune(workspace, tmp_path):
    tasks = _tasks(workspace, 80)
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(tasks) + "\n")
    with Maintenance(workspace) as maintenance:
        result = run_workerctl(
            "run",
            "start",
            "overdue-task-review",
            "--records-from",
            str(ids),
            "--jobs",
            "4",
            "--json",
            workspace=workspace,
            timeout=240,
        )
    assert maintenance.failures == []
    assert maintenance.done >= 1
    report = json.loads(result.stdout)
    assert result.returncode == 0, [r for r in report["runs"] if r["status"] != "completed"][:3]
    assert report["counts"] == {"completed": len(tasks)}
    runs = _one_run_per_record(workspace, tasks)
    assert {r["status"] for r in runs} == {"completed"}
    assert not list((workspace.history_dir / "runs").rglob("*.tmp"))


@pytest.mark.slow
def test_cron_starts_beside_looping_reindex_and_prune(workspace):
    writers, each = 8, 4
    tasks = _tasks(workspace, writers * each)
    failures: list[tuple[int, str]] = []

    def writer(n: int) -> None:
        for task in tasks[n * each : (n + 1) * each]:
            result = run_workerctl("run", "start", "overdue-task-review", "--task", task, workspace=workspace)
            if result.returncode:
                failures.append((result.returncode, result.stderr))

    with Maintenance(workspace) as maintenance:
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    assert failures == []
    assert maintenance.failures == []
    runs = _one_run_per_record(workspace, tasks)
    assert {r["status"] for r in runs} == {"completed"}
