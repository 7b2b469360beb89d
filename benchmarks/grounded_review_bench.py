"""What every review check costs on a record with many long comments.

    .venv/bin/python benchmarks/grounded_review_bench.py [--comments 300] [--repeat 15]

A task holds ``--comments`` comments of about 2,000 characters (with dates, amounts,
e-mail addresses and names mixed in). A ``command`` worker reads the task and its
project, then posts a 1,500-character answer full of dates, amounts, people, ids,
claims and a list; the run is real (a subprocess per step). Measured, median over
``--repeat``:

1. every registered check as ``run review`` decides it (a fresh ``ReviewEvidence``
   each time: the comments are read and tokenised once per review);
2. the checks decided as a run finishes (``at_finish``), as the engine does;
3. the checks that stand before a write (``before_write``).

The target (issue #24): all checks within 200 ms for 300 long comments. Both the wall clock and the
process's CPU time are printed: on a shared machine the first includes waiting for a core.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from review_bench import WORDS  # the same vocabulary as the first review benchmark

from workerctl.app import App
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.plugins.manager import get_registry
from workerctl.runs.review import checks
from workerctl.workspace import init_workspace

PROGRAM = """\
import json, os, sys
request = json.load(sys.stdin)
steps = json.loads(os.environ["STEPS"])
print(json.dumps(steps[min(request["iteration"], len(steps)) - 1]))
"""


def comment(rng: random.Random, n: int) -> str:
    parts = []
    while sum(len(p) + 1 for p in parts) < 2000:
        roll = rng.random()
        if roll < 0.05:
            parts.append(f"2026-1{rng.randint(0, 2)}-{rng.randint(10, 28)}")
        elif roll < 0.08:
            parts.append(f"{rng.randint(100, 99999)}.00 EUR")
        elif roll < 0.09:
            parts.append(f"person{n}@example.org")
        else:
            parts.append(rng.choice(WORDS))
    return " ".join(parts)


def median_ms(fn, repeat: int) -> tuple[float, float]:
    """Median wall-clock and median CPU milliseconds (the CPU time of this process: on a
    machine shared with other work the wall clock also counts the waits for a core)."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--comments", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(24)
    output = "\n".join(
        [
            "Blocker: T-1042 waits on the glossary, which legal holds since last week.",
            "Evidence: Priya Shah wrote that marketing is stuck; the agency has the product list.",
            "Status: in progress; due 2026-11-14; assigned to Lena Fischer.",
            "Done: reminded marketing by email and moved the webinar to Friday.",
            "Open money: INV-2031 12400.0 EUR overdue; 3150.0 EUR on INV-2044.",
            "- ask legal for a date",
            "- confirm the glossary owner",
            "- check the agency's quote of 4,860 EUR",
            "Suggested next step: " + " ".join(rng.choice(WORDS) for _ in range(120)),
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        workspace = init_workspace(Path(tmp) / "ws", get_registry())
        app = App(str(workspace.root))
        for n in range(args.comments):
            app.records.add_comment(
                "T-1042", comment(rng, n), author=f"Person {n % 7}", run_id=None, key=f"b{n}"
            )
        program = workspace.root / "step.py"
        program.write_text(PROGRAM)
        steps = [
            {"tool_calls": [{"name": "read_task", "arguments": {"task_id": "T-1042"}}]},
            {"text": output},
        ]
        (workspace.workers_dir / "bench.yaml").write_text(
            "name: bench\nstatus: active\ninstructions: |\n  Summarise the task in at most 12 lines.\n"
            "context_sources: [tasks, projects]\ntool_categories: [productivity]\noutput_mode: task_comment\n"
            "max_iterations: 4\ntimeout: 60\nexecutor: "
            + json.dumps(
                {
                    "name": "command",
                    "argv": [sys.executable, str(program)],
                    "env": {"STEPS": json.dumps(steps)},
                }
            )
            + "\n"
        )
        started = time.perf_counter()
        run = Engine(workspace, app.registry).start("bench", StartOptions(record_id="T-1042"))
        run_ms = (time.perf_counter() - started) * 1000
        stored = app.history.get(run.id)
        registry = app.registry
        every = median_ms(lambda: checks(stored, records=app.records, registry=registry), args.repeat)
        finish = median_ms(
            lambda: checks(stored, records=app.records, registry=registry, stage="finish"), args.repeat
        )
        before = median_ms(
            lambda: checks(stored, records=app.records, registry=registry, stage="before_write"), args.repeat
        )
        decided = checks(stored, records=app.records, registry=registry)
    failed = [c.key for c in decided if c.verdict == "fail"]
    print(f"run (2 steps, {args.comments} comments on its task): {run.status} in {run_ms:.0f} ms")
    print(
        f"all {len(decided)} checks (run review): {every[0]:.1f} ms wall, {every[1]:.1f} ms CPU; "
        f"failed: {', '.join(failed) or 'none'}"
    )
    print(
        f"as the run finishes: {finish[0]:.1f} ms wall ({finish[1]:.1f} CPU); "
        f"before a write: {before[0]:.1f} ms wall ({before[1]:.1f} CPU)"
    )


if __name__ == "__main__":
    main()
