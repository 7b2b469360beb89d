"""What ``runs list`` (and the other commands that filter runs) does between parsing
its options and printing: the filter, the check that a named worker exists, the
table's rows.

Kept apart from the click command (``cli.runs``) so that the other commands that
filter runs (``runs stats``, ``runs rerun``, ``runs cancel``) filter the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from workerctl.terminal import terminal

if TYPE_CHECKING:
    from workerctl.app import App
    from workerctl.history.store import RunFilter

RUN_COLUMNS = [
    "id",
    "status",
    "worker",
    "record_id",
    "created",
    "started",
    "finished",
    "duration",
    "trigger",
    "executor",
    "preview",
    "error_kind",
    "error_message",
    "needs_review",
    "review",
    "rerun_of",
    "iterations",
    "tokens",
    "side_effects",
    "failed_checks",
    "config_hash",
]


def list_filter(
    worker: Iterable[str],
    status: Iterable[str],
    task: str | None,
    since: str | None,
    until: str | None,
    unreviewed: bool,
    error_kinds: Iterable[str] = (),
) -> RunFilter:
    """The filter ``--worker``, ``--status``, ``--task``, ``--since``, ``--until``,
    ``--unreviewed`` and ``--error-kind`` ask for; an unknown status or error kind, or
    a record id outside the name rule (bytes that are not UTF-8 included), is a usage
    error (exit 2), never a traceback."""
    from workerctl.errors import UsageError
    from workerctl.history.store import RunFilter
    from workerctl.names import RECORD_ID
    from workerctl.runs.states import ERROR_KINDS, STATES
    from workerctl.timeparse import parse_when

    for s in status:
        if s not in STATES:
            raise UsageError(f"unknown status {s!r}", hint=f"use one of: {', '.join(STATES)}")
    for kind in error_kinds:
        if kind not in ERROR_KINDS:
            raise UsageError(f"unknown error kind {kind!r}", hint=f"use one of: {', '.join(ERROR_KINDS)}")
    return RunFilter(
        workers=tuple(worker),
        statuses=tuple(status),
        # the one name rule, before the record's index file is looked for
        record_id=RECORD_ID.check(task) if task is not None else None,
        since=parse_when(since) if since is not None else None,
        until=parse_when(until) if until is not None else None,
        unreviewed=unreviewed,
        error_kinds=tuple(error_kinds),
    )


def listed(
    a: App,
    worker: Sequence[str],
    status: Iterable[str],
    task: str | None,
    error_kinds: Iterable[str],
    since: str | None,
    until: str | None,
    unreviewed: bool,
    limit: int,
    held: bool = False,
) -> list[dict[str, Any]]:
    """The run summaries ``runs list`` shows, newest first (``limit`` 0: all);
    ``held``: only runs whose writes wait for a person (from the ledger)."""
    flt = list_filter(worker, status, task, since, until, unreviewed, error_kinds)
    check_workers(a, worker)
    if held:
        from workerctl.runs.approval import held_run_ids

        ids = tuple(held_run_ids(a.history))
        if not ids:
            return []
        import dataclasses

        flt = dataclasses.replace(flt, ids=ids)
    rows = a.history.list(flt, limit=limit or None)
    for row in rows:  # summaries indexed before the review verdict was kept
        row.setdefault("failed_checks", None)
    return rows


def check_workers(a: App, names: Sequence[str]) -> None:
    """A worker named in a filter must exist (a file, or runs in the history): a typo
    is exit 3, not "no runs match". A worker with runs is known from the history's
    index alone; its file is looked for (and the worker modules imported) only when
    it has none."""
    if not names:
        return
    from workerctl.errors import NotFoundError, UsageError
    from workerctl.history.store import RunFilter
    from workerctl.names import WORKER_NAME

    for name in names:
        try:
            WORKER_NAME.check(name)  # a usage error before any file is looked at
        except UsageError:
            from workerctl.workers.files import checked_name  # the worker modules: only now

            checked_name(a.workspace, name)  # the same error, naming the workers it is a slip of
            raise
        if a.history.list(RunFilter(workers=(name,)), limit=1):
            continue
        from workerctl.workers.files import find_path

        try:
            find_path(a.workspace, name)
        except NotFoundError as missing:
            raise NotFoundError(f"no worker named {name!r}, and no runs of one", hint=missing.hint) from None


def table_rows(items: list[dict[str, Any]]) -> list[list[Any]]:
    """A row per run; the last column (output or error) is cut to what the terminal
    has left, so a row stays one line."""
    from workerctl import render

    width = terminal().width()
    rows = []
    for r in items:
        if r["status"] == "failed":
            tail = f"{r['error_kind']}: {r['error_message']}"
        elif r.get("needs_review") and not r.get("review") and r["status"] == "completed":
            tail = "[needs human review] " + (r["preview"] or "")
        else:
            tail = r["preview"] or ""
        if r.get("failed_checks") and r["status"] == "completed":  # a failed run says why already
            tail = f"✗ {','.join(r['failed_checks'])} " + tail
        rows.append(
            [
                render.status_cell(r["status"]),
                r["id"],
                r["worker"],
                r["record_id"] or "-",
                render.ago(r["created"]),
                render.duration(r["duration"]),
                tail,
            ]
        )
    from workerctl.widths import display_width

    # display_width: a status's colour codes take no column (len counted them: the
    # output column was cut 16 columns short with colour on)
    used = max((sum(display_width(str(c)) + 2 for c in row[:-1]) for row in rows), default=60)
    room = max(12, width - used - 4)
    for row in rows:
        row[-1] = render.cut(row[-1], room)
    return rows


HEADERS = ["status", "id", "worker", "record", "created", "duration", "output / error"]


def wants_output(fmt: str) -> bool:
    """Whether the JSON printed holds ``output`` (every field, or ``output`` picked):
    only then are the run files read for it."""
    from workerctl.cli.shape import current_shape

    fields = current_shape().fields
    return fmt == "json" and (fields is None or "output" in fields)


def search_rows(items: list[dict[str, Any]]) -> list[list[Any]]:
    """A row per hit: the run's facts, then the snippet (one line, cut to what the
    terminal has left) with the matched words in bold on a terminal that takes
    colour. The data is sanitized piece by piece (``render.colour``,
    ``terminal().show``) before it is styled, so no escape sequence from a run
    reaches the terminal."""
    from workerctl import render
    from workerctl.terminal import Styled

    width = terminal().width()
    rows = []
    for r in items:
        rows.append(
            [
                render.status_cell(r["status"]),
                r["id"],
                r["worker"],
                r["record_id"] or "-",
                render.ago(r["created"]),
                r["matched_in"] or "-",
            ]
        )
    from workerctl.widths import display_width

    used = max((sum(display_width(str(c)) + 2 for c in row) for row in rows), default=60)
    room = max(16, width - used - 4)
    show = terminal().show
    for row, r in zip(rows, items, strict=True):
        text, marks = window(*one_line(r["snippet"], r["highlights"]), room)
        pieces: list[str] = []
        at = 0
        for start, end in marks:
            if start >= len(text):
                break
            end = min(end, len(text))
            pieces.append(show(text[at:start]))
            pieces.append(render.colour(text[start:end], "match", bold=True))
            at = end
        pieces.append(show(text[at:]))
        row.append(Styled("".join(pieces)) if render.use_colour() else "".join(pieces))
    return rows


def window(text: str, marks: list[tuple[int, int]], room: int) -> tuple[str, list[tuple[int, int]]]:
    """At most ``room`` characters of ``text``, placed so that the first mark shows;
    "…" where something was cut; the marks moved and clipped to match."""
    if len(text) <= room:
        return text, marks
    start = 0
    if marks and marks[0][1] > room - 1:
        start = max(0, min(marks[0][0] - room // 4, len(text) - (room - 1)))
    head = "…" if start else ""
    end = start + room - len(head) - 1
    tail = "…" if end < len(text) else ""
    if not tail:
        end = start + room - len(head)
    shift = start - len(head)
    moved = []
    for a, b in marks:
        a, b = max(a, start) - shift, min(b, end) - shift
        if b > a:
            moved.append((a, b))
    return head + text[start:end] + tail, moved


def one_line(snippet: str, marks: list[list[int]]) -> tuple[str, list[tuple[int, int]]]:
    """The snippet on one line (each run of white space one space) and its marks moved
    to match (``search_rows``)."""
    out: list[str] = []
    where: list[int] = []
    space = True
    for ch in snippet:
        if ch.isspace():
            where.append(-1)
            if not space:
                out.append(" ")
                space = True
        else:
            where.append(len(out))
            out.append(ch)
            space = False
    moved = []
    for start, end in marks:
        inside = [where[i] for i in range(max(start, 0), min(end, len(where))) if where[i] >= 0]
        if inside:
            moved.append((inside[0], inside[-1] + 1))
    return "".join(out).rstrip(), moved


SEARCH_HEADERS = ["status", "id", "worker", "record", "created", "in", "snippet"]
