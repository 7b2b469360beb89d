"""The rq executor against a real redis-server on 127.0.0.1 and real worker processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from rq_processes import Workers, _json, cancel, comments, get, horse_pid, rq_worker, start, status

from workerctl.testing import CliRunnerBound, wait_for


@pytest.mark.slow
def test_fifty_runs_through_two_workers_all_complete(ws, workers, workerctl_write_worker):
    rq_worker(workerctl_write_worker)
    runs = [start(ws, "remote") for _ in range(50)]
    assert {r.status for r in runs} == {"queued"}
    workers.start(2)
    wait_for(lambda: all(status(ws, r.id) == "completed" for r in runs), timeout=120, interval=0.5)
    done = get(ws, runs[0].id)
    assert [t["status"] for t in done.transitions] == ["pending", "queued", "running", "completed"]
    assert done.iterations and done.context["records"][0] == {"type": "task", "id": "T-1042"}
    assert done.side_effects[0]["kind"] == "comment"
    by_runs = [c for c in comments(ws, "T-1042") if c["run_id"]]
    assert sorted(c["run_id"] for c in by_runs) == sorted(r.id for r in runs)  # once each
    hosts = {get(ws, r.id).owner.get("pid") for r in runs}
    assert len(hosts) > 1  # the work was spread over work horses


def test_killed_work_horse_gives_crashed(ws, workers, workerctl_write_worker):
    rq_worker(workerctl_write_worker, inner={"name": "echo", "script": [{"sleep": 60, "output": "late"}]})
    workers.start(1)
    run = start(ws, "remote")
    wait_for(lambda: status(ws, run.id) == "running")
    horse = horse_pid(ws, run.id)
    assert horse != os.getpid() and horse not in [p.pid for p in workers.procs]
    os.kill(horse, signal.SIGKILL)
    wait_for(lambda: status(ws, run.id) == "failed")
    final = get(ws, run.id)
    assert final.error.kind == "crashed"
    assert "Work-horse terminated unexpectedly" in final.error.detail


@pytest.mark.slow
def test_whole_worker_killed_is_crashed_by_its_stale_heartbeat(ws, workers, workerctl_write_worker):
    rq_worker(workerctl_write_worker, inner={"name": "echo", "script": [{"sleep": 60, "output": "late"}]})
    (proc,) = workers.start(1)
    run = start(ws, "remote")
    wait_for(lambda: status(ws, run.id) == "running")
    horse = horse_pid(ws, run.id)
    assert horse != proc.pid
    os.killpg(proc.pid, signal.SIGKILL)  # the worker,
    os.killpg(horse, signal.SIGKILL)  # and its work horse (RQ gives it its own group)
    wait_for(lambda: status(ws, run.id) == "failed", timeout=20)
    final = get(ws, run.id)
    assert final.error.kind == "crashed" and "stopped sending heartbeats" in final.error.message


@pytest.mark.slow
def test_a_job_delivered_twice_writes_its_comment_once(ws, workers, workerctl_write_worker):
    rq_worker(
        workerctl_write_worker,
        retries=1,
        inner={
            "name": "echo",
            "script": [
                {"tool": "add_task_comment", "arguments": {"task_id": "T-1043", "text": "Ping"}},
                {"sleep": 3, "output": "done"},
            ],
        },
    )
    workers.start(1)
    run = start(ws, "remote", record="T-1043")  # a run writes only to its linked record
    wait_for(lambda: any(c["run_id"] == run.id for c in comments(ws, "T-1043")))
    wait_for(lambda: status(ws, run.id) == "running")
    os.kill(horse_pid(ws, run.id), signal.SIGKILL)
    wait_for(lambda: status(ws, run.id) == "completed", timeout=60)
    from redis import Redis
    from rq.job import Job

    job = Job.fetch(run.id, connection=Redis.from_url(os.environ["WORKERCTL_REDIS_URL"]))
    assert job.get_meta()["deliveries"] == 2  # RQ delivered it again after the crash
    assert [c["text"] for c in comments(ws, "T-1043") if c["run_id"] == run.id] == ["Ping", "done"]
    assert get(ws, run.id).output == "done"


def test_redis_stopped_is_provider_unavailable(ws, redis_server, workerctl_write_worker, monkeypatch):
    rq_worker(workerctl_write_worker)
    redis_server.stop()
    monkeypatch.setenv("WORKERCTL_REDIS_URL", f"redis://:hunter2@127.0.0.1:{redis_server.port}/0")
    run = start(ws, "remote")
    assert run.status == "failed" and run.error.kind == "provider_unavailable"
    assert f"redis://:***@127.0.0.1:{redis_server.port}/0" in run.error.message
    for path in ws.state_dir.rglob("*"):
        if path.is_file():
            assert "hunter2" not in path.read_text(errors="replace")


def test_cancel_a_queued_and_a_running_run(ws, workers, workerctl_write_worker):
    rq_worker(workerctl_write_worker, inner={"name": "echo", "script": [{"sleep": 60, "output": "late"}]})
    queued = start(ws, "remote")
    cancel(ws, queued.id)
    from redis import Redis
    from rq.job import Job

    connection = Redis.from_url(os.environ["WORKERCTL_REDIS_URL"])
    assert Job.fetch(queued.id, connection=connection).get_status() == "canceled"
    assert status(ws, queued.id) == "cancelled"
    workers.start(1)
    running = start(ws, "remote")
    wait_for(lambda: status(ws, running.id) == "running")
    cancel(ws, running.id)
    wait_for(
        lambda: Job.fetch(running.id, connection=connection).get_status() in ("stopped", "failed"), timeout=20
    )
    final = get(ws, running.id)
    assert final.status == "cancelled" and final.error.message.startswith("cancelled by ")


@pytest.mark.slow
def test_a_job_rq_no_longer_knows(ws, redis_server, workerctl_write_worker):
    """Redis flushed while the run waited in the queue: it is not "failed" at once (a work
    horse that took it would report again within a beat); after ``stale_after`` seconds
    with no report its outcome is unknown, and the write it may have made blocks a
    repeat until a person settles it."""
    rq_worker(workerctl_write_worker)
    run = start(ws, "remote", allow_repeat=False)
    from redis import Redis

    Redis.from_url(redis_server.url).flushall()
    assert status(ws, run.id) == "queued"  # not judged by the broker's memory
    wait_for(lambda: status(ws, run.id) == "failed", timeout=20)
    final = get(ws, run.id)
    assert final.error.kind == "outcome_unknown" and "RQ no longer knows job" in final.error.message
    assert [(e["kind"], e["record_id"]) for e in final.side_effects] == [("write", "T-1042")]
    ledger = _json(CliRunnerBound(ws)("ledger", "list", "--run", run.id, "--json"))
    assert [(e["state"], e["target"]) for e in ledger] == [("unknown", "T-1042")]
    for repeat in ((), ("--allow-repeat",)):
        refused = CliRunnerBound(ws)("run", "start", "remote", "--task", "T-1042", *repeat)
        assert refused.exit_code == 5, refused.output
        assert "ledger settle" in refused.output
    settled = CliRunnerBound(ws)("ledger", "settle", run.id, "--not-written")
    assert settled.exit_code == 0, settled.output
    assert CliRunnerBound(ws)("run", "start", "remote", "--task", "T-1042").exit_code == 0


@pytest.mark.slow
def test_cli_start_wait_and_validation(ws, workers, workerctl_cli, workerctl_write_worker):
    rq_worker(workerctl_write_worker)
    workers.start(1)
    queued = json.loads(workerctl_cli("run", "start", "remote", "--task", "T-1042", "--json").stdout)
    assert queued["status"] == "queued"
    refused = workerctl_cli("run", "start", "remote", "--task", "T-1042", "--detach")
    assert refused.exit_code == 5, refused.output  # the duplicate guard: same task, unchanged
    detached = workerctl_cli("run", "start", "remote", "--task", "T-1042", "--detach", "--allow-repeat")
    assert detached.exit_code == 0, detached.output
    detached_id = detached.stdout.strip()
    try:
        wait_for(lambda: status(ws, detached_id) == "completed")
    except AssertionError:
        raise AssertionError(get(ws, detached_id).to_dict()) from None
    waited = workerctl_cli("run", "start", "remote", "--task", "T-1043", "--wait", "--json")
    assert waited.exit_code == 0 and json.loads(waited.stdout)["status"] == "completed"
    listed = workerctl_cli("runs", "list", "--watch", "0.2", "--exit-status", "--json")
    assert listed.exit_code == 0
    assert {r["status"] for r in json.loads(listed.stdout)} == {"completed"}
    path = ws.workers_dir / "bad-rq.yaml"
    path.write_text(
        "name: bad-rq\nstatus: active\ninstructions: x\noutput_mode: review_note\n"
        "executor:\n  name: rq\n  queue: q\n  redis_url: redis://:pw@h:6379/0\n"
        "  inner: {name: rq}\n"
    )
    out = workerctl_cli("worker", "validate", "bad-rq").output
    assert "executor.redis_url: holds a password" in out
    assert "executor.inner.name: 'rq' cannot do the steps remotely" in out


def test_the_rq_command_is_a_plugin_command(workerctl_cli):
    plugins = {p["name"]: p for p in json.loads(workerctl_cli("plugins", "list", "--json").output)}
    assert plugins["rq"]["commands"] == ["rq"]
    assert "register_commands" in plugins["rq"]["hooks"]
    assert "worker" in workerctl_cli("rq", "--help").output


def test_plain_start_prints_only_the_id_while_queued(ws, workerctl_cli, workerctl_write_worker):
    rq_worker(workerctl_write_worker)  # no rq worker runs: the run stays queued
    result = workerctl_cli("run", "start", "remote", "--task", "T-1042")
    assert result.exit_code == 0, result.output
    run_id = result.stdout.strip()
    assert len(run_id.split()) == 1 and len(run_id) == 8  # $(workerctl run start …) is the id
    assert status(ws, run_id) == "queued"
    assert f"workerctl run watch {run_id}" in result.stderr


def test_watch_follows_a_remote_run_to_its_end(ws, workers, workerctl_cli, workerctl_write_worker):
    rq_worker(
        workerctl_write_worker,
        inner={
            "name": "echo",
            "script": [
                {"sleep": 0.2, "tool": "read_task", "arguments": {"task_id": "T-1042"}},
                {"output": "done remotely"},
            ],
        },
    )
    run_id = workerctl_cli("run", "start", "remote", "--task", "T-1042").stdout.strip()
    workers.start(1)
    watched = workerctl_cli("run", "watch", run_id, "--exit-status")
    assert watched.exit_code == 0, watched.output
    out = watched.stdout
    for step in ("◷ queued", "▶ running", "tool read_task", "✓ completed", "done remotely"):
        assert step in out, (step, out)


def test_effects_made_on_another_machine_reach_the_starting_one_once(
    ws, redis_server, workerctl_write_worker, tmp_path
):
    """The work horse runs in its own copy of the workspace (another machine): the
    comments it writes land in the starting machine's records and ledger, once each."""
    rq_worker(
        workerctl_write_worker,
        inner={
            "name": "echo",
            "script": [
                {"tool": "add_task_comment", "arguments": {"task_id": "T-1042", "text": "Vendor late"}},
                {"output": "Blocked on the vendor"},
            ],
        },
    )
    elsewhere = tmp_path / "other-machine"
    shutil.copytree(ws.root, elsewhere, ignore=shutil.ignore_patterns("history"))
    remote = Workers(type(ws)(root=elsewhere, settings=ws.settings), redis_server.url)
    try:
        remote.start(1)
        run = start(ws, "remote", allow_repeat=False)
        wait_for(lambda: status(ws, run.id) == "completed", timeout=60)
        for _ in range(3):  # every read refreshes: still once each
            mine = [c["text"] for c in comments(ws, "T-1042") if c["run_id"] == run.id]
            assert sorted(mine) == ["Blocked on the vendor", "Vendor late"]
        there = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "workerctl",
                    "-w",
                    str(elsewhere),
                    "records",
                    "show",
                    "T-1042",
                    "--json",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert sorted(c["text"] for c in there["comments"] if c["run_id"] == run.id) == [
            "Blocked on the vendor",
            "Vendor late",
        ]
        ledger = _json(CliRunnerBound(ws)("ledger", "list", "--run", run.id, "--json"))
        assert sorted((e["kind"], e["state"]) for e in ledger) == [("comment", "committed")] * 2
        again = CliRunnerBound(ws)("run", "start", "remote", "--task", "T-1042")
        assert again.exit_code == 5 and f"by run {run.id}" in again.output
    finally:
        remote.stop()


@pytest.mark.slow
def test_a_remote_start_killed_at_any_write_leaves_a_history_that_reads(ws, workerctl_write_worker):
    """A real SIGKILL at each write point of a remote start (no rq worker runs, so the
    run stays queued). A start killed between its marker and its run file used to
    leave a remote marker that no sweep removed (its executor judges a remote run,
    and cannot judge one that does not exist): every later command then exited 3,
    'no run with id'."""
    rq_worker(workerctl_write_worker)
    argv = [
        sys.executable,
        "-m",
        "workerctl",
        "-w",
        str(ws.root),
        "run",
        "start",
        "remote",
        "--task",
        "T-1042",
        "--allow-repeat",
    ]
    # one start first, so that the worker's version is stored and every later start
    # writes the same points (marker, run file, index, ...) in the same order
    subprocess.run(argv, capture_output=True, check=True, timeout=60)
    active = ws.root / ".workerctl" / "history" / "active"
    point = 0
    while True:  # every write point of the start, until one runs to its end unkilled
        point += 1
        killed = subprocess.run(
            argv, env={**os.environ, "WORKERCTL_TEST_FAULT": f"kill:{point}"}, capture_output=True, timeout=60
        )
        listed = CliRunnerBound(ws)("runs", "list", "--limit", "0", "--json")
        assert listed.exit_code == 0, (point, listed.output)
        ids = {run["id"] for run in json.loads(listed.stdout)}
        assert {marker.stem for marker in active.glob("*.json")} <= ids, point
        for run_id in ids:
            assert CliRunnerBound(ws)("run", "inspect", run_id, "--json").exit_code == 0
        if killed.returncode != -signal.SIGKILL:
            assert killed.returncode == 0, killed.stderr
            break
    assert point > 3  # the start has several write points, and each was reached
