"""The ``workerctl`` command: a lazy group so start-up imports only click.

Each command group lives in its own module and is imported only when used;
``workerctl --help`` shows the short help from the table below without importing
any of them.
"""

from __future__ import annotations

import importlib
import sys

import click

from workerctl import __version__

# name -> (module:attribute, short help)
COMMANDS = {
    "init": ("workerctl.cli.init:init", "Make a new workspace with sample workers and records."),
    "workers": ("workerctl.cli.workers:workers", "List workers."),
    "worker": ("workerctl.cli.workers:worker", "Show, create, edit, validate and version a worker."),
    "templates": ("workerctl.cli.templates:templates", "The catalogue of worker templates."),
    "run": ("workerctl.cli.run:run", "Start, watch, inspect, diff, troubleshoot, review, rerun or cancel."),
    "runs": ("workerctl.cli.runs:runs", "List, watch, count, prune, rerun and cancel runs."),
    "ledger": ("workerctl.cli.ledger:ledger", "Side effects runs made; settle unknown ones."),
    "records": ("workerctl.cli.records:records", "The business records runs act on."),
    "plugins": ("workerctl.cli.plugins:plugins", "Installed plugins and the hooks they implement."),
    "tools": ("workerctl.cli.plugins:tools", "Tools workers can call, by category."),
    "executors": ("workerctl.cli.plugins:executors", "Installed executors."),
    "completion": ("workerctl.cli.completion:completion", "Print a shell completion script."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        spec = COMMANDS.get(name)
        if spec is None:
            return self._plugin_command(name)
        module_name, attr = spec[0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    @staticmethod
    def _plugin_command(name):
        """Commands from plugins: loaded only when a name is not a built-in one."""
        if not name or name.startswith("-"):
            return None
        from workerctl.plugins.manager import get_registry, plugin_commands

        found = plugin_commands(get_registry()).get(name)
        return found[1] if found else None

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        with formatter.section("Plugin commands"):
            formatter.write_text("Plugins may add more ('workerctl plugins list' shows them).")

    def invoke(self, ctx):
        from workerctl.errors import WorkerctlError

        try:
            return super().invoke(ctx)
        except WorkerctlError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            sys.stderr.close()
            ctx.exit(0)
        except OSError as exc:
            # the operating system refused a file operation somewhere storage/ did not
            # wrap it: one line naming the path and the cause, exit 4, no traceback
            from workerctl.errors import EXIT_HISTORY

            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(EXIT_HISTORY)
        except KeyboardInterrupt:  # Ctrl-C: the shell convention is 128 + SIGINT
            from workerctl.errors import EXIT_INTERRUPTED

            click.echo("", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-w", "--workspace", metavar="DIR",
              help="Workspace folder (default: $WORKERCTL_WORKSPACE, else the nearest parent "
                   "folder holding workerctl.yaml).")
@click.version_option(__version__, prog_name="workerctl")
@click.pass_context
def cli(ctx, workspace):
    """Run AI workers, record every run, troubleshoot failures and review output.

    Exit codes: 0 ok; 1 a run failed; 2 bad usage or invalid configuration;
    3 not found; 4 the history is locked or damaged; 5 a start refused as a
    duplicate (nothing ran); 130 interrupted (Ctrl-C).
    """
    from workerctl.app import App

    ctx.obj = App(workspace)


def main() -> None:
    cli(prog_name="workerctl")
