"""Enqueue-to-completed latency and throughput through RQ with 2 workers (echo inner).

    .venv/bin/python benchmarks/rq_bench.py [--runs 200] [--workers 2]

Needs redis-server and the workerctl-rq plugin. Starts redis-server on a free port
on 127.0.0.1 and `workerctl rq worker` processes, enqueues the runs with `run
start` semantics (the engine's submit), and reads each job's enqueued and ended
times from RQ. Prints the median and p95 latency of a burst, the throughput, and
the latency of one run at a time on idle workers.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from redis import Redis
    from rq.job import Job

    from workerctl.app import App
    from workerctl.engine.launcher import StartOptions
    from workerctl.plugins.manager import get_registry
    from workerctl.workspace import init_workspace

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with tempfile.TemporaryDirectory() as tmp:
        redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
        )
        procs = []
        try:
            connection = Redis.from_url(url)
            for _ in range(100):
                try:
                    connection.ping()
                    break
                except Exception:
                    time.sleep(0.05)
            os.environ["WORKERCTL_REDIS_URL"] = url
            workspace = init_workspace(Path(tmp) / "ws", get_registry())
            (workspace.workers_dir / "remote.yaml").write_text(
                "name: remote\nstatus: active\ninstructions: Summarise the task.\n"
                "context_sources: [tasks, projects]\ntool_categories: [productivity]\n"
                "output_mode: review_note\nexecutor: {name: rq, queue: bench, "
                "inner: {name: echo}}\n"
            )
            for _ in range(args.workers):
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "workerctl",
                            "-w",
                            str(workspace.root),
                            "rq",
                            "worker",
                            "--queue",
                            "bench",
                            "--redis-url",
                            url,
                        ],
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
            time.sleep(1.0)  # let the workers register before the clock starts
            app = App(str(workspace.root))
            began = time.perf_counter()
            ids = [
                app.engine.start("remote", StartOptions(record_id="T-1042", allow_repeat=True)).id
                for _ in range(args.runs)
            ]
            enqueue_s = time.perf_counter() - began
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                jobs = Job.fetch_many(ids, connection=connection)
                if all(j is not None and j.get_status() == "finished" for j in jobs):
                    break
                time.sleep(0.2)
            latencies = [(j.ended_at - j.enqueued_at).total_seconds() * 1000 for j in jobs]
            span = max(j.ended_at for j in jobs) - min(j.enqueued_at for j in jobs)
            seconds = span.total_seconds()
            local = App(str(workspace.root)).history
            done = sum(local.get(i).status == "completed" for i in ids)
            idle = []
            for _ in range(20):  # one run at a time on idle workers
                one = app.engine.start("remote", StartOptions(record_id="T-1042", allow_repeat=True)).id
                while True:
                    job = Job.fetch(one, connection=connection)
                    if job.get_status() == "finished" and job.ended_at is not None:
                        break  # RQ may say finished a moment before it stores ended_at
                    time.sleep(0.005)
                idle.append((job.ended_at - job.enqueued_at).total_seconds() * 1000)
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGKILL)
            redis.terminate()
            redis.wait(10)
    latencies.sort()
    print(f"rq: {args.runs} runs, {args.workers} workers, echo inner executor")
    print(
        f"  enqueue: {enqueue_s / args.runs * 1000:.1f} ms per run (run start, history write and RQ enqueue)"
    )
    print(
        f"  enqueue to completed: median {statistics.median(latencies):.0f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95)]:.0f} ms"
    )
    print(
        f"  throughput: {args.runs / seconds:.1f} runs/s; {done}/{args.runs} completed in the local history"
    )
    print(f"  one run on idle workers, enqueue to completed: median {statistics.median(idle):.0f} ms")


if __name__ == "__main__":
    main()
