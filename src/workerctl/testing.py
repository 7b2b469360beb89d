"""pytest fixtures for plugin authors: test a plugin against a real, temporary workspace.

Install workerctl with the ``testing`` extra (``pip install workerctl[testing]``) and
the fixtures are available in any test, through pytest's ``pytest11`` entry point:

    def test_my_tool(workerctl_run):
        run = workerctl_run("my-worker", record="T-1042")
        assert run.status == "completed"

Fixtures:

- ``workerctl_workspace``: a new workspace made by ``workerctl init`` (sample workers
  and linked sample records) in a temporary folder.
- ``workerctl_registry``: the plugin registry, built afresh so that plugins installed
  in the environment (yours) are loaded.
- ``workerctl_cli``: a CLI runner bound to that workspace:
  ``workerctl_cli("runs", "list", "--json")`` returns click's ``Result`` with ``.json``
  (stdout parsed as JSON) added.
- ``workerctl_run``: runs a worker in-process and returns the finished ``Run``.
- ``workerctl_write_worker``: writes ``workers/NAME.yaml`` from keyword fields (by
  default an active ``echo`` worker with ``context_sources: [tasks]``, so a run on a
  task works; pass ``context_sources=[...]`` for other records).

And ``check_record_source(source, record_id=..., missing_id=...)``: the contract any
record source keeps, run against its own server. And ``wait_for(predicate,
timeout=30)``, for executors that finish elsewhere (a detached process, a task
queue): polls until the predicate is true.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry
    from workerctl.runs.model import Run
    from workerctl.workspace import Workspace


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout:g}s")


@pytest.fixture
def workerctl_registry() -> Iterator[Registry]:
    from workerctl.plugins.manager import build_registry, reset_registry

    registry = build_registry()
    reset_registry(registry)
    yield registry
    reset_registry(None)


@pytest.fixture
def workerctl_workspace(
    tmp_path: Path, workerctl_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> Workspace:
    from workerctl.workspace import init_workspace

    monkeypatch.delenv("WORKERCTL_WORKSPACE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return init_workspace(tmp_path / "workspace", workerctl_registry)


class CliResult:
    """click's ``Result`` with ``json``: the standard output parsed as JSON."""

    def __init__(self, result: Any) -> None:
        self._result = result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    @property
    def json(self) -> Any:
        from workerctl.jsonvalues import loads

        return loads(self._result.stdout)


class CliRunnerBound:
    """``workerctl -w WORKSPACE ...`` in-process, returning click's ``Result`` (with ``.json``).

    ``input`` is what the command reads on stdin; ``env`` sets (a value) or unsets
    (None) environment variables for this one invocation. An exception the command
    does not handle is raised in the test, not kept in the ``Result``."""

    def __init__(self, workspace: Any) -> None:
        from click.testing import CliRunner

        self.workspace = workspace
        self.runner = CliRunner()

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str | None] | None = None
    ) -> CliResult:
        from workerctl.cli import cli

        return CliResult(
            self.runner.invoke(
                cli, ["-w", str(self.workspace.root), *args], input=input, env=env, catch_exceptions=False
            )
        )


@pytest.fixture
def workerctl_cli(workerctl_workspace: Workspace) -> CliRunnerBound:
    return CliRunnerBound(workerctl_workspace)


@pytest.fixture
def workerctl_run(workerctl_workspace: Workspace, workerctl_registry: Registry) -> Callable[..., Any]:
    from workerctl.engine.launcher import Engine, StartOptions

    def run(worker: str, record: str | None = None, **options: Any) -> Run:
        engine = Engine(workerctl_workspace, workerctl_registry)
        return engine.start(worker, StartOptions(record_id=record, **options))

    return run


@pytest.fixture
def workerctl_write_worker(workerctl_workspace: Workspace) -> Callable[..., Path]:
    import yaml

    def write(name: str, **fields: Any) -> Path:
        data = {
            "name": name,
            "status": "active",
            "instructions": "Do the job.",
            "output_mode": "review_note",
            "context_sources": ["tasks"],
            "executor": {"name": "echo"},
            **fields,
        }
        path = workerctl_workspace.workers_dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    return write


def check_record_source(
    source: Any,
    *,
    record_id: str,
    missing_id: str,
    foreign_id: str = "T-0",
    run_id: str = "contract1",
) -> None:
    """The contract every record source keeps, checked against its own server or files.

    Call it from a test with a source that can write to ``record_id`` (an existing
    record), ``missing_id`` (an id of its own form that does not exist) and
    ``foreign_id`` (another source's id)::

        def test_contract(my_server):
            check_record_source(MySource(None, SourceConfig("s", "mine", my_server.url)),
                                record_id="issue1", missing_id="issue999999")

    It checks: ``get`` returns the record (id, a type the source declares, a stable
    fingerprint) and None for missing and foreign ids; ``list`` of that type holds
    it; ``add_comment`` writes once per key (the second call finds the first and
    says ``created=False``) and the comment comes back from ``comments`` carrying
    the run id and the key, exactly once.
    """
    record = source.get(record_id)
    assert record is not None, f"get({record_id!r}) found nothing"
    assert record.id == record_id, f"get({record_id!r}) returned id {record.id!r}"
    assert record.type in source.record_types, f"type {record.type!r} not in {source.record_types}"
    again = source.get(record_id)
    assert again is not None and again.fingerprint() == record.fingerprint(), "fingerprint changed on re-read"
    assert source.get(missing_id) is None, f"get({missing_id!r}) should be None"
    assert source.get(foreign_id) is None, f"get({foreign_id!r}) (another source's id) should be None"
    listed = [r.id for r in source.list(record.type)]
    assert record_id in listed, f"list({record.type!r}) lacks {record_id}"
    key = f"{run_id}:contract"
    first, created = source.add_comment(
        record_id, "contract check", author="contract", run_id=run_id, key=key
    )
    assert created, "the first add_comment with a new key must write"
    second, created_again = source.add_comment(
        record_id, "contract check", author="contract", run_id=run_id, key=key
    )
    assert not created_again and second.id == first.id, "a second add_comment with the same key wrote again"
    mine = [c for c in source.comments(record_id) if c.key == key]
    assert len(mine) == 1, f"comments({record_id!r}) holds {len(mine)} comments with the key, not 1"
    assert mine[0].run_id == run_id, "the comment does not carry the run id"
