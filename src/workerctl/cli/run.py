"""The ``workerctl run`` group: one run at a time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import click
from click import Context

from workerctl.cli.common import FilePath, app, json_options, run_id_argument
from workerctl.cli.complete import record_ids, run_ids, worker_names
from workerctl.cli.shape import ShapedGroup, echo_json
from workerctl.terminal import terminal

if TYPE_CHECKING:
    from workerctl.app import App
    from workerctl.engine.batch import BatchResult
    from workerctl.runs.model import Run
    from workerctl.runs.starting import StartRequest


#: the JSON ``run start`` builds itself: a run handed elsewhere (its id, status, worker,
#: record) and a start the duplicate guard refused (``refused``: the guard's decision)
JSON_FIELDS = ("id", "status", "worker", "record_id", "refused")


@click.group(cls=ShapedGroup)
def run() -> None:
    """Start (one run or a batch), watch, inspect, diff, troubleshoot, review, rerun or
    cancel runs."""


def _default_trigger() -> str:
    return "manual" if terminal().at_keyboard else "script"


def _print_run(a: App, the_run: Run, as_json: bool, full_output: bool = True) -> None:
    from workerctl import render
    from workerctl.history.ledger import effects_as_stated
    from workerctl.runs.cards import run_card
    from workerctl.runs.changes import card_facts

    facts = card_facts(the_run, workspace=a.workspace, registry=a.registry, records=a.records)
    if as_json:
        effects = effects_as_stated(the_run)
        echo_json({**the_run.to_dict(), "side_effects": effects, **facts, "duration": the_run.duration})
    else:
        click.echo(render.fit_page(run_card(the_run, facts, full_output=full_output)))


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
    type=FilePath(dir_okay=False, allow_dash=True),
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
    ctx: click.Context,
    worker: str,
    record_ids: tuple[str, ...],
    records_from: str | None,
    where: str | None,
    record_type: str | None,
    jobs: int,
    quiet: bool,
    detach: bool,
    reason: str,
    test: bool,
    trigger: str | None,
    wait: bool,
    allow_repeat: bool,
    as_json: bool,
) -> None:
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
    from workerctl.runs.starting import StartRequest

    request = StartRequest(
        worker=worker,
        record_ids=tuple(record_ids),
        records_from=records_from,
        where=where,
        record_type=record_type,
        jobs=jobs,
        quiet=quiet,
        detach=detach,
        reason=reason,
        test=test,
        trigger=trigger,
        wait=wait,
        allow_repeat=allow_repeat,
    )
    a = app(ctx)
    if request.is_batch:
        _start_batch(ctx, a, request, as_json=as_json)
        return
    with _refusal_as_json(as_json), _quiet_refusal(ctx, quiet and not as_json):
        _start(ctx, a, request, as_json)


@contextlib.contextmanager
def _quiet_refusal(ctx: click.Context, quiet: bool) -> Iterator[None]:
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
def _refusal_as_json(as_json: bool) -> Iterator[None]:
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


#: the fields of the one document a start that returns at once prints (``_echo_id``)
ID_FIELDS = ("id", "status", "worker", "record_id")


def _run_doc_fields() -> tuple[str, ...]:
    """The fields of the run document a start or rerun prints (``_print_run``)."""
    from workerctl.cli.shape import field_names
    from workerctl.runs.changes import CARD_FACT_FIELDS
    from workerctl.runs.model import RUN_FIELDS

    return (*field_names(RUN_FIELDS), *field_names(CARD_FACT_FIELDS), "duration")


def _echo_id(the_run: Run, as_json: bool) -> None:
    """A run that goes on elsewhere: its id is what a script needs."""
    if as_json:
        echo_json({field: getattr(the_run, field) for field in ID_FIELDS})
    else:
        click.echo(the_run.id)


def _start(ctx: click.Context, a: App, request: StartRequest, as_json: bool) -> None:
    from workerctl.errors import EXIT_RUN_FAILED
    from workerctl.runs.starting import wait_until_finished

    _check_fields(ID_FIELDS if request.detach else _run_doc_fields())  # before anything runs
    options = request.options(_default_trigger(), request.record_ids[0] if request.record_ids else None)
    if request.detach:
        _echo_id(a.engine.start_detached(request.worker, options), as_json)
        return
    from workerctl.errors import EndRecorded

    try:
        the_run = a.engine.start(request.worker, options)
    except EndRecorded as ended:  # the run happened: shown as its run file says, then exit 4
        _print_run(a, a.history.get(ended.run_id), as_json, full_output=True)
        raise
    if request.wait and not the_run.finished:
        the_run = wait_until_finished(a.history, the_run, a.refresh)
    if not the_run.finished:  # handed to a task queue
        _echo_id(the_run, as_json)
        click.echo(
            f"run {the_run.id} is {the_run.status} on executor {the_run.executor}; "
            f"follow it with 'workerctl run watch {the_run.id}'",
            err=True,
        )
        return
    from workerctl.cli.failures import decide
    from workerctl.engine.loop import INTERRUPTED
    from workerctl.errors import EXIT_INTERRUPTED

    status = 0
    if the_run.error is not None and the_run.error.message == INTERRUPTED:
        status = EXIT_INTERRUPTED  # Ctrl-C: 130, as a batch and every command end
    elif the_run.status in ("failed", "cancelled"):
        status = EXIT_RUN_FAILED
    decide(status)  # it stands if the reader goes away while the run is printed
    if request.quiet and not as_json:  # nothing on success, one line on failure
        from workerctl.engine.batch import BatchResult, finished_item

        item = finished_item(a.engine, the_run, the_run.record_id)
        _failure_lines(a, BatchResult(request.worker, [item]))
    else:
        _print_run(a, the_run, as_json, full_output=True)
    if status:
        ctx.exit(status)


def _start_batch(ctx: click.Context, a: App, request: StartRequest, *, as_json: bool) -> None:
    """The batch: records chosen and checked first (an unknown one is exit 3 and
    nothing runs), then the runs, a progress bar on a terminal, the summary."""
    import sys

    from workerctl.engine.batch import JSON_FIELDS, BatchRunner, check_records, start_detached_each
    from workerctl.errors import EXIT_HISTORY, EXIT_INTERRUPTED, EXIT_RUN_FAILED
    from workerctl.runs.starting import add_fixes, batch_record_ids

    worker, quiet = request.worker, request.quiet
    options = request.options(_default_trigger())
    # an unknown worker (exit 3) or one its model cannot run (exit 2): before any record
    a.engine.runnable_worker(worker)
    # and --json fields the answer will not have (exit 2): before any run writes
    _check_fields(DETACHED_FIELDS if request.detach else JSON_FIELDS)
    ids = check_records(a.engine, batch_record_ids(a.records, request))
    if not ids:
        if as_json:
            echo_json(
                {"worker": worker, "runs": [], "counts": {}, "seconds": 0, "ok": True, "interrupted": False}
            )
        elif not quiet:
            click.echo(f"no records match; no run of {worker} was started")
        return
    if request.detach:
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
    # a bar redraws one line: only on a terminal, and not where colour is turned off
    show_bar = not quiet and terminal().is_terminal(err=True) and terminal().colour(err=True)
    bar = (
        # the bar's own \r and cursor codes go around the sanitizer; its label is a worker name
        click.progressbar(
            length=len(ids), label=f"{worker}", file=getattr(sys.stderr, "wrapped", sys.stderr), show_pos=True
        )
        if show_bar
        else None
    )
    runner = BatchRunner(a.engine, request.jobs, on_done=(lambda item: bar.update(1)) if bar else None)
    if bar is not None:
        with bar:
            result = runner.run(worker, ids, options)
    else:
        result = runner.run(worker, ids, options)
    add_fixes(result, a.history, a.records, a.registry, a.workspace)
    from workerctl.cli.failures import decide

    status = decide(  # it stands if the reader goes away while the summary is printed
        EXIT_INTERRUPTED
        if result.interrupted
        else EXIT_HISTORY
        if result.state_problem
        else EXIT_RUN_FAILED
        if not result.ok
        else 0
    )
    if as_json:
        echo_json(result.to_dict())
    else:
        _batch_summary(a, result, quiet)
    if status:
        ctx.exit(status)


#: the fields of each item ``run start --detach`` prints for a batch
DETACHED_FIELDS = ("id", "status", "worker", "record_id", "reason", "message", "fix")


def _check_fields(available: tuple[str, ...]) -> None:
    """--json FIELDS checked against what the batch will print, before it starts: the
    fields were checked only when the answer was printed, after every run had written
    (a fresh-brief adversarial helper)."""
    from workerctl.cli.output import check_fields
    from workerctl.cli.shape import current_shape

    check_fields(current_shape().fields, available)


def _batch_summary(a: App, result: BatchResult, quiet: bool) -> None:
    """The batch's table, each failure with its fix, the totals; with --quiet one line
    per failure and nothing else (cron mails whatever a job prints)."""
    from workerctl import render
    from workerctl.engine.batch import summary_line
    from workerctl.runs.starting import failure_notes

    if quiet:
        _failure_lines(a, result)
        return
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
    room = max(20, terminal().width() - 50)
    for row in rows:
        row[-1] = render.cut(row[-1], room)
    click.echo(render.table(rows, ["status", "record", "run", "duration", "output / error"]))
    for note in failure_notes(result, a.history, a.records, a.registry, a.workspace):
        if note.status == "not_started":
            click.echo(terminal().show(f"NOT STARTED {note.record_id}: {note.message}"))
            continue
        click.echo(
            terminal().show(
                f"{note.status.upper()} {note.run_id} on {note.record_id}: {note.error_kind}: {note.message}"
            )
        )
        if note.fix:
            click.echo(terminal().show(f"  fix: {note.fix}"))
        click.echo(f"  more: workerctl run troubleshoot {note.run_id}")
    click.echo(summary_line(result))


def _failure_lines(a: App, result: BatchResult) -> None:
    """One line per run that failed, was cancelled or did not start, with its fix."""
    from workerctl.runs.starting import failure_line, failure_notes

    for note in failure_notes(result, a.history, a.records, a.registry, a.workspace):
        click.echo(terminal().show(failure_line(note)))


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
def watch(ctx: Context, run_id: str, exit_status: bool, fmt: str, as_json: bool) -> None:
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
def diff_cmd(ctx: Context, run_a: str, run_b: str, as_json: bool) -> None:
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
def execute(ctx: Context, run_id: str) -> None:
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
def inspect(ctx: Context, run_id: str, as_json: bool, output_only: bool) -> None:
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
def cancel(ctx: Context, run_id: str, as_json: bool) -> None:
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


@run.command("approve")
@run_id_argument
@click.option("--anyway", is_flag=True, help="Commit even though the record changed since the run read it.")
@click.option("--by", "by", help="Who approves (default: your login name).")
@json_options
@click.pass_context
def approve_cmd(ctx: Context, run_id: str, anyway: bool, by: str | None, as_json: bool) -> None:
    """Make the writes a run holds for a person, each exactly once."""
    import getpass

    from workerctl.runs.approval import approve, describe

    a = app(ctx)
    outcome = approve(
        a.history, a.records, a.history.resolve(run_id), by=by or getpass.getuser(), anyway=anyway
    )
    if as_json:
        echo_json(outcome.to_dict())
    else:
        click.echo(describe(outcome))


@run.command("reject")
@run_id_argument
@click.option("--by", "by", help="Who rejects (default: your login name).")
@json_options
@click.pass_context
def reject_cmd(ctx: Context, run_id: str, by: str | None, as_json: bool) -> None:
    """Discard the writes a run holds for a person (recorded as not written)."""
    import getpass

    from workerctl.runs.approval import describe, reject

    a = app(ctx)
    outcome = reject(a.history, a.history.resolve(run_id), by=by or getpass.getuser())
    if as_json:
        echo_json(outcome.to_dict())
    else:
        click.echo(describe(outcome))


@run.command("troubleshoot")
@run_id_argument
@click.option("--interactive", is_flag=True, help="Step through one check at a time (on a terminal).")
@json_options
@click.pass_context
def troubleshoot(ctx: Context, run_id: str, interactive: bool, as_json: bool) -> None:
    """The troubleshooting walk for a failed run, in the original's order: each step
    checked against the data (pass / fail / cannot tell), with the fix."""

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
    if interactive and not terminal().can_prompt:
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
    ctx: Context,
    run_id: str,
    verdict: str | None,
    matches_instructions: str | None,
    next_action_clear: str | None,
    reviewer: str | None,
    note: str | None,
    check_only: bool,
    as_json: bool,
) -> None:
    """The run review checklist with automatic evidence; the answers are stored."""
    import getpass

    from workerctl.runs.cards import review_text
    from workerctl.runs.review import HUMAN_ITEMS, checks, record_review, review_document
    from workerctl.runs.review_answers import ReviewAnswers, complete

    a = app(ctx)
    the_run = a.history.get(a.history.resolve(run_id))
    items = checks(the_run, records=a.records, registry=a.registry, settings=dict(a.workspace.settings))
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
    given = ReviewAnswers(verdict, matches_instructions, next_action_clear, note)
    done = complete(given, HUMAN_ITEMS, _ClickAsker() if terminal().can_prompt and not as_json else None)
    assert done.verdict is not None  # complete() asked for it or refused
    from workerctl.runs.approval import describe, follow_review

    decided = follow_review(a.history, a.records, the_run, done.verdict, by=reviewer or getpass.getuser())
    stored = record_review(
        a.history,
        the_run,
        done.verdict,
        reviewer or getpass.getuser(),
        dict(done.human),
        done.note or "",
        items,
    )
    if decided is not None and not as_json:
        click.echo(describe(decided))
    if as_json:
        echo_json({**review_document(stored, items), "review": stored.to_dict()["review"]})
    else:
        click.echo(
            f"Review stored: {done.verdict} by {stored.review.reviewer if stored.review else reviewer}."
        )


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
def rerun_cmd(
    ctx: Context, run_id: str, force: bool, allow_repeat: bool, detach: bool, as_json: bool
) -> None:
    """A new run of the same worker on the same record, linked to the earlier one.
    Like every start it passes the duplicate guard: refused (exit 5) when nothing
    changed since it failed (unless the failure was transient: cancelled, crashed,
    provider unavailable, timeout) or since the worker wrote there, unless --allow-repeat."""
    from workerctl.errors import EXIT_RUN_FAILED
    from workerctl.runs.cards import effect_text
    from workerctl.runs.rerun_guard import FORCE_NOTE, plan_rerun, rerun

    if force:
        click.echo(FORCE_NOTE, err=True)
    _check_fields(ID_FIELDS if detach else _run_doc_fields())  # before anything runs
    # stdout holds the answer alone (with --detach the new id: id=$(… --detach)); notes go to stderr
    notes = as_json or detach
    a = app(ctx)
    earlier = a.history.get(a.history.resolve(run_id))
    plan = plan_rerun(
        earlier, history=a.history, records=a.records, registry=a.registry, workspace=a.workspace
    )
    if plan.side_effects:
        click.echo(
            f"Side effects already made by runs of {earlier.worker} on {earlier.record_id or 'no record'}:",
            err=notes,
        )
        for e in plan.side_effects:
            click.echo(f"  run {e['run_id']}: {effect_text(e)}", err=notes)
    changed = [k for k in ("worker", "record", "plugins") if plan.changes[k]["changed"]]
    click.echo("Changed since: " + (", ".join(changed) if changed else "nothing"), err=notes)
    with _refusal_as_json(as_json):
        new = rerun(a.engine, plan, detach=detach, allow_repeat=allow_repeat)
    if detach:
        _echo_id(new, as_json)
        return
    _print_run(a, new, as_json)
    if new.status in ("failed", "cancelled"):
        ctx.exit(EXIT_RUN_FAILED)


class _ClickAsker:
    """The review's questions asked with click's prompts (only on a terminal)."""

    def confirm(self, question: str) -> bool:
        return click.confirm(question, default=True)

    def choose(self, question: str, choices: Sequence[str]) -> str:
        return str(click.prompt(question, type=click.Choice(list(choices))))

    def text(self, question: str) -> str:
        return str(click.prompt(question, default="", show_default=False))
