"""The history engine at 1,000 / 100,000 / 1,000,000 runs: every cross-run command,
``run start``, ``runs reindex`` and crash recovery, time and peak memory, in cold
processes beside ``python -c pass``.

    .venv/bin/python benchmarks/engine_bench.py [--sizes 1000,100000,1000000] [--repeat 5]
        [--dir /tmp/engine-bench]   (deleted afterwards unless --keep)

How a history is built (``build``), in minutes for a million runs:

1. real runs of the sample workers (echo executor, real comments, real ledger
   entries) are made by the engine in a scratch workspace: the templates;
2. they are copied with fresh ids, times spread over 90 days, records over 9,000
   tasks and one worker kept rare (1.5 %), oldest first (``cross_run_bench``);
   each copy's run file is written with the bytes the engine writes
   (``Run.to_stored`` and ``encode_json``, with the slot
   ``history.reindex.FreshSlots`` gives it: the rule a reindex uses for runs
   without one), one at a time, never all in memory;
3. a cold ``workerctl runs reindex`` (timed: the "reindex, no index" row) builds
   the index shards, the markers, the ledger and the cross-run indexes from those
   run files alone, as it would after losing them.

It is checked, not assumed, that the result is what the engine's own writes give:
the reindex kept every run's slot (so it rewrote no run file), a sample of 200
runs reads back with the summary of the run generated, and ``runs list``,
``runs list --worker`` (the rare worker) and ``workers list`` name exactly the
runs a brute-force account of the generated runs names.

Then each command is timed as a fresh process, median of ``--repeat``, rounds
interleaved across the sizes (a shared machine's load falls on all alike), its
peak RSS from GNU time in one more run. ``run start`` adds a run per repeat;
crash recovery is a ``run start`` SIGKILLed at its first write to the cross-run
indexes (a real kill at a real write point, ``WORKERCTL_TEST_FAULT``) followed by
the first ``runs list --worker`` (the sweep, and the repair before it answers);
``runs reindex`` runs last, over the intact history.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cross_run_bench import GNU_TIME, RARE, iter_copies, real_runs
from history_bench import compile_bytecode

from workerctl.history.reindex import FreshSlots
from workerctl.history.store import History, RunFilter
from workerctl.plugins.manager import get_registry
from workerctl.runs.model import new_run_id
from workerctl.storage.atomic import encode_json
from workerctl.storage.lock import HOLD_LOG_ENV, holds_in
from workerctl.workspace import init_workspace, load_workspace

START = ["run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat"]


def peak_of(argv: list[str], env: dict | None = None) -> tuple[float, float, int]:
    """Wall time (ms), peak RSS (MB) and exit code of one fresh process."""
    began = time.perf_counter()
    out = subprocess.run(
        [GNU_TIME, "-f", "%M", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    ms = (time.perf_counter() - began) * 1000
    mb = int(out.stderr.strip().splitlines()[-1]) / 1024
    return ms, mb, out.returncode


def reindex_measured(argv: list[str]) -> tuple[float, float, int, float]:
    """``peak_of`` a ``runs reindex``, with the longest single hold of the history lock it
    made (``WORKERCTL_BENCH_LOCK_LOG``: each release logs how long the lock was held)."""
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".holds") as log:
        ms, mb, code = peak_of(argv, env={**os.environ, HOLD_LOG_ENV: log.name})
        holds = holds_in(log.read())  # the history lock's, not the workspace's
    return ms, mb, code, max(holds, default=0.0)


def timed(argv: list[str]) -> float:
    began = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode not in (0, 1, 5):
        raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr.decode()}")
    return (time.perf_counter() - began) * 1000


def write_run_file(path: Path, data: dict) -> bool:
    """The bytes the engine writes for a run file (``storage.atomic.encode_json``),
    written plainly: no temp file, rename or fsync per file (a fresh file nobody
    reads yet; the reindex that follows reads them all), which is what makes a
    million of them take minutes."""
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # ids are 8 characters: at a million runs two may meet
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(encode_json(data).encode("utf-8"))
    return True


def build(root: Path, count: int, exe: list[str]) -> tuple[History, dict[str, object]]:
    """A history of ``count`` runs in ``root`` (see the module), checked."""
    registry = get_registry()
    workspace = init_workspace(root / f"ws-{count}", registry)
    scratch = root / f"templates-{count}"
    templates = real_runs(init_workspace(scratch, registry))
    shutil.rmtree(scratch)
    history = History(workspace)
    slots = FreshSlots(1)
    rng = random.Random(count)
    sample_every = max(1, count // 200)
    rare: list[str] = []
    sample: dict[str, tuple[dict, tuple[int, int]]] = {}
    newest: list[str] = []
    per_worker: dict[str, str] = {}
    began = time.perf_counter()
    for n, run in enumerate(iter_copies(templates, count, rng)):
        while history.body_path(run.id).exists():  # as History.create does: a fresh id
            run.id = new_run_id()
            for effect in run.side_effects:
                effect["key"] = f"{run.id}:output"
        summary = run.summary()
        slot = slots.next(summary)
        data = run.to_stored()
        data["_shard"], data["_doc"] = slot
        assert write_run_file(history.body_path(run.id), data), run.id
        if run.worker == RARE:
            rare.append(run.id)
        if n % sample_every == 0:
            sample[run.id] = (summary, slot)
        newest = [run.id, *newest[:19]]
        per_worker[run.worker] = run.id
        if n and n % 100_000 == 0:
            print(f"    {n:,} run files written ({time.perf_counter() - began:.0f} s)", flush=True)
    written = time.perf_counter() - began
    ms, mb, code, hold = reindex_measured([*exe, "-w", str(workspace.root), "runs", "reindex"])
    assert code == 0, code
    # the checks: what the engine's own writes would have given
    history = History(load_workspace(workspace.root))
    for run_id, (summary, slot) in sample.items():
        data = history._read_body(run_id)
        assert data is not None and (data["_shard"], data["_doc"]) == slot, run_id  # not rewritten
        assert history.get(run_id).summary() == summary, run_id
    assert [s["id"] for s in history.list(None, limit=20)] == newest
    listed = [s["id"] for s in history.list(RunFilter(workers=(RARE,)), limit=50)]
    assert listed == rare[::-1][:50], "runs list --worker"
    stats = history.indexes.worker_stats()
    assert {w: s["last"]["id"] for w, s in stats.items()} == per_worker, "workers list"
    assert sum(sum(s["counts"].values()) for s in stats.values()) == count
    return history, {
        "write run files s": written,
        "reindex (no index) s": ms / 1000,
        "reindex (no index) MB": mb,
        "reindex (no index) longest hold s": hold,
        "rare record": history.get(rare[len(rare) // 2]).record_id,
        "middle run": rare[len(rare) // 2],
    }


def commands(facts: dict[str, object]) -> dict[str, list[str]]:
    return {
        "runs list --limit 20": ["runs", "list", "--limit", "20"],
        "runs list --since 1d": ["runs", "list", "--since", "1d"],
        "runs list --until 170d --limit 1": ["runs", "list", "--until", "170d", "--limit", "1"],
        "runs list --until 80d --limit 1": ["runs", "list", "--until", "80d", "--limit", "1"],
        f"runs list --worker {RARE}": ["runs", "list", "--worker", RARE],
        "runs list --record ID": ["runs", "list", "--record", str(facts["rare record"])],
        "runs list --status failed": ["runs", "list", "--status", "failed"],
        "runs list --error-kind crashed": ["runs", "list", "--error-kind", "crashed"],
        "runs stats": ["runs", "stats"],
        "runs stats --since 7d": ["runs", "stats", "--since", "7d"],
        "runs prune --older-than 30d --dry-run": ["runs", "prune", "--older-than", "30d", "--dry-run"],
        "run inspect ID (a run 45 days old)": ["run", "inspect", "--id", str(facts["middle run"])],
        "workers list": ["workers", "list"],
    }


def crash_point(exe: list[str], ws: list[str], tmp: Path) -> int:
    """The number of the first write point of a run start under history/indexes/."""
    trace = tmp / "points"
    trace.unlink(missing_ok=True)
    env = {**os.environ, "WORKERCTL_TEST_FAULT": f"trace:{trace}"}
    subprocess.run([*exe, *ws, *START], capture_output=True, env=env, check=True)
    for line in trace.read_text().splitlines():
        number, path = line.split(" ", 1)
        if "/history/indexes/" in path:
            return int(number)
    raise SystemExit("no write point under history/indexes/")


def recovery(exe: list[str], ws: list[str], point: int) -> tuple[float, float]:
    """A run start killed at ``point``; then the first cross-run command: (ms, MB)."""
    env = {**os.environ, "WORKERCTL_TEST_FAULT": f"kill:{point}"}
    killed = subprocess.run([*exe, *ws, *START], capture_output=True, env=env)
    assert killed.returncode == -9, killed
    ms, mb, code = peak_of([*exe, *ws, "runs", "list", "--worker", RARE])
    assert code == 0
    return ms, mb


def main() -> None:
    compile_bytecode()
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/engine-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the histories afterwards")
    parser.add_argument(
        "--intact-reindex-upto",
        type=int,
        default=100_000,
        help="time runs reindex over the intact history up to this size (the build times one anyway)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    script = Path(sys.executable).parent / "workerctl"
    exe = [str(script)] if script.exists() else [sys.executable, "-m", "workerctl"]
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        run_all(args, sizes, exe)
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)


def run_all(args: argparse.Namespace, sizes: list[int], exe: list[str]) -> None:
    histories: dict[int, History] = {}
    plans: dict[int, dict[str, list[str]]] = {}
    rows: dict[str, dict[int, tuple[float, float]]] = {}
    for size in sizes:
        began = time.perf_counter()
        history, facts = build(args.dir / str(size), size, exe)
        print(
            f"{size:>9,} runs built and checked in {time.perf_counter() - began:.0f} s "
            f"(run files {facts['write run files s']:.0f} s, then runs reindex "
            f"{facts['reindex (no index) s']:.1f} s, {facts['reindex (no index) MB']:.0f} MB, "
            f"longest hold of the lock {facts['reindex (no index) longest hold s']:.2f} s)",
            flush=True,
        )
        histories[size], plans[size] = history, commands(facts)
        rows.setdefault("runs reindex (from run files alone)", {})[size] = (
            float(facts["reindex (no index) s"]) * 1000,  # type: ignore[arg-type]
            float(facts["reindex (no index) MB"]),  # type: ignore[arg-type]
        )
    ws = {size: ["-w", str(histories[size].workspace.root)] for size in sizes}
    for size in sizes:
        subprocess.run([*exe, *ws[size], "runs", "list"], capture_output=True)  # settings cache
    names = list(plans[sizes[0]])
    times: dict[tuple[str, int], list[float]] = {}
    base: list[float] = []
    for _ in range(args.repeat):
        base.append(timed([sys.executable, "-c", "pass"]))
        for name in names:
            for size in sizes:
                times.setdefault((name, size), []).append(timed([*exe, *ws[size], *plans[size][name]]))
        for size in sizes:
            times.setdefault(("run start (one run)", size), []).append(timed([*exe, *ws[size], *START]))
    for name in [*names, "run start (one run)"]:
        for size in sizes:
            argv = plans[size].get(name, START)
            _, mb, _ = peak_of([*exe, *ws[size], *argv])
            rows.setdefault(name, {})[size] = (statistics.median(times[(name, size)]), mb)
    passed = statistics.median(base)
    print(f"\npython -c pass: {passed:.1f} ms (median of {args.repeat}, interleaved)", flush=True)
    head = "".join(f"{s:>22,}" for s in sizes)
    print(f"{'command (median ms / peak MB)':<44}{head}{'ratio':>8}{'x pass':>8}", flush=True)
    for name, cells in rows.items():
        show(name, cells, sizes, passed)
    for size in sizes:
        point = crash_point(exe, ws[size], args.dir / str(size))
        found = [recovery(exe, ws[size], point) for _ in range(max(1, args.repeat // 2))]
        name = "crash recovery (first runs list --worker)"
        rows.setdefault(name, {})[size] = (statistics.median(f[0] for f in found), max(f[1] for f in found))
    show(name, rows[name], sizes, passed)
    for size in sizes:
        if size > args.intact_reindex_upto:
            continue
        ms, mb, code, hold = reindex_measured([*exe, *ws[size], "runs", "reindex"])
        assert code == 0
        rows.setdefault("runs reindex (intact history)", {})[size] = (ms, mb)
        print(f"runs reindex (intact) at {size:,} runs: longest hold of the lock {hold:.3f} s", flush=True)
    if "runs reindex (intact history)" in rows:
        show("runs reindex (intact history)", rows["runs reindex (intact history)"], sizes, passed)


def show(name: str, cells: dict[int, tuple[float, float]], sizes: list[int], passed: float) -> None:
    """One row: median ms and peak MB at each size, the ratio largest / smallest, x pass."""
    line = "".join(f"{cells[s][0]:>13.1f} {cells[s][1]:>6.1f}M  " for s in sizes if s in cells)
    got = [cells[s][0] for s in sizes if s in cells]
    print(f"{name:<44}{line}{got[-1] / got[0]:>8.2f}{got[-1] / passed:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
