"""``workerctl init``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from click import Context

if TYPE_CHECKING:
    from pathlib import Path

from workerctl.cli.common import FilePath, app


@click.command()
@click.argument("directory", required=False, type=FilePath(file_okay=False))
@click.pass_context
def init(ctx: Context, directory: str | None) -> None:
    """Make a new workspace in DIRECTORY with example workers and sample records.

    DIRECTORY defaults to the folder given with -w/--workspace, else the current
    folder ($WORKERCTL_WORKSPACE is not used: init makes a workspace where you say).
    """

    from workerctl.history.store import History
    from workerctl.runs.search import start_index
    from workerctl.workspace import init_workspace

    target = _target(directory, app(ctx).workspace_option)
    workspace = init_workspace(target, app(ctx).registry)
    start_index(History(workspace))
    click.echo(f"Made a workspace in {workspace.root}")
    click.echo("  workers:  " + ", ".join(sorted(p.stem for p in workspace.workers_dir.glob("*.yaml"))))
    click.echo(f"  records:  {workspace.records_file}")
    click.echo(f"Try: workerctl -w {workspace.root} run start overdue-task-review --task T-1042")


def _target(directory: str | None, option: str | None) -> Path:
    """Where to make the workspace: a -w given before ``init`` is where the user then
    expects it (it was made in the current folder instead, and named there)."""
    from pathlib import Path

    if directory is None:
        return Path(option if option is not None else ".")
    if option is not None and Path(option).absolute() != Path(directory).absolute():
        raise click.UsageError(
            f"DIRECTORY {directory!r} and --workspace {option!r} name two folders; give one of them"
        )
    return Path(directory)
