"""``workerctl completion bash|zsh|fish``: click's completion script."""

from __future__ import annotations

import click


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script; e.g. eval "$(workerctl completion bash)"."""
    from click.shell_completion import get_completion_class

    from workerctl.cli import cli

    cls = get_completion_class(shell)
    assert cls is not None, shell  # click.Choice let only the shells click knows through
    comp = cls(cli, {}, "workerctl", "_WORKERCTL_COMPLETE")
    click.echo(comp.source())
