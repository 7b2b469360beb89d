"""The ``workerctl run`` group: one run at a time."""

from __future__ import annotations

import click

from workerctl.cli.common import app

id_option = click.option("--id", "run_id", required=True, metavar="ID",
                         help="Run id, or any unique prefix of it.")


@click.group()
def run():
    """Start, inspect, troubleshoot, review, rerun or cancel a run."""


def _default_trigger() -> str:
    import sys

    return "manual" if sys.stdin.isatty() else "script"


def _print_run(a, the_run, as_json: bool, full_output: bool = True) -> None:
    from workerctl import render
    from workerctl.cards import card_facts, run_card

    facts = card_facts(a, the_run)
    if as_json:
        click.echo(render.to_json({**the_run.to_dict(), **facts,
                                   "duration": the_run.duration}))
    else:
        click.echo(run_card(the_run, facts, full_output=full_output))


@run.command("start")
@click.argument("worker")
@click.option("--task", "--record", "record_id", metavar="ID",
              help="The task (or other record) the run acts on.")
@click.option("--detach", is_flag=True, help="Return the run id at once; a background "
                                              "process executes the run.")
@click.option("--reason", default="", help="Why this run was started (shown on its card).")
@click.option("--test", is_flag=True, help="Allow a draft worker on a record not marked "
                                            "safe for testing.")
@click.option("--trigger", type=click.Choice(["manual", "cron", "script"]), default=None,
              help="Who started it (default: manual on a terminal, else script).")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@click.pass_context
def start(ctx, worker, record_id, detach, reason, test, trigger, as_json):
    """Run WORKER (on --task ID); wait and print its card. Exit 1 if it failed."""
    from workerctl import render
    from workerctl.engine import StartOptions
    from workerctl.errors import EXIT_RUN_FAILED

    a = app(ctx)
    options = StartOptions(record_id=record_id, trigger=trigger or _default_trigger(),
                           reason=reason, test=test)
    if detach:
        the_run = a.engine.start_detached(worker, options)
        if as_json:
            click.echo(render.to_json({"id": the_run.id, "status": the_run.status,
                                       "worker": the_run.worker,
                                       "record_id": the_run.record_id}))
        else:
            click.echo(the_run.id)
        return
    the_run = a.engine.start(worker, options)
    _print_run(a, the_run, as_json, full_output=True)
    if the_run.status != "completed":
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
@id_option
@click.option("--json", "as_json", is_flag=True, help="Print the whole stored run as JSON.")
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
@id_option
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@click.pass_context
def cancel(ctx, run_id, as_json):
    """Cancel a pending, queued or running run (a detached one is stopped)."""
    import getpass

    from workerctl.cancel import cancel_run

    a = app(ctx)
    the_run = cancel_run(a.history, a.history.resolve(run_id), by=getpass.getuser())
    if as_json:
        _print_run(a, the_run, True)
    else:
        click.echo(f"Cancelled run {the_run.id}.")
