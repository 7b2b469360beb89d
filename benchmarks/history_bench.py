"""Run history at 1,000 / 10,000 / 100,000 runs, measured in cold processes.

    .venv/bin/python benchmarks/history_bench.py [--sizes 1000,10000,100000] [--repeat 7]

Builds a history of realistic runs (about 1.5 KB of output, three iterations
with tool calls, four context records) spread over 90 days, then times fresh
``workerctl`` processes: ``runs list --limit 20``, ``run inspect``, one status
transition (``run cancel`` of a pending run), ``--help``, and ``python -c pass``
for the interpreter alone. Prints medians (ms), peak memory (MB, the child's
max RSS) and the bytes on disk per run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workerctl.history.store import History
from workerctl.history.sweep import current_owner
from workerctl.plugins.manager import get_registry
from workerctl.runs.model import Iteration, Run, RunError, ToolCallRecord, new_run_id
from workerctl.storage.atomic import write_json
from workerctl.workspace import init_workspace

WORDS = [
    "blocker",
    "vendor",
    "glossary",
    "legal",
    "review",
    "launch",
    "catalogue",
    "translation",
    "invoice",
    "customer",
    "owner",
    "deadline",
    "agency",
    "marketing",
    "budget",
    "risk",
    "follow-up",
]


TRANSITION = """
import sys, time
from pathlib import Path
from workerctl.runs.cancel import cancel_run
from workerctl.history.store import History
from workerctl.workspace import load_workspace
began = time.perf_counter()
history = History(load_workspace(Path(sys.argv[1])))
history.sweep()
def registry():  # asked for only by a remote executor's run: never here
    from workerctl.plugins.manager import get_registry
    return get_registry()
cancel_run(history, sys.argv[2], by="benchmark", registry=registry)
print((time.perf_counter() - began) * 1000)
"""


def transition(workspace, run_id: str) -> tuple[float, float]:
    """(whole cold process ms, the transition's own ms inside it)."""
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", TRANSITION, str(workspace.root), run_id],
        capture_output=True,
        text=True,
        check=True,
    )
    return (time.perf_counter() - began) * 1000, float(out.stdout)


def iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fake_run(rng: random.Random, created: dt.datetime) -> Run:
    failed = rng.random() < 0.15
    stamps = [created + dt.timedelta(milliseconds=n * 40) for n in range(4)]
    final = "failed" if failed else "completed"
    output = None if failed else " ".join(rng.choice(WORDS) for _ in range(220))
    iterations = []
    for n in range(1, 4):
        calls = (
            []
            if n == 3
            else [
                ToolCallRecord(
                    name="read_task",
                    arguments={"task_id": f"T-{rng.randint(1000, 9999)}"},
                    category="productivity",
                    allowed=True,
                    ok=True,
                    result_summary=" ".join(rng.choice(WORDS) for _ in range(20)),
                )
            ]
        )
        iterations.append(
            Iteration(
                number=n,
                started=iso(stamps[1]),
                finished=iso(stamps[2]),
                text=output if n == 3 else None,
                tool_calls=calls,
                usage={"model": "echo", "latency_ms": 12.5},
            )
        )
    task = f"T-{rng.randint(1000, 9999)}"
    return Run(
        id=new_run_id(),
        worker=rng.choice(["overdue-task-review", "crm-activity-summary", "handoff-preparation"]),
        config_hash="471aa72220dd",
        config={"name": "overdue-task-review", "status": "active"},
        executor="echo",
        created=iso(created),
        status=final,
        transitions=[
            {"status": s, "at": iso(t)}
            for s, t in zip(["pending", "queued", "running", final], stamps, strict=True)
        ],
        record_id=task,
        record_type="task",
        record_title="A task title",
        iterations=iterations,
        context={
            "sources": ["tasks", "projects"],
            "records": [
                {"type": "task", "id": task},
                {"type": "project", "id": "P-7"},
                {"type": "doc", "id": "D-2"},
                {"type": "company", "id": "CO-3"},
            ],
        },
        side_effects=[]
        if failed
        else [
            {"kind": "comment", "record_id": task, "comment_id": "c-3", "key": "x:output", "created": True}
        ],
        output=output,
        error=RunError("tool_not_allowed", "tool 'read_invoice' is in category 'finance'")
        if failed
        else None,
    )


def build(workspace, count: int) -> History:
    history = History(workspace)
    rng = random.Random(count)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=90)
    step = dt.timedelta(days=90) / count
    for n in range(count):
        run = fake_run(rng, start + step * n)
        # no slot yet: reindex gives each run its own (a run file names its slot)
        write_json(history.body_path(run.id), {**run.to_dict(), "_shard": 0, "_doc": 0}, sync_data=False)
    history.reindex()  # builds the shards from the run files, as the real store would
    return history


GNU_TIME = "/usr/bin/time"


def cold(argv: list[str], repeat: int) -> tuple[float, float]:
    """Median wall time (ms) of fresh processes, and their peak RSS (MB).

    The peak comes from GNU time in a separate run: the kernel's max-RSS of a
    child forked straight from this (large) process would count this process's
    pages too.
    """
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append((time.perf_counter() - began) * 1000)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{argv} failed: {proc.stderr.decode()}")
    peak = float("nan")
    if os.path.exists(GNU_TIME):
        out = subprocess.run(
            [GNU_TIME, "-f", "%M", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        peak = int(out.stderr.strip().splitlines()[-1]) / 1024
    return statistics.median(times), peak


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def compile_bytecode() -> None:
    """Measure what an installed user gets: bytecode compiled once, not per start
    (PYTHONDONTWRITEBYTECODE, set on some machines, would make every cold start
    compile workerctl from source)."""
    import compileall

    import workerctl

    compileall.compile_dir(Path(workerctl.__file__).parent, quiet=1)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def main() -> None:
    compile_bytecode()
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    script = Path(sys.executable).parent / "workerctl"  # what a user runs
    exe = [str(script)] if script.exists() else [sys.executable, "-m", "workerctl"]
    base, _ = cold([sys.executable, "-c", "pass"], args.repeat)
    helptime, _ = cold([*exe, "--help"], args.repeat)
    print(f"python -c pass: {base:.1f} ms   workerctl --help: {helptime:.1f} ms")
    click_ms, _ = cold([sys.executable, "-c", "import click"], args.repeat)
    print(f"python -c 'import click': {click_ms:.1f} ms (the floor of any click command)")
    print(
        "transition: a cold process moves one pending run to cancelled through the store "
        "(whole process / the transition's own time in it); cancel cmd: the same through "
        "'workerctl run cancel'"
    )
    print(
        f"{'runs':>8} {'list ms':>8} {'list MB':>8} {'inspect ms':>11} {'transition ms':>16} "
        f"{'cancel cmd ms':>14} {'bytes/run':>10} {'build s':>8}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
            workspace = init_workspace(Path(tmp) / "ws", get_registry())
            began = time.perf_counter()
            history = build(workspace, size)
            built = time.perf_counter() - began
            per_run = disk_bytes(workspace.history_dir) / size
            pending = []
            owner = {**current_owner(), "host": socket.gethostname()}
            for _ in range(2 * args.repeat):
                run = Run(
                    id=new_run_id(),
                    worker="overdue-task-review",
                    config_hash="x",
                    config={},
                    executor="echo",
                    created="",
                    owner=owner,
                    transitions=[{"status": "pending", "at": ""}],
                )
                pending.append(history.create(run).id)
            ws = ["-w", str(workspace.root)]
            list_ms, list_mb = cold([*exe, *ws, "runs", "list", "--limit", "20"], args.repeat)
            some = history.list(None, limit=500)[-1]["id"]
            inspect_ms, _ = cold([*exe, *ws, "run", "inspect", "--id", some], args.repeat)
            direct, own, via_cli = [], [], []
            for run_id in pending[: args.repeat]:
                whole, inside = transition(workspace, run_id)
                direct.append(whole)
                own.append(inside)
                assert history.get(run_id).status == "cancelled"
            for run_id in pending[args.repeat :]:
                ms, _ = cold([*exe, *ws, "run", "cancel", "--id", run_id], 1)
                via_cli.append(ms)
                assert history.get(run_id).status == "cancelled"
            both = f"{statistics.median(direct):.1f} / {statistics.median(own):.1f}"
            print(
                f"{size:>8} {list_ms:>8.1f} {list_mb:>8.1f} {inspect_ms:>11.1f} {both:>16} "
                f"{statistics.median(via_cli):>14.1f} "
                f"{per_run:>10.0f} {built:>8.1f}"
            )


if __name__ == "__main__":
    main()
