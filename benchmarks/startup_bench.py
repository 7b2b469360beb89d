"""Start-up: what a cold ``workerctl`` costs beside the bare interpreter.

    .venv/bin/python benchmarks/startup_bench.py [--repeat 31] [--runs 1000]

Builds a history of ``--runs`` real-looking runs (``cross_run_bench``'s builder),
compiles workerctl's bytecode as an installed package has it, then times fresh
processes round by round, interleaved, so that the load of a shared machine falls
on all of them alike: ``python -c pass``, ``python -c 'import click'`` (the floor of
any command, since click parses every one), ``workerctl --help``, ``--version`` and
``runs list`` in several forms. Prints medians (ms) and the ratio to ``python -c pass``.

Targets (issue 29, one parser: everything through click with lazy command loading):
``runs list --limit 20`` within 6x and ``--help`` within 5x of ``python -c pass``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cross_run_bench import prepare
from history_bench import compile_bytecode

TARGETS = {"workerctl --help": 5.0, "runs list --limit 20": 6.0}


def once(argv: list[str]) -> float:
    began = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - began) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr.decode()}")
    return elapsed


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
    times: dict[str, list[float]] = {name: [] for name in plan}
    for _ in range(args.repeat):
        for name, argv in plan.items():
            times[name].append(once(argv))
    base = statistics.median(times["python -c pass"])
    print(f"{args.runs:,} runs in the history, {args.repeat} rounds, medians")
    print(f"{'command':<40}{'ms':>8}{'x pass':>8}  target")
    for name, values in times.items():
        ratio = statistics.median(values) / base
        target = TARGETS.get(name)
        verdict = (
            "" if target is None else f"within {target:.0f}x: " + ("met" if ratio <= target else "MISSED")
        )
        print(f"{name:<40}{statistics.median(values):>8.1f}{ratio:>8.1f}  {verdict}")


if __name__ == "__main__":
    main()
