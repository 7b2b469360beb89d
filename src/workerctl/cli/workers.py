"""``workerctl workers list`` and the ``workerctl worker`` group."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from click import Context

from workerctl.cli.common import FilePath, app, emit, json_options, output_options, watch_option
from workerctl.cli.complete import run_ids, worker_names
from workerctl.cli.shape import ShapedGroup, echo_json
from workerctl.terminal import terminal

WORKER_COLUMNS = [
    "name",
    "status",
    "output_mode",
    "template",
    "executor",
    "last_run",
    "last_status",
    "last_run_at",
    "success_rate",
]

#: ``worker show --json`` and ``worker validate --json``: the fields built here
JSON_FIELDS = (
    "name",
    "description",
    "status",
    "output_mode",
    "template",
    "context_sources",
    "tool_categories",
    "max_iterations",
    "timeout",
    "executor",
    "executor_settings",
    "needs_review",
    "reasons",
    "output_contract",
    "config_hash",
    "file",
    "instructions",
    "recent_runs",
    "files",
    "valid",
    "problems",
)

if TYPE_CHECKING:
    from workerctl.app import App
    from workerctl.workers.model import Worker


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


@click.group(cls=ShapedGroup)
def workers() -> None:
    """List workers."""


@workers.command("list")
@output_options
@click.pass_context
def workers_list(ctx: Context, fmt: str) -> None:
    """Name, status, output mode, template, executor, last run and success rate.

    A broken worker file is listed as 'broken' with its first problem; the
    others are listed as usual. Success rate counts each worker's last 50 runs.
    """
    from workerctl import render
    from workerctl.workers.operations import run_stats, worker_files, worker_row

    a = app(ctx)
    files = worker_files(a.workspace, a.registry, a.versions)
    stats = run_stats(a.history, [wf.name for wf in files])
    items = [worker_row(wf, stats[wf.name]) for wf in files]

    def rows() -> list[list[Any]]:
        out = []
        for item in items:
            if not item["valid"]:
                out.append(
                    [
                        item["name"],
                        render.colour("✗ broken", "broken"),
                        str(item["problems"][0]["message"]) if item["problems"] else "",
                        "",
                        "",
                        "",
                        "",
                    ]
                )
                continue
            last = (
                f"{render.status_cell(item['last_status'])} {render.ago(item['last_run_at'])}"
                if item["last_run"]
                else "never"
            )
            out.append(
                [
                    item["name"],
                    render.colour(item["status"]),
                    item["output_mode"],
                    item["template"] or "-",
                    item["executor"],
                    last,
                    _rate(item["success_rate"]),
                ]
            )
        return out

    emit(
        fmt,
        items,
        WORKER_COLUMNS,
        rows,
        ["name", "status", "output mode", "template", "executor", "last run", "success"],
        id_key="name",
        empty="no workers yet: 'workerctl worker new NAME --template KEY'",
    )
    broken = [i["name"] for i in items if not i["valid"]]
    if broken and fmt == "table":
        click.echo(
            f"\n{len(broken)} broken: {', '.join(broken)} — 'workerctl worker validate' shows every problem",
            err=True,
        )


@click.group(cls=ShapedGroup)
def worker() -> None:
    """Show, create, edit, validate and version a worker."""


@worker.command("show")
@click.argument("name", shell_complete=worker_names)
@watch_option("Refresh every SECONDS (default 2) while any recent run is pending, queued or running.")
@json_options
@click.pass_context
def show(ctx: Context, name: str, watch: float | None, as_json: bool) -> None:
    """The worker overview: status, output mode, template key, context sources,
    tool categories, instructions (read-only) and recent runs."""
    import time

    from workerctl import render
    from workerctl.runs.model import UNFINISHED
    from workerctl.workers.files import get_worker
    from workerctl.workers.influence import describe as describe_review
    from workerctl.workers.operations import worker_files

    a = app(ctx)
    worker_files(a.workspace, a.registry, a.versions)
    w = get_worker(a.workspace, a.registry, name)
    recent = _recent_runs(a, w.name)
    redraw = not as_json and terminal().is_terminal()
    while watch is not None and any(r["status"] in UNFINISHED for r in recent):
        if redraw:
            click.clear()
            click.echo(render.fit_page(_overview_text(w, recent, describe_review(w, a.registry))))
        time.sleep(max(watch, 0.1))
        a.refresh()
        recent = _recent_runs(a, w.name)
    if redraw and watch is not None:
        click.clear()
    if as_json:
        echo_json(
            {
                "name": w.name,
                "description": w.description,
                "status": w.status,
                "output_mode": w.output_mode,
                "template": w.template,
                "context_sources": w.context_sources,
                "tool_categories": w.tool_categories,
                "max_iterations": w.max_iterations,
                "timeout": w.timeout,
                "executor": w.executor,
                "executor_settings": w.executor_settings,
                **describe_review(w, a.registry),
                "output_contract": (w.output_contract.to_dict() if w.output_contract else None),
                "config_hash": w.config_hash,
                "file": str(w.path),
                "instructions": w.instructions,
                "recent_runs": recent,
            }
        )
    else:
        click.echo(render.fit_page(_overview_text(w, recent, describe_review(w, a.registry))))


def _recent_runs(a: App, worker: str) -> list[dict[str, Any]]:
    from workerctl.history.store import RunFilter

    return a.history.list(RunFilter(workers=(worker,)), limit=10)


def _overview_text(w: Worker, recent: list[dict[str, Any]], review: dict[str, Any]) -> str:
    from workerctl import render

    lines = [render.colour(w.name, bold=True) + (f" — {w.description}" if w.description else "")]
    pairs = [
        ("status", render.colour(w.status)),
        ("output mode", w.output_mode),
        ("template", w.template or "-"),
        ("context sources", ", ".join(w.context_sources) or "none"),
        ("tool categories", ", ".join(w.tool_categories) or "none"),
        ("max iterations", str(w.max_iterations)),
        ("timeout", f"{w.timeout:g}s"),
        ("executor", w.executor + (f" ({render.plain(w.executor_settings)})" if w.executor_settings else "")),
        (
            "output contract",
            w.output_contract.describe()
            if w.output_contract
            else "none (review cannot check the output's form)",
        ),
        (
            "human review",
            ("required: " + "; ".join(review["reasons"])) if review["needs_review"] else "not required",
        ),
        ("config hash", w.config_hash),
        ("file", str(w.path)),
    ]
    lines += [f"  {key + ':':<17}{value}" for key, value in pairs]
    lines.append(f"\nInstructions (read-only; 'workerctl worker edit {w.name}' to change):")
    lines += [f"  │ {line}" for line in w.instructions.rstrip().splitlines()]
    lines.append(f"\nRecent runs {render.strip([r['status'] for r in reversed(recent)])}")
    if not recent:
        lines.append(f"  none yet: workerctl run start {w.name} --task ID")
    width = terminal().width()
    for r in recent:
        tail = r["error_message"] if r["status"] == "failed" else r["preview"]
        line = (
            f"  {render.status_cell(r['status'], 11)}  {r['id']}  {r['record_id'] or '-':<9} "
            f"{render.ago(r['created']):>11}  "
        )
        lines.append(line + render.cut(tail, max(10, width - 50)))
    return "\n".join(lines)


@worker.command("new")
@click.argument("name", shell_complete=worker_names)
@click.option("--template", "-t", "template", metavar="KEY", help="Start from this template.")
@click.option("--executor", default="echo", show_default=True, help="Executor name.")
@click.pass_context
def new(ctx: Context, name: str, template: str | None, executor: str) -> None:
    """Write workers/NAME.yaml (status draft), from a template if given."""
    from workerctl.workers.operations import new_worker

    a = app(ctx)
    path = new_worker(a.workspace, a.registry, a.versions, name, template, executor)
    click.echo(f"Wrote {path} (status: draft). Edit it with 'workerctl worker edit {name}'.")


@worker.command("edit")
@click.argument("name", shell_complete=worker_names)
@click.pass_context
def edit(ctx: Context, name: str) -> None:
    """Open the worker in $EDITOR; validate on save; keep the old version.

    On errors the problems are shown and the previous file is kept; on a
    terminal you may edit again.
    """

    from workerctl.errors import ConfigError
    from workerctl.workers.files import find_path, read_worker_text
    from workerctl.workers.operations import check_edit, edit_in_editor, save_edit

    a = app(ctx)
    found = find_path(a.workspace, name)
    text = opened = read_worker_text(a.workspace, found)
    while True:
        try:
            edited = edit_in_editor(
                a.workspace, found.stem, text, lambda path: click.edit(filename=path, require_save=False)
            )
        except click.ClickException as failed:  # the editor would not start: a setting, exit 2
            raise ConfigError(
                failed.format_message(), hint="set VISUAL or EDITOR to an editor that exists (EDITOR=nano)"
            ) from None
        if edited is None or (
            edited == text and not check_edit(a.workspace, a.registry, name, edited).problems
        ):
            click.echo("No change.")
            return
        checked = check_edit(a.workspace, a.registry, name, edited)
        if checked.ok:
            save_edit(a.workspace, a.registry, a.versions, name, edited, expected=opened)
            click.echo(f"Saved {name}; the previous version is kept ('workerctl worker history {name}').")
            return
        for problem in checked.problems:
            click.echo(str(problem), err=True)
        if terminal().can_prompt and click.confirm("Edit again?", default=True):
            text = edited
            continue
        raise ConfigError(f"the edit of {name!r} was not saved; the previous file is kept")


@worker.command("validate")
@click.argument("name", required=False, shell_complete=worker_names)
@json_options
@click.pass_context
def validate_cmd(ctx: Context, name: str | None, as_json: bool) -> None:
    """Report every problem of every worker file (or one, by name or path); exit 2 if any."""
    from workerctl.errors import EXIT_USAGE
    from workerctl.workers.files import display_path, load_file, path_or_name
    from workerctl.workers.operations import worker_files

    a = app(ctx)
    if name:
        path = path_or_name(a.workspace, name)
        files = [load_file(path, a.registry, display_path(a.workspace, path), deep=True)]
    else:
        files = worker_files(a.workspace, a.registry, a.versions, deep=True)
    problems = [p for wf in files for p in wf.problems]
    if as_json:
        echo_json(
            {
                "files": len(files),
                "valid": sum(wf.ok for wf in files),
                "problems": [p.to_dict() for p in problems],
            }
        )
    else:
        for problem in problems:
            click.echo(str(problem))
        ok = sum(wf.ok for wf in files)
        click.echo(
            f"{ok} of {len(files)} worker file(s) valid, {len(problems)} problem(s)", err=bool(problems)
        )
    if problems:
        ctx.exit(EXIT_USAGE)


def _set_status(ctx: Context, name: str, status: str) -> None:
    from workerctl.workers.operations import set_status

    a = app(ctx)
    changed = set_status(a.workspace, a.registry, a.versions, name, status)
    click.echo(f"{name} is {status}." if changed else f"{name} was already {status}.")


@worker.command("pause")
@click.argument("name", shell_complete=worker_names)
@click.pass_context
def pause(ctx: Context, name: str) -> None:
    """Set the worker's status to paused (it refuses to run)."""
    _set_status(ctx, name, "paused")


@worker.command("activate")
@click.argument("name", shell_complete=worker_names)
@click.pass_context
def activate(ctx: Context, name: str) -> None:
    """Set the worker's status to active."""
    _set_status(ctx, name, "active")


@worker.command("history")
@click.argument("name", shell_complete=worker_names)
@output_options
@click.pass_context
def history(ctx: Context, name: str, fmt: str) -> None:
    """Every saved version of the worker: number, time, action, hash."""
    from workerctl import render
    from workerctl.workers.files import find_path, read_worker_text

    a = app(ctx)
    path = find_path(a.workspace, name)
    a.versions.notice({name: read_worker_text(a.workspace, path)}, every_file=False)
    from workerctl.workers.versions import config_hash_of

    versions = [
        {**v.to_dict(), "config_hash": v.config_hash or config_hash_of(v.content)}
        for v in a.versions.history(name)
    ]
    emit(
        fmt,
        versions,
        ["version", "time", "action", "hash", "config_hash"],
        lambda: [
            [v["version"], render.ago(v["time"]), v["action"], v["hash"], v["config_hash"] or "-"]
            for v in reversed(versions)
        ],
        ["version", "saved", "action", "hash", "config hash"],
        id_key="version",
    )


@worker.command("diff")
@click.argument("name", shell_complete=worker_names)
@click.option("--from", "from_v", type=int, help="Older version (default: the previous one).")
@click.option("--to", "to_v", type=int, help="Newer version (default: the file now).")
@click.option(
    "--run", "run_id", shell_complete=run_ids, help="Compare the configuration a run ran with to now."
)
@click.pass_context
def diff(ctx: Context, name: str, from_v: int | None, to_v: int | None, run_id: str | None) -> None:
    """A unified diff between versions, or between a run's configuration and now."""
    from workerctl.workers.operations import diff_run, diff_versions

    a = app(ctx)
    if run_id:
        run = a.history.get(a.history.resolve(run_id))
        text = diff_run(a.workspace, a.registry, name, run)
    else:
        text = diff_versions(a.workspace, a.versions, name, from_v, to_v)
    click.echo(text.rstrip("\n") if text else "No differences.")


@worker.command("restore")
@click.argument("name", shell_complete=worker_names)
@click.argument("version", type=int, required=False)
@click.option("--run", "run_id", shell_complete=run_ids, help="Restore the version this run started with.")
@click.pass_context
def restore_cmd(ctx: Context, name: str, version: int | None, run_id: str | None) -> None:
    """Write an earlier version back (kept as a new version): VERSION, or the one
    run --run ID started with."""
    from workerctl.errors import UsageError
    from workerctl.workers.operations import restore

    a = app(ctx)
    if (version is None) == (run_id is None):
        raise UsageError(
            "give a version number or --run ID (not both)",
            hint=f"'workerctl worker history {name}' lists the versions",
        )
    if run_id is not None:
        the_run = a.history.get(a.history.resolve(run_id))
        if the_run.worker != name:
            raise UsageError(f"run {the_run.id} is a run of {the_run.worker!r}, not {name!r}")
        version = a.versions.for_run(the_run).version
    assert version is not None  # one of the two was given (checked above)
    changed = restore(a.workspace, a.registry, a.versions, name, version)
    click.echo(
        f"Restored version {version} of {name}." if changed else f"{name} already matches version {version}."
    )


@worker.command("try")
@click.argument("name", shell_complete=worker_names)
@click.option(
    "--file", "file", type=FilePath(dir_okay=False), help="An edited copy of the worker file to try."
)
@click.option(
    "--against",
    "query",
    metavar="QUERY",
    help="Only past runs matching this search (as 'runs search'); else the newest that match the filters.",
)
@click.option(
    "--worker",
    "workers",
    multiple=True,
    shell_complete=worker_names,
    help="Past runs of this worker (repeatable; default: NAME).",
)
@click.option("--record", "--task", "record", metavar="ID", help="Only past runs linked to this record.")
@click.option("--status", multiple=True, help="Only past runs with this status (repeatable).")
@click.option("--since", help="Past runs created since: a duration (7d) or a date.")
@click.option(
    "--limit", type=click.IntRange(1), default=10, show_default=True, help="At most this many past runs."
)
@click.option(
    "--replay",
    is_flag=True,
    help="Give each step the past run's recorded answer where its request is the same, instead of "
    "calling the model (any other step is called live).",
)
@click.option(
    "--reads",
    type=click.Choice(["now", "recorded"]),
    default="now",
    show_default=True,
    help="What read tools see: the records as they are now, or, where the past run made the same call "
    "(tool and arguments), the result it recorded.",
)
@json_options
@click.pass_context
def try_cmd(
    ctx: Context,
    name: str,
    file: str | None,
    query: str | None,
    workers: tuple[str, ...],
    record: str | None,
    status: tuple[str, ...],
    since: str | None,
    limit: int,
    replay: bool,
    reads: str,
    as_json: bool,
) -> None:
    """Run NAME (or an edited copy, --file) again on the inputs of past runs, writing
    nothing: every write is captured, none made. Per run the old and new output, the
    review checks before and after, tokens and cost; then a summary.

    Tool reads see the records as they are now (--reads recorded: as the past run saw them,
    where it made the same call). The try is kept apart from the runs
    ('runs list --tries'), out of stats and the duplicate guard. Exit 1 when a review
    check newly fails, or a run that did not fail now does (to gate a worker change in CI)."""
    from workerctl.cli.runs_list import check_workers, list_filter
    from workerctl.errors import EXIT_RUN_FAILED
    from workerctl.runs import trial
    from workerctl.workers.files import get_worker

    a = app(ctx)
    if file is not None:
        chosen = trial.edited_worker(a.workspace, a.registry, name, file)
    else:
        chosen = get_worker(a.workspace, a.registry, name)
    workers = workers or (name,)
    check_workers(a, workers)
    flt = list_filter(workers, status, record, since, None, False)
    if query is not None:
        from workerctl.runs.search import search

        past = [row["id"] for row in search(a.history, query, flt, limit)[0]]
    else:
        past = [row["id"] for row in a.history.list(flt, limit=limit)]
    if not past:
        click.echo("no past runs match: nothing to try (see 'workerctl runs list --worker NAME')", err=True)
        return
    items = trial.try_on(
        a.workspace, a.registry, a.records, a.history, chosen, past, replay=replay, reads=reads
    )
    doc = trial.record_try(a.workspace, chosen, file, replay, items, reads)
    if as_json:
        echo_json(doc)
    else:
        _show_try(doc)
    if any(i.newly_failing or (i.new_status == "failed" != i.old_status) for i in items):
        ctx.exit(EXIT_RUN_FAILED)  # a check that newly fails, or a run that now fails


def _show_try(doc: dict[str, Any]) -> None:
    from workerctl import render

    show = terminal().show
    width = max(40, terminal().width() // 2 - 4)
    for item in doc["items"]:
        click.echo(
            f"run {item['run_id']} ({item['record_id'] or 'no record'}): {item['old_status']} -> "
            f"{item['new_status']} ({item['answer']})"
        )
        old = (item["old_output"] or "").splitlines() or [""]
        new = (item["new_output"] or item["new_error"] or "").splitlines() or [""]
        rows = [
            [
                render.cut(show(old[n]) if n < len(old) else "", width),
                render.cut(show(new[n]) if n < len(new) else "", width),
            ]
            for n in range(max(len(old), len(new)))
        ]
        click.echo(
            render.table(rows, ["before", "after" + ("" if item["output_changed"] else " (the same)")])
        )
        click.echo(
            f"  checks failing: {', '.join(item['old_failed_checks'] or []) or 'none'} -> "
            f"{', '.join(item['new_failed_checks'] or []) or 'none'}"
            + (f"  NEWLY FAILING: {', '.join(item['newly_failing'])}" if item["newly_failing"] else "")
        )
        click.echo(f"  {_try_sources(item)}")
        click.echo(
            f"  tokens {item['old_tokens']} -> {item['new_tokens']}; "
            f"cost {item['old_cost']} -> {item['new_cost']}; "
            f"would write {len(item['would_write'])}: "
            + (
                ", ".join(f"{e.get('kind')} on {e.get('record_id')}" for e in item["would_write"])
                or "nothing"
            )
        )
    s = doc["summary"]
    click.echo(
        f"try {doc['try_id']}: {s['runs']} run(s), {s['outputs_changed']} output(s) changed, "
        f"{s['newly_failing']} with a newly failing check, {s['would_write']} write(s) captured (none made); "
        f"steps {s['steps_replayed']} replayed, {s['steps_live']} live; "
        f"tool reads {s['reads_recorded']} as recorded, {s['reads_now']} as the records are now"
    )


def _try_sources(item: dict[str, Any]) -> str:
    """Which steps were answered from the record and which live; which reads were
    given as recorded and which read the records now."""
    steps = ", ".join(f"{s['iteration']} {s['answer']}" for s in item["steps"]) or "none"
    reads = ", ".join(f"{r['call']} {r['tool']} {r['read']}" for r in item["reads"]) or "none"
    return f"steps: {steps}; tool reads: {reads}"
