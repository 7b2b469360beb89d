"""Real processes for the rq tests: a redis-server on 127.0.0.1 on a free port,
``workerctl rq worker`` processes, and the ``workerctl`` commands the tests read runs with."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from workerctl.api import Run
from workerctl.testing import CliRunnerBound, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from redis import Redis

        client = Redis.from_url(self.url)
        wait_for(lambda: _pings(client))
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def restart(self, down: float = 0.0) -> RedisServer:
        """Stopped, ``down`` seconds away, started again on the same port: empty (no
        persistence), as a Redis restarted without its data."""
        import time

        self.stop()
        time.sleep(down)
        return self.start()


def _pings(client) -> bool:
    try:
        return client.ping()
    except Exception:
        return False


class Workers:
    """``workerctl rq worker`` processes, stopped at the end of the test."""

    def __init__(self, workspace, url: str) -> None:
        self.workspace, self.url, self.procs = workspace, url, []

    def start(self, count: int = 1, queue: str = "q") -> list[subprocess.Popen]:
        for _ in range(count):
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "workerctl",
                        "-w",
                        str(self.workspace.root),
                        "rq",
                        "worker",
                        "--queue",
                        queue,
                        "--redis-url",
                        self.url,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            )
        return self.procs[-count:]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def rq_worker(write, name="remote", inner=None, **settings):
    write(
        name,
        context_sources=["tasks", "projects"],
        tool_categories=["productivity"],
        output_mode="task_comment",
        timeout=60,
        executor={"name": "rq", "queue": "q", "inner": inner or {"name": "echo"}, **settings},
    )


def _json(result) -> dict:
    return json.loads(result.stdout)


def start(ws, worker: str, record: str = "T-1042", allow_repeat: bool = True) -> Run:
    """``workerctl run start WORKER --task RECORD`` as a plugin user would run it (a queued
    run prints only its id and status), then the run as stored. The tests start the same
    worker on the same task many times: ``--allow-repeat`` passes the duplicate guard."""
    repeat = ("--allow-repeat",) if allow_repeat else ()
    started = _json(CliRunnerBound(ws)("run", "start", worker, "--task", record, *repeat, "--json"))
    return get(ws, started["id"])


def get(ws, run_id: str) -> Run:
    """The run as ``run inspect`` reads it (reading the history refreshes rq runs)."""
    return Run.from_dict(_json(CliRunnerBound(ws)("run", "inspect", "--id", run_id, "--json")))


def status(ws, run_id: str) -> str:
    return get(ws, run_id).status


def comments(ws, record_id: str) -> list[dict]:
    return _json(CliRunnerBound(ws)("records", "show", record_id, "--json"))["comments"]


def cancel(ws, run_id: str) -> None:
    result = CliRunnerBound(ws)("run", "cancel", "--id", run_id)
    assert result.exit_code == 0, result.output


def horse_pid(ws, run_id: str) -> int:
    """The pid of the work horse executing the run, once the job has reported it."""
    return wait_for(lambda: get(ws, run_id).owner.get("pid"))
