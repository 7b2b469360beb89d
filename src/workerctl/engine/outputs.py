"""Output modes: what happens to a run's final text.

``task_comment`` writes it as a comment on the linked task, once per run;
``review_note`` keeps it on the run for a person to read. Plugins add more
through ``register_output_modes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
    """What an output mode may use; ``key`` makes its write idempotent per run."""

    run_id: str
    worker: str
    record: Any  # workerctl.records.builtin_store.Record or None
    records: Any  # workerctl.records.builtin_store.RecordBook
    key: str
    side_effects: list[dict]
