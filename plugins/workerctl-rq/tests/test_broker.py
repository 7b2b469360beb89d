"""Remote runs when the broker forgets, and a remote clock that is off (issue #22,
"Machines"): a real redis-server on 127.0.0.1 restarted and flushed, real
``workerctl rq worker`` processes, the run judged by real ``workerctl`` commands."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from rq_processes import Workers, comments, get, rq_worker, start, status

from workerctl.testing import CliRunnerBound, wait_for

# every test here restarts, flushes or loses a real Redis and waits on heartbeats
pytestmark = pytest.mark.slow


def _remote_comments(folder, record_id: str) -> list[dict]:
    """The comments on a record in another machine's copy of the workspace."""
    out = subprocess.run(
        [sys.executable, "-m", "workerctl", "-w", str(folder), "records", "show", record_id, "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)["comments"]


def _job_status(url: str, run_id: str) -> str | None:
    from redis import Redis
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        found = Job.fetch(run_id, connection=Redis.from_url(url)).get_status()
        return str(getattr(found, "value", found))
    except NoSuchJobError:
        return None


def _statuses_until_finished(ws, run_id: str, timeout: float = 60) -> list[str]:
    """Every status ``run inspect`` shows until the run finishes (each read refreshes it)."""
    seen: list[str] = []

    def finished() -> bool:
        seen.append(status(ws, run_id))
        return seen[-1] in ("completed", "failed", "cancelled")

    wait_for(finished, timeout=timeout, interval=0.3)
    return seen


SLOW = {"name": "echo", "script": [{"sleep": 4, "output": "done remotely"}]}


def test_redis_restarted_empty_after_the_run_finished_leaves_it_unknown(
    ws, redis_server, workerctl_write_worker, tmp_path
):
    """The regression from the issue: the remote (another machine's copy of the
    workspace) wrote its comment and finished, then Redis restarted empty before this
    machine looked. It said "failed, no side effects", a repeat start was allowed and
    the comment was written twice."""
    rq_worker(
        workerctl_write_worker,
        inner={"name": "echo", "script": [{"output": "Blocked on the vendor"}]},
    )
    elsewhere = tmp_path / "other-machine"
    shutil.copytree(ws.root, elsewhere, ignore=shutil.ignore_patterns("history"))
    remote = Workers(type(ws)(root=elsewhere, settings=ws.settings), redis_server.url)
    try:
        remote.start(1)
        run = start(ws, "remote", allow_repeat=False)
        wait_for(lambda: _job_status(redis_server.url, run.id) == "finished", timeout=60)
        redis_server.restart()  # empty: no persistence
        assert status(ws, run.id) != "failed"  # not judged by what the broker forgot
        wait_for(lambda: status(ws, run.id) == "failed", timeout=20)
        final = get(ws, run.id)
        assert final.error.kind == "outcome_unknown", final.error
        assert [e["state"] for e in final.side_effects] == ["unknown"]  # intended, never confirmed
        unknown = CliRunnerBound(ws)("ledger", "list", "--state", "unknown", "--json").json
        assert [(e["run_id"], e["target"]) for e in unknown] == [(run.id, "T-1042")]
        for repeat in ((), ("--allow-repeat",)):
            again = CliRunnerBound(ws)("run", "start", "remote", "--task", "T-1042", *repeat)
            assert again.exit_code == 5, again.output
        time.sleep(1)
        written = [c for c in _remote_comments(elsewhere, "T-1042") if c["run_id"]]
        assert [c["text"] for c in written] == ["Blocked on the vendor"]  # once
        # a person who checked the record says it was written: then it is a write
        assert CliRunnerBound(ws)("ledger", "settle", run.id, "--written").exit_code == 0
        refused = CliRunnerBound(ws)("run", "start", "remote", "--task", "T-1042")
        assert refused.exit_code == 5 and "already wrote to T-1042" in refused.output
    finally:
        remote.stop()


def test_flushed_mid_run_the_run_completes_from_the_remotes_own_report(
    ws, workers, redis_server, workerctl_write_worker
):
    rq_worker(workerctl_write_worker, inner=SLOW)
    workers.start(1)
    run = start(ws, "remote")
    wait_for(lambda: status(ws, run.id) == "running")
    from redis import Redis

    Redis.from_url(redis_server.url).flushall()
    seen = _statuses_until_finished(ws, run.id)
    assert set(seen) <= {"running", "completed"}, seen
    final = get(ws, run.id)
    assert final.status == "completed" and final.output == "done remotely"
    assert [c["text"] for c in comments(ws, "T-1042") if c["run_id"] == run.id] == ["done remotely"]
    ledger = CliRunnerBound(ws)("ledger", "list", "--run", run.id, "--json").json
    assert [e["state"] for e in ledger] == ["committed"]


def test_redis_restarted_mid_run_the_worker_goes_on(ws, workers, redis_server, workerctl_write_worker):
    """Redis down for 3 s and back empty while a job runs: the run completes, the rq
    worker says so in one line (it ended in about a hundred lines of traceback) and
    takes the next job."""
    rq_worker(workerctl_write_worker, inner=SLOW)
    (proc,) = workers.start(1)
    run = start(ws, "remote")
    wait_for(lambda: status(ws, run.id) == "running")
    redis_server.restart(down=3)
    seen = _statuses_until_finished(ws, run.id)
    assert set(seen) <= {"running", "completed"}, seen
    assert get(ws, run.id).output == "done remotely"
    assert proc.poll() is None  # still serving
    following = start(ws, "remote", record="T-1043")
    wait_for(lambda: status(ws, following.id) == "completed", timeout=60)
    assert proc.poll() is None
    os.killpg(proc.pid, 9)
    err = proc.stderr.read().decode()
    assert "Traceback" not in err, err
    assert err.count("lost Redis at") == 1, err
    assert len(err.strip().splitlines()) <= 3, err  # the start, lost, reconnected


@pytest.mark.parametrize("offset", [-200, 200])
def test_a_remote_clock_that_is_off_does_not_crash_a_live_run(
    ws, redis_server, workerctl_write_worker, offset
):
    """An rq worker whose clock runs 200 s behind had its live run marked crashed (its
    heartbeat's timestamp was compared with this machine's clock). The worker's clock is
    shifted by the test seam ``WORKERCTL_TEST_CLOCK_OFFSET``; its run beats for longer
    than twice ``stale_after`` (3 s) and must be seen alive all along."""
    rq_worker(
        workerctl_write_worker,
        inner={"name": "echo", "script": [{"sleep": 7, "output": "done remotely"}]},
    )
    skewed = Workers(ws, redis_server.url)
    os.environ["WORKERCTL_TEST_CLOCK_OFFSET"] = str(offset)
    try:
        skewed.start(1)
    finally:
        del os.environ["WORKERCTL_TEST_CLOCK_OFFSET"]
    try:
        run = start(ws, "remote")
        seen = _statuses_until_finished(ws, run.id)
        assert "running" in seen and set(seen) <= {"queued", "running", "completed"}, seen
        assert [c["text"] for c in comments(ws, "T-1042") if c["run_id"] == run.id] == ["done remotely"]
    finally:
        skewed.stop()


def test_a_remote_that_stops_beating_is_still_found_crashed(ws, redis_server, workerctl_write_worker):
    """The other side of the rule: judged on this machine's clock, a worker (clock
    200 s behind) killed mid-run is marked crashed within twice ``stale_after``."""
    rq_worker(workerctl_write_worker, inner={"name": "echo", "script": [{"sleep": 60, "output": "late"}]})
    skewed = Workers(ws, redis_server.url)
    os.environ["WORKERCTL_TEST_CLOCK_OFFSET"] = "-200"
    try:
        (proc,) = skewed.start(1)
    finally:
        del os.environ["WORKERCTL_TEST_CLOCK_OFFSET"]
    try:
        run = start(ws, "remote")
        wait_for(lambda: status(ws, run.id) == "running")
        horse = wait_for(lambda: get(ws, run.id).owner.get("pid"))
        os.killpg(proc.pid, 9)
        os.killpg(horse, 9)
        wait_for(lambda: status(ws, run.id) == "failed", timeout=20)
        final = get(ws, run.id)
        assert final.error.kind == "crashed" and "stopped sending heartbeats" in final.error.message
    finally:
        skewed.stop()


def test_cancel_after_redis_lost_the_job_stops_the_horse(ws, workers, redis_server, workerctl_write_worker):
    """RQ's stop command reaches a horse only through a job RQ knows: after a flush the
    cancelled run's horse went on and wrote its comment. The cancel goes through the
    run's report too, which the horse reads at each save."""
    rq_worker(workerctl_write_worker, inner=SLOW)
    workers.start(1)
    run = start(ws, "remote")
    wait_for(lambda: status(ws, run.id) == "running")
    from redis import Redis

    Redis.from_url(redis_server.url).flushall()
    assert CliRunnerBound(ws)("run", "cancel", "--id", run.id).exit_code == 0
    time.sleep(6)  # past the end of the step, when the comment would be written
    assert status(ws, run.id) == "cancelled"
    assert [c for c in comments(ws, "T-1042") if c["run_id"] == run.id] == []


def test_one_sigint_stops_an_rq_worker_while_redis_is_away(ws, redis_server):
    """It needed two: the first ended RQ's loop, whose teardown could not reach Redis,
    and that looked like a lost connection to reconnect to."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "workerctl", "-w", str(ws.root), "rq", "worker", "--queue", "q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _job_status(redis_server.url, "-") is None and _workers_known(redis_server.url))
        redis_server.stop()
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        err = proc.stderr.read().decode()
        assert "Traceback" not in err, err
        assert err.count("lost Redis at") == 1, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _workers_known(url: str) -> bool:
    from redis import Redis
    from rq import Worker

    return bool(Worker.all(connection=Redis.from_url(url)))


def test_the_clock_seam_refuses_what_is_not_a_number(ws):
    """A garbled test seam is a one-line usage error (exit 2), not a traceback."""
    env = {**os.environ, "WORKERCTL_TEST_CLOCK_OFFSET": "abc"}
    argv = [sys.executable, "-m", "workerctl", "-w", str(ws.root), "rq", "worker", "--queue", "q"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "WORKERCTL_TEST_CLOCK_OFFSET='abc' is not a number of seconds" in done.stderr
