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
