"""The side-effect ledger and the duplicate guard on every start: real processes, real kills."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import make_worker, run_workerctl, start_workerctl
from workerctl.app import App
from workerctl.records.builtin_store import BuiltinRecordStore


def comments_by(workspace, worker: str, record: str = "T-1042"):
    return [c for c in BuiltinRecordStore(workspace).comments(record) if c.author == f"worker:{worker}"]


def test_second_start_on_an_unchanged_record_is_refused_with_what_it_found(workspace, wcli):
    first = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--json").stdout)
    comment = first["side_effects"][0]["comment_id"]
    again = wcli("run", "start", "overdue-task-review", "--task", "T-1042")
    assert again.exit_code == 5
    assert f"comment {comment} on T-1042 by run {first['id']} (committed 20" in again.output
    assert "neither the record nor the worker's configuration changed" in again.output
    assert "--allow-repeat" in again.output
    assert len(json.loads(wcli("runs", "list", "--json").stdout)) == 1  # nothing recorded
    assert len(comments_by(workspace, "overdue-task-review")) == 1
    as_json = wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--json")
    refused = json.loads(as_json.stdout)["refused"]
    assert as_json.exit_code == 5 and refused["verdict"] == "repeat"
    assert refused["effects"][0]["run_id"] == first["id"]
    detached = wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--detach")
    assert detached.exit_code == 5
    forced = wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat")
    assert forced.exit_code == 0, forced.output
    assert len(comments_by(workspace, "overdue-task-review")) == 2


def test_a_changed_record_or_worker_lets_it_run_again(workspace, wcli):
    assert wcli("run", "start", "overdue-task-review", "--task", "T-1042").exit_code == 0
    store = BuiltinRecordStore(workspace)
    task = store.get("T-1042").to_dict()
    task = {
        **task["fields"],
        "id": task["id"],
        "type": task["type"],
        "title": "Renamed",
        "links": task["links"],
    }
    store.import_records([task], "test")
    assert wcli("run", "start", "overdue-task-review", "--task", "T-1042").exit_code == 0
    assert wcli("run", "start", "overdue-task-review", "--task", "T-1042").exit_code == 5
    path = workspace.workers_dir / "overdue-task-review.yaml"
    path.write_text(path.read_text().replace("max_iterations: 4", "max_iterations: 5"))
    assert wcli("run", "start", "overdue-task-review", "--task", "T-1042").exit_code == 0
    assert len(comments_by(workspace, "overdue-task-review")) == 3


def test_a_worker_that_writes_nothing_is_not_guarded(workspace, wcli):
    make_worker(workspace, "notes", output_mode="review_note", categories=())
    for _ in range(2):
        assert wcli("run", "start", "notes", "--task", "T-1042").exit_code == 0
    assert comments_by(workspace, "notes") == []


def test_readme_first_command_twice_posts_one_comment(tmp_path):
    import shutil

    from helpers import ROOT

    copy = tmp_path / "sample"
    shutil.copytree(ROOT / "examples" / "sample-workspace", copy, ignore=shutil.ignore_patterns(".workerctl"))
    argv = ["-w", str(copy), "run", "start", "overdue-task-review", "--task", "T-1042"]
    first, second = run_workerctl(*argv), run_workerctl(*argv)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 5 and "already wrote to T-1042" in second.stderr
    app = App(str(copy))
    mine = [c for c in app.records.comments("T-1042") if c.author == "worker:overdue-task-review"]
    assert len(mine) == 1


@pytest.mark.slow
def test_eight_simultaneous_starts_make_one_side_effect(workspace):
    make_worker(
        workspace, "slowish", executor="{name: echo, script: [{sleep: 0.3, output: 'blocked on the vendor'}]}"
    )
    procs = [
        start_workerctl("run", "start", "slowish", "--task", "T-1042", workspace=workspace) for _ in range(8)
    ]
    codes = sorted(p.wait(timeout=120) for p in procs)
    assert codes == [0] + [5] * 7, [p.communicate() for p in procs]
    assert len(comments_by(workspace, "slowish")) == 1
    app = App(str(workspace.root))
    assert len(app.history.list(None, limit=None)) == 1
    assert len(app.history.ledger.effects("T-1042", "slowish")) == 1


CRASH_IN_WRITE = """
import os, signal, sys
from pathlib import Path
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.engine.tools import Tool
from workerctl.plugins.manager import get_registry
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.workspace import load_workspace

write = BuiltinRecordStore.add_comment

def write_and_die(self, *args, **kwargs):
    if sys.argv[2] == "after":
        write(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)  # dies after (or before) the write, before confirming it

BuiltinRecordStore.add_comment = write_and_die

def add_and_die(ctx, task_id, text):
    ctx.records.add_comment(task_id, text)

registry = get_registry()
registry.tools["add_and_die"] = Tool(
    "add_and_die", "productivity", "writes, then the process dies", add_and_die,
    {"type": "object", "properties": {"task_id": {"type": "string"},
                                      "text": {"type": "string"}}}, writes=True)
Engine(load_workspace(Path(sys.argv[1])), registry).start(
    "dier", StartOptions(record_id="T-1042"))
"""


def _killed_in_write(workspace, when: str = "after") -> subprocess.CompletedProcess:
    """A worker "dier" whose tool writes a comment on T-1042, then the process is killed
    (SIGKILL) before the write is confirmed (``when`` "before": before the comment is
    written): the ledger's entry is left intended."""
    make_worker(
        workspace,
        "dier",
        output_mode="review_note",
        executor=(
            "{name: echo, script: [{tool: add_and_die, arguments: {task_id: T-1042, "
            "text: 'vendor late'}}, {output: done}]}"
        ),
    )
    return subprocess.run([sys.executable, "-c", CRASH_IN_WRITE, str(workspace.root), when])


def test_a_write_cut_by_a_kill_is_unknown_until_settled(workspace, wcli):
    killed = _killed_in_write(workspace)
    assert killed.returncode == -9
    assert len(comments_by(workspace, "dier")) == 1  # the write did happen
    listed = wcli("runs", "list", "--json")  # the sweep marks the run crashed
    run_id = json.loads(listed.stdout)[0]["id"]
    unknown = json.loads(wcli("ledger", "list", "--state", "unknown", "--json").stdout)
    assert [(e["run_id"], e["target"], e["state"]) for e in unknown] == [(run_id, "T-1042", "unknown")]
    assert "UNKNOWN" in wcli("run", "inspect", "--id", run_id).output
    shown = wcli("ledger", "settle", run_id)
    assert shown.exit_code == 2
    assert f"T-1042 holds comment c-3 written by run {run_id}" in shown.output
    settled = wcli("ledger", "settle", run_id, "--written", "--note", "saw it on the task")
    assert settled.exit_code == 0 and "settled 1 side effect(s) as written" in settled.output
    refused = wcli("run", "start", "dier", "--task", "T-1042")
    assert refused.exit_code == 5 and "already wrote to T-1042" in refused.output
    entry = json.loads(wcli("ledger", "list", "--record", "T-1042", "--json").stdout)[0]
    assert entry["state"] == "committed" and entry["settled"]["note"] == "saw it on the task"


def test_an_unknown_comment_the_record_holds_is_settled_as_written_by_the_next_start(workspace, wcli):
    """The record answers for a write whose end its run could not record: a comment it
    holds under the write's key was written. (A full disk left such a write unknown,
    and the record blocked, though the comment was on it.) Settled by the guard, it
    counts as any written comment: a repeat, refused; ``--allow-repeat`` may write again."""
    assert _killed_in_write(workspace).returncode == -9
    run_id = json.loads(wcli("runs", "list", "--json").stdout)[0]["id"]
    refused = wcli("run", "start", "dier", "--task", "T-1042")
    assert refused.exit_code == 5
    assert f"already wrote to T-1042: comment on T-1042 by run {run_id}" in refused.output
    entry = json.loads(wcli("ledger", "list", "--record", "T-1042", "--json").stdout)[0]
    assert entry["state"] == "committed" and entry["settled"]["by"] == "workerctl"
    assert "holds this comment under its key" in entry["settled"]["note"]
    assert len(comments_by(workspace, "dier")) == 1


def test_an_unknown_comment_a_local_record_lacks_is_settled_as_not_written(workspace, wcli):
    """Killed after its intent was stored, before the comment was written: the record
    (the built-in store, whose writes end on this machine) does not hold it under its
    key, and the process is gone, so it was never written: the next start settles it so
    and runs."""
    assert _killed_in_write(workspace, "before").returncode == -9
    assert comments_by(workspace, "dier") == []
    run_id = json.loads(wcli("runs", "list", "--json").stdout)[0]["id"]
    assert json.loads(wcli("ledger", "list", "--state", "unknown", "--json").stdout)[0]["run_id"] == run_id
    again = wcli("run", "start", "dier", "--task", "T-1042", "--json")
    assert again.exit_code in (0, 1), again.output  # not refused (the tool is the crash script's only)
    entry = next(e for e in json.loads(wcli("ledger", "list", "--json").stdout) if e["run_id"] == run_id)
    assert entry["state"] == "not_written" and entry["settled"]["by"] == "workerctl"


def _edit_run_file(workspace, run_id: str, change) -> None:
    path = next((workspace.root / ".workerctl" / "history" / "runs").glob(f"*/{run_id}.json"))
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"host": "othermachine"},  # a second machine sharing the workspace
        {"pid_ns": "pid:[1]"},  # another container on this host
        {"remote": "rq"},  # handed to a task queue
    ],
)
def test_an_unknown_comment_of_a_run_that_executed_elsewhere_waits_for_a_person(workspace, wcli, elsewhere):
    """The fifth fresh-brief attack: a run whose file names another machine (or another
    PID namespace) was settled "not written" and the comment written again; that run
    may still be alive there, its comment on its way. Only a run of this machine's
    process is answered for by the record's silence."""
    assert _killed_in_write(workspace, "before").returncode == -9
    run_id = json.loads(wcli("runs", "list", "--json").stdout)[0]["id"]
    _edit_run_file(workspace, run_id, lambda d: d["owner"].update(elsewhere))
    refused = wcli("run", "start", "dier", "--task", "T-1042")
    assert refused.exit_code == 5 and "unknown" in refused.output, refused.output
    assert [e["state"] for e in json.loads(wcli("ledger", "list", "--json").stdout)] == ["unknown"]


def test_an_unknown_comment_the_record_holds_under_another_key_waits_for_a_person(workspace, wcli):
    """The fifth fresh-brief attack: the comment's key edited, its run id kept: the record
    still names the run's write, so its silence under the key proves nothing."""
    assert _killed_in_write(workspace, "after").returncode == -9
    run_id = json.loads(wcli("runs", "list", "--json").stdout)[0]["id"]
    path = next((workspace.root / ".workerctl" / "comments").glob("*1042*"))
    data = json.loads(path.read_text())
    for comment in data["comments"].values():
        if comment.get("run_id") == run_id:
            comment["key"] = "edited-by-hand"
    path.write_text(json.dumps(data))
    refused = wcli("run", "start", "dier", "--task", "T-1042")
    assert refused.exit_code == 5 and "unknown" in refused.output, refused.output
    assert len(comments_by(workspace, "dier")) == 1


def test_prune_forgetting_side_effects_keeps_an_unknown_write(workspace, wcli):
    """An unknown write is cleared by a person (``ledger settle``) or by what the record
    holds, never by a prune: ``--forget-side-effects`` dropped it and the next start wrote
    a second comment."""
    assert _killed_in_write(workspace).returncode == -9
    assert wcli("runs", "list").exit_code == 0  # the sweep settles the run as crashed
    pruned = json.loads(wcli("runs", "prune", "--older-than", "0s", "--forget-side-effects", "--json").stdout)
    assert pruned["removed"] == 1
    unknown = json.loads(wcli("ledger", "list", "--state", "unknown", "--json").stdout)
    assert [e["target"] for e in unknown] == ["T-1042"]
    refused = wcli("run", "start", "dier", "--task", "T-1042")
    assert refused.exit_code == 5 and "already wrote to T-1042" in refused.output  # the record holds it
    assert len(comments_by(workspace, "dier")) == 1


def test_an_unknown_write_of_a_pruned_run_the_record_lacks_stays_for_a_person(workspace, wcli):
    """Whether a pruned run executed here cannot be told: a comment its record lacks may
    be a remote worker's still on its way, so it stays unknown."""
    assert _killed_in_write(workspace, "before").returncode == -9
    assert wcli("runs", "prune", "--older-than", "0s", "--forget-side-effects").exit_code == 0
    refused = wcli("run", "start", "dier", "--task", "T-1042")
    assert refused.exit_code == 5 and "unknown" in refused.output
    assert [e["state"] for e in json.loads(wcli("ledger", "list", "--json").stdout)] == ["unknown"]


def test_a_refused_write_leaves_nothing_in_the_ledger(workspace, wcli):
    make_worker(
        workspace,
        "wrongid",
        output_mode="review_note",
        executor=(
            "{name: echo, script: [{tool: add_task_comment, arguments: {task_id: T-NOPE, "
            "text: x}}, {output: done}]}"
        ),
    )
    assert wcli("run", "start", "wrongid", "--task", "T-1042").exit_code == 0
    assert json.loads(wcli("ledger", "list", "--json").stdout) == []
    assert wcli("run", "start", "wrongid", "--task", "T-1042").exit_code == 0  # nothing written


def test_prune_keeps_the_ledger_so_the_guard_remembers(workspace, wcli):
    for _ in range(3):
        assert (
            wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat").exit_code == 0
        )
    pruned = json.loads(wcli("runs", "prune", "--older-than", "0s", "--json").stdout)
    assert pruned["removed"] == 3
    listed = json.loads(wcli("ledger", "list", "--record", "T-1042", "--json").stdout)
    assert len(listed) == 3 and {e["state"] for e in listed} == {"committed"}
    refused = wcli("run", "start", "overdue-task-review", "--task", "T-1042")
    assert refused.exit_code == 5
    done = json.loads(
        wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat", "--json").stdout
    )
    plan = wcli("run", "rerun", "--id", done["id"])
    assert plan.exit_code == 5 and plan.output.count("comment c-") >= 4  # all four, not one
    forgotten = json.loads(
        wcli("runs", "prune", "--older-than", "0s", "--forget-side-effects", "--json").stdout
    )
    assert forgotten["side_effects_forgotten"] == 1
    assert len(json.loads(wcli("ledger", "list", "--json").stdout)) == 3


def test_reindex_rebuilds_a_lost_ledger_from_the_run_files(workspace, wcli):
    assert wcli("run", "start", "overdue-task-review", "--task", "T-1042").exit_code == 0
    import shutil

    shutil.rmtree(workspace.history_dir / "ledger")
    # the run file holds the comment the ledger lost: no second comment, a damaged
    # ledger named, with what rebuilds it
    lost = wcli("run", "start", "overdue-task-review", "--task", "T-1042")
    assert lost.exit_code == 4, lost.output
    assert "ledger" in lost.output and "runs reindex" in lost.output and "Traceback" not in lost.output
    assert wcli("run", "start", "overdue-task-review", "--task", "T-1043").exit_code == 0
    assert wcli("runs", "reindex").exit_code == 0
    assert wcli("run", "start", "overdue-task-review", "--task", "T-1042").exit_code == 5
    assert len(json.loads(wcli("ledger", "list", "--json").stdout)) == 2
    assert len(comments_by(workspace, "overdue-task-review")) == 1


def test_a_damaged_ledger_file_is_reported_and_left_alone(workspace, wcli):
    assert wcli("run", "start", "overdue-task-review", "--task", "T-1042").exit_code == 0
    from workerctl.storage.filenames import file_name

    path = workspace.history_dir / "ledger" / "records" / f"{file_name('T-1042')}.json"
    for bad in ('{"effects": {"1": ', "[]", '{"effects": {"1": {"key": "x"}}}'):
        path.write_text(bad)
        result = wcli("run", "start", "overdue-task-review", "--task", "T-1042")
        assert result.exit_code == 4 and str(path) in result.output
        assert path.read_text() == bad


def _effects_shown(wcli, run_id: str) -> tuple[list[dict], str]:
    """The run's effects as ``run inspect --json`` gives them, and its card."""
    doc = json.loads(wcli("run", "inspect", "--id", run_id, "--json").stdout)
    return doc["side_effects"], wcli("run", "inspect", "--id", run_id).output


@pytest.mark.parametrize("how", ["--written", "--not-written"])
def test_a_settled_write_reads_settled_on_the_card_and_after_a_rebuild(workspace, wcli, how):
    """A person's settlement is kept on the run's effect (the run file, through the one
    commit path), not in the ledger alone: the card and ``run inspect`` said UNKNOWN
    and advised a ``ledger settle`` that then found nothing to settle."""
    assert _killed_in_write(workspace).returncode == -9
    run_id = json.loads(wcli("runs", "list", "--json").stdout)[0]["id"]
    assert wcli("ledger", "settle", run_id, how, "--note", "looked").exit_code == 0
    state = "committed" if how == "--written" else "not_written"
    effects, card = _effects_shown(wcli, run_id)
    assert [(e["state"], e["settled"]["note"]) for e in effects] == [(state, "looked")]
    assert "UNKNOWN" not in card and "ledger settle" not in card
    assert wcli("runs", "reindex").exit_code == 0
    entry = json.loads(wcli("ledger", "list", "--record", "T-1042", "--json").stdout)[0]
    assert (entry["state"], entry["settled"]["note"]) == (state, "looked")


def test_a_write_the_guard_settles_reads_settled_on_the_card(workspace, wcli):
    """The next start settles the cut write from the record (it holds the comment): the
    run that made it says so too (last round's c42)."""
    assert _killed_in_write(workspace).returncode == -9
    run_id = json.loads(wcli("runs", "list", "--json").stdout)[0]["id"]
    assert wcli("run", "start", "dier", "--task", "T-1042").exit_code == 5
    effects, card = _effects_shown(wcli, run_id)
    assert [(e["state"], e["settled"]["by"]) for e in effects] == [("committed", "workerctl")]
    assert "UNKNOWN" not in card and "ledger settle" not in card
    # nothing left to settle: the same verdict says so (exit 0), the opposite names the settlement
    again = wcli("ledger", "settle", run_id, "--written")
    assert again.exit_code == 0 and "settled already: 1 side effect(s) as written" in again.stdout
    other = wcli("ledger", "settle", run_id, "--not-written")
    assert other.exit_code == 3 and "was settled already as written by workerctl" in other.stderr
