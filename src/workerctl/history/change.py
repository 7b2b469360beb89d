"""The change record: one committed write of a run, as the stores derived from the run
files take it (``History._hand_over``; a reindex catching up makes the same records).

Kept apart from ``store`` so that a module that makes change records (``reindex``)
does not import the store that calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workerctl.runs.model import Run


@dataclass(frozen=True)
class Change:
    """One committed write of a run, as the derived stores take it (``_hand_over``):
    the run as written, what its run file held before (None: a new run), its slot
    and its summary as the shard now holds it. ``repair``: a write a crash may have
    cut is made again (``History.settle``): the derived stores may have missed the
    last change, so the ledger takes the run's effects in full."""

    run: Run
    stored: dict | None
    shard: int
    doc: int
    summary: dict
    repair: bool = False

    @property
    def old_status(self) -> str | None:
        return self.stored.get("status") if self.stored else None

    @property
    def status_changed(self) -> bool:
        """A new run, or a run whose status changed: what the cross-run indexes count."""
        return self.stored is None or self.old_status != self.run.status
