"""``runs search`` at 1,000 / 100,000 / 1,000,000 runs, the search index's cost per run, its
size; a try over 50 replayed runs against a batch of 50.

    .venv/bin/python benchmarks/search_bench.py [--sizes 1000,100000] [--repeat 7] [--runs 200]
    .venv/bin/python benchmarks/search_bench.py --workspaces WS1,WS2,WS3 [--repeat 9]
    .venv/bin/python benchmarks/search_bench.py --only-try

``--workspaces``: existing histories as they are (``engine_bench.py --keep``'s, up to
1,000,000 runs; see ``prepare`` and ``at_scale``). Otherwise:

For each size: a history of realistic runs (``history_bench.fake_run``: about 1.5 KB of
output, tool calls, a comment), 20 of them holding a rare word; the search index built
(``runs reindex``'s rebuild, timed); then fresh ``workerctl runs search RARE`` processes
(median ms) beside ``python -c pass``. Then the index's cost per run: ``--runs`` runs
stored the way a batch stores them (created, running, completed: three commits each)
with the index and without it. Prints the figures docs/benchmarks.md quotes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from history_bench import build, cold, disk_bytes, fake_run

from workerctl.history import search_index
from workerctl.history.store import History
from workerctl.plugins.manager import get_registry
from workerctl.runs.states import new_run_id
from workerctl.workspace import init_workspace

RARE = "zanzibarite"


def seeded(root: Path, count: int) -> History:
    workspace = init_workspace(root / f"ws{count}", get_registry())
    history = build(workspace, count)
    rng = random.Random(5)
    bodies = sorted((history.root / "runs").rglob("*.json"))
    import json

    for path in rng.sample(bodies, 20):  # the rare word in 20 run files, slots kept
        data = json.loads(path.read_text())
        data["output"] = (data.get("output") or "") + f" {RARE}"
        path.write_text(json.dumps(data))
    history.reindex()
    return history


def per_run_cost(root: Path, runs: int, history: History | None = None) -> tuple[float, float]:
    """(ms per run stored in three commits, of which ms inside the index's ``keep``):
    the time inside ``keep`` is measured directly, since the fsyncs around it vary
    far more from run to run than it costs. ``history``: an existing one (its index
    kept as it is), else a new workspace."""
    import datetime as dt

    if history is None:
        workspace = init_workspace(root / "cost", get_registry())
        history = History(workspace)
        search_index.create_empty(history)
    spent = [0.0]
    keep = search_index.keep

    def timed(*args: object) -> None:
        began = time.perf_counter()
        keep(*args)  # type: ignore[arg-type]
        spent[0] += time.perf_counter() - began

    search_index.keep = timed  # type: ignore[assignment]
    rng = random.Random(3)
    template = [fake_run(rng, dt.datetime.now(dt.UTC)) for _ in range(runs)]
    began = time.perf_counter()
    try:
        for proto in template:
            run = dataclasses.replace(proto, id=new_run_id(), status="pending")
            history.create(run)
            run.status = "running"
            history.save(run)
            run.status = proto.status
            history.save(run)
    finally:
        search_index.keep = keep  # type: ignore[assignment]
    total = (time.perf_counter() - began) * 1000 / runs
    return total, spent[0] * 1000 / runs


RARE_WORKER = """name: rare-word
description: says a rare word (search_bench)
status: active
instructions: Say the rare word.
context_sources: [tasks, projects, docs]
tool_categories: []
output_mode: review_note
max_iterations: 2
timeout: 60
executor:
  name: echo
  script:
    - output: "Blocker: the RARE shipment for {context}"
""".replace("RARE", RARE)


def _workerctl() -> list[str]:
    """workerctl as a user starts it: the installed script (``-m`` adds runpy's cost)."""
    script = Path(sys.executable).parent / "workerctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "workerctl"]


def _uncache(path: Path) -> None:
    """Drop a file's pages from the disk cache (this file only): measured as a batch
    finds an index nobody has read lately."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def prepare(ws: Path, *, rebuild: bool = False) -> dict[str, float]:
    """20 runs saying the rare word added to an existing workspace (``engine_bench.py
    --keep``'s 1,000 / 100,000 / 1,000,000-run histories) the way users add runs: one
    real batch (``run start --records-from``), which keeps the search index on every
    commit. ``rebuild``: then the search index rebuilt (timed, in a process of its own).
    The index file's pages are dropped from the disk cache. Then the index's size against
    the history's, and ``keep``'s cost per run at
    that size (50 more runs stored in-process, the time inside ``keep`` measured)."""
    import json

    from workerctl.workspace import load_workspace

    exe = [*_workerctl(), "-w", str(ws)]
    (ws / "workers" / "rare-word.yaml").write_text(RARE_WORKER)
    ids = ws / "rare-ids.txt"
    tasks = [
        {"type": "task", "id": f"RW-{n}", "title": f"rare {n}", "fields": {"status": "open"}}
        for n in range(20)
    ]
    (ws / "rare-tasks.json").write_text(json.dumps(tasks))
    subprocess.run([*exe, "records", "import", str(ws / "rare-tasks.json")], check=True, capture_output=True)
    ids.write_text("\n".join(t["id"] for t in tasks) + "\n")
    began = time.perf_counter()
    first = subprocess.run([*exe, "runs", "search", RARE, "--json", "id"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    ready = time.perf_counter() - began  # the index built (or caught up) if it was not there
    batch = (
        None
        if len(json.loads(first.stdout)) >= 20
        else subprocess.run(
            [*exe, "run", "start", "rare-word", "--records-from", str(ids), "--allow-repeat"],
            capture_output=True,
            text=True,
        )
    )
    assert batch is None or batch.returncode == 0, batch.stderr  # (measured before: kept)
    out = subprocess.run([*exe, "runs", "search", RARE, "--json", "id"], capture_output=True, text=True)
    hits = len(json.loads(out.stdout))
    assert hits >= 20, (hits, out.stderr)
    history = History(load_workspace(ws))
    rebuilt = peak_rebuild = float("nan")
    if rebuild:  # timed in a process of its own, for its peak memory
        began = time.perf_counter()
        code = (
            "import sys; from workerctl.history import search_index as s; "
            "from workerctl.history.store import History; "
            "from workerctl.workspace import load_workspace as l; s.rebuild(History(l(sys.argv[1])))"
        )
        _ms, peak_rebuild = cold([sys.executable, "-c", code, str(ws)], 1)
        rebuilt = time.perf_counter() - began
    _uncache(search_index.index_path(history))
    index_bytes = search_index.index_path(history).stat().st_size
    history_bytes = disk_bytes(history.root)
    count = sum(1 for _ in history.iter_summaries())
    total, inside = per_run_cost(ws, 50, history)
    return {
        "runs": float(count),
        "hits": float(hits),
        "first search s": ready,
        "index MB": index_bytes / 1e6,
        "history MB": history_bytes / 1e6,
        "index %": 100 * index_bytes / history_bytes,
        "keep ms/run": inside,
        "rebuild s": rebuilt,
        "rebuild MB": peak_rebuild,
        "three commits ms/run": total,
    }


def at_scale(workspaces: list[Path], repeat: int, rebuild: bool = False) -> None:
    """``runs search RARE`` on each workspace (see ``prepare``), in fresh processes,
    rounds interleaved with ``python -c pass`` and across the sizes, so a shared
    machine's load falls on all alike; medians."""
    rows = [prepare(ws, rebuild=rebuild) for ws in workspaces]
    argvs = [[sys.executable, "-c", "pass"]] + [
        [*_workerctl(), "-w", str(ws), "runs", "search", RARE] for ws in workspaces
    ]
    times: list[list[float]] = [[] for _ in argvs]
    for _ in range(repeat):
        for n, argv in enumerate(argvs):
            began = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            times[n].append((time.perf_counter() - began) * 1000)
    bare, *searches = [statistics.median(t) for t in times]
    print(f"python -c pass: {bare:.1f} ms")
    for ws, row, ms in zip(workspaces, rows, searches, strict=True):
        _, peak = cold([*_workerctl(), "-w", str(ws), "runs", "search", RARE], 1)
        print(
            f"{row['runs']:>11,.0f} runs: runs search {RARE} ({row['hits']:.0f} hits) "
            f"{ms:.1f} ms ({ms / searches[0]:.2f}x the first, {ms / bare:.1f}x python -c pass), "
            f"peak {peak:.0f} MB; first search {row['first search s']:.1f} s; index "
            f"{row['index MB']:.1f} MB = {row['index %']:.1f} % of the history's "
            f"{row['history MB']:.1f} MB; keep {row['keep ms/run']:.3f} ms per run "
            f"(three commits {row['three commits ms/run']:.1f} ms); rebuild {row['rebuild s']:.1f} s, "
            f"{row['rebuild MB']:.0f} MB",
            flush=True,
        )
    print(f"medians of {repeat} rounds of cold processes")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--only-try", action="store_true", help="Only the try against a batch.")
    parser.add_argument(
        "--workspaces",
        help="Comma-separated workspaces to measure as they are (e.g. engine_bench.py --keep's "
        "DIR/SIZE/ws-SIZE), smallest first: 20 rare-word runs are added to each.",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="With --workspaces: rebuild each search index first (timed)."
    )
    args = parser.parse_args()
    exe = [sys.executable, "-m", "workerctl"]
    if args.workspaces:
        at_scale([Path(ws) for ws in args.workspaces.split(",")], args.repeat, args.rebuild)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bare, _ = cold([sys.executable, "-c", "pass"], args.repeat)
        print(f"python -c pass: {bare:.1f} ms")
        base = None
        for size in () if args.only_try else (int(s) for s in args.sizes.split(",")):
            history = seeded(root, size)
            began = time.perf_counter()
            search_index.rebuild(history)
            built = time.perf_counter() - began
            ws = ["-w", str(history.workspace.root)]
            out = subprocess.run(
                [*exe, *ws, "runs", "search", RARE, "--json", "id"], capture_output=True, text=True
            )
            import json

            hits = len(json.loads(out.stdout))
            ms, peak = cold([*exe, *ws, "runs", "search", RARE], args.repeat)
            listed, _ = cold([*exe, *ws, "runs", "list"], args.repeat)
            index_bytes = search_index.index_path(history).stat().st_size
            history_bytes = disk_bytes(history.root)
            base = base or ms
            print(
                f"{size:>9,} runs: runs search {RARE} ({hits} hits) {ms:.1f} ms "
                f"({ms / base:.2f}x the first size, {ms / bare:.1f}x python -c pass; "
                f"runs list {listed:.1f} ms), "
                f"peak {peak:.0f} MB; rebuild {built:.1f} s ({built * 1e6 / size:.0f} us/run); "
                f"index {index_bytes / 1e6:.1f} MB = {100 * index_bytes / history_bytes:.1f} % "
                f"of the history's {history_bytes / 1e6:.1f} MB"
            )
        total, inside = per_run_cost(root, 20 if args.only_try else args.runs)
        print(
            f"a run stored in three commits: {total:.2f} ms, of which {inside:.3f} ms "
            "keeping the search index"
        )
        batch, tried = try_versus_batch(root)
        print(
            f"50 runs: a batch {batch:.0f} ms; worker try --replay over them {tried:.0f} ms "
            f"({tried / batch:.2f}x the batch), nothing written"
        )
    print(f"medians of {args.repeat} cold processes")


def try_versus_batch(root: Path, runs: int = 50, repeat: int = 3) -> tuple[float, float]:
    """(ms of a batch of ``runs`` real runs, ms of ``worker try --replay`` over them),
    medians of cold processes; the try must write nothing (checked)."""
    import hashlib
    import json
    import shutil

    exe = [sys.executable, "-m", "workerctl"]
    base = root / "trybase"
    subprocess.run([*exe, "init", str(base)], check=True, capture_output=True)
    proto = json.loads(
        subprocess.run(
            [*exe, "-w", str(base), "records", "show", "T-1042", "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    tasks = []
    for n in range(runs):
        rec = {k: proto[k] for k in ("type", "title", "fields", "links")}
        tasks.append({**rec, "id": f"T-{5000 + n}"})
    (root / "tasks.json").write_text(json.dumps(tasks))
    subprocess.run(
        [*exe, "-w", str(base), "records", "import", str(root / "tasks.json")],
        check=True,
        capture_output=True,
    )
    ids = root / "ids.txt"
    ids.write_text("\n".join(t["id"] for t in tasks) + "\n")
    batch_times = []
    for n in range(repeat):
        ws = root / f"batch{n}"
        shutil.copytree(base, ws)
        began = time.perf_counter()
        subprocess.run(
            [*exe, "-w", str(ws), "run", "start", "overdue-task-review", "--records-from", str(ids)],
            check=True,
            capture_output=True,
        )
        batch_times.append((time.perf_counter() - began) * 1000)
    ws = root / "batch0"
    state = ws / ".workerctl"

    def digest() -> dict[str, str]:
        return {
            str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(state.rglob("*"))
            if p.is_file() and "tries" not in p.parts
        }

    argv = [
        *exe,
        "-w",
        str(ws),
        "worker",
        "try",
        "overdue-task-review",
        "--replay",
        "--limit",
        str(runs),
        "--json",
    ]
    subprocess.run(
        [*exe, "-w", str(ws), "runs", "list", "--worker", "overdue-task-review"], capture_output=True
    )
    before = digest()
    try_times = []
    for _ in range(repeat):
        began = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        try_times.append((time.perf_counter() - began) * 1000)
        assert done.returncode == 0, done.stderr
        answers = {step["answer"] for item in json.loads(done.stdout)["items"] for step in item["steps"]}
        assert answers == {"replayed"}, answers  # every step's answer replayed, none asked for
    assert digest() == before, "the try wrote something"
    return statistics.median(batch_times), statistics.median(try_times)


if __name__ == "__main__":
    main()
