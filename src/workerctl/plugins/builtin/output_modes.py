"""The built-in output modes: ``task_comment`` and ``review_note``."""

from __future__ import annotations

from collections.abc import Callable

from workerctl.api import OutputContext, OutputMode, hookimpl


def write_task_comment(ctx: OutputContext, text: str) -> None:
    assert ctx.record is not None  # the engine links a task to a task_comment run
    ctx.records.add_comment(ctx.record.id, text)


@hookimpl
def register_output_modes(register: Callable[..., None]) -> None:
    register(
        OutputMode(
            name="task_comment",
            description="Write the output as a comment on the linked task, once per run",
            needs_record=("task",),
            apply=write_task_comment,
            effect_kind="comment",
        )
    )
    register(
        OutputMode(
            name="review_note",
            description="Keep the output on the run for a person to read; writes nowhere",
        )
    )
