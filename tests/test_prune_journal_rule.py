"""Finishing a prune removes only what the prune's own rule removes: finished runs
created before its cutoff, with no marker. A prune journal (``history/pruning.json``)
planted, damaged or left by another version that named a run created after its cutoff
made the next command, even a plain ``runs list``, delete that run's file; one naming a
run still executing deleted it under the running process (the fresh-brief round's C19)."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import run_workerctl
from workerctl.history.store import History


def _journal(workspace, ids, cutoff="2000-01-01T00:00:00.000Z"):
    journal = {
        "ids": ids,
        "cutoff": cutoff,
        "forget_effects": False,
        "shards": [1],
        "gone": [],
        "token": "t0",
    }
    (workspace.history_dir / "pruning.json").write_text(json.dumps(journal), encoding="utf-8")


def _listed(workspace) -> list[str]:
    out = run_workerctl("runs", "list", "--json", "id", workspace=workspace)
    assert out.returncode == 0, out.stderr
    return [r["id"] for r in json.loads(out.stdout)]


def test_a_journal_naming_a_run_newer_than_its_cutoff_removes_nothing(one_run):
    workspace, run_id = one_run
    assert _listed(workspace) == [run_id]
    body = History(workspace).body_path(run_id)
    _journal(workspace, [run_id])
    assert _listed(workspace) == [run_id]
    assert body.exists() and not (workspace.history_dir / "pruning.json").exists()
    stats = json.loads(run_workerctl("runs", "stats", "--json", workspace=workspace).stdout)
    assert stats["overdue-task-review"]["runs"] == 1


def test_a_journal_naming_a_run_still_executing_leaves_it_to_finish(workspace):
    from helpers import make_worker
    from test_reader_lock_wait import _running  # a detached run of a slow worker, executing
    from workerctl.testing import wait_for

    make_worker(workspace, "slow", executor="{name: echo, script: [{sleep: 3}]}", timeout=60)
    run_id, _pid = _running(workspace.root)
    _journal(workspace, [run_id], cutoff="2999-01-01T00:00:00.000Z")
    assert run_id in _listed(workspace)
    wait_for(lambda: History(workspace).get(run_id).status == "completed", 30)
    assert run_id in _listed(workspace)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2200, 1, 1)), st.booleans(), st.booleans())
def test_what_a_journal_removes_is_what_prune_would(
    _one_run_template, tmp_path_factory, cutoff, other, sharded
):
    """Generated journals: any cutoff, an id no run has beside the run, the shards named
    or not: the run goes exactly when ``runs prune`` would take it (created before the
    cutoff: it is finished)."""
    import shutil

    from workerctl.workspace import load_workspace

    root, run_id = _one_run_template
    copy = tmp_path_factory.mktemp("journal") / "ws"
    shutil.copytree(root, copy, symlinks=True)
    workspace = load_workspace(copy)
    created = History(workspace).get(run_id).created
    stamp = cutoff.isoformat(timespec="milliseconds") + "Z"
    journal = {"ids": [run_id, *(["zzzzzzzz"] if other else [])], "cutoff": stamp, "forget_effects": False}
    journal |= {"shards": [1]} if sharded else {}
    (workspace.history_dir / "pruning.json").write_text(json.dumps(journal), encoding="utf-8")
    assert _listed(workspace) == ([] if created < stamp else [run_id])
    assert not (workspace.history_dir / "pruning.json").exists()


def test_a_journal_s_own_summaries_and_shards_are_not_believed(workspace):
    """A journal naming a prunable run with a false summary (created in 2020, failed with
    a timeout) lowered the counts by it: runs stats kept counting the run and an error
    kind went to -1. One naming no shard ("shards": []) deleted the run's file and left
    its index entry (listed, not found). Both from the fresh-brief round's second pass."""
    done = [
        json.loads(run_workerctl(*argv, "--json", workspace=workspace).stdout)["id"]
        for argv in (
            ("run", "start", "overdue-task-review", "--task", "T-1043"),
            ("run", "start", "overdue-task-review", "--task", "T-1042"),
        )
    ]
    first, second = done
    cutoff = History(workspace).get(second).created
    false = {"id": first, "created": "2020-01-01T00:00:00.000Z", "worker": "overdue-task-review"}
    false |= {"status": "failed", "error_kind": "timeout"}
    journal = {"ids": [first], "cutoff": cutoff, "shards": [], "token": "t1", "gone": [[false, 1]]}
    (workspace.history_dir / "pruning.json").write_text(json.dumps(journal), encoding="utf-8")
    assert _listed(workspace) == [second]
    stats = json.loads(run_workerctl("runs", "stats", "--json", workspace=workspace).stdout)
    assert stats["overdue-task-review"]["runs"] == 1
    workers = json.loads((workspace.history_dir / "indexes" / "workers.json").read_text())
    assert all(v >= 0 for w in workers["workers"].values() for v in w.get("error_kinds", {}).values())
    inspect = run_workerctl("run", "inspect", "--id", first, workspace=workspace)
    assert inspect.returncode == 3
    assert run_workerctl("runs", "reindex", workspace=workspace).returncode == 0
    assert json.loads(run_workerctl("runs", "stats", "--json", workspace=workspace).stdout) == stats
