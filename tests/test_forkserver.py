"""The suite's forked workerctl processes (tests/forkserver.py) behave as new ones.

Most tests start ``workerctl`` through ``helpers.run_workerctl``, which forks it from a
process that has already imported workerctl. These tests run the same commands both
ways, forked and as a new interpreter, and compare what a test would look at: the
exit status (a SIGKILL included), standard output and standard error, and what the
command left on disk. If forking ever changed a command's behaviour, they fail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from helpers import needs_exec, run_workerctl
from workerctl.storage.faults import FAULT_ENV

EXEC = {"WORKERCTL_TEST_EXEC": "1"}


def both(*args: str, workspace=None, env: dict | None = None, **kwargs):
    forked = run_workerctl(*args, workspace=workspace, env=env, **kwargs)
    started = run_workerctl(*args, workspace=workspace, env={**(env or {}), **EXEC}, **kwargs)
    return forked, started


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--version",),
        ("workers", "list"),
        ("workers", "list", "--json"),
        ("worker", "show", "overdue-task-review"),
        ("runs", "list", "--json"),
        ("run", "start", "no-such-worker"),  # exit 3, one line
        ("runs", "list", "--limit", "many"),  # a usage error, exit 2
        ("run", "inspect", "--id", "zzzz"),
    ],
)
def test_a_forked_command_prints_and_exits_as_a_new_process(workspace, args):
    forked, started = both(*args, workspace=workspace)
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        started.returncode,
        started.stdout,
        started.stderr,
    )


def test_standard_input_working_folder_and_environment_are_the_childs(workspace, tmp_path):
    """``records import -`` reads the test's input; a relative worker path is taken
    from the child's working folder; COLUMNS reaches the child."""
    bad = '[{"id": "T-9", "type": "task"'  # cut short: a JSON error naming stdin
    forked, started = both("records", "import", "-", workspace=workspace, input=bad)
    assert forked.returncode == started.returncode != 0
    assert forked.stderr == started.stderr
    (tmp_path / "w.yaml").write_text("name: w\nstatus: sleepy\n")
    forked, started = both("worker", "validate", "w.yaml", workspace=workspace, cwd=tmp_path)
    assert forked.returncode == started.returncode != 0
    assert forked.stderr == started.stderr and "w.yaml" in forked.stderr
    forked, started = both("runs", "list", workspace=workspace, env={"COLUMNS": "50"})
    assert forked.stdout == started.stdout


def test_a_write_point_fault_is_the_childs_own(workspace):
    """The fault injector is read in each child: a SIGKILL at the first write point
    kills that child (status -9) and not the next one."""
    argv = ("run", "start", "overdue-task-review", "--task", "T-1042")
    forked = run_workerctl(*argv, workspace=workspace, env={FAULT_ENV: "kill:1"})
    assert forked.returncode == -signal.SIGKILL
    forked = run_workerctl(*argv, workspace=workspace, env={FAULT_ENV: "enospc:1"})
    assert forked.returncode == 4 and "No space left on device" in forked.stderr
    after = run_workerctl(*argv, workspace=workspace)
    assert after.returncode == 0, after.stderr


def test_each_child_is_a_process_of_its_own(workspace, tmp_path):
    """Two runs forked one after the other are two processes: each run records its
    own pid as its owner, neither is this test's or the server's."""
    import json

    for _ in range(2):
        started = run_workerctl(
            "run",
            "start",
            "overdue-task-review",
            "--task",
            "T-1042",
            "--allow-repeat",
            "--json",
            workspace=workspace,
        )
        assert started.returncode == 0, started.stderr
    runs = json.loads(run_workerctl("runs", "list", "--json", workspace=workspace).stdout)
    owners = {
        json.loads(p.read_text())["owner"]["pid"] for p in (workspace.history_dir / "runs").glob("*/*.json")
    }
    assert len(runs) == 2 and len(owners) == 2, "two runs, two processes"
    assert os.getpid() not in owners


def test_what_a_fork_cannot_be_is_started_anew():
    base = dict(os.environ)
    assert not needs_exec(base, {})
    assert needs_exec({**base, "PYTHONPATH": "/elsewhere"}, {})
    assert needs_exec({**base, "LANG": "C"}, {}) or base.get("LANG") == "C"
    assert not needs_exec({**base, "WORKERCTL_TEST_PRUNE_BATCH": "3"}, {})
    assert needs_exec(base, {"start_new_session": True})
    assert not needs_exec({**base, FAULT_ENV: "kill:1", "COLUMNS": "10"}, {"cwd": "/", "input": ""})


@pytest.mark.slow
def test_a_timeout_kills_the_child(workspace, tmp_path):
    editor = tmp_path / "slow-editor"
    editor.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(15)\n")
    editor.chmod(0o755)
    with pytest.raises(subprocess.TimeoutExpired):
        run_workerctl(
            "worker",
            "edit",
            "overdue-task-review",
            workspace=workspace,
            env={"EDITOR": str(editor)},
            timeout=2,
        )


def test_no_module_reads_the_environment_as_it_is_imported():
    """A child forked from the server has the server's modules: a value read from the
    environment at import would be the server's, not the test's. Only the fault
    injector does so, and each child reads it again (forkserver._become)."""
    import ast
    from pathlib import Path

    import workerctl

    readers = []
    for path in Path(workerctl.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for statement in tree.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for node in ast.walk(statement):
                if isinstance(node, ast.FunctionDef | ast.Lambda):
                    break
                if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
                    readers.append(f"{path.name}:{node.lineno}")
    assert readers == ["faults.py:31"]


ENDINGS = {
    "returns": "print('out', end='')",
    "exit 3": "import sys; print('x'); sys.exit(3)",
    "exit 256": "import sys; sys.exit(256)",
    "exit with text": "import sys; sys.exit('stopped: why')",
    "exit None": "import sys; sys.exit(None)",
    "uncaught error": "raise ValueError('boom')",
    "uncaught Ctrl-C": "raise KeyboardInterrupt",
    "atexit": "import atexit; atexit.register(print, 'at exit'); print('first')",
    "a thread that outlives main": (
        "import threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.2), print('thread done', flush=True))).start()\n"
        "print('main done')"
    ),
    "unflushed output": "import sys; sys.stdout.write('no newline'); sys.stderr.write('err no newline')",
    "stdout closed under it": (
        "import os, sys; print('lost'); os.close(1); os.open(os.devnull, os.O_RDONLY)"
    ),
}


@pytest.mark.parametrize("snippet", ENDINGS.values(), ids=ENDINGS.keys())
def test_a_forked_child_ends_as_python_ends_a_process(snippet):
    """The fork server's child does not tear down the modules it inherited (it would
    touch, so copy, the whole server's heap): it ends as CPython's finalization does
    for everything a test can see. Each ending here, run both ways, gives the same
    status, the same stdout and the same last line on stderr."""
    from pathlib import Path

    here = Path(__file__).resolve().parent
    run = f"exec(compile({snippet!r}, '<string>', 'exec'), {{'__name__': '__main__'}})"
    fork_like = (
        f"import sys; sys.path.insert(0, {str(here)!r}); import forkserver\n"
        f"forkserver.run_as_main(lambda: {run})"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as by default
    results = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
        for code in (snippet, fork_like)
    ]
    assert results[0].returncode != 120 or "stdout" in results[0].stderr
    python, forked = ((r.returncode, r.stdout, (r.stderr.splitlines() or [""])[-1]) for r in results)
    assert forked == python
