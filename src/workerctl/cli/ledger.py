"""The ``workerctl ledger`` group: the side effects runs made, and settling unknown ones."""

from __future__ import annotations

from typing import Any

import click
from click import Context

from workerctl.cli.common import app, emit, json_options, output_options
from workerctl.cli.complete import record_ids, worker_names
from workerctl.cli.shape import ShapedGroup, echo_json

COLUMNS = ["key", "state", "kind", "target", "worker", "run_id", "at", "committed_at", "detail", "settled"]


@click.group(cls=ShapedGroup)
def ledger() -> None:
    """The side effects runs made (comments, records written), by record and worker."""


@ledger.command("list")
@click.option("--worker", shell_complete=worker_names, help="Only this worker's effects.")
@click.option(
    "--record",
    "--task",
    "record_id",
    metavar="ID",
    shell_complete=record_ids,
    help="Only effects on this record.",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(["intended", "committed", "unknown", "not_written", "held", "forgotten"]),
    help="Only this state (repeatable).",
)
@click.option("--run", "run_id", metavar="ID", help="Only effects of this run.")
@click.option(
    "--limit", type=click.IntRange(0), default=50, show_default=True, help="At most this many (0: all)."
)
@output_options
@click.pass_context
def list_cmd(
    ctx: Context,
    worker: str | None,
    record_id: str | None,
    states: tuple[str, ...],
    run_id: str | None,
    limit: int,
    fmt: str,
) -> None:
    """Side effects, newest first: what each run wrote, where, and in which state.

    'unknown' means the process died between intending a write and confirming it:
    settle it with 'workerctl ledger settle RUN --written|--not-written'.
    """
    from workerctl import render
    from workerctl.cli.runs_list import check_workers
    from workerctl.history.ledger import what_is_known

    a = app(ctx)
    effects = a.history.ledger.query(
        worker=worker, record_id=record_id, states=states, run_id=run_id, limit=limit or None
    )
    if worker and not effects:  # none: a worker never heard of is a typo, exit 3 naming the one meant
        check_workers(a, (worker,))
    items = [e.to_dict() for e in effects]
    if fmt == "table":
        for item, effect in zip(items, effects, strict=True):
            if effect.state in ("unknown", "intended"):
                item["known"] = what_is_known(effect, a.history, a.records)

    def rows() -> list[list[Any]]:
        out = []
        for item in items:
            what = " ".join(
                x for x in (item["kind"], str((item["detail"] or {}).get("comment_id") or "")) if x
            )
            state = render.colour(
                item["state"],
                "failed"
                if item["state"] == "unknown"
                else "completed"
                if item["state"] == "committed"
                else None,
            )
            out.append(
                [
                    state,
                    what,
                    item["target"],
                    item["worker"],
                    item["run_id"],
                    render.ago(item["committed_at"] or item["at"]),
                    "; ".join(item.get("known", []))
                    or (f"settled by {item['settled']['by']}" if item["settled"] else ""),
                ]
            )
        return out

    emit(
        fmt,
        items,
        COLUMNS,
        rows,
        ["state", "effect", "record", "worker", "run", "when", "known"],
        id_key="key",
        empty="no side effects match",
    )


@ledger.command("settle")
@click.argument("run_or_key")
@click.option(
    "--record",
    "--task",
    "record_id",
    metavar="ID",
    shell_complete=record_ids,
    help="Only the run's effects on this record.",
)
@click.option("--written", is_flag=True, help="The write happened.")
@click.option("--not-written", is_flag=True, help="The write did not happen.")
@click.option("--note", default="", help="Why you decided so (kept with the entry).")
@click.option("--by", "by", help="Who settles (default: your login name).")
@json_options
@click.pass_context
def settle(
    ctx: Context,
    run_or_key: str,
    record_id: str | None,
    written: bool,
    not_written: bool,
    note: str,
    by: str | None,
    as_json: bool,
) -> None:
    """Settle the unknown side effects of a run (RUN id or prefix, or one ledger KEY).

    Without --written or --not-written it only shows what is known. Settled as
    written, the effect counts like any written one (the duplicate guard refuses
    an unchanged repeat); settled as not written, the worker may run again.
    """
    import getpass

    from workerctl.errors import UsageError
    from workerctl.history.ledger import what_is_known

    if written and not_written:  # click would keep the last of two flags of one value
        raise UsageError("say one thing: --written or --not-written, not both")
    verdict = "written" if written else "not_written" if not_written else None
    a = app(ctx)
    matching = a.history.ledger.find_unsettled(run_or_key, record_id)
    if not matching:
        # settled already the same way (a settle made again after a crash cut it): done;
        # else NotFoundError, naming how they were settled
        done = a.history.ledger.settled_already(run_or_key, record_id, None if verdict is None else written)
        if as_json:
            echo_json([e.to_dict() for e in done])
        else:
            click.echo(
                f"settled already: {len(done)} side effect(s) as {'written' if written else 'not written'}"
            )
        return
    if verdict is None or not as_json:
        for effect in matching:
            click.echo(f"{effect.state}: {effect.describe()}", err=as_json)
            for line in what_is_known(effect, a.history, a.records):
                click.echo(f"  · {line}", err=as_json)
    if verdict is None:
        raise UsageError(
            "say what happened: --written or --not-written",
            hint=f"check the record first: workerctl records show {matching[0].target}",
        )
    settled = a.history.ledger.settle(
        run_or_key, written=verdict == "written", by=by or getpass.getuser(), note=note, target=record_id
    )
    if as_json:
        echo_json([e.to_dict() for e in settled])
    else:
        click.echo(
            f"settled {len(settled)} side effect(s) as {'written' if verdict == 'written' else 'not written'}"
        )
