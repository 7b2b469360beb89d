"""The ``workerctl runs`` group: many runs at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click import Context

from workerctl.cli.common import app, emit, json_options, output_options, watch_option
from workerctl.cli.complete import error_kinds, record_ids, statuses, worker_names
from workerctl.cli.runs_list import (
    HEADERS,
    RUN_COLUMNS,
    SEARCH_HEADERS,
    check_workers,
    list_filter,
    listed,
    search_rows,
    table_rows,
    wants_output,
)
from workerctl.cli.shape import ShapedGroup, echo_json
from workerctl.terminal import terminal

#: ``runs rerun`` and ``runs cancel`` with ``--json``: the fields built here (each rerun
#: is a ``runs.bulk.BulkRerun``)
JSON_FIELDS = ("dry_run", "reruns", "cancelled", "run_id", "status", "message")

if TYPE_CHECKING:
    from workerctl.app import App
    from workerctl.runs.bulk import BulkRerun

F = TypeVar("F", bound=Callable[..., Any])

# The filters, each declared once: ``runs list`` and ``runs search`` take them all, the
# bulk actions (``runs rerun``, ``runs cancel``) the ones that name runs by where they
# came from. A click option decorator makes a new Option each time it is applied.
_WORKER = click.option(
    "--worker", multiple=True, shell_complete=worker_names, help="Only this worker (repeatable)."
)
_STATUS = click.option(
    "--status", multiple=True, shell_complete=statuses, help="Only this status (repeatable)."
)
_TASK = click.option(
    "--task",
    "--record",
    "task",
    metavar="ID",
    shell_complete=record_ids,
    help="Only runs linked to this record.",
)
_ERROR_KIND = click.option(
    "--error-kind",
    "error_kinds",
    multiple=True,
    metavar="KIND",
    shell_complete=error_kinds,
    help="Only failed runs with this error kind (repeatable), e.g. crashed.",
)
_SINCE = click.option("--since", help="Created since: a duration (2h, 7d) or a date.")
_UNTIL = click.option("--until", help="Created until: a duration ago or a date.")
_LIMIT = click.option(
    "--limit", type=click.IntRange(0), default=20, show_default=True, help="At most this many runs (0: all)."
)
_UNREVIEWED = click.option(
    "--unreviewed", is_flag=True, help="Only finished runs that need a human review and have none."
)


def _stacked(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Options in the order given, as ``--help`` lists them."""

    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


#: the filters of ``runs list`` and ``runs search``
listing_options = _stacked(_WORKER, _STATUS, _TASK, _ERROR_KIND, _SINCE, _UNTIL, _LIMIT, _UNREVIEWED)
#: the filters of ``runs list`` for the bulk actions
filter_options = _stacked(_WORKER, _TASK, _SINCE, _UNTIL)


@click.group(cls=ShapedGroup)
def runs() -> None:
    """List, search, watch, count, prune, rerun and cancel runs."""


@runs.command("list")
@listing_options
@click.option(
    "--held", is_flag=True, help="Only runs whose writes wait for a person (workerctl run approve)."
)
@watch_option("Redraw every SECONDS (default 2) while any listed run is pending, queued or running.")
@click.option(
    "--exit-status", is_flag=True, help="With --watch: exit 1 if any listed run failed or was cancelled."
)
@click.option(
    "--tries",
    is_flag=True,
    help="List the tries of changed workers ('workerctl worker try') instead of runs: kept apart from them.",
)
@click.option(
    "--search",
    "query",
    metavar="QUERY",
    help="Only runs whose outputs, errors, tool calls, comments or record match QUERY, best first "
    "(as 'runs search'; docs/search.md).",
)
@output_options
@click.pass_context
def list_cmd(
    ctx: Context,
    worker: tuple[str, ...],
    status: tuple[str, ...],
    task: str | None,
    error_kinds: tuple[str, ...],
    since: str | None,
    until: str | None,
    limit: int,
    unreviewed: bool,
    held: bool,
    watch: float | None,
    exit_status: bool,
    tries: bool,
    query: str | None,
    fmt: str,
) -> None:
    """Run cards as rows, newest first (with --search, best match first).

    A filter by worker, record, status or error kind reads only the runs it names
    (the cross-run indexes), whatever the size of the history."""
    import functools
    import time

    from workerctl.errors import EXIT_RUN_FAILED
    from workerctl.runs.states import UNFINISHED

    a = app(ctx)
    if tries:
        _list_tries(a, fmt, worker, limit)
        return
    if query is not None:
        if watch is not None or held:
            from workerctl.errors import UsageError

            raise UsageError("--search does not go with --watch or --held", hint="leave one of them out")
        items = _searched(a, query, worker, status, task, error_kinds, since, until, unreviewed, limit)
    else:
        items = listed(a, worker, status, task, error_kinds, since, until, unreviewed, limit, held=held)
        if wants_output(fmt):
            from workerctl.history.search_index import with_outputs

            with_outputs(a.history, items)
    if watch is not None:
        ids = tuple(i["id"] for i in items)
        redraw = fmt == "table" and terminal().is_terminal()
        while any(i["status"] in UNFINISHED for i in items):
            if redraw:
                click.clear()
                emit(fmt, items, RUN_COLUMNS, functools.partial(table_rows, items), HEADERS)
            time.sleep(max(watch, 0.1))
            a.refresh()
            from workerctl.history.store import RunFilter

            items = a.history.list(RunFilter(ids=ids), limit=None) if ids else []
            if wants_output(fmt):
                from workerctl.history.search_index import with_outputs

                with_outputs(a.history, items)
        if redraw:
            click.clear()
    emit(fmt, items, RUN_COLUMNS, lambda: table_rows(items), HEADERS, empty="no runs match")
    if watch is not None and exit_status and any(i["status"] in ("failed", "cancelled") for i in items):
        ctx.exit(EXIT_RUN_FAILED)


def _list_tries(a: App, fmt: str, worker: tuple[str, ...], limit: int) -> None:
    """``runs list --tries``: the recorded tries, newest first."""
    from workerctl import render
    from workerctl.runs.trial import list_tries

    docs = [d for d in list_tries(a.workspace) if not worker or d["worker"] in worker]
    docs = docs[:limit] if limit else docs

    def rows() -> list[list[Any]]:
        return [
            [
                d["try_id"],
                d["worker"],
                render.ago(d["created"]),
                d["summary"].get("runs"),
                d["summary"].get("outputs_changed"),
                d["summary"].get("newly_failing"),
                d["summary"].get("would_write"),
            ]
            for d in docs
        ]

    headers = ["try", "worker", "created", "runs", "changed", "newly failing", "writes captured"]
    emit(
        fmt,
        docs,
        ["try_id", "worker", "created", "replay", "file"],
        rows,
        headers,
        id_key="try_id",
        empty="no tries",
    )


def _searched(
    a: App,
    query: str,
    worker: tuple[str, ...],
    status: tuple[str, ...],
    task: str | None,
    error_kinds: tuple[str, ...],
    since: str | None,
    until: str | None,
    unreviewed: bool,
    limit: int,
) -> list[dict[str, Any]]:
    """The hits of a search with the ``runs list`` filters; a scan's reason on stderr."""
    from workerctl.runs.search import search

    flt = list_filter(worker, status, task, since, until, unreviewed, error_kinds)
    check_workers(a, worker)
    items, note = search(a.history, query, flt, limit or None)
    if note:
        click.echo(f"note: {note}", err=True)
    return items


@runs.command("search")
@click.argument("query")
@listing_options
@output_options
@click.pass_context
def search_cmd(
    ctx: Context,
    query: str,
    worker: tuple[str, ...],
    status: tuple[str, ...],
    task: str | None,
    error_kinds: tuple[str, ...],
    since: str | None,
    until: str | None,
    limit: int,
    unreviewed: bool,
    fmt: str,
) -> None:
    """Find runs by what they said: outputs, errors, tool calls and results, comments
    written, record ids and titles. Best match first, with the matching words.

    QUERY: words (all must match), "a phrase", prefix*, OR, NOT, NEAR(a b), a column
    (output:refund, comments:, tools:, error:, title:, ids:). Examples: 'vat rates',
    '"permission denied"', 'refund* NOT test', 'tools:denied'. See docs/search.md."""
    a = app(ctx)
    items = _searched(a, query, worker, status, task, error_kinds, since, until, unreviewed, limit)
    emit(fmt, items, RUN_COLUMNS, lambda: search_rows(items), SEARCH_HEADERS, empty="no runs match")


@runs.command("prune")
@click.option("--older-than", "older", required=True, help="Age, e.g. 90d.")
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@click.option(
    "--forget-side-effects",
    is_flag=True,
    help="Also drop their entries from the side-effect ledger (kept by default, "
    "so the duplicate guard still knows what they wrote).",
)
@json_options
@click.pass_context
def prune(ctx: Context, older: str, dry_run: bool, forget_side_effects: bool, as_json: bool) -> None:
    """Remove finished runs older than an age; unfinished runs are never removed.

    The side effects they made stay in the ledger ('workerctl ledger list')
    unless --forget-side-effects."""
    from workerctl.timeparse import parse_duration, parse_when

    parse_duration(older)
    result = app(ctx).history.prune(parse_when(older), dry_run=dry_run, forget_effects=forget_side_effects)
    if as_json:
        echo_json({**result, "dry_run": dry_run})
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {result['removed']} run(s) older than {older}"
        + (f"; kept {result['kept_unfinished']} unfinished" if result["kept_unfinished"] else "")
        + (
            f"; kept {result['kept_held']} holding a write for a person (run approve / run reject)"
            if result.get("kept_held")
            else ""
        )
    )


@runs.command("reindex")
@click.pass_context
def reindex(ctx: Context) -> None:
    """Rebuild the history index from the run files (after moving a damaged file aside)."""
    from workerctl.history.store import History

    result = History(app(ctx).workspace).reindex()
    click.echo(
        f"reindexed {result['runs']} run(s)"
        + (f"; {result['damaged']} damaged run file(s) moved aside as *.damaged" if result["damaged"] else "")
    )
    click.echo(f"search index: {result['searchable']} run file(s)")
    for line in result["moved"]:
        click.echo(f"  moved aside: {line}")
    for folder in result["kept"]:
        click.echo(f"the old index held a damaged file; it was kept in {folder}", err=True)


@runs.command("stats")
@click.option("--worker", multiple=True, shell_complete=worker_names, help="Only this worker (repeatable).")
@click.option("--since", help="Runs created since: a duration (7d) or a date.")
@click.option(
    "--by",
    "by",
    type=click.Choice(["worker", "day", "model"]),
    default="worker",
    show_default=True,
    help="Group the figures by worker, by day (UTC) or by model.",
)
@json_options
@click.pass_context
def stats(ctx: Context, worker: tuple[str, ...], since: str | None, by: str, as_json: bool) -> None:
    """Runs, failures, success rate, p50/p95 duration, tokens and estimated cost, per
    worker, day or model.

    Read from the hourly counts the history keeps (the durations to within 5 %),
    whatever the size of the history."""
    from workerctl.runs.stats import render_chart, stats_from_counts
    from workerctl.timeparse import parse_when

    a = app(ctx)
    check_workers(a, worker)
    figures = stats_from_counts(
        a.history.indexes.counts(
            since=parse_when(since) if since is not None else None, workers=tuple(worker), by=by
        )
    )
    if as_json:
        echo_json(figures)
    else:
        from workerctl import render

        click.echo(render.fit_page(render_chart(figures)))


def _confirm(question: str, yes: bool) -> bool:
    """Ask on a terminal (unless --yes); a script (no terminal) is not asked."""
    if yes or not terminal().can_prompt:
        return True
    return click.confirm(question, default=False)


@runs.command("rerun")
@click.option(
    "--failed",
    is_flag=True,
    required=True,
    help="Rerun the failed runs (required: the bulk rerun is for failures).",
)
@filter_options
@click.option("--force", is_flag=True, hidden=True, help="Overrides nothing (see --allow-repeat).")
@click.option(
    "--allow-repeat",
    is_flag=True,
    help="Rerun also what the duplicate guard refuses: an unchanged failure, or a repeat of a write.",
)
@click.option(
    "--dry-run", is_flag=True, help="Only show what would be rerun and what the duplicate guard refuses."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation on a terminal.")
@json_options
@click.pass_context
def rerun_cmd(
    ctx: Context,
    failed: bool,
    worker: tuple[str, ...],
    task: str | None,
    since: str | None,
    until: str | None,
    force: bool,
    allow_repeat: bool,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Rerun every failed run matching the filters whose worker and record have no
    newer run, each through the duplicate guard (as 'run rerun'); asks on a terminal.
    Exit 1 if any rerun failed."""
    from workerctl.errors import EXIT_RUN_FAILED
    from workerctl.runs.bulk import execute_reruns, plan_failed_reruns
    from workerctl.runs.rerun_guard import FORCE_NOTE

    if force:
        click.echo(FORCE_NOTE, err=True)
    a = app(ctx)
    check_workers(a, worker)
    flt = list_filter(worker, ("failed",), task, since, until, False)
    items = plan_failed_reruns(
        a.history,
        flt,
        records=a.records,
        registry=a.registry,
        workspace=a.workspace,
        allow_repeat=allow_repeat,
    )
    todo = [i for i in items if i.action == "rerun"]
    if not dry_run and todo and not as_json:
        _show_reruns(items, planned=True)
    if not dry_run and todo and not _confirm(f"Rerun {len(todo)} run(s)?", yes or as_json):
        click.echo("Nothing rerun.")
        return
    if not dry_run:
        execute_reruns(a.engine, items, allow_repeat=allow_repeat)
    if as_json:
        echo_json({"dry_run": dry_run, "reruns": [i.to_dict() for i in items]})
    else:
        _show_reruns(items, planned=dry_run)
    if any(i.new_status in ("failed", "cancelled") for i in items):
        ctx.exit(EXIT_RUN_FAILED)


def _show_reruns(items: list[BulkRerun], planned: bool) -> None:
    from workerctl import render

    if not items:
        click.echo("no failed runs match")
        return
    rows = []
    for i in items:
        run = i.plan.run
        if i.action == "rerun" and not planned:
            what = f"rerun as {i.new_run_id}: {render.status_cell(i.new_status or '?')}"
        else:
            what = {
                "rerun": "would rerun" if planned else "rerun",
                "refused": "REFUSED",
                "superseded": "skipped",
            }[i.action]
        rows.append(
            [
                run.id,
                run.worker,
                run.record_id or "-",
                run.error.kind if run.error else "-",
                what,
                render.cut(i.reason, 70),
            ]
        )
    click.echo(render.table(rows, ["failed run", "worker", "record", "error", "action", "why"]))
    counts: dict[str, int] = {}
    for i in items:
        counts[i.action] = counts.get(i.action, 0) + 1
    click.echo(", ".join(f"{n} {k}" for k, n in counts.items()))


@runs.command("cancel")
@filter_options
@click.option(
    "--status",
    multiple=True,
    type=click.Choice(["pending", "queued", "running"]),
    help="Only runs in this state (repeatable; default: all three).",
)
@click.option(
    "--all", "everything", is_flag=True, help="Cancel every unfinished run (needed when no filter is given)."
)
@click.option("--dry-run", is_flag=True, help="Only list what would be cancelled.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation on a terminal.")
@json_options
@click.pass_context
def cancel_cmd(
    ctx: Context,
    worker: tuple[str, ...],
    task: str | None,
    since: str | None,
    until: str | None,
    status: tuple[str, ...],
    everything: bool,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Cancel every pending, queued or running run matching the filters (a detached
    or remote one is stopped, as 'run cancel'); asks on a terminal."""
    import getpass

    from workerctl import render
    from workerctl.errors import UsageError
    from workerctl.runs.bulk import cancel_many, unfinished_matching

    a = app(ctx)
    if not (worker or task or since or until or status or everything):
        raise UsageError(
            "give a filter (--worker, --task, --since, --until, --status) or --all",
            hint="'workerctl runs list --status running' shows them",
        )
    check_workers(a, worker)
    flt = list_filter(worker, status or ("pending", "queued", "running"), task, since, until, False)
    found = unfinished_matching(a.history, flt)
    if not found:
        if as_json:
            echo_json({"dry_run": dry_run, "cancelled": []})
        else:
            click.echo("no unfinished runs match")
        return
    if not as_json:
        click.echo(
            render.table(
                [
                    [
                        render.status_cell(d["status"]),
                        d["id"],
                        d["worker"],
                        d.get("record_id") or "-",
                        render.ago(d["created"]),
                    ]
                    for d in found
                ],
                ["status", "id", "worker", "record", "created"],
            )
        )
    if dry_run:
        if as_json:
            echo_json(
                {
                    "dry_run": True,
                    "cancelled": [
                        {"run_id": d["id"], "cancelled": False, "status": d["status"], "message": "dry run"}
                        for d in found
                    ],
                }
            )
        else:
            click.echo(f"would cancel {render.plural(len(found), 'run')}")
        return
    if not _confirm(f"Cancel {render.plural(len(found), 'run')}?", yes or as_json):
        click.echo("Nothing cancelled.")
        return
    results = cancel_many(
        a.history, [d["id"] for d in found], by=getpass.getuser(), registry=lambda: a.registry
    )
    if as_json:
        echo_json({"dry_run": False, "cancelled": results})
        return
    done = [r for r in results if r["cancelled"]]
    for r in results:
        if not r["cancelled"]:
            click.echo(f"{r['run_id']}: not cancelled: {r['message']}")
    click.echo(f"cancelled {render.plural(len(done), 'run')}")
