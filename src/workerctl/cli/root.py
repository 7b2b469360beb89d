"""The ``workerctl`` click group: lazy, so a command imports only its own module.

Each command group lives in its own module and is imported only when used; the
group's help lists the short help from ``cli.commands`` without importing any of
them. Heavy modules (yaml, pluggy, tinydb, jq) are imported inside the functions
that need them, so ``workerctl --help`` imports none of them (``tests/test_startup.py``
holds each invocation to a declared budget of modules).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import click
from click import Context

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

from workerctl.cli.commands import COMMANDS
from workerctl.cli.failures import DEBUG_ENV, ENDINGS, decide, failure, plugin_failure, stdout_closed
from workerctl.cli.suggest import SuggestingGroup
from workerctl.version import __version__

PLUGIN_COMMANDS_NOTE = "Plugins may add more ('workerctl plugins list' shows them)."
PLUGIN_COMMANDS_MORE = "Plugins may add others ('workerctl plugins list' shows them)."


class LazyGroup(SuggestingGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plugin_of: dict[str, str] = {}  # plugin command name -> the plugin adding it

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Every argument, the command's included, must be text: bytes that are not
        UTF-8 (Python hands them over as lone surrogates) would be stored in a run or
        a file name and fail there with a traceback. Refused here, once, naming them."""
        for position, arg in enumerate(args, 1):
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                try:
                    raw = arg.encode("utf-8", "surrogateescape")  # the bytes as given
                except UnicodeEncodeError:
                    raw = arg.encode("utf-8", "backslashreplace")
                raise click.UsageError(
                    f"argument {position} is not UTF-8 text: {raw!r}; workerctl takes text in UTF-8"
                ) from None
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: Context) -> list[str]:
        return sorted(COMMANDS)

    def plugin_command_names(self) -> list[str]:
        """The plugins' commands: those declared in package metadata, and those their
        ``register_commands`` adds (loads the plugins: only for completion and typos)."""
        from workerctl.plugins.declared import declared_commands
        from workerctl.plugins.manager import get_registry, plugin_commands

        names = set(declared_commands()) - set(COMMANDS)
        try:
            names.update(plugin_commands(get_registry()))
        except Exception:  # a broken plugin must not break completion or an error message
            return sorted(names)
        return sorted(names)

    def suggestion_names(self, ctx: Context) -> list[str]:
        return [*self.list_commands(ctx), *self.plugin_command_names()]

    def shell_complete(self, ctx: Context, incomplete: str) -> list[CompletionItem]:
        from click.shell_completion import CompletionItem

        items = super().shell_complete(ctx, incomplete)
        known = {item.value for item in items}
        return items + [
            CompletionItem(name)
            for name in self.plugin_command_names()
            if name.startswith(incomplete) and name not in known
        ]

    def get_command(self, ctx: Context, name: str) -> click.Command | None:
        spec = COMMANDS.get(name)
        if spec is None:
            added = self._plugin_command(name)
            if added is None and name and not ctx.resilient_parsing:  # not completion
                _declared_but_missing(name)
            return added
        module_name, attr = spec[0].split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def _plugin_command(self, name: str) -> click.Command | None:
        """Commands from plugins: loaded only when a name is not a built-in one."""
        if not name or name.startswith("-"):
            return None
        from workerctl.plugins.manager import get_registry, plugin_commands

        found = plugin_commands(get_registry()).get(name)
        if not found:
            return None
        self.plugin_of[name] = found[0]
        command: click.Command = found[1]
        return command

    def format_commands(self, ctx: Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        from workerctl.plugins.declared import declared_commands

        # read from the plugins' package metadata, without loading any plugin
        declared = [d for name, d in sorted(declared_commands().items()) if name not in COMMANDS]
        with formatter.section("Plugin commands"):
            if declared:
                formatter.write_dl([(d.name, f"{d.summary} ({d.package})".lstrip()) for d in declared])
                formatter.write_paragraph()
                formatter.write_text(PLUGIN_COMMANDS_MORE)
            else:
                formatter.write_text(PLUGIN_COMMANDS_NOTE)

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        from workerctl.sanitize import guard_streams
        from workerctl.terminal import terminal

        # every write of the command passes the one sanitizer (sanitize.py); colour codes
        # pass only when the terminal object's policy has colour on
        guard_streams(lambda err: terminal().colour(err))
        main = super().main
        if not standalone_mode:
            return main(args, prog_name, complete_var, standalone_mode=False, **extra)
        return _standalone(lambda: main(args, prog_name, complete_var, standalone_mode=False, **extra))

    def invoke(self, ctx: Context) -> Any:
        from workerctl.errors import WorkerctlError, stop_within
        from workerctl.terminal import terminal

        decide(0)  # each command decides its own (one process may run several: tests)
        try:
            super().invoke(ctx)
            ctx.exit(0)  # as click's standalone mode ends: whatever the command returned
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own endings (usage errors, --help, exit codes): click prints them
        except KeyboardInterrupt:
            raise  # Ctrl-C ends in cli.main, the one place every stop signal ends
        except WorkerctlError as exc:
            message, code = failure(exc)
        except Exception as exc:
            stop = stop_within(exc)
            if stop is not None:
                raise stop from None  # a stop signal's, wrapped on its way: cli.main ends it
            plugin = self.plugin_of.get(ctx.invoked_subcommand or "")
            if plugin is not None and not (isinstance(exc, BrokenPipeError) and stdout_closed()):
                # a plugin's own command: whatever it raised (an OSError from its own
                # socket too) is the plugin's failure, not the history's
                if os.environ.get(DEBUG_ENV):
                    raise
                message, code = failure(plugin_failure(plugin, ctx.invoked_subcommand or "", exc))
            elif isinstance(exc, ENDINGS):
                message, code = failure(exc)
            else:
                raise  # a bug in workerctl itself keeps its traceback
        if message is not None:  # names a path, an id, a plugin's words: data
            click.echo(terminal().show(message), err=True)
        ctx.exit(code)


def _standalone(outcome: Callable[[], Any]) -> NoReturn:
    """End as click's standalone mode does (usage errors shown, exit 2; an ``Abort``
    says "Aborted!", exit 1; ``ctx.exit(code)`` exits ``code``), except for Ctrl-C:
    click turns a ``KeyboardInterrupt`` anywhere in its ``main`` (making the context,
    parsing, tearing down) into "Aborted!" and exit 1. It goes on up as the
    ``KeyboardInterrupt`` it was, to ``cli.main``, which ends every stop signal: exit
    130 (click has already written the newline after ^C)."""
    try:
        code = outcome()
    except click.exceptions.Abort as abort:
        if isinstance(abort.__cause__, KeyboardInterrupt):
            raise abort.__cause__ from None
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _declared_but_missing(name: str) -> None:
    """A command a package declares (``--help`` lists it) that no plugin added: its
    plugin failed to load or in ``register_commands``; say so, quoting that package's
    own plugins' problem (never another plugin's), instead of "No such command"."""
    from workerctl.errors import PluginFailed
    from workerctl.plugins.declared import declared_commands
    from workerctl.plugins.manager import get_registry, plugins_of_package

    declared = declared_commands().get(name)
    if declared is None:
        return
    registry = get_registry()
    own = tuple(f"plugin {plugin!r} " for plugin in plugins_of_package(registry, declared.package))
    why = [" ".join(w.split()) for w in registry.warnings if own and w.startswith(own)]
    raise PluginFailed(
        f"command {name!r} is declared by package {declared.package!r} but no plugin added it"
        + (f": {why[0]}" if why else "")
        + "; this is a bug in the plugin ('workerctl plugins list' shows every plugin problem)"
    )


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-w",
    "--workspace",
    metavar="DIR",
    help="Workspace folder (default: $WORKERCTL_WORKSPACE, else the "
    "nearest parent folder holding workerctl.yaml).",
)
@click.version_option(__version__, prog_name="workerctl")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None) -> None:
    """Run AI workers, record every run, troubleshoot failures and review output.

    Exit codes: 0 ok; 1 a run (or a plugin's command) failed; 2 bad usage or invalid configuration;
    3 not found; 4 the history is locked or damaged; 5 a start refused (a
    repeat, an unchanged failure, a paused or draft worker: nothing ran);
    130 interrupted (Ctrl-C); 129 or 143 stopped by SIGHUP or SIGTERM.
    """
    from workerctl.app import App
    from workerctl.terminal import terminal

    # click strips colour codes off a terminal unless told: the terminal's policy
    # decides instead (FORCE_COLOR colours a pipe; NO_COLOR strips even on a terminal)
    ctx.color = terminal().colour()
    ctx.obj = App(workspace)
