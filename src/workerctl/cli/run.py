"""The ``workerctl run`` group: one run at a time."""

from __future__ import annotations

import contextlib

import click

from workerctl.cli.common import app, json_options, run_id_argument
from workerctl.cli.complete import record_ids, run_ids, worker_names
from workerctl.cli.shape import ShapedGroup, echo_json


@click.group(cls=ShapedGroup)
def run():
    """Start (one run or a batch), watch, inspect, diff, troubleshoot, review, rerun or
    cancel runs."""


def _default_trigger() -> str:
    import sys

    return "manual" if sys.stdin.isatty() else "script"


def _print_run(a, the_run, as_json: bool, full_output: bool = True) -> None:
    from workerctl.runs.cards import run_card
    from workerctl.runs.changes import card_facts

    facts = card_facts(the_run, workspace=a.workspace, registry=a.registry, records=a.records)
    if as_json:
        echo_json({**the_run.to_dict(), **facts, "duration": the_run.duration})
    else:
        click.echo(run_card(the_run, facts, full_output=full_output))


@run.command("start")
@click.argument("worker", shell_complete=worker_names)
@click.option(
    "--task",
    "--record",
    "record_ids",
    metavar="ID",
    multiple=True,
    shell_complete=record_ids,
    help="The task (or other record) the run acts on; repeat it for a batch.",
)
@click.option(
    "--records-from",
    "records_from",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="A batch over the record ids in FILE (- reads standard input): one id "
    'per line, or JSON lines / a JSON array of ids or {"id": …} objects.',
)
@click.option(
    "--where",
    metavar="JQ",
    help="A batch over every record this jq expression selects (as jq's select: anything but "
    "false and null), e.g. '.status == \"open\"'.",
)
@click.option(
    "--type",
    "record_type",
    metavar="TYPE",
    help="With --where: only records of this type (task, project, …).",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="A batch: how many runs execute at once.",
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Nothing when every run completed or was skipped (refused: exit 5 for one run); "
    "one line per failure otherwise.",
)
@click.option(
    "--detach", is_flag=True, help="Return the run id at once; a background process executes the run."
)
@click.option("--reason", default="", help="Why this run was started (shown on its card).")
@click.option("--test", is_flag=True, help="Allow a draft worker on a record not marked safe for testing.")
@click.option(
    "--trigger",
    type=click.Choice(["manual", "cron", "script"]),
    default=None,
    help="Who started it (default: manual on a terminal, else script).",
)
@click.option(
    "--wait",
    is_flag=True,
    help="For a worker on a remote executor (a task queue): wait until the run has finished.",
)
@click.option(
    "--allow-repeat",
    is_flag=True,
    help="Run even when this worker already wrote to this unchanged record (exit 5 without).",
)
@json_options
@click.pass_context
def start(
    ctx,
    worker,
    record_ids,
    records_from,
    where,
    record_type,
    jobs,
    quiet,
    detach,
    reason,
    test,
    trigger,
    wait,
    allow_repeat,
    as_json,
):
    """Run WORKER (on --task ID); wait and print its card. Exit 1 if it failed.

    Several records (--task repeated, --records-from, --where) make a batch: every
    run in this one process, --jobs at a time, an ordinary run each; a summary at
    the end; exit 0 when all completed (records the duplicate guard skipped count as
    skipped, not failed), 1 when any failed.

    A worker on a remote executor (e.g. rq) is queued and the command prints the
    run id at once, unless --wait. Exit 5, with nothing run, when the worker already
    wrote to this record and neither the record nor the worker changed since, when
    a run of it on this record is executing now, or when an earlier write of it
    there is unknown (see 'workerctl ledger list'); --allow-repeat runs it anyway
    (except over an unknown write).
    """
    from workerctl.engine.loop import StartOptions

    a = app(ctx)
    options = StartOptions(
        trigger=trigger or _default_trigger(), reason=reason, test=test, allow_repeat=allow_repeat
    )
    batch = len(record_ids) > 1 or records_from is not None or where is not None or record_type is not None
    if batch:
        _start_batch(
            ctx,
            a,
            worker,
            record_ids,
            records_from,
            where,
            record_type,
            options,
            jobs=jobs,
            quiet=quiet,
            detach=detach,
            as_json=as_json,
        )
        return
    options.record_id = record_ids[0] if record_ids else None
    with _refusal_as_json(as_json), _quiet_refusal(ctx, quiet and not as_json):
        _start(ctx, a, worker, options, detach, wait, as_json, quiet=quiet)


@contextlib.contextmanager
def _quiet_refusal(ctx, quiet: bool):
    """With --quiet a refused start (a paused worker, an unchanged repeat) prints
    nothing: it is not a failure, and cron mails whatever a job prints; exit 5 stays."""
    from workerctl.runs.duplicate_guard import DuplicateRefused

    try:
        yield
    except DuplicateRefused as refused:
        if not quiet:
            raise
        ctx.exit(refused.exit_code)


@contextlib.contextmanager
def _refusal_as_json(as_json: bool):
    """With --json, a refused start (the guard, a paused or draft worker) also prints
    the decision on stdout: ``refused.verdict`` says why, ``refused.fix`` what to do."""
    from workerctl.runs.duplicate_guard import DuplicateRefused

    try:
        yield
    except DuplicateRefused as refused:
        if as_json:
            from workerctl.cli.shape import Shape, echo_json

            echo_json({"refused": refused.decision.to_dict()}, Shape())  # whole: fields differ
        raise


def _echo_id(the_run, as_json: bool) -> None:
    """A run that goes on elsewhere: its id is what a script needs."""
    if as_json:
        echo_json(
            {
                "id": the_run.id,
                "status": the_run.status,
                "worker": the_run.worker,
                "record_id": the_run.record_id,
            }
        )
    else:
        click.echo(the_run.id)


def _start(ctx, a, worker, options, detach, wait, as_json, quiet=False):
    from workerctl.errors import EXIT_RUN_FAILED

    if detach:
        _echo_id(a.engine.start_detached(worker, options), as_json)
        return
    the_run = a.engine.start(worker, options)
    if wait and not the_run.finished:
        the_run = _wait_remote(a, the_run)
    if not the_run.finished:  # handed to a task queue
        _echo_id(the_run, as_json)
        click.echo(
            f"run {the_run.id} is {the_run.status} on executor {the_run.executor}; "
            f"follow it with 'workerctl run watch {the_run.id}'",
            err=True,
        )
        return
    if quiet and not as_json:  # nothing on success, one line on failure
        from workerctl.engine.batch import BatchResult, finished_item

        item = finished_item(a.engine, the_run, the_run.record_id)
        for line in failure_lines(BatchResult(worker, [item])):
            click.echo(line)
    else:
        _print_run(a, the_run, as_json, full_output=True)
    if the_run.status in ("failed", "cancelled"):
        ctx.exit(EXIT_RUN_FAILED)


def _batch_ids(a, record_ids, records_from, where, record_type) -> list[str]:
    import sys
    from pathlib import Path

    from workerctl.errors import NotFoundError
    from workerctl.records.select import ids_from_text, select

    ids = list(record_ids)
    if records_from is not None:
        if records_from == "-":
            text, origin = sys.stdin.read(), "<stdin>"
        else:
            try:
                text, origin = Path(records_from).read_text(encoding="utf-8"), records_from
            except FileNotFoundError:
                raise NotFoundError(f"{records_from}: no such file") from None
        ids += ids_from_text(text, origin)
    if where is not None or record_type is not None:
        ids += select(a.records, where, record_type)
    return ids


def _start_batch(
    ctx, a, worker, record_ids, records_from, where, record_type, options, *, jobs, quiet, detach, as_json
) -> None:
    """The batch: records chosen and checked first (an unknown one is exit 3 and
    nothing runs), then the runs, a progress bar on a terminal, the summary."""
    import os
    import sys

    from workerctl.engine.batch import BatchRunner, check_records, start_detached_each
    from workerctl.errors import EXIT_INTERRUPTED, EXIT_RUN_FAILED
    from workerctl.workers.files import get_worker

    get_worker(a.workspace, a.registry, worker)  # an unknown worker: exit 3 first
    ids = check_records(a.engine, _batch_ids(a, record_ids, records_from, where, record_type))
    if not ids:
        if as_json:
            echo_json(
                {"worker": worker, "runs": [], "counts": {}, "seconds": 0, "ok": True, "interrupted": False}
            )
        elif not quiet:
            click.echo(f"no records match; no run of {worker} was started")
        return
    if detach:
        items = start_detached_each(a.engine, worker, ids, options)
        if as_json:
            echo_json(
                [
                    {"id": i.run_id, "status": i.status, "worker": worker, "record_id": i.record_id}
                    | ({"reason": i.reason, "message": i.message, "fix": i.fix} if i.reason else {})
                    for i in items
                ]
            )
            return
        for i in items:
            if i.run_id:
                click.echo(i.run_id)
            elif not quiet:
                click.echo(f"skipped {i.record_id} ({i.reason}): {i.message}", err=True)
        return
    show_bar = sys.stderr.isatty() and not quiet and "NO_COLOR" not in os.environ
    bar = (
        click.progressbar(length=len(ids), label=f"{worker}", file=sys.stderr, show_pos=True)
        if show_bar
        else None
    )
    runner = BatchRunner(a.engine, jobs, on_done=(lambda item: bar.update(1)) if bar else None)
    if bar is not None:
        with bar:
            result = runner.run(worker, ids, options)
    else:
        result = runner.run(worker, ids, options)
    if as_json:
        echo_json(result.to_dict())
    else:
        _batch_summary(a, result, quiet)
    if result.interrupted:
        ctx.exit(EXIT_INTERRUPTED)
    if not result.ok:
        ctx.exit(EXIT_RUN_FAILED)


def _batch_summary(a, result, quiet: bool) -> None:
    """The table, each failure with its fix, the totals; with --quiet one line per
    failure and nothing else (cron mails whatever a job prints)."""
    from workerctl import render
    from workerctl.engine.batch import summary_line

    if quiet:
        for line in failure_lines(result):
            click.echo(line)
        return
    width = render.term_width()
    rows = [
        [
            render.status_cell(i.status),
            i.record_id or "-",
            i.run_id or "-",
            render.duration(i.duration),
            i.message,
        ]
        for i in result.items
    ]
    room = max(20, width - 50)
    for row in rows:
        row[-1] = render.cut(row[-1], room)
    click.echo(render.table(rows, ["status", "record", "run", "duration", "output / error"]))
    for item in result.items:
        if item.status in ("failed", "cancelled"):
            click.echo(
                f"{item.status.upper()} {item.run_id} on {item.record_id}: {item.error_kind}: {item.message}"
            )
            if item.fix:
                click.echo(f"  fix: {item.fix}")
            click.echo(f"  more: workerctl run troubleshoot {item.run_id}")
        elif item.status == "not_started":
            click.echo(f"NOT STARTED {item.record_id}: {item.message}")
    click.echo(summary_line(result))


def failure_lines(result) -> list[str]:
    """One line per run that failed, was cancelled or did not start, with its fix."""
    out = []
    for item in result.items:
        if item.status in ("failed", "cancelled"):
            head = f"{item.status.upper()} {item.run_id} on {item.record_id}: {item.error_kind}: "
        elif item.status == "not_started":
            head = f"NOT STARTED {item.record_id}: "
        else:
            continue
        text = " ".join(f"{head}{item.message}".split())
        out.append(text + (f" (fix: {' '.join(item.fix.split())})" if item.fix else ""))
    return out


def _wait_remote(a, the_run, every: float = 0.5):
    import time

    while not the_run.finished:
        time.sleep(every)
        a.refresh()
        the_run = a.history.get(the_run.id)
    return the_run


@run.command("watch")
@run_id_argument
@click.option(
    "--exit-status", is_flag=True, help="Exit 1 if the run failed or was cancelled (0 when it completed)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "ndjson"]),
    default="text",
    help="ndjson: each event as one JSON object per line, then the run.",
)
@json_options
@click.pass_context
def watch(ctx, run_id, exit_status, fmt, as_json):
    """Follow a run: each transition, iteration and tool call as it is recorded
    (local, detached and remote runs alike), then its card.

    Ctrl-C stops watching (exit 130); the run keeps running.
    """
    from workerctl.cli.shape import ndjson_line
    from workerctl.errors import EXIT_RUN_FAILED
    from workerctl.runs.cards import event_line
    from workerctl.runs.follow import Event, follow

    a = app(ctx)
    the_run = None
    for item in follow(a.history, a.history.resolve(run_id), catch_up=a.refresh):
        if not isinstance(item, Event):
            the_run = item
        elif fmt == "ndjson":
            click.echo(ndjson_line(item.to_dict()))
        elif not as_json:
            click.echo(event_line(item))
    assert the_run is not None
    if fmt == "ndjson" and not as_json:
        click.echo(ndjson_line({"event": "finished", "run": the_run.to_dict()}))
    else:
        if not as_json:
            click.echo("")
        _print_run(a, the_run, as_json)
    if exit_status and the_run.status in ("failed", "cancelled"):
        ctx.exit(EXIT_RUN_FAILED)


@run.command("diff")
@click.argument("run_a", metavar="A", shell_complete=run_ids)
@click.argument("run_b", metavar="B", shell_complete=run_ids)
@json_options
@click.pass_context
def diff_cmd(ctx, run_a, run_b, as_json):
    """Compare run A with run B: the configuration diff (instructions, sources,
    categories, executor), the iterations side by side (tool calls, refusals), the
    output diff, and the differences in duration and tokens."""
    from workerctl.runs.cards import run_diff_text
    from workerctl.runs.diff import diff_runs

    a = app(ctx)
    first = a.history.get(a.history.resolve(run_a))
    second = a.history.get(a.history.resolve(run_b))
    result = diff_runs(first, second)
    if as_json:
        echo_json(result)
    else:
        click.echo(run_diff_text(result))


@run.command("execute", hidden=True)
@click.argument("run_id")
@click.pass_context
def execute(ctx, run_id):
    """Execute a stored run (used by --detach and remote workers)."""
    from workerctl.errors import EXIT_RUN_FAILED

    the_run = app(ctx).engine.execute(run_id)
    if the_run.status != "completed":
        ctx.exit(EXIT_RUN_FAILED)


@run.command("inspect")
@run_id_argument
@json_options
@click.option("--output", "output_only", is_flag=True, help="Print only the output text.")
@click.pass_context
def inspect(ctx, run_id, as_json, output_only):
    """The whole run card: times, record, configuration drift, context, iterations,
    tool calls, side effects, output and error."""
    a = app(ctx)
    the_run = a.history.get(a.history.resolve(run_id))
    if output_only:
        if the_run.output is not None:
            click.echo(the_run.output.rstrip("\n"))
        return
    _print_run(a, the_run, as_json)


@run.command("cancel")
@run_id_argument
@json_options
@click.pass_context
def cancel(ctx, run_id, as_json):
    """Cancel a pending, queued or running run (a detached one is stopped)."""
    import getpass

    from workerctl.runs.cancel import cancel_run

    a = app(ctx)
    the_run = cancel_run(
        a.history, a.history.resolve(run_id), by=getpass.getuser(), registry=lambda: a.registry
    )
    if as_json:
        _print_run(a, the_run, True)
    else:
        click.echo(f"Cancelled run {the_run.id}.")


@run.command("troubleshoot")
@run_id_argument
@click.option("--interactive", is_flag=True, help="Step through one check at a time (on a terminal).")
@json_options
@click.pass_context
def troubleshoot(ctx, run_id, interactive, as_json):
    """The troubleshooting walk for a failed run, in the original's order: each step
    checked against the data (pass / fail / cannot tell), with the fix."""
    import sys

    from workerctl.errors import UsageError
    from workerctl.runs.cards import troubleshooting_text
    from workerctl.runs.troubleshoot import troubleshoot as walk

    a = app(ctx)
    the_run = a.history.get(a.history.resolve(run_id))
    report = walk(the_run, history=a.history, records=a.records, registry=a.registry, workspace=a.workspace)
    if as_json:
        echo_json(report.to_dict())
        return
    if not report.applicable:
        click.echo(report.message)
        return
    if interactive and not sys.stdin.isatty():
        raise UsageError("--interactive needs a terminal", hint="drop --interactive, or use --json")
    click.echo(
        f"Troubleshooting run {the_run.id} ({the_run.worker}"
        + (f" on {the_run.record_id}" if the_run.record_id else "")
        + f", {the_run.status})"
    )
    blocks = troubleshooting_text(report)
    for index, block in enumerate(blocks):
        click.echo("\n".join(block))
        if interactive and index < len(blocks) - 1:
            answer = click.prompt("Enter for the next step, q to stop", default="", show_default=False)
            if answer.strip().lower() == "q":
                return


@run.command("review")
@run_id_argument
@click.option(
    "--verdict",
    type=click.Choice(["approved", "needs_changes", "rejected"]),
    help="Your verdict (asked on a terminal when not given).",
)
@click.option(
    "--matches-instructions",
    type=click.Choice(["yes", "no"]),
    help="Does the output match the worker instructions?",
)
@click.option("--next-action-clear", type=click.Choice(["yes", "no"]), help="Is the next human action clear?")
@click.option("--reviewer", help="Who reviews (default: your login name).")
@click.option("--note", default=None, help="A note stored with the review.")
@click.option("--check", "check_only", is_flag=True, help="Only show the checklist; store nothing.")
@json_options
@click.pass_context
def review(
    ctx, run_id, verdict, matches_instructions, next_action_clear, reviewer, note, check_only, as_json
):
    """The run review checklist with automatic evidence; the answers are stored."""
    import getpass
    import sys

    from workerctl.errors import UsageError
    from workerctl.runs.cards import review_text
    from workerctl.runs.review import HUMAN_ITEMS, checks, record_review, review_document

    a = app(ctx)
    the_run = a.history.get(a.history.resolve(run_id))
    items = checks(the_run, records=a.records, registry=a.registry)
    if not as_json:
        click.echo("\n".join(review_text(the_run, items, HUMAN_ITEMS)))
        if the_run.review:
            rv = the_run.review
            click.echo(
                f"Already reviewed: {rv.verdict} by {rv.reviewer} at {rv.time}; a new review replaces it."
            )
    nothing_given = verdict is None and matches_instructions is None and next_action_clear is None
    if check_only or (as_json and nothing_given):
        if as_json:
            echo_json(review_document(the_run, items))
        return
    answers = {"matches_instructions": matches_instructions, "next_action_clear": next_action_clear}
    interactive = sys.stdin.isatty() and not as_json
    for key, title in HUMAN_ITEMS.items():
        if answers[key] is None and interactive:
            answers[key] = "yes" if click.confirm(title + "?", default=True) else "no"
    if verdict is None and interactive:
        verdict = click.prompt("Verdict", type=click.Choice(["approved", "needs_changes", "rejected"]))
        if note is None:
            note = click.prompt("Note (optional)", default="", show_default=False)
    missing = [f"--{k.replace('_', '-')}" for k, v in answers.items() if v is None]
    if verdict is None:
        missing.insert(0, "--verdict")
    if missing:
        raise UsageError(
            f"not on a terminal: give {', '.join(missing)}", hint="or add --check to only see the checklist"
        )
    stored = record_review(
        a.history, the_run, verdict, reviewer or getpass.getuser(), answers, note or "", items
    )
    if as_json:
        echo_json({**review_document(stored, items), "review": stored.to_dict()["review"]})
    else:
        click.echo(f"Review stored: {verdict} by {stored.review.reviewer if stored.review else reviewer}.")


@run.command("rerun")
@run_id_argument
@click.option("--force", is_flag=True, hidden=True, help="Overrides nothing (see --allow-repeat).")
@click.option(
    "--allow-repeat",
    is_flag=True,
    help="Rerun even an unchanged failure, or where the worker already wrote to this unchanged record.",
)
@click.option("--detach", is_flag=True, help="Return the new run id at once.")
@json_options
@click.pass_context
def rerun_cmd(ctx, run_id, force, allow_repeat, detach, as_json):
    """A new run of the same worker on the same record, linked to the earlier one.
    Like every start it passes the duplicate guard: refused (exit 5) when nothing
    changed since it failed (unless the failure was transient: cancelled, crashed,
    provider unavailable, timeout) or since the worker wrote there, unless --allow-repeat."""
    from workerctl.errors import EXIT_RUN_FAILED
    from workerctl.runs.cards import effect_text
    from workerctl.runs.rerun_guard import FORCE_NOTE, plan_rerun, rerun

    if force:
        click.echo(FORCE_NOTE, err=True)
    a = app(ctx)
    earlier = a.history.get(a.history.resolve(run_id))
    plan = plan_rerun(
        earlier, history=a.history, records=a.records, registry=a.registry, workspace=a.workspace
    )
    if plan.side_effects:
        click.echo(
            f"Side effects already made by runs of {earlier.worker} on {earlier.record_id or 'no record'}:",
            err=as_json,
        )
        for e in plan.side_effects:
            click.echo(f"  run {e['run_id']}: {effect_text(e)}", err=as_json)
    changed = [k for k in ("worker", "record", "plugins") if plan.changes[k]["changed"]]
    click.echo("Changed since: " + (", ".join(changed) if changed else "nothing"), err=as_json)
    with _refusal_as_json(as_json):
        new = rerun(a.engine, plan, detach=detach, allow_repeat=allow_repeat)
    if detach:
        click.echo(new.id)
        return
    _print_run(a, new, as_json)
    if new.status in ("failed", "cancelled"):
        ctx.exit(EXIT_RUN_FAILED)
