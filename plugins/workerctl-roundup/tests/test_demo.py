"""The README's tour of the plugin, as written there, against the tracker its script makes."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a real roundup-server and workerctl processes

ROOT = Path(__file__).resolve().parents[3]


def test_the_readme_tour_works(tmp_path):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"### Records from an issue tracker \(Roundup\).*?```text\n(.*?)```", text, re.S)[1]
    lines = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert lines[0].startswith(".venv/bin/pip install")  # the install: done by the test command
    demo = str(tmp_path / "demo")
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "NO_COLOR": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    try:
        started = subprocess.run(
            ["bash", "-c", lines[1].replace("/tmp/demo", demo)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert started.returncode == 0, started.stderr
        exports = dict(re.findall(r"(\w+)=(\S+)", started.stdout.split("export", 1)[1].splitlines()[0]))
        assert set(exports) == {"WORKERCTL_WORKSPACE", "WORKERCTL_ROUNDUP_USER", "WORKERCTL_ROUNDUP_PASSWORD"}
        env.update(exports)
        outputs = []
        for line in lines[2:-1]:
            for command in line.split(" && "):
                argv = shlex.split(command)
                argv[0] = str(Path(sys.executable).parent / "workerctl")
                done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
                assert done.returncode == 0, f"{command}: {done.stderr}"
                outputs.append(done.stdout)
        assert "bugs" in outputs[0] and "answers" in outputs[0]
        assert "issue3" in outputs[1]
        assert "completed" in outputs[-1]
        workerctl = str(Path(sys.executable).parent / "workerctl")
        again = subprocess.run(
            [workerctl, "run", "start", "stale", "--task", "issue3"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert again.returncode == 5  # "a second start is refused (exit 5)"
    finally:
        stop = lines[-1].replace("/tmp/demo", demo)
        subprocess.run(["bash", "-c", stop], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert not (tmp_path / "demo" / "tracker" / "server.pid").exists()
