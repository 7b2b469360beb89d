"""The engine's own overhead per run: echo executor, in-process, history writes included.

    .venv/bin/python benchmarks/engine_overhead.py [--runs 500]

Prints the mean and median milliseconds per run (create the run, context
assembly, one echo step, the task comment, and the final history write, each
file fsynced), one run per task of a 500-task backlog, in wall time and in the
process's CPU time (on a shared machine the wall time moves with other jobs).
Target: at most 5 ms per run on a 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from workerctl.engine.launcher import Engine, StartOptions
from workerctl.plugins.manager import get_registry
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.workspace import init_workspace


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        registry = get_registry()
        workspace = init_workspace(Path(tmp) / "ws", registry)
        # one run per task, as a daily worker over a backlog would do: each task's
        # comment file then holds one worker comment, not hundreds
        tasks = [f"T-{n}" for n in range(10000, 10000 + args.runs + 20)]
        BuiltinRecordStore(workspace).import_records(
            [
                {
                    "id": t,
                    "type": "task",
                    "title": f"Task {t}",
                    "status": "todo",
                    "due": "2026-01-01",
                    "links": {"project": "P-7"},
                    "comments": [{"author": "Ann", "text": "Waiting on the vendor."}],
                }
                for t in tasks
            ],
            "benchmark",
        )
        engine = Engine(workspace, registry)
        for task in tasks[-20:]:  # warm-up: imports, caches, first shard
            engine.start("overdue-task-review", StartOptions(record_id=task))
        times, cpu = [], []
        for i in range(args.runs):
            began, began_cpu = time.perf_counter(), time.process_time()
            run = engine.start("overdue-task-review", StartOptions(record_id=tasks[i]))
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
            assert run.status == "completed", run.error
        print(
            f"engine overhead, echo executor, {args.runs} runs in one process "
            f"(history + task comment writes, fsynced):"
        )
        print(
            f"  median {statistics.median(times):.2f} ms/run, mean {statistics.mean(times):.2f} "
            f"ms/run, p95 {sorted(times)[int(len(times) * 0.95)]:.2f} ms/run"
        )
        # CPU time: what the engine itself costs, less moved by other jobs on a shared machine
        print(f"  CPU median {statistics.median(cpu):.2f} ms/run, mean {statistics.mean(cpu):.2f} ms/run")


if __name__ == "__main__":
    main()
