"""The heartbeat a run's executing process keeps while it works.

A run executed on another host (or whose pid cannot be checked) is judged
alive by this file's modification time; see ``runs.liveness``.
"""

from __future__ import annotations

import threading

from workerctl.errors import StorageError
from workerctl.runs.history import History

HEARTBEAT_SECONDS = 5.0


class Heartbeat:
    """Touches the run's heartbeat file while it executes (for remote stale checks)."""

    def __init__(self, history: History, run_id: str, every: float = HEARTBEAT_SECONDS) -> None:
        self.history, self.run_id, self.every = history, run_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def start(self) -> None:
        # the first beat comes after one interval: until then the marker's own
        # time stands in for it, and short runs never touch the file at all
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.history.heartbeat(self.run_id)
            except (OSError, StorageError):
                return

    def stop(self) -> None:
        self._stop.set()
