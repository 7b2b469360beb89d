"""``workerctl records``: the business records runs act on."""

from __future__ import annotations

from typing import Any

import click
from click import Context

from workerctl.cli.common import FilePath, app, emit, json_options, output_options
from workerctl.cli.complete import record_ids
from workerctl.cli.shape import ShapedGroup, echo_json

#: what the listing adds to a ``Record``'s fields
JSON_FIELDS = ("status", "due", "comments", "dry_run", "added", "replaced")
#: ``records sources --json``: each source's fields
SOURCE_FIELDS = ("name", "kind", "types", "where", "answers", "status")


@click.group(cls=ShapedGroup)
def records() -> None:
    """The business records runs act on."""


@records.command("list")
@click.option("--type", "rtype", help="Only records of this type (task, project, ...).")
@output_options
@click.pass_context
def list_cmd(ctx: Context, rtype: str | None, fmt: str) -> None:
    """Every record: id, type, title, status, due date, links."""
    from workerctl import render
    from workerctl.records.select import record_document

    items = [record_document(r) for r in sorted(app(ctx).records.list(rtype), key=lambda r: r.id)]

    from workerctl.terminal import terminal

    paged = terminal().page_width() is not None  # a pipe no COLUMNS describes gets every character

    def cut(text: str, room: int) -> str:
        return render.cut(text, room) if paged else text

    def rows() -> list[list[Any]]:
        return [
            [
                i["id"],
                i["type"],
                cut(i["title"], 44),
                i["status"] or "-",
                i["due"] or "-",
                "yes" if i["safe_for_testing"] else "",
                cut("; ".join(f"{k}: {render.plain(v)}" for k, v in i["links"].items()), 50),
            ]
            for i in items
        ]

    emit(
        fmt,
        items,
        ["id", "type", "title", "status", "due", "safe_for_testing", "source"],
        rows,
        ["id", "type", "title", "status", "due", "test-safe", "links"],
        empty="no records" + (f" of type {rtype}" if rtype else ""),
    )


@records.command("sources")
@output_options
@click.pass_context
def sources_cmd(ctx: Context, fmt: str) -> None:
    """Every record source: its kind, where its records live, and whether it answers now.

    Exit 1 when a source does not answer (its line says why and the fix)."""
    from workerctl.records.book import source_status

    items = source_status(app(ctx).records)

    def rows() -> list[list[Any]]:
        return [[i["name"], i["kind"], ", ".join(i["types"]), i["where"], i["status"]] for i in items]

    emit(fmt, items, ["name", "kind", "types", "where", "answers", "status"], rows,
         ["name", "kind", "types", "where", "status"], id_key="name", empty="no record sources")  # fmt: skip
    if not all(i["answers"] for i in items):
        ctx.exit(1)


@records.command("show")
@click.argument("record_id", shell_complete=record_ids)
@json_options
@click.pass_context
def show(ctx: Context, record_id: str, as_json: bool) -> None:
    """One record: fields, links, and the comments (with the run that wrote each)."""
    from dataclasses import asdict

    from workerctl import render

    a = app(ctx)
    record = a.records.require(record_id)
    comments = [asdict(c) for c in a.records.comments(record_id)]
    if as_json:
        echo_json({**record.to_dict(), "comments": comments})  # status and due stay in fields
        return
    lines = [render.colour(f"{record.type} {record.id}", bold=True) + f" — {record.title}"]
    for key, value in record.fields.items():
        lines.append(f"  {key + ':':<14}{render.plain(value)}")
    for key, value in record.links.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        lines.append(f"  {'→ ' + key + ':':<14}{shown}")
    if record.safe_for_testing:
        lines.append("  safe for testing: draft workers may run here")
    if record.restricted_to is not None:
        lines.append(f"  restricted to: {', '.join(record.restricted_to) or 'nobody'}")
    lines.append(f"\nComments ({len(comments)})")
    for c in comments:
        by = f"{c['author']}" + (f" (run {c['run_id']})" if c["run_id"] else "")
        lines.append(f"  [{c['id']}] {by}, {render.ago(c['created'])}:")
        lines += [f"      {line}" for line in c["text"].rstrip().splitlines()]
    click.echo(render.fit_page("\n".join(lines)))  # a text block: fitted to the page, as a card is


@records.command("import")
@click.argument("path", type=FilePath(dir_okay=False, allow_dash=True))
@click.option(
    "--dry-run", is_flag=True, help="Validate and say what would be added or replaced; write nothing."
)
@json_options
@click.pass_context
def import_cmd(ctx: Context, path: str, dry_run: bool, as_json: bool) -> None:
    """Add or replace records from PATH (- reads standard input): a YAML or JSON list,
    one record as 'records show --json' prints it, or JSON lines. Every record is
    validated first; one invalid record imports nothing (exit 2). Each record goes to
    the record source that owns its type."""
    from pathlib import Path

    from workerctl import render
    from workerctl.records.builtin_store import load_record_file, read_stdin_records

    source = Path("<stdin>") if path == "-" else Path(path)
    items = load_record_file(source, read_stdin_records() if path == "-" else None)
    plan = app(ctx).records.import_records(items, str(source), dry_run=dry_run)
    if as_json:
        echo_json({"dry_run": dry_run, "added": plan.added, "replaced": plan.replaced})
        return
    verb = "would import" if dry_run else "imported"
    count = render.plural(len(plan.added) + len(plan.replaced), "record")
    click.echo(f"{verb} {count}: {len(plan.added)} new, {len(plan.replaced)} replaced")
