"""A batch of runs over Roundup issues against a local roundup-server: runs per second,
and the share of the time spent waiting on HTTP.

    .venv/bin/python benchmarks/roundup_bench.py [--issues 200] [--jobs 1 4] [--mode fork]

Needs ``pip install -e "plugins/workerctl-roundup[test]"`` (roundup). Makes a classic
tracker (sqlite, 1,000 PBKDF2 rounds: Roundup checks the password of every REST
request) with ``--issues`` issues in a temporary folder, serves it with roundup-server
(``--mode``: fork, a process per request, or none, one at a time), and runs an echo
worker with the ``issue_message`` output mode on every issue, in process, through the
same batch runner as ``workerctl run start W --records-from FILE --jobs N``. Each run
reads the issue, posts one message and reads the issue back (the fingerprint the
duplicate guard keeps). A second batch over the same issues is all skipped by the
guard (one look per issue at the server, no message).

"HTTP" is the time the source's ``HttpSession`` spent in requests (``stats.seconds``),
summed over the worker threads; its share is that sum over (wall time x jobs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

from workerctl.engine.batch import BatchRunner
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.plugins.manager import get_registry
from workerctl.workspace import init_workspace, load_workspace

PASSWORD = "bench-password"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--issues", type=int, default=200)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--mode", default="fork", choices=["fork", "none", "thread"])
    args = parser.parse_args()

    from workerctl_roundup.local import ADMIN, free_port, make_tracker, seed, start_server
    from workerctl_roundup.source import RoundupSource

    os.environ.update(WORKERCTL_ROUNDUP_USER=ADMIN, WORKERCTL_ROUNDUP_PASSWORD=PASSWORD, NO_COLOR="1")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, roundup-server -t {args.mode}")
    print("| jobs | runs | wall s | runs/s | requests/run | HTTP s (sum) | HTTP share | 2nd batch |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for jobs in args.jobs:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            port = free_port()
            home = root / "tracker"
            make_tracker(home, port, password=PASSWORD)
            issues = seed(home, args.issues)
            server = start_server(home, port, mode=args.mode)
            try:
                ws_root = root / "ws"
                init_workspace(ws_root, get_registry())
                settings = yaml.safe_load((ws_root / "workerctl.yaml").read_text()) or {}
                settings["record_sources"] = [{"name": "bugs", "kind": "roundup", "url": server.url}]
                (ws_root / "workerctl.yaml").write_text(yaml.safe_dump(settings))
                worker = {
                    "name": "bench",
                    "status": "active",
                    "instructions": "Review the issue.",
                    "context_sources": ["issues"],
                    "output_mode": "issue_message",
                    "review_required": False,
                    "executor": {"name": "echo", "script": [{"output": "State: idle. Next step: triage."}]},
                }
                (ws_root / "workers" / "bench.yaml").write_text(yaml.safe_dump(worker))
                workspace = load_workspace(ws_root)
                engine = Engine(workspace, get_registry())
                source = next(s for s in engine.records.sources if isinstance(s, RoundupSource))
                options = StartOptions(trigger="script")
                began = time.perf_counter()
                result = BatchRunner(engine, jobs=jobs).run("bench", issues, options)
                wall = time.perf_counter() - began
                requests, http_seconds = source.session.stats.requests, source.session.stats.seconds
                done = result.count("completed")
                assert done == len(issues), result.counts()
                began2 = time.perf_counter()
                again = BatchRunner(engine, jobs=jobs).run("bench", issues, options)
                wall2 = time.perf_counter() - began2
                print(
                    f"| {jobs} | {done} | {wall:.1f} | {done / wall:.1f} | {requests / done:.1f} | "
                    f"{http_seconds:.1f} | {http_seconds / (wall * jobs):.0%} | "
                    f"{again.count('skipped')} in {wall2:.1f} s |"
                )
            finally:
                server.stop()


if __name__ == "__main__":
    main()
