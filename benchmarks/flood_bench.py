"""Peak memory and run-file size while a step floods its streams.

    .venv/bin/python benchmarks/flood_bench.py [--mb 100]

A ``command`` worker whose program writes MB megabytes of stderr, then a final
step of MB megabytes of text (as JSON), is run by a real ``workerctl run start``
process; its peak resident memory (``ru_maxrss`` of that process, read at its
exit) and the size of the run file are printed, with the default
``max_field_bytes`` (1,000,000). The flooding program's own memory is not
counted. Before issue 13 the same run peaked at 1,671 MB and left a 210 MB run file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from workerctl.plugins.manager import get_registry
from workerctl.workspace import init_workspace

FLOOD = """
import sys
sys.stdin.read()
mb = int(sys.argv[1])
chunk = "E" * (1 << 20)
for _ in range(mb):
    sys.stderr.write(chunk)
sys.stdout.write('{"text": "')
chunk = "word " * ((1 << 20) // 5)
for _ in range(mb):
    sys.stdout.write(chunk)
sys.stdout.write('"}')
"""

MEASURED = """
import atexit, resource, sys
atexit.register(lambda: print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                              file=sys.stderr))
from workerctl.cli import main
sys.argv = ["workerctl", *sys.argv[1:]]
main()
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = init_workspace(Path(tmp) / "ws", get_registry())
        program = workspace.root / "flood.py"
        program.write_text(FLOOD)
        argv = json.dumps([sys.executable, str(program), str(args.mb)])
        (workspace.workers_dir / "flood.yaml").write_text(
            "name: flood\nstatus: active\ninstructions: flood\noutput_mode: review_note\n"
            f"executor: {{name: command, argv: {argv}, timeout: 600}}\ntimeout: 600\n"
        )
        baseline = _peak(workspace, "runs", "list")
        result = _run(workspace, "run", "start", "flood", "--json")
        run = json.loads(result.stdout)
        body = workspace.history_dir / "runs" / run["id"][:2] / f"{run['id']}.json"
        print(f"flood of {args.mb} MB stdout (a final text) + {args.mb} MB stderr, max_field_bytes 1000000")
        print(f"  status: {run['status']}  output: {len(run['output'] or ''):,} characters")
        print(
            f"  peak memory of workerctl: {_peak_of(result) / 1024:.1f} MB "
            f"(runs list, for scale: {baseline / 1024:.1f} MB)"
        )
        print(f"  run file: {body.stat().st_size / 1e6:.2f} MB")


def _run(workspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", MEASURED, "-w", str(workspace.root), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=900,
    )


def _peak_of(result: subprocess.CompletedProcess) -> int:
    for line in result.stderr.splitlines():
        if line.startswith("PEAK_KB"):
            return int(line.split()[1])
    raise SystemExit(f"no peak reported: {result.stderr[-500:]}")


def _peak(workspace, *args: str) -> int:
    return _peak_of(_run(workspace, *args))


if __name__ == "__main__":
    main()
