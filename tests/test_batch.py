"""run start WORKER over many records in one process: --task repeated, --records-from,
--where; --jobs; progress only on a terminal; one summary and one exit status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import drive_terminal, make_worker, process_gone, run_workerctl, wait_for
from workerctl.history.store import History, RunFilter

TASKS = ["T-1042", "T-1043", "T-2001", "T-9001"]


def ten_minute_worker(workspace) -> None:
    """Worker ``slow``: a step far longer than a test may wait, so a cancel must halt it,
    not wait it out (a signal reaches only the batch's main thread, never a step's)."""
    make_worker(workspace, "slow", output_mode="review_note", timeout=900,
                executor="{name: echo, script: [{sleep: 600, output: late}]}")  # fmt: skip


def batch(wcli, *args, input=None):
    return wcli("run", "start", "overdue-task-review", *args, input=input)


def test_repeated_task_runs_each_as_an_ordinary_run(workspace, wcli):
    args = [a for t in TASKS for a in ("--task", t)]
    result = batch(wcli, *args, "--jobs", "4")
    assert result.exit_code == 0, result.output
    assert "4 runs of overdue-task-review: 4 completed in" in result.output
    history = History(workspace)
    runs = [history.get(d["id"]) for d in history.list(None, limit=None)]
    assert sorted(r.record_id for r in runs) == TASKS
    for run in runs:  # per-run state: each run read and wrote only its own record
        assert run.status == "completed"
        assert f"task {run.record_id} " in run.output.splitlines()[0]
        assert [e["record_id"] for e in run.side_effects] == [run.record_id]
        assert run.context["records"][0] == {"type": "task", "id": run.record_id}
    table = result.output.splitlines()
    assert table[0].split() == ["status", "record", "run", "duration", "output", "/", "error"]


def test_one_failure_is_exit_1_with_its_fix(wcli):
    result = batch(wcli, "--task", "T-1042", "--task", "T-3001", "--jobs", "2")
    assert result.exit_code == 1
    assert "FAILED" in result.output and "record_access_denied" in result.output
    assert "fix: use a worker that may access it" in result.output
    assert "2 runs of overdue-task-review: 1 completed, 1 failed" in result.output
    doc = json.loads(batch(wcli, "--task", "T-1043", "--task", "T-3001", "--json").output)
    # T-3001's failure is unchanged since: the guard skips it rather than repeat it
    assert doc["counts"] == {"completed": 1, "skipped": 1} and doc["ok"] is True
    skipped = next(r for r in doc["runs"] if r["status"] == "skipped")
    assert skipped["reason"] == "repeat_failure" and "--allow-repeat" in skipped["fix"]


def test_an_unknown_record_starts_nothing(workspace, wcli):
    result = batch(wcli, "--task", "T-1042", "--task", "T-NOPE", "--task", " ")
    assert result.exit_code == 2  # the blank one: an empty --task is a mistake
    result = batch(wcli, "--task", "T-1042", "--task", "T-NOPE")
    assert result.exit_code == 3 and "T-NOPE" in result.output
    assert History(workspace).list(None, limit=None) == []
    assert wcli("run", "start", "nosuch", "--task", "T-1", "--task", "T-2").exit_code == 3


def test_records_from_a_file_or_stdin(workspace, wcli, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# overdue\nT-1042\n\n  T-1043  \nT-1042\n")  # duplicates run once
    result = batch(wcli, "--records-from", str(ids), "--json=counts")
    assert json.loads(result.output) == {"counts": {"completed": 2}}
    lines = wcli("records", "list", "--type", "project", "--format", "ndjson").output
    piped = wcli("run", "start", "crm-activity-summary", "--records-from", "-", "--json", input=lines)
    doc = json.loads(piped.output)
    assert {r["record_id"] for r in doc["runs"]} == {json.loads(line)["id"] for line in lines.splitlines()}
    bad = batch(wcli, "--records-from", "-", input='{"title": "no id"}\n')
    assert bad.exit_code == 2 and "<stdin>:1" in bad.output
    assert batch(wcli, "--records-from", str(tmp_path / "nope")).exit_code == 3


def test_where_is_a_jq_filter_over_records(wcli):
    result = batch(wcli, "--type", "task", "--where", '.fields.priority == "high"', "--json")
    doc = json.loads(result.output)
    expected = [
        r["id"]
        for r in json.loads(wcli("records", "list", "--type", "task", "--json").output)
        if r["fields"].get("priority") == "high"
    ]
    assert sorted(r["record_id"] for r in doc["runs"]) == sorted(expected) and expected
    none = batch(wcli, "--where", '.id == "nothing"')
    assert none.exit_code == 0 and "no records match" in none.output
    bad = batch(wcli, "--where", ".[")
    assert bad.exit_code == 2 and "--where" in bad.output


def test_quiet_and_piped_show_no_progress_bar(wcli):
    result = batch(wcli, "--task", "T-1042", "--task", "T-1043", "--quiet")
    assert result.output.splitlines() == [line for line in result.output.splitlines() if "runs of" in line]
    assert "status" not in result.output


def test_progress_bar_only_on_a_terminal(workspace):
    args = ["run", "start", "overdue-task-review", "--task", "T-1042", "--task", "T-1043"]
    code, screen = drive_terminal(args, [], workspace=workspace, no_color=False)
    assert code == 0 and "overdue-task-review" in screen and "2/2" in screen
    code, screen = drive_terminal(args, [], workspace=workspace, no_color=True)
    assert code == 0 and "2/2" not in screen


@pytest.mark.slow
def test_ctrl_c_stops_the_batch_and_cancels_what_runs(workspace):
    ten_minute_worker(workspace)
    argv = [
        sys.executable,
        "-m",
        "workerctl",
        "-w",
        str(workspace.root),
        "run",
        "start",
        "slow",
        *[a for t in TASKS for a in ("--task", t)],
        "--jobs",
        "2",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    history = History(workspace)
    deadline = time.monotonic() + 20
    while len(history.list(None, limit=None)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    runs = history.list(None, limit=None)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"cancelled"}
    assert "2 cancelled" in out and "2 not_started" in out and "interrupted" in out, out


def test_duplicate_guard_skips_are_not_failures(wcli):
    pytest.importorskip("workerctl.runs.duplicate_guard")
    assert batch(wcli, "--task", "T-1042", "--task", "T-1043").exit_code == 0
    again = batch(wcli, "--task", "T-1042", "--task", "T-1043", "--json")
    assert again.exit_code == 0, again.output
    doc = json.loads(again.output)
    assert doc["counts"] == {"skipped": 2} and doc["ok"] is True
    assert all("already wrote" in r["message"] for r in doc["runs"])


def test_detached_batch_prints_one_id_per_record(workspace, wcli):
    result = batch(wcli, "--task", "T-1042", "--task", "T-1043", "--detach")
    ids = result.output.split()
    assert result.exit_code == 0 and len(ids) == 2 and all(len(i) == 8 for i in ids)
    history = History(workspace)
    assert sorted(history.get(i).record_id for i in ids) == ["T-1042", "T-1043"]
    for run_id in ids:
        assert wcli("run", "watch", run_id, "--exit-status").exit_code == 0


def started_batch(workspace, argv: list[str]) -> tuple[subprocess.Popen, History]:
    """A batch started as a real process, once it has stored its first run."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    history = History(workspace)
    deadline = time.monotonic() + 20
    while not history.list(None, limit=None) and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc, history


@pytest.mark.slow
def test_cancelling_one_run_of_a_batch_leaves_the_others(workspace):
    make_worker(
        workspace,
        "slow",
        output_mode="review_note",
        timeout=120,
        # long enough that the cancel, sent once the first run is stored, finds it
        # running on a loaded machine (1.5 s was once not: the run had completed)
        executor="{name: echo, script: [{sleep: 4, output: late}]}",
    )
    argv = [
        sys.executable,
        "-m",
        "workerctl",
        "-w",
        str(workspace.root),
        "run",
        "start",
        "slow",
        *[a for t in TASKS for a in ("--task", t)],
        "--jobs",
        "2",
        "--json",
    ]
    proc, history = started_batch(workspace, argv)
    victim = history.list(None, limit=None)[0]["id"]
    from helpers import run_workerctl

    assert run_workerctl("run", "cancel", victim, workspace=workspace).returncode == 0
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err  # one cancelled: exit 1, but the batch went on
    doc = json.loads(out)
    assert doc["counts"] == {"cancelled": 1, "completed": 3}, doc
    assert doc["interrupted"] is False


@pytest.mark.slow
def test_two_ctrl_c_at_once_still_cancel_everything_and_print_the_summary(workspace):
    """Found by the fresh-brief attack: a second SIGINT within a millisecond of the first
    landed inside the cancelling, which stopped; the runs went on to write their comments
    and the summary never came."""
    ten_minute_worker(workspace)
    argv = [sys.executable, "-m", "workerctl", "-w", str(workspace.root), "run", "start", "slow"]
    argv += ["--task", "T-1042", "--task", "T-1043", "--jobs", "2", "--json", "--allow-repeat"]
    history = History(workspace)
    for gap in (0, 0.0005, 0.001, 0.002, 0.005):  # the race is narrow: several tries
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: len(history.list(RunFilter(statuses=("running",)), limit=None)) == 2)
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(gap)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # the ten-minute steps, were they not cancelled
        assert proc.returncode == 130, (gap, err)
        assert json.loads(out)["counts"] == {"cancelled": 2}, (gap, out)
    assert {r["status"] for r in history.list(None, limit=None)} == {"cancelled"}


@pytest.mark.slow
def test_run_cancel_of_a_batch_run_halts_its_step(workspace):
    """'run cancel' from another terminal signals the batch's process, whose signal
    handler runs on the main thread: the thread waiting in that run's step is woken
    (it waited the step out, here ten minutes), and the batch goes on without it."""
    ten_minute_worker(workspace)
    argv = [sys.executable, "-m", "workerctl", "-w", str(workspace.root), "run", "start", "slow"]
    argv += ["--task", "T-1042", "--task", "T-1043", "--jobs", "2", "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    history = History(workspace)
    wait_for(lambda: len(history.list(RunFilter(statuses=("running",)), limit=None)) == 2)
    for row in history.list(None, limit=None):
        assert run_workerctl("run", "cancel", row["id"], workspace=workspace).returncode == 0
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err  # cancelled runs: exit 1, as for any unsuccessful run
    doc = json.loads(out)
    assert doc["counts"] == {"cancelled": 2} and doc["interrupted"] is False, doc


PROGRAM = """
import os, sys, time
sys.stdin.read()
with open(sys.argv[1], "a") as fh:
    fh.write(f"{os.getpid()}\\n")
time.sleep(600)
"""


def test_ctrl_c_on_a_batch_kills_the_programs_of_its_command_steps(workspace, tmp_path):
    """A command step runs its program on the batch's thread (the executor bounds
    itself): the halt reaches it through ``request.halted`` and its group is killed;
    before, the batch waited for a program of ten minutes."""
    program, pids = tmp_path / "step.py", tmp_path / "pids"
    program.write_text(PROGRAM)
    argv = json.dumps([sys.executable, str(program), str(pids)])
    make_worker(workspace, "prog", output_mode="review_note", timeout=900,
                executor=f"{{name: command, argv: {argv}}}")  # fmt: skip
    argv = [sys.executable, "-m", "workerctl", "-w", str(workspace.root), "run", "start", "prog"]
    argv += ["--task", "T-1042", "--task", "T-1043", "--jobs", "2", "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert json.loads(out)["counts"] == {"cancelled": 2}
    for pid in pids.read_text().split():
        wait_for(lambda pid=pid: process_gone(int(pid)), timeout=10)


@pytest.mark.slow
def test_sigterm_to_the_batch_stops_it(workspace):
    make_worker(
        workspace,
        "slow",
        output_mode="review_note",
        timeout=120,
        executor="{name: echo, script: [{sleep: 2, output: late}]}",
    )
    argv = [
        sys.executable,
        "-m",
        "workerctl",
        "-w",
        str(workspace.root),
        "run",
        "start",
        "slow",
        *[a for t in TASKS for a in ("--task", t)],
        "--jobs",
        "1",
    ]
    proc, history = started_batch(workspace, argv)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    runs = history.list(None, limit=None)
    assert len(runs) == 1 and runs[0]["status"] == "cancelled"
    assert "3 not_started" in out


@pytest.mark.parametrize("detach", [False, True])
def test_json_fields_a_batch_will_not_print_are_refused_before_any_run(workspace, detach):
    """The adversarial report: a batch with --json id,status ran and wrote its comments,
    then exited 2 on the unknown field and printed nothing."""
    args = ["run", "start", "overdue-task-review", "--task", "T-1042", "--task", "T-1043"]
    fields = "counts,nope" if not detach else "id,nope"
    refused = run_workerctl(*args, *(["--detach"] if detach else []), "--json", fields, workspace=workspace)
    assert refused.returncode == 2 and "nope" in refused.stderr, refused.stderr
    assert History(workspace).list(None, limit=5) == []  # nothing ran
    if not detach:
        kept = run_workerctl(*args, "--json", "counts,ok", workspace=workspace)
        assert kept.returncode == 0, kept.stderr
        assert json.loads(kept.stdout) == {"counts": {"completed": 2}, "ok": True}


@pytest.mark.parametrize("detach", [False, True])
def test_json_fields_one_start_or_rerun_will_not_print_are_refused_before_it_runs(workspace, detach):
    """The fourth fresh-brief attack: ``run start --json id,nosuch`` (one run) ran and
    wrote its comment, then exited 2 on the unknown field: a script read "nothing ran",
    retried, and met exit 5. Every start checks the fields first, as the batch did."""
    more = ["--detach"] if detach else []
    args = ["run", "start", "overdue-task-review", "--task", "T-1043", *more]
    refused = run_workerctl(*args, "--json", "id,nosuch", workspace=workspace)
    assert refused.returncode == 2 and "nosuch" in refused.stderr, refused.stderr
    assert History(workspace).list(None, limit=5) == []  # nothing ran
    kept = run_workerctl(*args, "--json", "id,status", workspace=workspace)
    assert kept.returncode == 0, kept.stderr
    first = json.loads(kept.stdout)["id"]
    wait_for(lambda: History(workspace).get(first).finished, timeout=60)
    again = run_workerctl(
        "run", "rerun", first, *more, "--allow-repeat", "--json", "id,nosuch", workspace=workspace
    )
    assert again.returncode == 2 and len(History(workspace).list(None, limit=5)) == 1


def test_rerun_detach_prints_the_new_id_alone(workspace):
    """``id=$(workerctl run rerun X --detach)``: the notes ("Changed since: nothing")
    went to stdout before the id (the fourth fresh-brief attack)."""
    first = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1043", workspace=workspace)
    assert first.returncode == 0, first.stderr
    earlier = History(workspace).list(None, limit=1)[0]["id"]
    new = run_workerctl("run", "rerun", earlier, "--detach", "--allow-repeat", workspace=workspace)
    assert new.returncode == 0, new.stderr
    assert new.stdout.strip() != earlier and len(new.stdout.split()) == 1
    assert History(workspace).get(new.stdout.strip()).rerun_of == earlier
    assert "Changed since" in new.stderr


def test_a_cancel_that_lands_during_a_write_leaves_the_write_committed(workspace, monkeypatch):
    """Found by the fresh-brief attack (3 races in 13 tries): a run cancelled after its
    write's intent was stored, while the comment was being written, kept the effect
    'unknown' (the card said the process died in the write) and blocked the record for
    every later run, --allow-repeat included. The write's outcome is a fact only the
    writing process knows; it now lands on the cancelled run. The cancel is made to
    land inside that window here (patching the write is the only way to hit it every
    time): the batch's own thread cancels its run, as 'run cancel' would, then writes."""
    from workerctl.engine import run_records
    from workerctl.engine.batch import BatchRunner
    from workerctl.engine.launcher import Engine, StartOptions
    from workerctl.history.ledger import COMMITTED
    from workerctl.plugins.manager import get_registry
    from workerctl.runs.cancel import cancel_run

    engine = Engine(workspace, get_registry())
    real_write = run_records.apply_write

    def write_after_a_cancel(book, run, effect, source):
        cancel_run(engine.history, run.id, "someone", registry=lambda: engine.registry)
        return real_write(book, run, effect, source)

    monkeypatch.setattr(run_records, "apply_write", write_after_a_cancel)
    result = BatchRunner(engine, jobs=1).run("overdue-task-review", ["T-1042"], StartOptions())
    assert [item.status for item in result.items] == ["cancelled"]
    run = engine.history.get(engine.history.list(None, limit=None)[0]["id"])
    assert run.status == "cancelled"
    assert [e["state"] for e in run.side_effects] == [COMMITTED]
    effects = engine.history.ledger.effects("T-1042")
    assert [e.state for e in effects] == [COMMITTED]
    monkeypatch.undo()
    again = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat",
                          workspace=workspace)  # fmt: skip
    assert again.returncode == 0, again.stderr  # not refused as an unknown to settle


def test_a_failed_run_pruned_before_the_report_does_not_end_the_batch(workspace):
    """A batch's report walks each failed run's troubleshooting to print its fix; a run
    that another process pruned meanwhile (``runs prune --older-than 0s`` in a loop)
    ended the whole batch with exit 3 ("no run with id"), no line printed (fresh-brief
    attack). Now that run's line says so, and the batch reports every record."""
    from workerctl.engine.batch import BatchItem, BatchResult
    from workerctl.plugins.manager import get_registry
    from workerctl.records.book import open_records
    from workerctl.runs.starting import add_fixes

    result = BatchResult("overdue-task-review", [BatchItem("T-1042", "failed", "gone0000", "refused")])
    registry = get_registry()
    add_fixes(result, History(workspace), open_records(workspace, registry), registry, workspace)
    assert "gone0000 was removed meanwhile" in (result.items[0].fix or "")


@pytest.mark.slow
def test_a_batch_beside_a_looping_prune_reports_every_record(workspace, tmp_path):
    restricted = [
        {"id": f"T-{n}", "type": "task", "title": f"Task {n}", "restricted_to": ["someone-else"]}
        for n in range(7000, 7040)
    ]
    (tmp_path / "restricted.json").write_text(json.dumps(restricted))
    imported = run_workerctl("records", "import", str(tmp_path / "restricted.json"), workspace=workspace)
    assert imported.returncode == 0, imported.stderr
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(r["id"] for r in restricted) + "\n")
    argv = [sys.executable, "-m", "workerctl", "-w", str(workspace.root), "run", "start"]
    batch = subprocess.Popen(
        [*argv, "overdue-task-review", "--records-from", str(ids), "--jobs", "4", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    while batch.poll() is None:
        run_workerctl("runs", "prune", "--older-than", "0s", workspace=workspace)
    out, err = batch.communicate()
    assert batch.returncode == 1, err  # every run failed: access denied
    doc = json.loads(out)
    assert len(doc["runs"]) == 40 and {r["status"] for r in doc["runs"]} == {"failed"}
    assert all(r["fix"] for r in doc["runs"])


@pytest.mark.parametrize("shape", ["array", "line"])
def test_records_from_json_nested_past_reading_is_a_usage_error(workspace, tmp_path, shape):
    """An array (or a JSON line) nested 100,000 deep ended in a RecursionError traceback
    (exit 1); it is a usage error naming the file (the fresh-brief round's C20)."""
    nested = "[" * 100_000 + "]" * 100_000
    deep = nested if shape == "array" else '{"id": ' + nested + "}"
    ids = tmp_path / "ids.json"
    ids.write_text(deep)
    result = run_workerctl(
        "run", "start", "overdue-task-review", "--records-from", str(ids), workspace=workspace
    )
    assert result.returncode == 2, result.stderr
    assert (
        f"{ids}" in result.stderr
        and "nested too deeply" in result.stderr
        and "Traceback" not in result.stderr
    )


_NOTED_LATE = """
import sys, time
from workerctl.engine import batch
noted = batch.BatchRunner._note_started
def late(self, run):
    print("stored", run.id, flush=True)  # its thread is held here while the Ctrl-C comes
    time.sleep(1.5)
    return noted(self, run)
batch.BatchRunner._note_started = late
from workerctl.cli import main
sys.argv = ["workerctl", "-w", sys.argv[1], "run", "start", "slow", "--task", "T-1042", "--task", "T-1043"]
main()
"""


@pytest.mark.slow
def test_ctrl_c_between_a_runs_creation_and_its_noting_still_cancels_it(workspace):
    """A Ctrl-C that comes after a run is stored but before the batch has noted it as
    executing (its thread between the two, as a loaded machine can leave it): the batch
    cancelled the runs it had noted, missed this one, and waited out its ten-minute step.
    The run is cancelled as it is noted."""
    ten_minute_worker(workspace)
    proc = subprocess.Popen(
        [sys.executable, "-c", _NOTED_LATE, str(workspace.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("stored "), first + proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    run = History(workspace).get(first.split()[1])
    assert run.status == "cancelled" and "interrupted" in str(run.error), run.error
    assert "1 cancelled" in out and "1 not_started" in out, out
