"""Shared fixtures: a real workspace on disk and the CLI runner of ``workerctl.testing``
bound to it."""

from __future__ import annotations

import pytest

from workerctl.plugins.manager import get_registry
from workerctl.testing import CliRunnerBound
from workerctl.workspace import init_workspace


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    monkeypatch.delenv("WORKERCTL_WORKSPACE", raising=False)
    # pytest-xdist's workers set COLUMNS=80: tables would be cut narrower than in a
    # plain run, so that a test's result depended on -n
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    # pytest-xdist's workers get COLUMNS=80 from execnet: tables would be cut narrower
    # than in a plain run (the 120-column fallback), and assertions on them differ
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def workspace(tmp_path):
    return init_workspace(tmp_path / "ws", get_registry())


@pytest.fixture
def wcli(workspace):
    """``wcli("runs", "list")``: workerctl in-process against ``workspace``, the same
    helper plugin authors get (``workerctl.testing``)."""
    return CliRunnerBound(workspace)
