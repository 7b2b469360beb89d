"""Start-up: what a cold ``workerctl`` costs beside the bare interpreter.

    .venv/bin/python benchmarks/startup_bench.py [--repeat 31] [--runs 1000]

Builds a history of ``--runs`` real-looking runs (``cross_run_bench``'s builder),
compiles workerctl's bytecode as an installed package has it, then times fresh
processes round by round, interleaved, so that the load of a shared machine falls on
all of them alike, and reports each one's wall time and its CPU time (user + system,
which a busy machine disturbs far less): ``python -c pass``, ``python -c 'import
click'`` (the floor of any command, since click parses every one), ``workerctl
--help``, ``--version`` and ``runs list`` in several forms. Prints medians (ms) and
the ratios to ``python -c pass``.

Targets (issue 29, one parser: everything through click with lazy command loading):
``runs list --limit 20`` within 6x and ``--help`` within 5x of ``python -c pass``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cross_run_bench import prepare
from history_bench import compile_bytecode

TARGETS = {"workerctl --help": 5.0, "runs list --limit 20": 6.0}


def once(argv: list[str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one cold process. The CPU time (user + system, from the
    kernel's accounting of the child) is what the process itself cost: on a machine
    shared with other work it moves far less than the wall time does."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = (time.perf_counter() - began) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed ({proc.returncode})")
    return elapsed, (usage.ru_utime + usage.ru_stime) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    compile_bytecode()
    history, _ = prepare(args.runs, None)
    ws = ["-w", str(history.workspace.root)]
    script = Path(sys.executable).parent / "workerctl"
    exe = [str(script)] if script.exists() else [sys.executable, "-m", "workerctl"]
    plan = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import click'": [sys.executable, "-c", "import click"],
        "workerctl --help": [*exe, "--help"],
        "workerctl --version": [*exe, "--version"],
        "runs list --limit 20": [*exe, *ws, "runs", "list", "--limit", "20"],
        "runs list --limit 20 --json": [*exe, *ws, "runs", "list", "--limit", "20", "--json"],
        "runs list --status failed": [*exe, *ws, "runs", "list", "--status", "failed"],
        "runs list --json id": [*exe, *ws, "runs", "list", "--json", "id"],
    }
    for argv in plan.values():  # warm the page cache and the settings cache
        once(argv)
    wall: dict[str, list[float]] = {name: [] for name in plan}
    cpu: dict[str, list[float]] = {name: [] for name in plan}
    for _ in range(args.repeat):
        for name, argv in plan.items():
            elapsed, used = once(argv)
            wall[name].append(elapsed)
            cpu[name].append(used)
    base_wall = statistics.median(wall["python -c pass"])
    base_cpu = statistics.median(cpu["python -c pass"])
    print(f"{args.runs:,} runs in the history, {args.repeat} rounds, medians; load {os.getloadavg()[0]:.1f}")
    print(f"{'command':<40}{'wall ms':>9}{'x pass':>8}{'CPU ms':>9}{'x pass':>8}  target (wall)")
    for name in plan:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        target = TARGETS.get(name)
        ratio = w / base_wall
        verdict = (
            "" if target is None else f"within {target:.0f}x: " + ("met" if ratio <= target else "MISSED")
        )
        print(f"{name:<40}{w:>9.1f}{ratio:>8.1f}{c:>9.1f}{c / base_cpu:>8.1f}  {verdict}")


if __name__ == "__main__":
    main()
