"""Shared fixtures: a real workspace on disk and the CLI runner of ``workerctl.testing``
bound to it."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from workerctl.plugins.manager import get_registry
from workerctl.testing import CliRunnerBound
from workerctl.workspace import init_workspace, load_workspace


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    monkeypatch.delenv("WORKERCTL_WORKSPACE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="session")
def _workspace_template(tmp_path_factory):
    """A workspace as ``init`` makes it, made once per test process."""
    return init_workspace(tmp_path_factory.mktemp("template") / "ws", get_registry())


@pytest.fixture
def workspace(tmp_path, _workspace_template):
    """A fresh workspace of the test's own: a copy of one ``init`` made, byte for byte
    what ``init`` writes (the state holds no absolute path; checked by
    ``test_init_target``), for 3 ms instead of 15."""
    root = tmp_path / "ws"
    shutil.copytree(_workspace_template.root, root, symlinks=True)
    return replace(_workspace_template, root=root, settings=dict(_workspace_template.settings))


@pytest.fixture(scope="session")
def _one_run_template(tmp_path_factory):
    """A workspace after one completed run (overdue-task-review on T-1042), made once
    per test process by a real ``run start``; tests get copies (``one_run``)."""
    from helpers import run_workerctl

    ws = init_workspace(tmp_path_factory.mktemp("one-run") / "ws", get_registry())
    result = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", "--json", workspace=ws)
    assert result.returncode == 0, result.stderr
    return ws.root, json.loads(result.stdout)["id"]


@pytest.fixture
def one_run(tmp_path, _one_run_template):
    """(workspace, run id): a private copy of a workspace after one completed run, so
    that a test needing every kind of state file does not pay a process to make them
    (the state holds no absolute path: a copied workspace is a whole one)."""
    root, run_id = _one_run_template
    shutil.copytree(root, tmp_path / "ws", symlinks=True)
    return load_workspace(tmp_path / "ws"), run_id


@pytest.fixture
def wcli(workspace):
    """``wcli("runs", "list")``: workerctl in-process against ``workspace``, the same
    helper plugin authors get (``workerctl.testing``)."""
    return CliRunnerBound(workspace)
