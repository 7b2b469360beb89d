"""The ledger's per-worker summaries are derived from its record files, and a crash may
come between the two writes: once the next command has settled the run, every ledger
file must say what a rebuild from the run files says.

Found by reading the commit path: settling a finished run whose last commit was cut
between its record file and its worker summary left the summary as the cut left it
(the record file was already right, so nothing was written), counting an ``unknown``
write that the record file says was made; a summary counting more entries than its
record file makes every later start on that record exit 4 (``Ledger.confirm``).
"""

from __future__ import annotations

import json
import signal

import pytest

from helpers import make_worker, run_workerctl
from test_durability import TOOLY as TWO_STEPS  # a tool call, then a comment
from workerctl.plugins.manager import get_registry
from workerctl.storage.faults import FAULT_ENV
from workerctl.workspace import init_workspace


def _ledger_files(workspace) -> dict[str, object]:
    folder = workspace.state_dir / "history" / "ledger"
    return {str(p.relative_to(folder)): json.loads(p.read_text()) for p in sorted(folder.rglob("*.json"))}


@pytest.mark.parametrize("nth", [1, 2])
@pytest.mark.parametrize("folder", ["ledger/workers/", "ledger/records/"])
def test_a_run_cut_at_a_ledger_write_is_settled_into_what_a_rebuild_says(tmp_path, folder, nth):
    workspace = init_workspace(tmp_path / "ws", get_registry())
    make_worker(workspace, "tooly", executor=TWO_STEPS, output_mode="task_comment")
    cut = run_workerctl(
        "run", "start", "tooly", "--task", "T-1042", workspace=workspace,
        env={FAULT_ENV: f"kill-at:{nth}:{folder}"},
    )  # fmt: skip
    assert cut.returncode == -signal.SIGKILL, (cut.stdout, cut.stderr)
    listed = run_workerctl("runs", "list", "--json", workspace=workspace)  # settles the run
    assert listed.returncode == 0, listed.stderr
    settled = _ledger_files(workspace)
    assert settled, "the run's intended write is in the ledger"
    rebuilt = run_workerctl("runs", "reindex", workspace=workspace)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert _ledger_files(workspace) == settled
    again = run_workerctl("run", "start", "tooly", "--task", "T-1042", "--allow-repeat", workspace=workspace)
    assert again.returncode in (0, 5), again.stderr  # never 4: a summary counting more than its file


def test_a_batch_leaves_the_ledger_as_a_rebuild_makes_it(tmp_path):
    """A ``--jobs 4`` batch stages the worker summaries with the index files for each
    hand-over chain: once it is done, every ledger file is what a rebuild says."""
    from workerctl.records.builtin_store import BuiltinRecordStore

    workspace = init_workspace(tmp_path / "ws", get_registry())
    make_worker(workspace, "tooly", executor=TWO_STEPS, output_mode="task_comment")
    tasks = [f"T-{n}" for n in range(7000, 7040)]
    BuiltinRecordStore(workspace).import_records(
        [{"id": t, "type": "task", "title": f"Task {t}", "status": "todo"} for t in tasks], "test"
    )
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(tasks) + "\n")
    batch = run_workerctl(
        "run", "start", "tooly", "--records-from", str(ids), "--jobs", "4", "--json=counts",
        workspace=workspace, timeout=120,
    )  # fmt: skip
    assert batch.returncode == 0, batch.stderr
    assert json.loads(batch.stdout)["counts"] == {"completed": len(tasks)}
    kept = _ledger_files(workspace)
    summaries = [d for k, v in kept.items() if k.startswith("workers/") for d in v["records"].values()]
    assert sorted(d["record_id"] for d in summaries) == sorted(tasks)
    assert all(d["effects"] == 1 and d["unknown"] == 0 for d in summaries)
    rebuilt = run_workerctl("runs", "reindex", workspace=workspace)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert _ledger_files(workspace) == kept
