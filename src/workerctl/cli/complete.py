"""Shell completion of worker names, run ids and record ids.

Each completer must be quick and must never fail loudly: a broken workspace
simply completes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from click import Context, Parameter

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from workerctl.workspace import Workspace


def _workspace(ctx: Context) -> Workspace:
    from workerctl.workspace import find_workspace

    root = ctx.find_root()
    return find_workspace(root.params.get("workspace"))


def _items(values: Iterable[str], incomplete: str) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    return [CompletionItem(v) for v in values if v.startswith(incomplete)]


def worker_names(ctx: Context, param: Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        from workerctl.workers.files import worker_paths

        return _items([p.stem for p in worker_paths(_workspace(ctx))], incomplete)
    except Exception:
        return []


def run_ids(ctx: Context, param: Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        from workerctl.history.store import History

        docs = History(_workspace(ctx)).list(None, limit=200)
        return _items([d["id"] for d in docs], incomplete.lower())
    except Exception:
        return []


def record_ids(ctx: Context, param: Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        from workerctl.app import App

        app = App(ctx.find_root().params.get("workspace"), warn=lambda text: None)
        return _items(sorted(r.id for r in app.records.list()), incomplete)
    except Exception:
        return []


def statuses(ctx: Context, param: Parameter, incomplete: str) -> list[CompletionItem]:
    """A run's states (``runs list --status``)."""
    from workerctl.runs.states import STATES

    return _items(STATES, incomplete)


def error_kinds(ctx: Context, param: Parameter, incomplete: str) -> list[CompletionItem]:
    """The error kinds (``runs list --error-kind``)."""
    from workerctl.runs.states import ERROR_KINDS

    return _items(sorted(ERROR_KINDS), incomplete)
