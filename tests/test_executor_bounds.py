"""Executors stay inside the engine's bounds: an in-process executor plugin that hangs
is abandoned at the run's timeout (kind ``timeout``); one that raises SystemExit,
KeyboardInterrupt or another BaseException is an executor error, never workerctl's
exit status; Ctrl-C during a single ``run start`` exits 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import helpers
from helpers import run_workerctl

PLUGIN = """
import sys, time
from workerctl import hookimpl
from workerctl.engine.step import Step


class Hang:
    name = "hang"
    description = "never returns"

    def step(self, request):
        time.sleep(3600)
        return Step(text="too late")


class Quit:
    name = "quit"
    description = "calls sys.exit(3)"

    def step(self, request):
        sys.exit(3)


class Interrupt:
    name = "interrupt"
    description = "raises KeyboardInterrupt itself"

    def step(self, request):
        raise KeyboardInterrupt


class Odd(BaseException):
    pass


class Base:
    name = "base"
    description = "raises a BaseException of its own"

    def step(self, request):
        raise Odd("odd")


@hookimpl
def register_executors(register):
    for executor in (Hang(), Quit(), Interrupt(), Base()):
        register(executor)
"""


@pytest.fixture
def plugin_env(tmp_path):
    return helpers.one_plugin_env(tmp_path, "boundsplugin", PLUGIN)


def _worker(workspace, name: str, executor: str, timeout: float = 60) -> None:
    (workspace.workers_dir / f"{name}.yaml").write_text(
        f"name: {name}\nstatus: active\ninstructions: say hello\noutput_mode: review_note\n"
        f"timeout: {timeout}\nexecutor: {{name: {executor}}}\n",
        encoding="utf-8",
    )


@pytest.mark.slow
def test_a_hanging_in_process_step_is_abandoned_at_the_timeout(workspace, plugin_env):
    _worker(workspace, "hanger", "hang", timeout=1.5)
    # the plugin sleeps an hour: the command returning at all (within the subprocess
    # timeout) is the point
    result = run_workerctl(
        "run", "start", "hanger", "--json", workspace=workspace, env=plugin_env, timeout=120
    )
    assert result.returncode == 1, result.stderr
    run = json.loads(result.stdout)
    assert run["status"] == "failed" and run["error"]["kind"] == "timeout"
    assert "abandoned" in run["error"]["message"]


@pytest.mark.parametrize(
    ("executor", "raised"),
    [("quit", "SystemExit(3)"), ("interrupt", "KeyboardInterrupt"), ("base", "Odd(odd)")],
)
def test_a_plugin_raising_a_base_exception_is_an_executor_error(workspace, plugin_env, executor, raised):
    _worker(workspace, f"w-{executor}", executor)
    result = run_workerctl("run", "start", f"w-{executor}", "--json", workspace=workspace, env=plugin_env)
    assert result.returncode == 1, (result.returncode, result.stderr)  # the run failed; not exit 3
    run = json.loads(result.stdout)
    assert run["status"] == "failed" and run["error"]["kind"] == "executor_error"
    assert raised in run["error"]["message"]
    listed = json.loads(run_workerctl("runs", "list", "--json", workspace=workspace).stdout)
    assert listed[0]["status"] == "failed"  # recorded as failed, not crashed


def test_ctrl_c_during_a_single_run_start_exits_130(workspace):
    (workspace.workers_dir / "slow.yaml").write_text(
        "name: slow\nstatus: active\ninstructions: wait\noutput_mode: review_note\n"
        "executor: {name: echo, script: [{sleep: 30, output: done}]}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "workerctl", "-w", str(workspace.root), "run", "start", "slow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the run is recorded as running
        listed = run_workerctl("runs", "list", "--json", workspace=workspace)
        if listed.returncode == 0 and any(
            r["status"] == "running" for r in json.loads(listed.stdout or "[]")
        ):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    run = json.loads(run_workerctl("runs", "list", "--json", workspace=workspace).stdout)[0]
    assert run["status"] == "cancelled"


_THREADS_STARTED = """
import sys, threading
names = []
start = threading.Thread.start
def recording(self):
    names.append(self.name)
    return start(self)
threading.Thread.start = recording
from workerctl.cli import main
sys.argv = ["workerctl", "-w", sys.argv[1], "run", "start", sys.argv[2], "--json"]
try:
    main()
except SystemExit as stop:
    code = stop.code
print(code, sum(n.startswith("workerctl-step-") for n in names), file=sys.stderr)
"""


@pytest.mark.parametrize(("executor", "threads"), [("echo", "0"), ("hang", "1")])
def test_echo_bounds_itself_and_its_steps_start_no_thread(workspace, plugin_env, executor, threads):
    """The built-in ``echo`` waits only in a scripted ``sleep``, which ends at the run's
    deadline and at a cancel: its steps run on the run's own thread (a thread per step
    was about 7 % of a batch's CPU). An executor that does not bound itself still gets a
    thread of its own for each step, which the loop can abandon."""
    _worker(workspace, "stepper", executor, timeout=1.5)
    done = subprocess.run(
        [sys.executable, "-c", _THREADS_STARTED, str(workspace.root), "stepper"],
        capture_output=True,
        text=True,
        env=plugin_env,
        timeout=120,
    )
    code, started = done.stderr.strip().splitlines()[-1].split(" ", 1)
    assert code == ("0" if executor == "echo" else "1"), done.stderr
    assert started == threads, done.stderr
