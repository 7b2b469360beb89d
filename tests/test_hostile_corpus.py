"""The corpus of hostile inputs (tests/data/hostile): each case is refused by a real
workerctl process with exit 2 and its expected message, within a CPU and memory
bound measured on that very process (os.wait4 gives its own peak RSS and CPU time)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import make_worker

CORPUS = Path(__file__).parent / "data" / "hostile"
CASES = json.loads((CORPUS / "expectations.json").read_text())["cases"]
CPU_SECONDS = 2.0
PEAK_MB = 200
HANG_SECONDS = 30  # far above anything measured: only a hang (the old bomb: minutes) trips it


def _write_case(case: dict, folder: Path) -> Path:
    target = folder / case["file"]
    gen = case.get("generate")
    if gen is None:
        shutil.copy(CORPUS / case["file"], target)
        return target
    head, tail = gen.get("head", ""), gen.get("tail", "")
    body = gen["text"] * ((gen["bytes"] - len(head) - len(tail)) // len(gen["text"]))
    text = head + body + tail
    target.write_text(text + " " * (gen["bytes"] - len(text)), encoding="utf-8")
    return target


# Runs workerctl in the child and, at exit, writes that process's own peak RSS (VmHWM):
# the child's ru_maxrss would include the test process it was forked from.
PEAK_REPORTER = """
import atexit, runpy, sys
report = sys.argv.pop(1)
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(report, "w").write(line.split()[1])
atexit.register(peak)
sys.argv[0] = "workerctl"
runpy.run_module("workerctl", run_name="__main__")
"""


def run_measured(argv: list[str], cwd: Path) -> tuple[int, str, float, float]:
    """Run workerctl with ``argv``; return (exit code, output, CPU seconds, peak RSS in MB)
    of that very process.

    The address space is capped at 1 GiB so that a regression fails the test
    instead of taking the machine down.
    """

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    out_path, peak_path = cwd / ".out", cwd / ".peak"
    peak_path.unlink(missing_ok=True)
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", PEAK_REPORTER, str(peak_path), *argv],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
            preexec_fn=cap,
        )
        deadline = time.monotonic() + HANG_SECONDS
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                pytest.fail(f"{argv} still running after {HANG_SECONDS}s")
            time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    peak_kb = int(peak_path.read_text()) if peak_path.exists() else 0
    assert peak_kb, "the child did not report its peak memory"
    return (
        proc.returncode,
        out_path.read_text(errors="replace"),
        usage.ru_utime + usage.ru_stime,
        peak_kb / 1024,
    )


def workerctl(workspace, *args: str) -> list[str]:
    return ["-w", str(workspace.root), *args]


def test_the_corpus_is_complete():
    files = {p.name for p in CORPUS.iterdir() if p.name != "expectations.json"}
    listed = {c["file"] for c in CASES if "generate" not in c}
    assert files == listed
    assert {c["command"] for c in CASES} == {"worker", "records"}


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_hostile_input_is_refused_within_bounds(workspace, tmp_path, case):
    if case["command"] == "worker":
        path = _write_case(case, workspace.workers_dir)
        argv = workerctl(workspace, "worker", "validate", path.stem)
        cwd = workspace.root
    else:
        _write_case(case, tmp_path)
        argv = workerctl(workspace, "records", "import", case["file"])
        cwd = tmp_path
    code, output, cpu, peak = run_measured(argv, cwd)
    assert code == 2, output
    assert case["expect"] in output, output
    assert "Traceback" not in output
    assert cpu < CPU_SECONDS, f"{case['file']}: {cpu:.2f}s of CPU"
    assert peak < PEAK_MB, f"{case['file']}: peak RSS {peak:.0f} MB"


@pytest.mark.slow
def test_a_workspace_full_of_hostile_files_still_lists_and_runs(workspace, tmp_path):
    """Every hostile worker file at once: the others still list and run; each bad one
    shows as invalid; the whole listing stays within the bounds."""
    hostile = [c for c in CASES if c["command"] == "worker"]
    for case in hostile:
        _write_case(case, workspace.workers_dir)
    make_worker(workspace, "good", output_mode="review_note")
    code, output, cpu, peak = run_measured(workerctl(workspace, "workers", "list", "--json"), workspace.root)
    assert code == 0, output
    rows = {r["name"]: r for r in json.loads(output)}
    assert rows["good"]["valid"]
    for case in hostile:
        row = rows[Path(case["file"]).stem]
        assert not row["valid"] and row["status"] == "broken", row
    assert cpu < CPU_SECONDS * 2 and peak < PEAK_MB, (cpu, peak)
    code, output, cpu, peak = run_measured(workerctl(workspace, "run", "start", "good"), workspace.root)
    assert code == 0, output
    assert "completed" in output
    code, output, cpu, peak = run_measured(workerctl(workspace, "run", "start", "bomb"), workspace.root)
    assert code == 2 and "aliases expand to more than 10,000 nodes" in output, output
    assert cpu < CPU_SECONDS and peak < PEAK_MB, (cpu, peak)
