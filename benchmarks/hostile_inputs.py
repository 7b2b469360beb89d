"""Time and memory to refuse each hostile input of tests/data/hostile, as a cold process.

    .venv/bin/python benchmarks/hostile_inputs.py [--repeat 3]

Each case runs as a real ``workerctl`` process (``worker validate NAME`` with the
file in ``workers/``, or ``records import FILE``), exactly as the CI test does;
this prints the median wall time, CPU time (``os.wait4``) and peak RSS (the
process's own VmHWM) of that process, next to a valid worker validated the same way, as a Markdown
table for the README. Bound: 2 s and 200 MB per case.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_hostile_corpus import CASES, _write_case, run_measured  # noqa: E402
from workerctl.plugins.manager import get_registry  # noqa: E402
from workerctl.workspace import init_workspace  # noqa: E402


def measure(argv: list[str], cwd: Path) -> tuple[int, float, float, float]:
    """(exit code, wall s, CPU s, peak RSS MB) of one cold workerctl process."""
    began = time.perf_counter()
    code, _, cpu, peak = run_measured(argv, cwd)
    return code, time.perf_counter() - began, cpu, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workspace = init_workspace(Path(tmp) / "ws", get_registry())
        files = Path(tmp) / "files"
        files.mkdir()
        base = ["-w", str(workspace.root)]
        cases = [{"file": "(a valid worker)", "command": "baseline"}, *CASES]
        for case in cases:
            if case["command"] == "baseline":
                argv, cwd = [*base, "worker", "validate", "overdue-task-review"], workspace.root
            elif case["command"] == "worker":
                path = _write_case(case, workspace.workers_dir)
                argv, cwd = [*base, "worker", "validate", path.stem], workspace.root
            else:
                _write_case(case, files)
                argv, cwd = [*base, "records", "import", case["file"]], files
            got = [measure(argv, cwd) for _ in range(args.repeat)]
            codes = {g[0] for g in got}
            rows.append((case["file"], codes, *(statistics.median(g[i] for g in got) for i in (1, 2, 3))))
            if case["command"] == "worker":
                (workspace.workers_dir / case["file"]).unlink()
    print(f"| input | exit | wall | CPU | peak RSS |  (median of {args.repeat} cold processes)")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, codes, wall, cpu, peak in rows:
        print(
            f"| {name} | {','.join(map(str, sorted(codes)))} | {wall * 1000:.0f} ms | "
            f"{cpu * 1000:.0f} ms | {peak:.1f} MB |"
        )
    worst = max(rows[1:], key=lambda r: r[3])
    print(
        json.dumps(
            {
                "worst_cpu_case": worst[0],
                "cpu_ms": round(worst[3] * 1000),
                "max_peak_mb": round(max(r[4] for r in rows[1:]), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
