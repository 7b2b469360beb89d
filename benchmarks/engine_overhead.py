"""The engine's own overhead per run: echo executor, in-process, history writes included.

    .venv/bin/python benchmarks/engine_overhead.py [--runs 500] [--jobs 4] [--dir DIR]

1. One run at a time: the mean and median milliseconds per run (create the run,
   context assembly, one echo step, the task comment, and the final history write,
   each file fsynced), one run per task of a 500-task backlog, in wall time and in
   the process's CPU time (on a shared machine the wall time moves with other jobs).
2. The same number of runs as one ``--jobs`` batch (``BatchRunner``, as ``run start
   --records-from`` makes it, review helper included), and what the history engine
   costs in it per run (issue 21's target: at most 5 ms in a ``--jobs 4`` batch on
   disk): the thread CPU time (user and system) spent inside ``History.create`` and
   ``History.save`` (the writes ahead, the lock's holds, the commits and the flushes
   of staged files), their wall time, and the history lock's holds. Beside it, the
   CPU of the whole batch and of its review helper, and the floor those set on this
   machine's cores: with every core busy all the time, a batch cannot take less than
   its CPU divided by the cores.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batch_bench import workspace_with_tasks as with_tasks

from workerctl.engine.batch import BatchRunner
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.history.store import History
from workerctl.plugins.manager import get_registry
from workerctl.storage.lock import HOLD_LOG_ENV, holds_in
from workerctl.workspace import Workspace


def workspace_with_tasks(root: Path, count: int) -> tuple[Workspace, list[str]]:
    # one run per task, as a daily worker over a backlog would do: each task's
    # comment file then holds one worker comment, not hundreds
    return with_tasks(root, count, comments=[{"author": "Ann", "text": "Waiting on the vendor."}])


def one_at_a_time(folder: Path, runs: int) -> None:
    workspace, tasks = workspace_with_tasks(folder / "single", runs + 20)
    engine = Engine(workspace, get_registry())
    for task in tasks[-20:]:  # warm-up: imports, caches, first shard
        engine.start("overdue-task-review", StartOptions(record_id=task))
    times, cpu = [], []
    for i in range(runs):
        began, began_cpu = time.perf_counter(), time.process_time()
        run = engine.start("overdue-task-review", StartOptions(record_id=tasks[i]))
        times.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
        assert run.status == "completed", run.error
    print(
        f"engine overhead, echo executor, {runs} runs in one process "
        "(history + task comment writes, fsynced):"
    )
    print(
        f"  median {statistics.median(times):.2f} ms/run, mean {statistics.mean(times):.2f} "
        f"ms/run, p95 {sorted(times)[int(len(times) * 0.95)]:.2f} ms/run"
    )
    # CPU time: what the engine itself costs, less moved by other jobs on a shared machine
    print(f"  CPU median {statistics.median(cpu):.2f} ms/run, mean {statistics.mean(cpu):.2f} ms/run")


class _Spent:
    """Thread CPU and wall time inside the wrapped methods, summed over every thread
    (a method called inside another wrapped one is counted once, in the outer)."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0
        self._guard = threading.Lock()
        self._inside = threading.local()

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if getattr(self._inside, "depth", 0):
                return method(*args, **kwargs)
            self._inside.depth = 1
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
                self._inside.depth = 0
                with self._guard:
                    self.cpu += cpu
                    self.wall += wall

        return timed


def in_a_batch(folder: Path, runs: int, jobs: int) -> None:
    workspace, tasks = workspace_with_tasks(folder / "batch", runs)
    engine = Engine(workspace, get_registry())
    spent = _Spent()
    originals = {name: getattr(History, name) for name in ("create", "save")}
    holds = folder / "holds.log"
    os.environ[HOLD_LOG_ENV] = str(holds)
    for name, method in originals.items():
        setattr(History, name, spent.wrap(method))
    mine, helper = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    try:
        result = BatchRunner(engine, jobs).run("overdue-task-review", tasks, StartOptions())
    finally:
        for name, method in originals.items():
            setattr(History, name, method)
        del os.environ[HOLD_LOG_ENV]
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    helper_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert all(item.status == "completed" for item in result.items), result.items[:3]
    batch_cpu = after.ru_utime + after.ru_stime - mine.ru_utime - mine.ru_stime
    helper_cpu = helper_after.ru_utime + helper_after.ru_stime - helper.ru_utime - helper.ru_stime
    held = sum(holds_in(holds.read_text())) if holds.exists() else 0.0
    cores = len(os.sched_getaffinity(0))
    per = 1000 / runs
    print(f"a batch of {runs} runs, --jobs {jobs}, in this process: {wall:.2f} s ({wall * per:.2f} ms a run)")
    print(
        f"  the history engine (History.create and .save, every thread): CPU {spent.cpu * per:.2f} ms a run "
        f"(target: at most 5), wall {spent.wall * per:.2f} ms a run summed over threads; "
        f"the history lock held {held * per:.2f} ms a run ({100 * held / wall:.0f} % of the batch)"
    )
    print(
        f"  CPU: the batch process {batch_cpu:.2f} s, its review helper {helper_cpu:.2f} s; "
        f"on {cores} cores no batch of this work takes less than {(batch_cpu + helper_cpu) / cores:.2f} s "
        f"({(batch_cpu + helper_cpu) / cores * per:.2f} ms a run)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=4, help="the batch's threads (0: no batch)")
    parser.add_argument("--dir", default=None, help="where the workspaces go (default: /tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        one_at_a_time(Path(tmp), args.runs)
        if args.jobs:
            in_a_batch(Path(tmp), args.runs, args.jobs)


if __name__ == "__main__":
    main()
