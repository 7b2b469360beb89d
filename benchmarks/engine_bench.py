"""The history engine at 1,000 / 100,000 (/ 1,000,000) runs: every cross-run command,
``run start``, ``runs reindex`` and crash recovery, time and peak memory, in cold
processes beside ``python -c pass``.

    .venv/bin/python benchmarks/engine_bench.py [--sizes 1000,100000] [--repeat 5] [--keep DIR]

How the histories are built (``cross_run_bench.build``): real runs of the sample
workers (echo executor, real comments, real ledger entries) are copied with fresh
ids, times spread over 90 days and records over 9,000 tasks, written as run files
through the History's own paths, then indexed by ``runs reindex``, which builds the
index shards, the ledger and the cross-run indexes as a real history's writes would.
``--keep DIR`` builds them there once and reuses them.

Measured, each as a fresh process (median of ``--repeat``; peak RSS from GNU time):

- the cross-run commands of ``cross_run_bench`` plus ``runs list --since 1d`` and
  ``runs list --until 170d --limit 1`` (which read only the shards of their window);
- ``run start`` of one run (it writes: the history grows by one run per repeat);
- crash recovery: a ``run start`` SIGKILLed at its first write to the cross-run
  indexes (a real kill at a real write point, ``WORKERCTL_TEST_FAULT``), then the
  first ``runs list --worker W`` (the sweep, and the indexes repaired before it
  answers);
- ``runs reindex`` (once: at a million runs it is the long one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cross_run_bench import GNU_TIME, RARE, cold, commands, prepare
from history_bench import compile_bytecode


def peak_of(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall time (ms) and peak RSS (MB) of one fresh process."""
    began = time.perf_counter()
    out = subprocess.run(
        [GNU_TIME, "-f", "%M", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    ms = (time.perf_counter() - began) * 1000
    mb = int(out.stderr.strip().splitlines()[-1]) / 1024
    return ms, mb


def crash_point(exe: list[str], ws: list[str], tmp: Path) -> int:
    """The number of the first write point of a run start under history/indexes/."""
    trace = tmp / "points"
    trace.unlink(missing_ok=True)
    env = {**os.environ, "WORKERCTL_TEST_FAULT": f"trace:{trace}"}
    start = [*exe, *ws, "run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat"]
    subprocess.run(start, capture_output=True, env=env, check=True)
    for line in trace.read_text().splitlines():
        number, path = line.split(" ", 1)
        if "/history/indexes/" in path:
            return int(number)
    raise SystemExit("no write point under history/indexes/")


def recovery(exe: list[str], ws: list[str], point: int) -> tuple[float, float]:
    """A run start killed at ``point``; then the first cross-run command: (ms, MB)."""
    env = {**os.environ, "WORKERCTL_TEST_FAULT": f"kill:{point}"}
    start = [*exe, *ws, "run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat"]
    killed = subprocess.run(start, capture_output=True, env=env)
    assert killed.returncode == -9, killed
    return peak_of([*exe, *ws, "runs", "list", "--worker", RARE])


def main() -> None:
    compile_bytecode()
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--no-reindex", action="store_true", help="skip timing runs reindex")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    script = Path(sys.executable).parent / "workerctl"
    exe = [str(script)] if script.exists() else [sys.executable, "-m", "workerctl"]
    rows: dict[str, dict[int, tuple[float, float]]] = {}
    for size in sizes:
        history, built = prepare(size, args.keep)
        ws = ["-w", str(history.workspace.root)]
        print(f"{size:>9,} runs: built in {built:.0f} s (0: reused)", flush=True)
        subprocess.run([*exe, *ws, "runs", "list"], capture_output=True)
        plan = commands(history)
        plan["runs list --since 1d"] = ["runs", "list", "--since", "1d"]
        plan["runs list --until 170d --limit 1"] = ["runs", "list", "--until", "170d", "--limit", "1"]
        plan["runs list --until 80d --limit 1"] = ["runs", "list", "--until", "80d", "--limit", "1"]
        plan["run start (one run)"] = [
            "run",
            "start",
            "overdue-task-review",
            "--task",
            "T-1042",
            "--allow-repeat",
        ]
        for name, argv in plan.items():
            ms, _ = cold([*exe, *ws, *argv], args.repeat, peak=False)
            _, mb = peak_of([*exe, *ws, *argv])
            rows.setdefault(name, {})[size] = (ms, mb)
            print(f"  {name:<40} {ms:>9.1f} ms {mb:>7.1f} MB", flush=True)
        point = crash_point(exe, ws, history.root.parent.parent)
        found = [recovery(exe, ws, point) for _ in range(max(1, args.repeat // 2))]
        ms = statistics.median(f[0] for f in found)
        mb = max(f[1] for f in found)
        rows.setdefault("crash recovery (first runs list --worker)", {})[size] = (ms, mb)
        print(f"  {'crash recovery (first runs list --worker)':<40} {ms:>9.1f} ms {mb:>7.1f} MB", flush=True)
        if not args.no_reindex:
            ms, mb = peak_of([*exe, *ws, "runs", "reindex"])
            rows.setdefault("runs reindex", {})[size] = (ms, mb)
            print(f"  {'runs reindex':<40} {ms:>9.1f} ms {mb:>7.1f} MB", flush=True)
    passed = statistics.median(cold([sys.executable, "-c", "pass"], 1, peak=False)[0] for _ in range(7))
    print(f"\npython -c pass: {passed:.1f} ms")
    head = "".join(f"{s:>20,}" for s in sizes)
    print(f"{'command (median ms / peak MB)':<44}{head}{'ratio':>8}")
    for name, cells in rows.items():
        line = "".join(f"{cells[s][0]:>11.1f} {cells[s][1]:>6.1f}M " for s in sizes if s in cells)
        got = [cells[s][0] for s in sizes if s in cells]
        print(f"{name:<44}{line}{got[-1] / got[0]:>8.2f}")


if __name__ == "__main__":
    main()
