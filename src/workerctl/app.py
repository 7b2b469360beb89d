"""The services a command needs, built lazily so each command pays only for what it uses.

The CLI creates one ``App`` per invocation and asks it for the workspace, the
plugin registry, the history, the records or the engine. Commands that read the
history get crashed runs marked first (``App.history``).
"""

from __future__ import annotations

import sys
from functools import cached_property


class App:
    def __init__(self, workspace_option: str | None = None, warn=None) -> None:
        self.workspace_option = workspace_option
        self._warn = warn or (lambda text: print(f"warning: {text}", file=sys.stderr))

    @cached_property
    def workspace(self):
        from workerctl.workspace import find_workspace

        return find_workspace(self.workspace_option)

    @cached_property
    def registry(self):
        from workerctl.plugins.manager import get_registry

        registry = get_registry()
        for warning in registry.warnings:
            self._warn(warning)
        return registry

    @cached_property
    def history(self):
        """The run history, with dead runs already marked ``crashed``."""
        from workerctl.runs.history import History

        history = History(self.workspace)
        self._bring_up_to_date(history)
        return history

    def refresh(self) -> None:
        """Mark crashed runs and bring remote runs up to date again (for --watch loops)."""
        self._bring_up_to_date(self.history)

    def _bring_up_to_date(self, history) -> None:
        history.sweep()
        remote = history.remote_unfinished()
        if remote:  # loads plugins only when a remote executor has unfinished runs
            self.refresh_remote(history, remote)

    def refresh_remote(self, history, remote: dict[str, list[str]]) -> None:
        """Bring unfinished runs of remote executors (task queues) up to date."""
        for name, run_ids in remote.items():
            executor = self.registry.executors.get(name)
            refresh = getattr(executor, "refresh", None)
            if refresh is None:
                self._warn(f"{len(run_ids)} unfinished run(s) belong to executor {name!r}, "
                           "which is not installed; they cannot be brought up to date")
                continue
            try:
                refresh(history, run_ids, self.workspace)
            except Exception as exc:  # a queue that is down must not break reading
                self._warn(f"could not bring {name} runs up to date: {exc}")

    @cached_property
    def records(self):
        from workerctl.records.book import open_records

        return open_records(self.workspace, self.registry)

    @cached_property
    def engine(self):
        from workerctl.engine.loop import Engine

        return Engine(self.workspace, self.registry, self.history, self.records)

    @cached_property
    def versions(self):
        from workerctl.workers.versions import Versions

        return Versions(self.workspace)

    def worker_files(self, deep: bool = False):
        """All worker files, recording any change made on disk as a new version."""
        from workerctl.workers.files import load_all

        files = load_all(self.workspace, self.registry, deep)
        self.versions.sync({wf.name: wf.content for wf in files})
        return files
