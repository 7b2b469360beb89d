"""Shared fixtures: a real workspace on disk, a CLI runner bound to it, helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from workerctl.cli import cli
from workerctl.plugins import get_registry
from workerctl.workspace import init_workspace

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    monkeypatch.delenv("WORKERCTL_WORKSPACE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def workspace(tmp_path):
    return init_workspace(tmp_path / "ws", get_registry())


class Cli:
    """Invoke workerctl in-process against one workspace."""

    def __init__(self, workspace) -> None:
        self.workspace = workspace
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None):
        return self.runner.invoke(cli, ["-w", str(self.workspace.root), *args], input=input,
                                  env=env, catch_exceptions=False)


@pytest.fixture
def wcli(workspace):
    return Cli(workspace)


def run_workerctl(*args: str, workspace=None, timeout: float = 60, env: dict | None = None,
                  **kwargs) -> subprocess.CompletedProcess:
    """workerctl as a real subprocess (for concurrency, signals, detaching)."""
    argv = [sys.executable, "-m", "workerctl"]
    if workspace is not None:
        argv += ["-w", str(workspace.root)]
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, **kwargs)


def write_worker(workspace, name: str, body: str) -> Path:
    path = workspace.workers_dir / f"{name}.yaml"
    path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return path


def make_worker(workspace, name: str, *, status: str = "active", sources=("tasks",),
                categories=("productivity",), output_mode: str = "task_comment",
                max_iterations: int = 5, timeout: float = 60, executor: str = "{name: echo}",
                extra: str = "") -> Path:
    """A valid worker file with the given fields (executor given as YAML flow text)."""
    body = (
        f"name: {name}\n"
        f"status: {status}\n"
        "instructions: |\n  Summarise the task and suggest a next step.\n"
        f"context_sources: [{', '.join(sources)}]\n"
        f"tool_categories: [{', '.join(categories)}]\n"
        f"output_mode: {output_mode}\n"
        f"max_iterations: {max_iterations}\n"
        f"timeout: {timeout}\n"
        f"executor: {executor}\n"
        f"{extra}"
    )
    path = workspace.workers_dir / f"{name}.yaml"
    path.write_text(body, encoding="utf-8")
    return path
