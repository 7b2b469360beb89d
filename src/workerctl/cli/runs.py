"""The ``workerctl runs`` group: many runs at a time."""

from __future__ import annotations

import sys

import click

from workerctl.cli.common import app, emit, json_options, output_options
from workerctl.cli.complete import record_ids, worker_names
from workerctl.cli.shape import ShapedGroup, echo_json

RUN_COLUMNS = ["id", "status", "worker", "record_id", "created", "started", "finished",
               "duration", "trigger", "executor", "preview", "error_kind", "error_message",
               "needs_review", "review", "rerun_of", "iterations", "tokens", "side_effects",
               "config_hash"]


@click.group(cls=ShapedGroup)
def runs():
    """List, watch, count and prune runs."""


def _filter(worker, status, task, since, until, unreviewed):
    from workerctl.runs.history import RunFilter
    from workerctl.runs.model import STATES
    from workerctl.timeparse import parse_when

    for s in status:
        if s not in STATES:
            from workerctl.errors import UsageError

            raise UsageError(f"unknown status {s!r}", hint=f"use one of: {', '.join(STATES)}")
    return RunFilter(workers=tuple(worker), statuses=tuple(status), record_id=task,
                     since=parse_when(since) if since else None,
                     until=parse_when(until) if until else None, unreviewed=unreviewed)


def _check_workers(a, names) -> None:
    """A worker named in a filter must exist (a file, or runs in the history): a typo
    is exit 3, not "no runs match"."""
    from workerctl.errors import NotFoundError
    from workerctl.runs.history import RunFilter
    from workerctl.workers.files import find_path

    for name in names:
        try:
            find_path(a.workspace, name)
        except NotFoundError as missing:
            if not a.history.list(RunFilter(workers=(name,)), limit=1):
                raise NotFoundError(f"no worker named {name!r}, and no runs of one",
                                    hint=missing.hint) from None


def _table_rows(items):
    from workerctl import render

    width = render.term_width()
    rows = []
    for r in items:
        if r["status"] == "failed":
            tail = f"{r['error_kind']}: {r['error_message']}"
        elif r.get("needs_review") and not r.get("review") and r["status"] == "completed":
            tail = "[needs human review] " + (r["preview"] or "")
        else:
            tail = r["preview"] or ""
        rows.append([render.status_cell(r["status"]), r["id"], r["worker"], r["record_id"] or "-",
                     render.ago(r["created"]), render.duration(r["duration"]), tail])
    used = max((sum(len(str(c)) + 2 for c in row[:-1]) for row in rows), default=60)
    room = max(12, width - used - 4)
    for row in rows:
        row[-1] = render.cut(row[-1], room)
    return rows


HEADERS = ["status", "id", "worker", "record", "created", "duration", "output / error"]


@runs.command("list")
@click.option("--worker", multiple=True, shell_complete=worker_names,
              help="Only this worker (repeatable).")
@click.option("--status", multiple=True, help="Only this status (repeatable).")
@click.option("--task", "--record", "task", metavar="ID", shell_complete=record_ids,
              help="Only runs linked to this record.")
@click.option("--since", help="Created since: a duration (2h, 7d) or a date.")
@click.option("--until", help="Created until: a duration ago or a date.")
@click.option("--limit", type=click.IntRange(0), default=20, show_default=True,
              help="At most this many runs (0: all).")
@click.option("--unreviewed", is_flag=True, help="Only finished runs that need a human "
                                                  "review and have none.")
@click.option("--watch", type=float, is_flag=False, flag_value=2.0, default=None,
              metavar="[SECONDS]", help="Redraw every SECONDS (default 2) while any listed run "
                                        "is pending, queued or running.")
@click.option("--exit-status", is_flag=True, help="With --watch: exit 1 if any listed run "
                                                   "failed or was cancelled.")
@output_options
@click.pass_context
def list_cmd(ctx, worker, status, task, since, until, limit, unreviewed, watch, exit_status, fmt):
    """Run cards as rows, newest first."""
    import functools
    import time

    from workerctl.errors import EXIT_RUN_FAILED
    from workerctl.runs.model import UNFINISHED

    a = app(ctx)
    flt = _filter(worker, status, task, since, until, unreviewed)
    _check_workers(a, worker)
    items = a.history.list(flt, limit=limit or None)
    if watch is not None:
        ids = tuple(i["id"] for i in items)
        redraw = fmt == "table" and sys.stdout.isatty()
        while any(i["status"] in UNFINISHED for i in items):
            if redraw:
                click.clear()
                emit(fmt, items, RUN_COLUMNS, functools.partial(_table_rows, items), HEADERS)
            time.sleep(max(watch, 0.1))
            a.refresh()
            from workerctl.runs.history import RunFilter

            items = a.history.list(RunFilter(ids=ids), limit=None) if ids else []
        if redraw:
            click.clear()
    emit(fmt, items, RUN_COLUMNS, lambda: _table_rows(items), HEADERS,
         empty="no runs match")
    if watch is not None and exit_status and any(
            i["status"] in ("failed", "cancelled") for i in items):
        ctx.exit(EXIT_RUN_FAILED)


@runs.command("prune")
@click.option("--older-than", "older", required=True, help="Age, e.g. 90d.")
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@json_options
@click.pass_context
def prune(ctx, older, dry_run, as_json):
    """Remove finished runs older than an age; unfinished runs are never removed."""
    from workerctl.timeparse import parse_duration, parse_when

    parse_duration(older)
    result = app(ctx).history.prune(parse_when(older), dry_run=dry_run)
    if as_json:
        echo_json({**result, "dry_run": dry_run})
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {result['removed']} run(s) older than {older}"
               + (f"; kept {result['kept_unfinished']} unfinished" if result["kept_unfinished"]
                  else ""))


@runs.command("reindex")
@click.pass_context
def reindex(ctx):
    """Rebuild the history index from the run files (after moving a damaged file aside)."""
    from workerctl.runs.history import History

    result = History(app(ctx).workspace).reindex()
    click.echo(f"reindexed {result['runs']} run(s)"
               + (f"; {result['damaged']} damaged run file(s) moved aside as *.damaged"
                  if result["damaged"] else ""))
    for line in result["moved"]:
        click.echo(f"  moved aside: {line}")
    for folder in result["kept"]:
        click.echo(f"the old index had a damaged shard; it was kept in {folder}", err=True)


@runs.command("stats")
@click.option("--worker", multiple=True, shell_complete=worker_names,
              help="Only this worker (repeatable).")
@click.option("--since", help="Runs created since: a duration (7d) or a date.")
@json_options
@click.pass_context
def stats(ctx, worker, since, as_json):
    """Counts by status, success rate, p50/p95 duration and tokens per worker."""
    from workerctl.runs.stats import compute, render_chart

    a = app(ctx)
    flt = _filter(worker, (), None, since, None, False)
    _check_workers(a, worker)
    figures = compute(a.history.iter_summaries(flt))
    if as_json:
        echo_json(figures)
    else:
        click.echo(render_chart(figures))
