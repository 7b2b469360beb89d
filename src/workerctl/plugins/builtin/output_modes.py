"""The built-in output modes: ``task_comment`` and ``review_note``."""

from workerctl.api import OutputMode, hookimpl


def write_task_comment(ctx, text: str) -> None:
    comment, created = ctx.records.add_comment(
        ctx.record.id, text, author=f"worker:{ctx.worker}", run_id=ctx.run_id, key=ctx.key
    )
    ctx.side_effects.append(
        {
            "kind": "comment",
            "record_id": ctx.record.id,
            "comment_id": comment.id,
            "key": ctx.key,
            "created": created,
            "by": "output_mode",
        }
    )


@hookimpl
def register_output_modes(register):
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
