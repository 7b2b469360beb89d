"""Questions across runs at 1,000 / 10,000 / 100,000 runs, in cold processes.

    .venv/bin/python benchmarks/cross_run_bench.py [--sizes 1000,10000] [--repeat 5]

(add 100000 to --sizes for the largest history: building it takes a few minutes.)

The history is built from real runs: the engine runs each sample worker on the
sample tasks (echo executor, real comments, real ledger entries), then those
runs are copied in bulk, with fresh ids, times spread over 90 days, records
spread over 9,000 tasks and one worker kept rare (1.5 % of the runs), as run
files written through the History's own paths and indexed by ``runs reindex``
(which builds the index shards, the side-effect ledger and the cross-run
indexes exactly as the writes of a real history would).

Each command is timed as a fresh ``workerctl`` process (median of --repeat),
beside ``python -c pass``; its peak memory comes from GNU time. Prints, per
command, the time at each size and the ratio of the largest to the smallest,
then the disk used per run by folder. Also checks, at every size, that
``workers list`` and ``worker show`` name the same last run as
``runs list --worker NAME --limit 1``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from history_bench import compile_bytecode

from workerctl.engine.launcher import Engine, StartOptions
from workerctl.history.store import History, RunFilter
from workerctl.plugins.manager import get_registry
from workerctl.runs.model import Run, RunError, new_run_id
from workerctl.storage.atomic import write_json
from workerctl.workspace import init_workspace

GNU_TIME = "/usr/bin/time"
RARE = "handoff-preparation"
COMMON = ("overdue-task-review", "crm-activity-summary")


def iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def real_runs(workspace) -> list[Run]:
    """Real runs of the sample workers: completed ones with a comment, and failed ones."""
    engine = Engine(workspace, get_registry())
    out = []
    for task in ("T-1042", "T-1043", "T-2001", "T-3001"):
        out.append(engine.start("overdue-task-review", StartOptions(record_id=task, allow_repeat=True)))
    return out


def copies(templates: list[Run], count: int, rng: random.Random) -> list[Run]:
    return list(iter_copies(templates, count, rng))


def iter_copies(templates: list[Run], count: int, rng: random.Random) -> Iterator[Run]:
    """``count`` copies of the templates, oldest first, one at a time (a million runs
    are never all in memory)."""
    done = [t for t in templates if t.status == "completed"] or templates
    failed = [t for t in templates if t.status == "failed"] or templates
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=90)
    step = dt.timedelta(days=90) / count
    for n in range(count):
        created = start + step * n
        template = failed[n % len(failed)] if rng.random() < 0.15 else done[n % len(done)]
        run = dataclasses.replace(template)
        run.id = new_run_id()
        run.worker = RARE if rng.random() < 0.015 else rng.choice(COMMON)
        run.record_id = f"T-{rng.randint(1000, 9999)}"
        offsets = [0, 10, 40, 40 + rng.randint(50, 3000)]
        run.created = iso(created)
        run.transitions = [
            {"status": t["status"], "at": iso(created + dt.timedelta(milliseconds=offsets[min(i, 3)]))}
            for i, t in enumerate(template.transitions)
        ]
        run.side_effects = [
            {
                **e,
                "record_id": run.record_id,
                "key": f"{run.id}:output",
                "at": run.transitions[-1]["at"],
                "committed_at": run.transitions[-1]["at"],
            }
            for e in template.side_effects
        ]
        if run.status == "failed" and rng.random() < 0.3:
            run.error = RunError("crashed", "the process executing this run died")
        run.owner = {}
        yield run


def build(workspace, count: int) -> History:
    history = History(workspace)
    templates = real_runs(workspace)  # they stay in the history; the copies join them
    for run in copies(templates, count - len(templates), random.Random(count)):
        write_json(history.body_path(run.id), {**run.to_dict(), "_shard": 0, "_doc": 0}, sync_data=False)
    result = history.reindex()
    assert result["runs"] == count, result
    return history


def cold(argv: list[str], repeat: int, peak: bool = True) -> tuple[float, float]:
    """Median wall time (ms) of fresh processes, and the peak RSS (MB) of one more."""
    times = [float("nan")]
    if repeat:
        times = []
    for _ in range(repeat):
        began = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append((time.perf_counter() - began) * 1000)
        if proc.returncode not in (0, 1, 2, 5):
            raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr.decode()}")
    mb = float("nan")
    if peak and os.path.exists(GNU_TIME):
        out = subprocess.run(
            [GNU_TIME, "-f", "%M", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        mb = int(out.stderr.strip().splitlines()[-1]) / 1024
    return statistics.median(times), mb


def disk(folder: Path) -> dict[str, int]:
    """Bytes allocated on disk (blocks, not lengths) per top-level folder of the history."""
    out: dict[str, int] = {}
    for path in folder.rglob("*"):
        if path.is_file():
            top = path.relative_to(folder).parts[0]
            out[top] = out.get(top, 0) + path.stat().st_blocks * 512
    return out


def commands(history: History) -> dict[str, list[str]]:
    real = history.list(RunFilter(record_id="T-3001"), limit=1)[0]["id"]  # failed, real
    done = history.list(RunFilter(record_id="T-1042"), limit=1)[0]["id"]  # wrote a comment
    rare_record = history.list(RunFilter(workers=(RARE,)), limit=1)[0]["record_id"]
    return {
        "--help": ["--help"],
        "runs list --limit 20": ["runs", "list", "--limit", "20"],
        "workers list": ["workers", "list"],
        f"worker show {RARE}": ["worker", "show", RARE],
        f"runs list --worker {RARE}": ["runs", "list", "--worker", RARE],
        "runs list --record ID": ["runs", "list", "--record", rare_record],
        "runs list --status failed": ["runs", "list", "--status", "failed"],
        "runs list --error-kind crashed": ["runs", "list", "--error-kind", "crashed"],
        "runs stats": ["runs", "stats"],
        "runs stats --since 7d": ["runs", "stats", "--since", "7d"],
        "runs prune --older-than 30d --dry-run": ["runs", "prune", "--older-than", "30d", "--dry-run"],
        "run troubleshoot ID": ["run", "troubleshoot", real],
        "run rerun ID (refused by the guard)": ["run", "rerun", done],
    }


def same_last_run(exe: list[str], ws: list[str]) -> None:
    rows = json.loads(
        subprocess.run(
            [*exe, *ws, "workers", "list", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    for row in rows:
        listed = json.loads(
            subprocess.run(
                [*exe, *ws, "runs", "list", "--worker", row["name"], "--limit", "1", "--json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        shown = json.loads(
            subprocess.run(
                [*exe, *ws, "worker", "show", row["name"], "--json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["recent_runs"]
        newest = listed[0]["id"] if listed else None
        assert row["last_run"] == newest == (shown[0]["id"] if shown else None), row["name"]


def prepare(size: int, keep: Path | None) -> tuple[History, float]:
    """The history of ``size`` runs: built (seconds returned), or reused from --keep."""
    from workerctl.workspace import load_workspace

    root = (keep or Path(tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR")))) / f"ws-{size}"
    if (root / ".workerctl" / "history" / "indexes" / "meta.json").exists():
        return History(load_workspace(root)), 0.0
    workspace = init_workspace(root, get_registry())
    began = time.perf_counter()
    history = build(workspace, size)
    return history, time.perf_counter() - began


def main() -> None:
    compile_bytecode()
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--keep", type=Path, help="Build the histories in this folder and reuse them on the next run."
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    script = Path(sys.executable).parent / "workerctl"
    exe = [str(script)] if script.exists() else [sys.executable, "-m", "workerctl"]
    histories: dict[int, History] = {}
    per_run: dict[int, dict[str, float]] = {}
    for size in sizes:
        history, built = prepare(size, args.keep)
        histories[size] = history
        ws = ["-w", str(history.workspace.root)]
        subprocess.run([*exe, *ws, "runs", "list"], capture_output=True)  # settings cache
        same_last_run(exe, ws)
        used = disk(history.root)
        per_run[size] = {k: v / size for k, v in used.items()}
        print(
            f"{size:>7} runs: built in {built:.0f} s (0: reused); "
            f"{sum(used.values()) / size / 1024:.1f} KB on disk per run",
            flush=True,
        )
    # Every command at every size, interleaved round by round beside python -c pass, so
    # that the load of a shared machine falls on all of them alike.
    plan = {size: commands(histories[size]) for size in sizes}
    names = list(plan[sizes[0]])
    times: dict[tuple[str, int], list[float]] = {}
    base: list[float] = []
    for _ in range(args.repeat):
        base.append(cold([sys.executable, "-c", "pass"], 1, peak=False)[0])
        for name in names:
            for size in sizes:
                ws = ["-w", str(histories[size].workspace.root)]
                ms, _ = cold([*exe, *ws, *plan[size][name]], 1, peak=False)
                times.setdefault((name, size), []).append(ms)
    passed = statistics.median(base)
    print(f"\npython -c pass: {passed:.1f} ms (median of {args.repeat}, interleaved)")
    head = "".join(f"{s:>16,}" for s in sizes)
    print(f"{'command (median ms, peak MB)':<42}{head}{'ratio':>8}{'x pass':>8}")
    for name in names:
        cells, medians = "", []
        for size in sizes:
            ws = ["-w", str(histories[size].workspace.root)]
            _, peak = cold([*exe, *ws, *plan[size][name]], 0)
            medians.append(statistics.median(times[(name, size)]))
            cells += f"{medians[-1]:>9.1f} {peak:>5.1f}M"
        print(f"{name:<42}{cells}{medians[-1] / medians[0]:>8.2f}{medians[-1] / passed:>8.1f}")
    print()
    for size, parts in per_run.items():
        shown = ", ".join(f"{k} {v:,.0f} B" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
        print(f"{size:>7} runs, disk per run: {sum(parts.values()):,.0f} B ({shown})")


if __name__ == "__main__":
    main()
