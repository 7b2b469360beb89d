"""A ledger behind its run files never lets a write run again (B7 of the second
fresh-brief round): the ledger is the run files' index by record, written in the same
commit, so a ledger that holds fewer effects than the run files (its folder deleted,
restored from a backup taken after any earlier run, its summary deleted and a record
file emptied, the indexes' refs lost with it: the record's own comments name the runs
that wrote) is damage the duplicate guard names, exit 4, instead of "never wrote".

Every rollback point of a history of three written runs on one record, each kind of
rollback, real processes for the start that must refuse."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace

import pytest

from helpers import make_worker, run_workerctl
from workerctl.plugins.manager import get_registry
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.workspace import init_workspace

WORKER = "overdue-task-review"
RUNS = 3


@pytest.fixture(scope="module")
def _three_writes(tmp_path_factory):
    """A workspace after three written runs on T-1042 (``--allow-repeat``), with a copy
    of its ledger folder as it was before each run (``ledger.0`` … ``ledger.2``)."""
    ws = init_workspace(tmp_path_factory.mktemp("three") / "ws", get_registry())
    snapshots = ws.root.parent
    for n in range(RUNS):
        ledger = ws.history_dir / "ledger"
        if ledger.exists():
            shutil.copytree(ledger, snapshots / f"ledger.{n}")
        done = run_workerctl("run", "start", WORKER, "--task", "T-1042", "--allow-repeat", workspace=ws)
        assert done.returncode == 0, done.stderr
    return ws


def _copy(template, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(template.root, root)
    return replace(template, root=root, settings=dict(template.settings))


def _written(ws) -> int:
    return sum(c.author == f"worker:{WORKER}" for c in BuiltinRecordStore(ws).comments("T-1042"))


def _record_file(ws):
    from workerctl.app import App

    return App(str(ws.root)).history.ledger.record_path("T-1042")


def _roll_back(ws, template, kind: str, point: int) -> None:
    ledger = ws.history_dir / "ledger"
    if kind == "folder":  # the ledger restored as it was before run ``point`` (none before the first)
        shutil.rmtree(ledger)
        saved = template.root.parent / f"ledger.{point}"
        if saved.exists():
            shutil.copytree(saved, ledger)
    elif kind == "summary_and_record":
        shutil.rmtree(ledger / "workers")
        _record_file(ws).write_text('{"effects": {}}')
    elif kind == "record_file_only":
        _record_file(ws).unlink()
    elif kind == "folder_and_record_refs":  # the indexes' refs by record lost with it
        shutil.rmtree(ledger)
        shutil.rmtree(ws.history_dir / "indexes" / "by-record")
    elif kind == "folder_and_worker_refs":
        shutil.rmtree(ledger)
        shutil.rmtree(ws.history_dir / "indexes" / "by-record")
        shutil.rmtree(ws.history_dir / "indexes" / "by-worker")


@pytest.mark.parametrize(
    "kind,point",
    [("folder", p) for p in range(RUNS)]
    + [
        (k, 0)
        for k in (
            "summary_and_record",
            "record_file_only",
            "folder_and_record_refs",
            "folder_and_worker_refs",
        )
    ],
)
def test_a_ledger_behind_its_run_files_never_lets_the_write_run_again(_three_writes, tmp_path, kind, point):
    ws = _copy(_three_writes, tmp_path)
    assert _written(ws) == RUNS
    _roll_back(ws, _three_writes, kind, point)
    refused = run_workerctl("run", "start", WORKER, "--task", "T-1042", workspace=ws)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "ledger" in refused.stderr and "runs reindex" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _written(ws) == RUNS
    # the rebuilt ledger holds every write again, and the repeat is a repeat
    assert run_workerctl("runs", "reindex", workspace=ws).returncode == 0
    again = run_workerctl("run", "start", WORKER, "--task", "T-1042", workspace=ws)
    assert again.returncode == 5, again.stderr
    listed = json.loads(run_workerctl("ledger", "list", "--record", "T-1042", "--json", workspace=ws).stdout)
    assert len(listed) == RUNS and _written(ws) == RUNS


def test_a_run_whose_writes_went_elsewhere_is_no_damage(workspace, wcli):
    """A worker's earlier run on a record that wrote only to another record: the ledger
    rightly holds nothing of it on this record, and the next start on it runs."""
    script = [
        {"tool": "add_task_comment", "arguments": {"task_id": "T-1043", "text": "Blocked by T-1042."}},
        {"output": "Noted on T-1043."},
    ]
    make_worker(
        workspace,
        "neighbour-note",
        output_mode="review_note",
        executor=json.dumps({"name": "echo", "script": script}),
        extra="write_scope: context\n",
    )
    first = wcli("run", "start", "neighbour-note", "--task", "T-1042", "--json")
    assert first.exit_code == 0, first.output
    assert [e["record_id"] for e in first.json["side_effects"]] == ["T-1043"]
    again = wcli("run", "start", "neighbour-note", "--task", "T-1042", "--json")
    assert again.exit_code == 0, again.output


def _one_write(workspace):
    done = run_workerctl("run", "start", WORKER, "--task", "T-1042", "--json", workspace=workspace)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["id"]


def test_a_write_the_record_holds_but_nothing_else_remembers_is_a_repeat(workspace):
    """The run's file and the ledger both gone (or the run pruned, then the ledger lost):
    the record's comment, keyed by the run, is the last evidence of the write; the
    start is refused as a repeat (exit 5), and --allow-repeat writes again on purpose."""
    run_id = _one_write(workspace)
    shutil.rmtree(workspace.history_dir / "ledger")
    from workerctl.history.store import History

    History(workspace).body_path(run_id).unlink()
    refused = run_workerctl("run", "start", WORKER, "--task", "T-1042", workspace=workspace)
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert run_id in refused.stderr and "--allow-repeat" in refused.stderr
    assert _written(workspace) == 1
    again = run_workerctl("run", "start", WORKER, "--task", "T-1042", "--allow-repeat", workspace=workspace)
    assert again.returncode == 0 and _written(workspace) == 2


def test_a_pruned_write_is_remembered_by_the_record_when_the_ledger_is_lost(workspace):
    _one_write(workspace)
    assert run_workerctl("runs", "prune", "--older-than", "0s", workspace=workspace).returncode == 0
    shutil.rmtree(workspace.history_dir / "ledger")
    refused = run_workerctl("run", "start", WORKER, "--task", "T-1042", workspace=workspace)
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert _written(workspace) == 1


def test_a_write_forgotten_on_purpose_may_be_written_again(workspace):
    """``runs prune --forget-side-effects`` keeps a tombstone: the record's comment is
    known to be forgotten, and the next start writes (what forgetting is for)."""
    run_id = _one_write(workspace)
    forgot = run_workerctl(
        "runs", "prune", "--older-than", "0s", "--forget-side-effects", workspace=workspace
    )
    assert forgot.returncode == 0, forgot.stderr
    listed = run_workerctl("ledger", "list", "--json", workspace=workspace)
    assert json.loads(listed.stdout) == []
    tombs = run_workerctl("ledger", "list", "--state", "forgotten", "--json", workspace=workspace)
    assert [e["run_id"] for e in json.loads(tombs.stdout)] == [run_id]
    assert run_workerctl("run", "start", WORKER, "--task", "T-1042", workspace=workspace).returncode == 0
    assert _written(workspace) == 2


def test_a_prune_keeps_a_run_whose_write_waits_for_a_person(workspace):
    """A finished run holding a write for ``run approve`` / ``run reject`` (which find
    it by the run's id) is kept by ``runs prune``: removed, its write stayed held for
    ever, neither made nor dropped, while the guard kept asking for a decision."""
    source = (workspace.workers_dir / f"{WORKER}.yaml").read_text()
    held = source.replace(f"name: {WORKER}", "name: held-review") + "review_required: true\n"
    (workspace.workers_dir / "held-review.yaml").write_text(held)
    done = run_workerctl("run", "start", "held-review", "--task", "T-2001", "--json", workspace=workspace)
    run_id = json.loads(done.stdout)["id"]
    pruned = run_workerctl("runs", "prune", "--older-than", "0s", "--json", workspace=workspace)
    assert json.loads(pruned.stdout)["kept_held"] == 1 and json.loads(pruned.stdout)["removed"] == 0
    approved = run_workerctl("run", "approve", run_id, workspace=workspace)
    assert approved.returncode == 0, approved.stderr
    again = run_workerctl("runs", "prune", "--older-than", "0s", "--json", workspace=workspace)
    assert json.loads(again.stdout)["removed"] == 1


def test_a_run_still_executing_without_its_marker_is_in_progress(workspace):
    """The marker of a detached run deleted while it executes: its run file names its
    process, alive, so a second start on the record is refused as in progress (it ran
    beside it and both posted a comment)."""
    source = (workspace.workers_dir / f"{WORKER}.yaml").read_text()
    slow = source.replace(f"name: {WORKER}", "name: slow-review") + (
        '  script:\n    - sleep: 4\n      output: "{context}"\n'
    )
    (workspace.workers_dir / "slow-review.yaml").write_text(slow)
    started = run_workerctl(
        "run", "start", "slow-review", "--task", "T-1042", "--detach", workspace=workspace
    )
    run_id = started.stdout.strip()
    from workerctl.history.store import History

    marker = History(workspace).marker_path(run_id)
    for _ in range(100):
        if marker.exists():
            break
        time.sleep(0.05)
    marker.unlink()
    refused = run_workerctl("run", "start", "slow-review", "--task", "T-1042", workspace=workspace)
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert run_id in refused.stderr
    run_workerctl("run", "watch", run_id, "--exit-status", workspace=workspace, timeout=60)
    assert (
        sum(c.author == "worker:slow-review" for c in BuiltinRecordStore(workspace).comments("T-1042")) == 1
    )


def test_a_pruned_runs_lost_ledger_file_names_its_way_out(workspace):
    """After a prune the ledger's record file is lost: reindex cannot bring back entries of
    runs no longer in the history, so the message says so and names --allow-repeat (it
    said to reindex, and the same exit 4 came back for ever); the write made with it
    heals the file, and the next start is a repeat again."""
    _one_write(workspace)
    assert run_workerctl("runs", "prune", "--older-than", "0s", workspace=workspace).returncode == 0
    _record_file(workspace).unlink()
    lost = run_workerctl("run", "start", WORKER, "--task", "T-1042", workspace=workspace)
    assert lost.returncode == 4 and "--allow-repeat" in lost.stderr and "pruned" in lost.stderr
    assert run_workerctl("runs", "reindex", workspace=workspace).returncode == 0
    assert run_workerctl("run", "start", WORKER, "--task", "T-1042", workspace=workspace).returncode == 4
    again = run_workerctl("run", "start", WORKER, "--task", "T-1042", "--allow-repeat", workspace=workspace)
    assert again.returncode == 0, again.stderr
    assert run_workerctl("run", "start", WORKER, "--task", "T-1042", workspace=workspace).returncode == 5
    assert _written(workspace) == 2
