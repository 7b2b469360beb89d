"""Options and output helpers shared by the command modules."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from workerctl.app import App

FORMATS = ("table", "json", "ndjson", "csv", "ids")

_JSON_HELP = "Print JSON: every field, or only FIELDS (comma-separated, e.g. --json id,status)."
_JQ_HELP = "Filter the JSON through a jq expression (strings print raw), e.g. --jq '.[].id'."


class FilePath(click.Path):
    """``click.Path`` that refuses an empty argument: ``''`` (an unset variable in a
    script) was read as the current folder and the error named '.'. Every path a
    command takes is one of these (``tests/test_init_target.py`` checks)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("is empty; give a path", param, ctx)
        return super().convert(value, param, ctx)


class Seconds(click.ParamType):
    """A number of seconds above 0 (``--watch 2``, ``--watch 0.5``): ``nan``, ``inf`` and
    0 are not, though ``float`` takes them (a redraw every ``nan`` seconds crashed)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        import math

        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds > 0):
            self.fail(f"{value!r} is not a number of seconds above 0 (e.g. 2 or 0.5)", param, ctx)
        return seconds


def watch_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--watch [SECONDS]``: redraw every SECONDS (2 without a value)."""
    return click.option(
        "--watch", type=Seconds(), is_flag=False, flag_value=2.0, default=None, metavar="[SECONDS]", help=help
    )


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--json [FIELDS]``, ``--jq`` and ``--format`` and pass one ``fmt``
    ("table", "json", "csv" or "ids"; ndjson and the fields are kept for ``emit``)."""

    @click.option(
        "--json",
        "json_fields",
        is_flag=False,
        flag_value="",
        default=None,
        metavar="[FIELDS]",
        help=_JSON_HELP,
    )
    @click.option("--jq", "jq_expr", metavar="EXPR", help=_JQ_HELP)
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default=None,
        help="Output format (default: table); ndjson prints one object per line.",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        json_fields: str | None = None,
        jq_expr: str | None = None,
        fmt: str | None = None,
        **kwargs: Any,
    ) -> Any:
        from workerctl.cli.shape import set_shape

        as_json = set_shape(click.get_current_context(), json_fields, jq_expr, fmt == "ndjson")
        return func(*args, fmt="json" if as_json else (fmt or "table"), **kwargs)

    return wrapper


def json_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--json [FIELDS]`` and ``--jq`` for a command printing one JSON document;
    passes ``as_json``. The command prints with ``shape.echo_json``."""

    @click.option(
        "--json",
        "json_fields",
        is_flag=False,
        flag_value="",
        default=None,
        metavar="[FIELDS]",
        help=_JSON_HELP,
    )
    @click.option("--jq", "jq_expr", metavar="EXPR", help=_JQ_HELP)
    @functools.wraps(func)
    def wrapper(*args: Any, json_fields: str | None = None, jq_expr: str | None = None, **kwargs: Any) -> Any:
        from workerctl.cli.shape import set_shape

        as_json = set_shape(click.get_current_context(), json_fields, jq_expr)
        return func(*args, as_json=as_json, **kwargs)

    return wrapper


def run_id_argument(func: Callable[..., Any]) -> Callable[..., Any]:
    """A run id given as the first argument (``run inspect 3f9k2m1x``) or with ``--id``.

    Both spellings are kept so that scripts written for ``--id`` keep working.
    """
    from workerctl.cli.complete import run_ids

    @click.argument("run_id_arg", metavar="ID", required=False, shell_complete=run_ids)
    @click.option(
        "--id",
        "run_id_opt",
        metavar="ID",
        shell_complete=run_ids,
        help="The run id (may also be given as the first argument); any unique prefix of it.",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any, run_id_arg: str | None = None, run_id_opt: str | None = None, **kwargs: Any
    ) -> Any:
        if run_id_arg and run_id_opt and run_id_arg != run_id_opt:
            raise click.UsageError(f"two run ids given ({run_id_arg} and --id {run_id_opt}); give one")
        run_id = run_id_arg or run_id_opt
        if not run_id:
            raise click.UsageError("give a run id: 'ID' or '--id ID' ('workerctl runs list' shows them)")
        return func(*args, run_id=run_id, **kwargs)

    return wrapper


def emit(
    fmt: str,
    items: list[dict[str, Any]],
    columns: list[str],
    rows: Callable[[], list[list[Any]]],
    headers: list[str],
    id_key: str = "id",
    empty: str = "nothing to show",
) -> None:
    """Print ``items`` as JSON/CSV/ids, or as a table built by ``rows()`` (``output.emit``
    with the shape the command line asked for)."""
    from workerctl.cli.output import emit as emit_as
    from workerctl.cli.shape import current_shape

    emit_as(fmt, items, columns, rows, headers, current_shape(), id_key=id_key, empty=empty)


def app(ctx: click.Context) -> App:
    """The services of this command (``workerctl.app.App``), made by the group."""
    from workerctl.app import App

    found = ctx.find_root().obj
    assert isinstance(found, App), "the workerctl group makes the App before any command runs"
    return found
