"""Wiring: the services one command needs, built lazily so it pays only for what it uses.

The CLI creates one ``App`` per invocation and asks it for the workspace, the
plugin registry, the history, the records, the versions or the engine. ``App``
holds no behaviour of its own: what happens on the way (crashed runs marked,
remote runs brought up to date) is done by the services it calls.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workerctl.engine.launcher import Engine
    from workerctl.history.store import History
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.workers.versions import Versions
    from workerctl.workspace import Workspace


def _stderr_warning(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


class App:
    def __init__(
        self, workspace_option: str | None = None, warn: Callable[[str], None] | None = None
    ) -> None:
        self.workspace_option = workspace_option
        self.warn = warn or _stderr_warning

    @cached_property
    def workspace(self) -> Workspace:
        from workerctl.workspace import find_workspace, make_private

        workspace = find_workspace(self.workspace_option)
        note = make_private(workspace)
        if note:
            self.warn(note)
        return workspace

    @cached_property
    def registry(self) -> Registry:
        from workerctl.plugins.manager import get_registry

        registry = get_registry()
        for warning in registry.warnings:
            self.warn(warning)
        return registry

    @cached_property
    def history(self) -> History:
        """The run history as of now: dead runs marked ``crashed`` and remote runs
        brought up to date before anything reads it (``refresh``)."""
        from workerctl.history.store import History

        history = History(self.workspace)
        self._catch_up(history)
        return history

    def refresh(self) -> None:
        """Catch the history up again (for --watch loops). A workspace removed meanwhile
        is said as a new command would say it (exit 2, "not a workspace"), not watched on
        as an empty history."""
        from workerctl.workspace import load_workspace

        load_workspace(self.workspace.root, "--watch")
        self._catch_up(self.history)

    def _catch_up(self, history: History) -> None:
        """The crash sweep (``history.sweep.catch_up``), then the remote executors'
        unfinished runs (``engine.remote.refresh_remote``, which loads plugins only
        when there are such runs)."""
        from workerctl.engine.remote import refresh_remote
        from workerctl.history.sweep import catch_up

        catch_up(history, self.warn)
        # opportunistic too: a lock held past REPAIR_WAIT leaves them for a later command
        with history.lock.bounded():
            refresh_remote(history, lambda: self.registry, self.warn)

    @cached_property
    def records(self) -> RecordBook:
        from workerctl.records.book import open_records

        return open_records(self.workspace, self.registry)

    @cached_property
    def engine(self) -> Engine:
        from workerctl.engine.launcher import Engine

        return Engine(self.workspace, self.registry, self.history, self.records, self.versions)

    @cached_property
    def versions(self) -> Versions:
        from workerctl.workers.versions import Versions

        return Versions(self.workspace, self.warn)
