"""``workerctl completion bash|zsh|fish``: click's completion script."""

import click


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the completion script; e.g. eval "$(workerctl completion bash)"."""
    from click.shell_completion import get_completion_class

    from workerctl.cli import cli

    cls = get_completion_class(shell)
    comp = cls(cli, {}, "workerctl", "_WORKERCTL_COMPLETE")
    click.echo(comp.source())
