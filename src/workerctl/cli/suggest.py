"""What a mistyped command probably meant: a typo (``workerctl.spelling``), or a habit from another
tool (``gh run view`` is ``run inspect`` or ``run watch`` here).

Every command group of workerctl is a ``SuggestingGroup`` (the root's lazy group and
``ShapedGroup`` derive from it), so every "No such command" says the same way what
to type instead.
"""

from __future__ import annotations

import click

#: words other tools use for a command workerctl names differently
HABITS: dict[str, tuple[str, ...]] = {
    "view": ("inspect", "watch"),  # gh run view
    "ls": ("list",),
    "log": ("watch", "history"),
    "logs": ("watch",),
    "status": ("inspect", "list"),
    "info": ("inspect", "show"),
    "get": ("show", "inspect"),
    "cat": ("show", "inspect"),
    "rm": ("prune", "cancel"),
    "delete": ("prune", "cancel"),
    "kill": ("cancel",),
    "stop": ("cancel",),
    "retry": ("rerun",),
    "run": ("start",),
    "check": ("validate",),
    "lint": ("validate",),
}


def suggestions(name: str, names: list[str]) -> list[str]:
    """A habit's words this group has, else the close spellings of ``name``."""
    from workerctl.spelling import close_spellings

    habit = [n for n in HABITS.get(name.lower(), ()) if n in names]
    return habit or close_spellings(name.lower(), names)


class SuggestingGroup(click.Group):
    def suggestion_names(self, ctx: click.Context) -> list[str]:
        return list(self.list_commands(ctx))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:
            # click's own guess (difflib over ``self.commands``) misses the lazy root's
            # commands and the habits; setattr: the attribute is Final in click's stubs
            setattr(exc, "possibilities", suggestions(exc.command_name, self.suggestion_names(ctx)))  # noqa: B010
            raise
