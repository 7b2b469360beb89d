"""The ``workerctl run`` group: one run at a time."""

from __future__ import annotations

import click

from workerctl.cli.common import app, json_options, run_id_argument
from workerctl.cli.complete import record_ids, worker_names
from workerctl.cli.shape import ShapedGroup, echo_json


@click.group(cls=ShapedGroup)
def run():
    """Start, inspect, troubleshoot, review, rerun or cancel a run."""


def _default_trigger() -> str:
    import sys

    return "manual" if sys.stdin.isatty() else "script"


def _print_run(a, the_run, as_json: bool, full_output: bool = True) -> None:
    from workerctl.runs.cards import run_card
    from workerctl.runs.changes import card_facts

    facts = card_facts(the_run, workspace=a.workspace, registry=a.registry, records=a.records)
    if as_json:
        echo_json({**the_run.to_dict(), **facts,
                                   "duration": the_run.duration})
    else:
        click.echo(run_card(the_run, facts, full_output=full_output))


@run.command("start")
@click.argument("worker", shell_complete=worker_names)
@click.option("--task", "--record", "record_id", metavar="ID", shell_complete=record_ids,
              help="The task (or other record) the run acts on.")
@click.option("--detach", is_flag=True, help="Return the run id at once; a background "
                                              "process executes the run.")
@click.option("--reason", default="", help="Why this run was started (shown on its card).")
@click.option("--test", is_flag=True, help="Allow a draft worker on a record not marked "
                                            "safe for testing.")
@click.option("--trigger", type=click.Choice(["manual", "cron", "script"]), default=None,
              help="Who started it (default: manual on a terminal, else script).")
@click.option("--wait", is_flag=True, help="For a worker on a remote executor (a task "
                                            "queue): wait until the run has finished.")
@json_options
@click.pass_context
def start(ctx, worker, record_id, detach, reason, test, trigger, wait, as_json):
    """Run WORKER (on --task ID); wait and print its card. Exit 1 if it failed.

    A worker on a remote executor (e.g. rq) is queued and the command returns at
    once, unless --wait.
    """
    from workerctl.engine.loop import StartOptions
    from workerctl.errors import EXIT_RUN_FAILED

    a = app(ctx)
    options = StartOptions(record_id=record_id, trigger=trigger or _default_trigger(),
                           reason=reason, test=test)
    if detach:
        the_run = a.engine.start_detached(worker, options)
        if as_json:
            echo_json({"id": the_run.id, "status": the_run.status,
                                       "worker": the_run.worker,
                                       "record_id": the_run.record_id})
        else:
            click.echo(the_run.id)
        return
    the_run = a.engine.start(worker, options)
    if wait and not the_run.finished:
        the_run = _wait_remote(a, the_run)
    if not the_run.finished:  # handed to a task queue: the id is what a script needs
        if as_json:
            echo_json({"id": the_run.id, "status": the_run.status,
                                       "worker": the_run.worker,
                                       "record_id": the_run.record_id})
        else:
            click.echo(the_run.id)
        click.echo(f"run {the_run.id} is {the_run.status} on executor {the_run.executor}; "
                   f"follow it with 'workerctl run watch {the_run.id}'", err=True)
        return
    _print_run(a, the_run, as_json, full_output=True)
    if the_run.status in ("failed", "cancelled"):
        ctx.exit(EXIT_RUN_FAILED)


def _wait_remote(a, the_run, every: float = 0.5):
    import time

    while not the_run.finished:
        time.sleep(every)
        a.refresh()
        the_run = a.history.get(the_run.id)
    return the_run


@run.command("watch")
@run_id_argument
@click.option("--exit-status", is_flag=True, help="Exit 1 if the run failed or was "
                                                   "cancelled (0 when it completed).")
@click.option("--format", "fmt", type=click.Choice(["text", "ndjson"]), default="text",
              help="ndjson: each event as one JSON object per line, then the run.")
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
    the_run = cancel_run(a.history, a.history.resolve(run_id), by=getpass.getuser())
    if as_json:
        _print_run(a, the_run, True)
    else:
        click.echo(f"Cancelled run {the_run.id}.")


@run.command("troubleshoot")
@run_id_argument
@click.option("--interactive", is_flag=True, help="Step through one check at a time "
                                                   "(on a terminal).")
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
    report = walk(the_run, history=a.history, records=a.records, registry=a.registry,
                  workspace=a.workspace)
    if as_json:
        echo_json(report.to_dict())
        return
    if not report.applicable:
        click.echo(report.message)
        return
    if interactive and not sys.stdin.isatty():
        raise UsageError("--interactive needs a terminal", hint="drop --interactive, or use --json")
    click.echo(f"Troubleshooting run {the_run.id} ({the_run.worker}"
               + (f" on {the_run.record_id}" if the_run.record_id else "") + f", {the_run.status})")
    blocks = troubleshooting_text(report)
    for index, block in enumerate(blocks):
        click.echo("\n".join(block))
        if interactive and index < len(blocks) - 1:
            answer = click.prompt("Enter for the next step, q to stop", default="",
                                  show_default=False)
            if answer.strip().lower() == "q":
                return


@run.command("review")
@run_id_argument
@click.option("--verdict", type=click.Choice(["approved", "needs_changes", "rejected"]),
              help="Your verdict (asked on a terminal when not given).")
@click.option("--matches-instructions", type=click.Choice(["yes", "no"]),
              help="Does the output match the worker instructions?")
@click.option("--next-action-clear", type=click.Choice(["yes", "no"]),
              help="Is the next human action clear?")
@click.option("--reviewer", help="Who reviews (default: your login name).")
@click.option("--note", default=None, help="A note stored with the review.")
@click.option("--check", "check_only", is_flag=True, help="Only show the checklist; store nothing.")
@json_options
@click.pass_context
def review(ctx, run_id, verdict, matches_instructions, next_action_clear, reviewer, note,
           check_only, as_json):
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
            click.echo(f"Already reviewed: {rv.verdict} by {rv.reviewer} at {rv.time}; "
                       "a new review replaces it.")
    nothing_given = verdict is None and matches_instructions is None \
        and next_action_clear is None
    if check_only or (as_json and nothing_given):
        if as_json:
            echo_json(review_document(the_run, items))
        return
    answers = {"matches_instructions": matches_instructions,
               "next_action_clear": next_action_clear}
    interactive = sys.stdin.isatty() and not as_json
    for key, title in HUMAN_ITEMS.items():
        if answers[key] is None and interactive:
            answers[key] = "yes" if click.confirm(title + "?", default=True) else "no"
    if verdict is None and interactive:
        verdict = click.prompt("Verdict", type=click.Choice(["approved", "needs_changes",
                                                             "rejected"]))
        if note is None:
            note = click.prompt("Note (optional)", default="", show_default=False)
    missing = [f"--{k.replace('_', '-')}" for k, v in answers.items() if v is None]
    if verdict is None:
        missing.insert(0, "--verdict")
    if missing:
        raise UsageError(f"not on a terminal: give {', '.join(missing)}",
                         hint="or add --check to only see the checklist")
    stored = record_review(a.history, the_run, verdict, reviewer or getpass.getuser(), answers,
                           note or "", items)
    if as_json:
        echo_json({**review_document(stored, items), "review": stored.to_dict()["review"]})
    else:
        click.echo(f"Review stored: {verdict} by {stored.review.reviewer if stored.review else reviewer}.")


@run.command("rerun")
@run_id_argument
@click.option("--force", is_flag=True, help="Rerun even when nothing changed or side effects "
                                            "may be written again.")
@click.option("--detach", is_flag=True, help="Return the new run id at once.")
@json_options
@click.pass_context
def rerun_cmd(ctx, run_id, force, detach, as_json):
    """A new run of the same worker on the same record, linked to the earlier one;
    refused when nothing changed since it failed, unless --force."""
    from workerctl.errors import EXIT_RUN_FAILED
    from workerctl.runs.cards import effect_text
    from workerctl.runs.rerun_guard import plan_rerun, rerun

    a = app(ctx)
    earlier = a.history.get(a.history.resolve(run_id))
    plan = plan_rerun(earlier, history=a.history, records=a.records, registry=a.registry,
                      workspace=a.workspace)
    if plan.side_effects:
        click.echo(f"Side effects already made by runs of {earlier.worker} on "
                   f"{earlier.record_id or 'no record'}:", err=as_json)
        for e in plan.side_effects:
            click.echo(f"  run {e['run_id']}: {effect_text(e)}", err=as_json)
    changed = [k for k in ("worker", "record", "plugins") if plan.changes[k]["changed"]]
    click.echo("Changed since: " + (", ".join(changed) if changed else "nothing"), err=as_json)
    new = rerun(a.engine, plan, force=force, detach=detach)
    if detach:
        click.echo(new.id)
        return
    _print_run(a, new, as_json)
    if new.status in ("failed", "cancelled"):
        ctx.exit(EXIT_RUN_FAILED)
