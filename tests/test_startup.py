"""Start-up stays cheap because each invocation imports only what it needs.

``workerctl --help`` and ``runs list`` run in real processes under
``python -X importtime``; each has a declared budget of modules, and the test fails
when one imports anything outside it (yaml, jq, pluggy, tinydb, the engine ...).
How long they take is measured by ``benchmarks/startup_bench.py``, not here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

#: stdlib modules no cheap invocation needs; each costs a cold start milliseconds
#: (importlib.metadata alone about 20 ms: tabulate 0.10 reads its version with it)
HEAVY_STDLIB = frozenset(
    {
        "importlib.metadata",
        "email",
        "zipfile",
        "asyncio",
        "subprocess",
        "http",
        "socket",
        "sqlite3",
        "tomllib",
        "multiprocessing",
        "concurrent",
    }
)


@dataclass(frozen=True)
class Budget:
    """What an invocation may import besides the standard library's light modules."""

    third_party: frozenset[str]  # top-level packages
    workerctl: frozenset[str]  # exact module names, or prefixes ending in "."

    def allows(self, module: str) -> bool:
        top = module.partition(".")[0]
        if top == "workerctl":
            return any(module == m or (m.endswith(".") and module.startswith(m)) for m in self.workerctl)
        if top in sys.stdlib_module_names or top.startswith("_"):
            return not any(module == h or module.startswith(h + ".") for h in HEAVY_STDLIB)
        return top in self.third_party


#: what starting the interpreter may import besides (site hooks of the environment)
SITE = frozenset({"sitecustomize", "usercustomize", "org"})  # org: copy's probe for Jython

HELP = Budget(
    third_party=SITE | {"click"},
    workerctl=frozenset(
        {
            "workerctl",
            "workerctl.cli",
            "workerctl.cli.root",
            "workerctl.cli.commands",
            "workerctl.cli.failures",
            "workerctl.cli.suggest",
        }
        | {"workerctl.version", "workerctl.terminal", "workerctl.sanitize"}
        # the exception SIGTERM raises in every command (cli.failures.raise_on_sigterm):
        # a module of exception classes that imports nothing
        | {"workerctl.errors"}
        # the plugins' commands, read from their package metadata (not loaded)
        | {"workerctl.plugins", "workerctl.plugins.declared"}
    ),
)
RUNS_LIST = Budget(
    # no tabulate: a table of plain one-line text is drawn by workerctl.simple_table,
    # to tabulate's bytes (tests/test_simple_table.py); tabulate draws the rest
    third_party=SITE | {"click"},
    workerctl=HELP.workerctl
    | {
        "workerctl.app",
        "workerctl.errors",
        "workerctl.render",
        "workerctl.simple_table",
        "workerctl.widths",  # a table fitted to the page, wcwidth only for wide characters
        "workerctl.timeparse",
        "workerctl.workspace",
        "workerctl.cli.common",
        "workerctl.cli.complete",
        "workerctl.cli.output",
        "workerctl.cli.runs",
        "workerctl.cli.runs_list",
        "workerctl.cli.shape",
        # reading the history: the history package and the storage under it
        "workerctl.runs",
        "workerctl.history",
        "workerctl.history.store",
        "workerctl.runs.states",
        "workerctl.history.sweep",
        "workerctl.history.indexes",
        # the remote executors' refresh: a protocol, no plugins unless remote runs wait
        "workerctl.engine",
        "workerctl.engine.remote",
        "workerctl.names",
        "workerctl.digits",  # numbers read from state: a dozen lines, no imports
        "workerctl.jsonvalues",  # --json printed as one JSON document: math alone
        "workerctl.memo",  # paths joined once per key: a dict, no imports
        "workerctl.history.",
        "workerctl.storage.",
        "workerctl.storage",
    },
)


def imported(argv: list[str]) -> list[str]:
    """The modules a real ``workerctl`` process imports, in order."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPROFILEIMPORTTIME"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "workerctl", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "COLUMNS": "100"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()  # it answered: the budget is of a real answer
    names = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.append(name)
    assert names, "no -X importtime report"
    return names


def over_budget(argv: list[str], budget: Budget) -> list[str]:
    return [m for m in imported(argv) if m not in {"runpy"} and not budget.allows(m)]


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A workspace with runs of two workers, made by real processes."""
    root = tmp_path_factory.mktemp("startup") / "ws"
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("WORKERCTL_WORKSPACE", None)
    cmd = [sys.executable, "-m", "workerctl"]
    subprocess.run([*cmd, "init", str(root)], check=True, capture_output=True, env=env, timeout=60)
    for task in ("T-1042", "T-1043"):
        subprocess.run(
            [*cmd, "-w", str(root), "run", "start", "overdue-task-review", "--task", task],
            capture_output=True,
            env=env,
            timeout=60,
        )
    return root


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--version"]])
def test_help_imports_only_click_and_the_group(argv):
    assert over_budget(argv, HELP) == []


@pytest.mark.parametrize(
    "options",
    [
        ["--limit", "20"],
        ["--json"],
        ["--json", "id,status"],
        ["--json", "id"],  # a field after a bare --json: told from an id without imports
        ["--status", "completed"],
        ["--worker", "overdue-task-review"],
        ["--help"],
    ],
)
def test_runs_list_imports_only_what_reading_the_history_needs(history, options):
    assert over_budget(["-w", str(history), "runs", "list", *options], RUNS_LIST) == []


def test_the_budget_catches_a_heavy_import():
    """The check itself: yaml, pluggy, tinydb, jq, the engine and importlib.metadata
    are all outside the budgets."""
    for module in ("yaml", "pluggy", "tinydb", "jq", "importlib.metadata", "workerctl.engine.loop"):
        assert not HELP.allows(module) and not RUNS_LIST.allows(module)
    assert HELP.allows("click.core") and not HELP.allows("tabulate")
    assert RUNS_LIST.allows("workerctl.storage.lock") and RUNS_LIST.allows("json.decoder")
