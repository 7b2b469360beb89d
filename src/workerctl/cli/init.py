"""``workerctl init``."""

import click
from click import Context

from workerctl.cli.common import app


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.pass_context
def init(ctx: Context, directory: str) -> None:
    """Make a new workspace in DIRECTORY with example workers and sample records."""
    from pathlib import Path

    from workerctl.history.store import History
    from workerctl.runs.search import start_index
    from workerctl.workspace import init_workspace

    workspace = init_workspace(Path(directory), app(ctx).registry)
    start_index(History(workspace))
    click.echo(f"Made a workspace in {workspace.root}")
    click.echo("  workers:  " + ", ".join(sorted(p.stem for p in workspace.workers_dir.glob("*.yaml"))))
    click.echo(f"  records:  {workspace.records_file}")
    click.echo(f"Try: workerctl -w {workspace.root} run start overdue-task-review --task T-1042")
