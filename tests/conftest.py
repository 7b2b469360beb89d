"""Shared fixtures: a real workspace on disk, a CLI runner bound to it, helpers."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from workerctl.cli import cli
from workerctl.plugins.manager import get_registry
from workerctl.workspace import init_workspace


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    monkeypatch.delenv("WORKERCTL_WORKSPACE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    # pytest-xdist's workers get COLUMNS=80 from execnet: tables would be cut narrower
    # than in a plain run (the 120-column fallback), and assertions on them differ
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def workspace(tmp_path):
    return init_workspace(tmp_path / "ws", get_registry())


class Cli:
    """Invoke workerctl in-process against one workspace."""

    def __init__(self, workspace) -> None:
        self.workspace = workspace
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None):
        return self.runner.invoke(
            cli, ["-w", str(self.workspace.root), *args], input=input, env=env, catch_exceptions=False
        )


@pytest.fixture
def wcli(workspace):
    return Cli(workspace)
