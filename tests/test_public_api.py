"""workerctl.api is the one module plugins import, and it is what it says it is."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import ROOT

# plugin packages import only the public API; their tests may also use the published
# test kit and drive the command line, as a third-party plugin's tests would
ALLOWED_IN_PACKAGES = {"workerctl.api"}
ALLOWED_IN_TESTS = {"workerctl.api", "workerctl.testing", "workerctl.cli"}


def workerctl_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a workerctl module in ``path``, nested ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "workerctl":
                # "from workerctl import x" imports the submodule x when there is one
                names = [
                    f"workerctl.{a.name}" if a.name != "hookimpl" else "workerctl.api" for a in node.names
                ]
        else:
            continue
        found += [(node.lineno, n) for n in names if n == "workerctl" or n.startswith("workerctl.")]
    return found


def violations(folder: Path) -> list[str]:
    out = []
    for path in sorted(folder.rglob("*.py")):
        allowed = ALLOWED_IN_TESTS if "tests" in path.relative_to(folder).parts else ALLOWED_IN_PACKAGES
        for line, module in workerctl_imports(path):
            if module not in allowed:
                out.append(f"{path.relative_to(folder)}:{line}: imports {module}")
    return out


def test_plugins_import_nothing_but_the_public_api():
    plugins = ROOT / "plugins"
    assert len(list(plugins.rglob("*.py"))) > 10  # the scan really looks at the plugins
    assert violations(plugins) == []


def test_the_check_catches_a_private_import(tmp_path):
    package = tmp_path / "workerctl-x" / "src" / "workerctl_x"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        textwrap.dedent("""
        from workerctl.api import hookimpl
        from workerctl import hookimpl as marker

        def later():
            from workerctl.history.store import History
            import workerctl.engine.loop
            from workerctl import testing
    """)
    )
    tests = tmp_path / "workerctl-x" / "tests"
    tests.mkdir()
    (tests / "test_x.py").write_text(
        "from workerctl.testing import wait_for\nfrom workerctl.app import App\n"
    )
    assert violations(tmp_path) == [
        "workerctl-x/src/workerctl_x/__init__.py:6: imports workerctl.history.store",
        "workerctl-x/src/workerctl_x/__init__.py:7: imports workerctl.engine.loop",
        "workerctl-x/src/workerctl_x/__init__.py:8: imports workerctl.testing",
        "workerctl-x/tests/test_x.py:2: imports workerctl.app",
    ]


def test_every_exported_name_exists_and_the_marker_is_one_object():
    import workerctl
    from workerctl import api

    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert missing == []
    assert workerctl.hookimpl is api.hookimpl
    public = {n for n in vars(api) if not n.startswith(("_", "@")) and n != "annotations"}
    unlisted = public - set(api.__all__) - {"TYPE_CHECKING", "Any", "Path", "pluggy"}
    assert unlisted == set()  # nothing public by accident


def test_executor_kinds_are_told_apart_by_protocol():
    from workerctl.api import Executor, RemoteExecutor, installed_executors, is_remote

    executors = installed_executors()
    assert isinstance(executors["echo"], Executor) and not is_remote(executors["echo"])
    assert isinstance(executors["command"], Executor)
    if "rq" in executors:  # the rq plugin is installed by the README's test command
        assert isinstance(executors["rq"], RemoteExecutor) and is_remote(executors["rq"])


def test_a_plugins_link_rules_reach_its_records(workspace, tmp_path, monkeypatch):
    """A record source declares its links; context assembly follows them, forward and
    back, and reads nothing of a type the worker may not read."""
    from helpers import make_worker
    from workerctl.engine.launcher import Engine, StartOptions
    from workerctl.plugins.manager import build_registry, reset_registry

    source = tmp_path / "shipping.py"
    source.write_text(
        textwrap.dedent("""
        from workerctl.api import LinkRule, Record, RecordSource, hookimpl

        PARCELS = {
            "PK-1": Record("PK-1", "parcel", "Parcel to Oslo", links={"consignee": "CO-3"}),
            "PK-2": Record("PK-2", "parcel", "Parcel for T-1042", links={"for_task": "T-1042"}),
        }

        class Parcels(RecordSource):
            name = "shipping"
            record_types = ("parcel",)
            context_sources = {"shipping": ["parcel"]}
            link_rules = (LinkRule("consignee", "company", from_type="parcel"),
                          LinkRule("for_task", "parcel", from_type="task", reverse=True))

            def get(self, record_id):
                return PARCELS.get(record_id)

            def list(self, type=None):
                return list(PARCELS.values()) if type in (None, "parcel") else []

            def find_linking(self, type, link, target_id):
                return [p for p in PARCELS.values() if p.links.get(link) == target_id]

            def add_comment(self, record_id, text, *, author, run_id, key):
                raise ValueError("parcels take no comments")

        @hookimpl
        def register_record_sources(register):
            register(Parcels)
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import shipping

    registry = build_registry(extra_plugins=(shipping,))
    reset_registry(registry)
    try:
        make_worker(workspace, "parcels", sources=("tasks", "shipping", "crm"), output_mode="review_note")
        make_worker(workspace, "no-crm", sources=("tasks", "shipping"), output_mode="review_note")
        run = Engine(workspace, registry).start("parcels", StartOptions(record_id="T-1042"))
        assert run.status == "completed", run.error
        got = {r["id"] for r in run.context["records"]}
        assert {"T-1042", "PK-2"} <= got  # the parcel that names the task, found backwards
        first = Engine(workspace, registry).start("parcels", StartOptions(record_id="PK-1"))
        assert "CO-3" in {r["id"] for r in first.context["records"]}  # forward, by declaration
        engine = Engine(workspace, registry)
        narrow = engine.start("no-crm", StartOptions(record_id="PK-1"))
        assert "CO-3" not in {r["id"] for r in narrow.context["records"]}
        assert ("company", "CO-3") not in engine.records.reads  # never read at all
    finally:
        reset_registry(None)


@pytest.mark.skipif(
    subprocess.run([sys.executable, "-m", "mypy", "--version"], capture_output=True).returncode != 0,
    reason="mypy is installed with the test extras",
)
@pytest.mark.slow
def test_the_package_type_checks():
    """mypy over src/workerctl (strict on workerctl.api), as .ci/run runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:] + (
        "\n(install the test extras: pip install -e '.[test]')"
    )
