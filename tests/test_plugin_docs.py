"""docs/plugins.md documents every hook in hookspecs.py, and its tutorial works."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap

import pytest

from helpers import ROOT, run_workerctl
from workerctl.plugins import hookspecs

DOC = (ROOT / "docs" / "plugins.md").read_text()


def hook_names() -> list[str]:
    return [
        name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")
    ]


def test_every_hook_has_a_section():
    sections = set(re.findall(r"^## (register_\w+)$", DOC, re.M))
    assert hook_names(), "no hooks found"
    missing = set(hook_names()) - sections
    assert not missing, f"docs/plugins.md lacks a section for: {sorted(missing)}"
    stale = sections - set(hook_names())
    assert not stale, f"docs/plugins.md documents hooks that do not exist: {sorted(stale)}"


def test_every_hookspec_docstring_has_an_example():
    for name in hook_names():
        doc = getattr(hookspecs, name).__doc__ or ""
        example = doc.split("Example::", 1)[-1]
        assert "Example::" in doc and (f"def {name}(" in example or "register(" in example), name


def code_block(after: str) -> str:
    start = DOC.index(after)
    block = re.search(r"```python\n(.*?)```", DOC[start:], re.S).group(1)
    return textwrap.dedent(block)


@pytest.mark.slow
def test_the_tutorial_plugin_installs_and_passes_its_tests(tmp_path, workspace):
    site = tmp_path / "site"
    package = site / "workerctl_weather"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(code_block("3. `workerctl_weather/__init__.py`"))
    info = site / "workerctl_weather-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: workerctl-weather\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[workerctl]\nweather = workerctl_weather\n")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_weather.py").write_text(code_block("5. `tests/test_weather.py`"))
    env = {"PYTHONPATH": str(site)}
    listed = run_workerctl(
        "tools", "list", "--category", "weather", "--format", "ids", workspace=workspace, env=env
    )
    assert listed.stdout.split() == ["read_weather"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(tests)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
