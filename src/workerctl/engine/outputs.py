"""Output modes: what happens to a run's final text.

``task_comment`` writes it as a comment on the linked task, once per run;
``review_note`` keeps it on the run for a person to read. Plugins add more
through ``register_output_modes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workerctl.engine.run_records import RunRecords
    from workerctl.records.model import Record


@dataclass(frozen=True)
class OutputMode:
    name: str
    description: str
    needs_record: tuple[str, ...] = ()  # record types it writes to; () writes nowhere
    apply: Callable[[Any, str], None] | None = None  # apply(ctx: OutputContext, text)
    # what apply writes, as the side-effect ledger names it before the write is
    # confirmed ("comment", "record", ...): an unknown or not-written effect says what
    # it would have been
    effect_kind: str = "write"


@dataclass
class OutputContext:
    """What an output mode may use: the linked record and the run's records API
    (``records.add_comment(ctx.record.id, text)`` writes once per run, through the
    same gates and ledger as a tool's writes)."""

    run_id: str
    worker: str
    record: Record | None
    records: RunRecords
    key: str
