"""A batch in one process against one process per run, and how soon ``run watch``
shows a step.

    .venv/bin/python benchmarks/batch_bench.py [--runs 200] [--jobs 4] [--steps 20] [--dir DIR]
        [--no-bytecode]

1. ``--runs`` tasks, an echo worker (``overdue-task-review``: context, one step, a
   task comment): ``workerctl run start W --records-from FILE --jobs N`` three times,
   each on a fresh copy of the workspace, and between them the same number of runs as
   ``workerctl run start W --task T`` one process each (as the old cron script did),
   a third at a time, on another copy. The batch's median against the processes'
   total. Target: the batch at least 25x faster (issue 21; it was 20x before).
   Beside it, the share of each batch's time the history lock was held (the holds
   ``WORKERCTL_BENCH_LOCK_LOG`` logs): near 100 %, the batch waits on its commits, one
   at a time, and more threads would not make it faster. And its CPU, the review
   helper's included, divided by the machine's cores: the least time that work could
   take with every core busy throughout.
2. A detached run whose echo script makes ``--steps`` tool calls 0.2 s apart, followed
   by ``workerctl run watch``: for each iteration, the time from its being recorded
   (its ``finished`` time, written just before the run file) to the watch printing
   it. Target: under 100 ms.

Both sides write the same files with the same fsyncs, so a slow or contended disk
narrows the gap (each run's commits cost the same in both); ``--dir /dev/shm``
measures what the processes themselves cost. workerctl's bytecode is compiled first,
as an installed package has it: without it (``PYTHONDONTWRITEBYTECODE`` set, as on
this project's CI machine, ``--no-bytecode``) every process compiles workerctl again,
which widens the gap.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from history_bench import compile_bytecode

from workerctl.plugins.manager import get_registry
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.storage.lock import HOLD_LOG_ENV, holds_in
from workerctl.workspace import init_workspace, load_workspace

WORKERCTL = [sys.executable, "-m", "workerctl"]


def workspace_with_tasks(root: Path, count: int, comments: list[dict] | None = None):
    """A sample workspace and ``count`` tasks of its own (each with ``comments``)."""
    workspace = init_workspace(root, get_registry())
    tasks = [f"T-{n}" for n in range(10000, 10000 + count)]
    BuiltinRecordStore(workspace).import_records(
        [
            {
                "id": t,
                "type": "task",
                "title": f"Task {t}",
                "status": "todo",
                "due": "2026-01-01",
                "links": {"project": "P-7"},
                **({"comments": comments} if comments else {}),
            }
            for t in tasks
        ],
        "benchmark",
    )
    return workspace, tasks


def cli(workspace, *args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [*WORKERCTL, "-w", str(workspace.root), *args], capture_output=True, text=True, env=env, **kw
    )


def batch_against_processes(tmp: Path, runs: int, jobs: int, rounds: int = 3) -> dict:
    """The batch ``rounds`` times, each on a fresh copy of the workspace, between which
    the processes run in equal parts: a batch takes seconds and the processes a
    minute, and on a shared machine one slow stretch decided the speed-up when the
    batch ran once (17x and 22x four minutes apart). The batch's median is compared
    with the processes' total."""
    import shutil

    template, tasks = workspace_with_tasks(tmp / "template", runs)
    many, _ = workspace_with_tasks(tmp / "each", runs)
    ids = tmp / "ids.txt"
    ids.write_text("\n".join(tasks) + "\n")
    batches: list[float] = []
    held: list[float] = []  # the share of each batch's time the history lock was held
    cpu: list[float] = []  # each batch's CPU, its review helper's included (it waits for it)
    each_seconds = 0.0
    parts = [tasks[i::rounds] for i in range(rounds)]
    for number, part in enumerate(parts):
        one = tmp / f"batch-{number}"
        shutil.copytree(template.root, one, symlinks=True)
        holds = tmp / f"holds-{number}.log"
        children = _children_cpu()
        began = time.perf_counter()
        done = cli(
            load_workspace(one),
            "run",
            "start",
            "overdue-task-review",
            "--records-from",
            str(ids),
            "--jobs",
            str(jobs),
            "--json=counts",
            env={HOLD_LOG_ENV: str(holds)},
        )
        batches.append(time.perf_counter() - began)
        cpu.append(_children_cpu() - children)
        # the history lock's alone (a record's write takes the workspace's lock too)
        held.append(sum(holds_in(holds.read_text())) / batches[-1])
        assert json.loads(done.stdout)["counts"] == {"completed": runs}, done.stdout + done.stderr
        began = time.perf_counter()
        for task in part:
            result = cli(many, "run", "start", "overdue-task-review", "--task", task)
            assert result.returncode == 0, result.stderr
        each_seconds += time.perf_counter() - began
    batch_seconds = statistics.median(batches)
    return {
        "runs": runs,
        "jobs": jobs,
        "batches_s": batches,
        "batch_s": batch_seconds,
        "lock_held": statistics.median(held),
        "cpu_s": statistics.median(cpu),
        "each_s": each_seconds,
        "batch_runs_per_s": runs / batch_seconds,
        "each_runs_per_s": runs / each_seconds,
        "speedup": each_seconds / batch_seconds,
    }


def _children_cpu() -> float:
    """User and system time of the finished child processes, and of theirs they waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def watch_latency(tmp: Path, steps: int) -> dict:
    workspace, _ = workspace_with_tasks(tmp / "watch", 1)
    script = [{"sleep": 0.2, "tool": "read_task", "arguments": {"task_id": "T-1042"}}] * steps
    (workspace.workers_dir / "stepper.yaml").write_text(
        "name: stepper\nstatus: active\ninstructions: Read the task.\n"
        "context_sources: [tasks]\ntool_categories: [productivity]\n"
        f"output_mode: review_note\nmax_iterations: {steps + 1}\ntimeout: 120\n"
        "executor: " + json.dumps({"name": "echo", "script": [*script, {"output": "done"}]}) + "\n"
    )
    run_id = cli(workspace, "run", "start", "stepper", "--task", "T-1042", "--detach").stdout.strip()
    proc = subprocess.Popen(
        [*WORKERCTL, "-w", str(workspace.root), "run", "watch", run_id, "--format", "ndjson"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    shown: dict[int, float] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "iteration":
            shown[event["number"]] = time.time()
    proc.wait(60)
    run = json.loads(cli(workspace, "run", "inspect", run_id, "--json").stdout)
    delays = []
    for it in run["iterations"]:
        if it["number"] in shown and it["tool_calls"]:
            recorded = dt.datetime.fromisoformat(it["finished"].replace("Z", "+00:00"))
            delays.append((shown[it["number"]] - recorded.timestamp()) * 1000)
    return {
        "steps": len(delays),
        "median_ms": statistics.median(delays),
        "p95_ms": sorted(delays)[max(0, round(0.95 * len(delays)) - 1)],
        "max_ms": max(delays),
    }


def fsync_ms(folder: Path, count: int = 50) -> float:
    """What one small write and fsync costs there now (the disk's share of a run)."""
    path = folder / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        began = time.perf_counter()
        for _ in range(count):
            os.write(fd, b"x" * 100)
            os.fsync(fd)
        return (time.perf_counter() - began) / count * 1000
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dir", default=None, help="where the workspaces go (default: /tmp)")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="leave PYTHONDONTWRITEBYTECODE as it is (where it is set, every "
        "process then compiles workerctl again: about 75 ms a process)",
    )
    args = parser.parse_args()
    if not args.no_bytecode:
        compile_bytecode()  # the figures an installed package gives (history_bench says why)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        tmp = Path(folder)
        figures = batch_against_processes(tmp, args.runs, args.jobs)
        print(
            f"{figures['runs']} runs, one process with --jobs {figures['jobs']}: "
            f"{figures['batch_s']:.2f} s, the median of "
            + ", ".join(f"{b:.2f}" for b in figures["batches_s"])
            + f" ({figures['batch_runs_per_s']:.1f} runs/s); the history lock held "
            f"{100 * figures['lock_held']:.0f} % of the time (median)"
        )
        cores = len(os.sched_getaffinity(0))
        print(
            f"  its CPU, the review helper's included: {figures['cpu_s']:.2f} s (median); on {cores} "
            f"cores no batch of this work takes less than {figures['cpu_s'] / cores:.2f} s"
        )
        print(
            f"{figures['runs']} runs, one process each:      {figures['each_s']:.2f} s "
            f"({figures['each_runs_per_s']:.1f} runs/s)"
        )
        print(
            f"speed-up: {figures['speedup']:.1f}x (target: at least 25x); "
            f"{fsync_ms(tmp):.1f} ms per fsync in {tmp.parent}"
        )
        latency = watch_latency(tmp, args.steps)
        print(
            f"run watch: {latency['steps']} steps shown {latency['median_ms']:.0f} ms "
            f"(median), {latency['p95_ms']:.0f} ms (p95), {latency['max_ms']:.0f} ms (max) "
            "after being recorded (target: under 100 ms)"
        )


if __name__ == "__main__":
    main()
