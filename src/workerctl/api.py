"""The public API for plugin authors: everything a plugin may import from workerctl.

A plugin imports from here and nowhere else in ``workerctl``; every other module
is private and may change in any release. The names below keep their meaning
across the 0.x series (a change to one is announced in the changelog first)::

    from workerctl.api import Step, Tool, hookimpl

    @hookimpl
    def register_executors(register):
        register(Shout())

What is here, by the hook that uses it:

- every hook: ``hookimpl`` (the marker for the ``workerctl`` project);
- ``register_executors``: the step protocol (``StepRequest``, ``Step``,
  ``ToolCall``, ``step_from_json``, ``PROTOCOL_VERSION``), the ``Executor`` and
  ``RemoteExecutor`` protocols, the failures an executor raises on purpose
  (``ProviderUnavailable``, ``InvalidOutput``, ``StepTimeout``, their base
  ``ExecutorFailure``), and for executors that hand runs elsewhere (a task
  queue): ``Run``, ``RunError``, the run states, ``RunStore``,
  ``ProgressSink``, ``RunFinishedElsewhere``, ``execute_remote`` and
  ``installed_executors``;
- ``register_tools`` / ``register_tool_categories``: ``Tool``, ``ToolContext``,
  ``ToolError``, ``ToolCategory``, and the records API a tool receives as
  ``ctx.records``: ``RunRecords`` (the only way a tool reads or writes records:
  gated by the worker's context sources and write scope, filtered by access rules,
  logged, and journalled in the side-effect ledger) with ``Written`` (what became of
  a write: committed, held for a person, or not written in a test run);
- ``register_output_modes``: ``OutputMode``, ``OutputContext`` (its ``records`` is
  the same ``RunRecords``);
- ``register_templates``: ``Template``, ``OutputContract`` (what its output must hold);
- ``register_record_sources``: ``RecordSource``, ``Record``, ``Comment``,
  ``LinkRule``, ``ImportCheck``, ``link_ids``, ``load_record_file``, and for sources that keep
  their own files in the workspace: ``state_lock`` and ``open_tinydb``
  (atomic, damage-detecting TinyDB files under the workspace lock);
- record sources on a server (a tracker, a CRM), configured under
  ``record_sources:`` in workerctl.yaml (``SourceConfig``; the class sets
  ``kind``): ``HttpSession`` (JSON over HTTP, retries and backoff, 429 and the
  rate-limit headers honoured, ETags for ``If-Match``), ``HttpResponse``,
  ``HttpStats``, ``Credentials`` and ``credentials_for`` (environment or
  ~/.netrc), ``check_url``, ``write_once`` (a keyed write whose lost answer is
  settled by looking on the server), ``describe_changes``, and the errors
  ``RecordSourceError`` (with the kinds ``SOURCE_UNAVAILABLE``,
  ``SOURCE_AUTH_FAILED``, ``RECORD_CHANGED``), ``ResponseLost``, ``RecordChanged``;
- commands (``register_commands``): ``Workspace``, ``find_workspace`` and the
  errors a command raises for the user (``WorkerctlError`` and its kinds, each
  with its documented exit code: ``EXIT_OK`` 0, ``EXIT_RUN_FAILED`` 1,
  ``EXIT_USAGE`` 2, ``EXIT_NOT_FOUND`` 3, ``EXIT_HISTORY`` 4, ``EXIT_DUPLICATE`` 5
  (refused by the duplicate guard), ``EXIT_INTERRUPTED`` 130);
- ``register_review_checks``: ``ReviewCheck``, ``ReviewEvidence``, ``Check`` and its
  verdicts ``PASS``, ``FAIL``, ``CANNOT_TELL``; ``personal_data`` (what the privacy
  check counts as personal data);
- ``ERROR_KINDS``: the error kinds a run can fail with;
- ``read_json``: the one reader of JSON text (a step program's answer, a model's, a
  server's): ``json.loads`` that raises ``JSONTooDeep``, a ``ValueError``, for JSON
  nested too deeply to read, never ``RecursionError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from workerctl.engine.outputs import OutputContext, OutputMode
from workerctl.engine.remote import ProgressSink, RemoteExecutor, RunStore
from workerctl.engine.remote import as_remote as _as_remote
from workerctl.engine.run_records import RunRecords, Written
from workerctl.engine.step import (
    FINISH_REASONS,
    PROTOCOL_VERSION,
    Capabilities,
    ContextTooLong,
    Executor,
    ExecutorFailure,
    InvalidOutput,
    ModelNotInstalled,
    ModelRefused,
    ProviderAuthFailed,
    ProviderUnavailable,
    RateLimited,
    Step,
    StepRequest,
    StepTimeout,
    ToolCall,
    UnsupportedFeature,
    normal_finish_reason,
    step_from_json,
)
from workerctl.engine.tools import Tool, ToolCategory, ToolContext, ToolError
from workerctl.errors import (
    EXIT_DUPLICATE,
    EXIT_HISTORY,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    ConfigError,
    DamagedFile,
    HistoryError,
    NotFoundError,
    UsageError,
    WorkerctlError,
)
from workerctl.history.store import RunFinishedElsewhere
from workerctl.jsonvalues import TooDeep as JSONTooDeep
from workerctl.jsonvalues import loads as read_json
from workerctl.records.http import (
    RECORD_CHANGED,
    SOURCE_AUTH_FAILED,
    SOURCE_UNAVAILABLE,
    Credentials,
    HttpResponse,
    HttpSession,
    HttpStats,
    RecordChanged,
    RecordSourceError,
    ResponseLost,
    check_url,
    credentials_for,
    describe_changes,
    write_once,
)
from workerctl.records.model import (
    Comment,
    ImportCheck,
    LinkRule,
    Record,
    RecordSource,
    SourceConfig,
    link_ids,
)
from workerctl.runs.checks import FAIL, PASS, Check
from workerctl.runs.checks import UNKNOWN as CANNOT_TELL
from workerctl.runs.evidence import ReviewEvidence, personal_data
from workerctl.runs.model import (
    CANCELLED,
    COMPLETED,
    ERROR_KINDS,
    FAILED,
    FINISHED,
    PENDING,
    QUEUED,
    RUNNING,
    UNFINISHED,
    Run,
    RunError,
)
from workerctl.runs.review_checks import ReviewCheck
from workerctl.workers.contract import OutputContract
from workerctl.workers.model import Worker
from workerctl.workers.templates import Template
from workerctl.workspace import Workspace, find_workspace

if TYPE_CHECKING:
    from tinydb import TinyDB

    from workerctl.storage.lock import FileLock

hookimpl = pluggy.HookimplMarker("workerctl")
"""Marks a function in a plugin module as the implementation of a workerctl hook."""


def is_remote(executor: object) -> bool:
    """True for an executor that hands runs elsewhere instead of doing steps here."""
    return _as_remote(executor) is not None


def installed_executors() -> dict[str, Executor | RemoteExecutor]:
    """Every executor registered in this process, by name (for executors that wrap
    another one, such as a task queue naming the executor its workers use)."""
    from workerctl.plugins.manager import get_registry

    return dict(get_registry().executors)


def execute_remote(run: Run, sink: ProgressSink, workspace: Workspace | None = None) -> Run:
    """Execute, on this machine, a run that a remote executor handed over.

    The run arrives ``queued`` with the configuration it was started with; the
    executor settings' ``inner`` names the executor that does the steps here.
    The same engine runs it as locally (checks, tool gate, limits); progress
    goes to ``sink``; the finished run is returned for the queue to carry back.
    ``workspace`` defaults to the one ``WORKERCTL_WORKSPACE`` names.
    """
    from workerctl.engine.launcher import execute_remote as _execute

    return _execute(run, sink, workspace)


def load_record_file(path: Path) -> list[dict[str, Any]]:
    """Read a YAML or JSON file of records (a list, or a mapping with ``records``),
    with the same limits and errors as ``workerctl records import``."""
    from workerctl.records.builtin_store import load_record_file as _load

    return _load(path)


def state_lock(workspace: Workspace) -> FileLock:
    """The workspace's state lock: hold it (``with state_lock(ws):``) around every
    read-modify-write of a file your plugin keeps in the workspace."""
    from workerctl.storage.lock import lock_for

    return lock_for(workspace.lock_file)


def open_tinydb(path: Path, hint: str | None = None) -> TinyDB:
    """A TinyDB whose file is replaced atomically and is never written over when it
    is damaged (exit 4 with ``hint`` telling the user how to recover)."""
    from workerctl.storage.tinydb_storage import open_db

    db: TinyDB = open_db(path, hint=hint)
    return db


__all__ = [
    "CANCELLED",
    "CANNOT_TELL",
    "COMPLETED",
    "ERROR_KINDS",
    "EXIT_DUPLICATE",
    "EXIT_HISTORY",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_RUN_FAILED",
    "EXIT_USAGE",
    "FAIL",
    "FAILED",
    "FINISHED",
    "FINISH_REASONS",
    "PASS",
    "PENDING",
    "PROTOCOL_VERSION",
    "QUEUED",
    "RECORD_CHANGED",
    "RUNNING",
    "SOURCE_AUTH_FAILED",
    "SOURCE_UNAVAILABLE",
    "UNFINISHED",
    "Capabilities",
    "Check",
    "Comment",
    "ConfigError",
    "ContextTooLong",
    "Credentials",
    "DamagedFile",
    "Executor",
    "ExecutorFailure",
    "HistoryError",
    "HttpResponse",
    "HttpSession",
    "HttpStats",
    "ImportCheck",
    "InvalidOutput",
    "JSONTooDeep",
    "LinkRule",
    "ModelNotInstalled",
    "ModelRefused",
    "NotFoundError",
    "OutputContext",
    "OutputContract",
    "OutputMode",
    "ProgressSink",
    "ProviderAuthFailed",
    "ProviderUnavailable",
    "RateLimited",
    "Record",
    "RecordChanged",
    "RecordSource",
    "RecordSourceError",
    "RemoteExecutor",
    "ResponseLost",
    "ReviewCheck",
    "ReviewEvidence",
    "Run",
    "RunError",
    "RunFinishedElsewhere",
    "RunRecords",
    "RunStore",
    "SourceConfig",
    "Step",
    "StepRequest",
    "StepTimeout",
    "Template",
    "Tool",
    "ToolCall",
    "ToolCategory",
    "ToolContext",
    "ToolError",
    "UnsupportedFeature",
    "UsageError",
    "Worker",
    "WorkerctlError",
    "Workspace",
    "Written",
    "check_url",
    "credentials_for",
    "describe_changes",
    "execute_remote",
    "find_workspace",
    "hookimpl",
    "installed_executors",
    "is_remote",
    "link_ids",
    "load_record_file",
    "normal_finish_reason",
    "open_tinydb",
    "personal_data",
    "read_json",
    "state_lock",
    "step_from_json",
    "write_once",
]
