"""Options and output helpers shared by the command modules."""

from __future__ import annotations

import functools

import click

FORMATS = ("table", "json", "csv", "ids")


def output_options(func):
    """Add ``--json`` and ``--format`` and pass a single ``fmt`` to the command."""

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                  help="Output format (default: table).")
    @functools.wraps(func)
    def wrapper(*args, as_json=False, fmt=None, **kwargs):
        return func(*args, fmt="json" if as_json else (fmt or "table"), **kwargs)

    return wrapper


def run_id_argument(func):
    """A run id given as the first argument (``run inspect 3f9k2m1x``) or with ``--id``.

    Both spellings are kept so that scripts written for ``--id`` keep working.
    """
    from workerctl.cli.complete import run_ids

    @click.argument("run_id_arg", metavar="ID", required=False, shell_complete=run_ids)
    @click.option("--id", "run_id_opt", metavar="ID", shell_complete=run_ids,
                  help="The run id (may also be given as the first argument); any unique "
                       "prefix of it.")
    @functools.wraps(func)
    def wrapper(*args, run_id_arg=None, run_id_opt=None, **kwargs):
        if run_id_arg and run_id_opt and run_id_arg != run_id_opt:
            raise click.UsageError(f"two run ids given ({run_id_arg} and --id {run_id_opt}); "
                                   "give one")
        run_id = run_id_arg or run_id_opt
        if not run_id:
            raise click.UsageError("give a run id: 'ID' or '--id ID' ('workerctl runs list' "
                                   "shows them)")
        return func(*args, run_id=run_id, **kwargs)

    return wrapper


def emit(fmt: str, items: list[dict], columns: list[str], rows, headers: list[str],
         id_key: str = "id", empty: str = "nothing to show") -> None:
    """Print ``items`` as JSON/CSV/ids, or as a table built by ``rows()``."""
    from workerctl import render

    if fmt == "json":
        click.echo(render.to_json(items))
    elif fmt == "csv":
        click.echo(render.to_csv(items, columns))
    elif fmt == "ids":
        for item in items:
            click.echo(item[id_key])
    elif not items:
        click.echo(empty, err=True)
    else:
        click.echo(render.table(rows(), headers))


def app(ctx: click.Context):
    return ctx.find_root().obj
