"""Rendering: tables, JSON, CSV, ids, relative times, colours and run cards.

Whether to colour, how wide to draw and what data text may be shown are the
terminal's to say (``workerctl.terminal``); times are relative in tables ("3 min
ago") and ISO-8601 UTC in JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from workerctl.sanitize import own_sgr
from workerctl.terminal import Styled, terminal

#: one status vocabulary, each word with its own mark: a run's states, then what a
#: batch or a bulk rerun reports for a record that did not run. "?" is not among
#: them: it means "cannot tell" (a check that could not decide, an unknown status).
STATUS_VOCABULARY = (
    "pending",
    "queued",
    "running",
    "completed",
    "failed",
    "cancelled",
    "skipped",
    "not_started",
)
SYMBOLS = {
    "pending": "…",
    "queued": "◷",
    "running": "▶",
    "completed": "✓",
    "failed": "✗",
    "cancelled": "⊘",
    "skipped": "↷",
    "not_started": "○",
}
COLOURS = {
    "pending": "yellow",
    "queued": "yellow",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
    "skipped": "cyan",
    "not_started": "yellow",
    "pass": "green",
    "fail": "red",
    "cannot tell": "yellow",
    "cannot_tell": "yellow",
    "active": "green",
    "paused": "yellow",
    "draft": "cyan",
    "broken": "red",
}


def use_colour() -> bool:
    """Colour on stdout, by the terminal's policy (``NO_COLOR``, ``FORCE_COLOR``, a terminal)."""
    return terminal().colour()


#: SGR codes of the colours above, so that colouring a table needs no click (the
#: codes ``click.style`` writes; a test keeps them equal)
ANSI = {"red": 31, "green": 32, "yellow": 33, "magenta": 35, "cyan": 36}


def colour(text: str, key: str | None = None, *, bold: bool = False) -> str:
    """``text`` in the colour of ``key`` (or of itself: a status, a verdict), when the
    terminal takes colour. The text is sanitized first and the result is ``Styled``,
    so a table shows the codes written here and no code the data held."""
    if not use_colour():
        return text
    code = ANSI.get(COLOURS.get(key or text, ""))
    fg = own_sgr(str(code)) if code else ""
    return Styled(f"{fg}{own_sgr('1' if bold else '22')}{terminal().show(text)}{own_sgr('0')}")


def status_cell(status: str, width: int = 0) -> str:
    """Symbol and word, padded before colouring so that columns stay aligned."""
    return colour(f"{SYMBOLS.get(status, '?')} {status}".ljust(width), status)


def parse_time(value: str | None) -> dt.datetime | None:
    """ISO date or date-time; naive values (dates in records) are taken as UTC."""
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def ago(value: str | None, now: dt.datetime | None = None) -> str:
    when = parse_time(value)
    if when is None:
        return "-"
    seconds = ((now or dt.datetime.now(dt.UTC)) - when).total_seconds()
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def term_width() -> int:
    """The terminal's width (``workerctl.terminal``), 120 when it has none."""
    return terminal().width()


def cut(text: str | None, width: int) -> str:
    """One line of at most ``width`` terminal columns, "…" where it was cut. Columns,
    not characters: a CJK title takes two a character (``worker show``'s recent runs,
    cut by characters, ran 76 columns past the page)."""
    from workerctl.widths import cut_to_width

    return "" if width <= 1 or not text else cut_to_width(text, width)


def table(rows: list[list[Any]], headers: list[str]) -> str:
    """A table in tabulate's "simple" format. Every text cell passes the terminal's
    sanitizer (a record title's escape sequence is not sent to the terminal); cells
    are not parsed as numbers (an id of digits stays as written). On a terminal the
    table fits its width (``widths.fit_columns``). Plain one-line text is drawn without
    importing tabulate, to the same bytes (``simple_table``)."""
    from workerctl.simple_table import simple_table
    from workerctl.widths import placed

    shown = terminal().show
    cells = [[placed(shown(c)) if isinstance(c, str) else c for c in row] for row in rows]
    page = terminal().page_width()
    if page is not None:
        from workerctl.widths import fit_columns

        fit_columns(cells, headers, page)
    drawn = simple_table(cells, headers)
    if drawn is not None:
        return drawn
    from tabulate import tabulate

    return tabulate(cells, headers=headers, tablefmt="simple", disable_numparse=True)


def fit_page(text: str) -> str:
    """A block of text (a run card) with its long lines wrapped to the page, on a
    terminal or wherever ``COLUMNS`` is set (``widths.wrap_to_width``); elsewhere as it
    is, so a script reading the card gets every line as written."""
    page = terminal().page_width()
    if page is None:
        return text
    from workerctl.sanitize import as_shown
    from workerctl.widths import wrap_to_width

    return wrap_to_width(as_shown(text), page)  # measured as the terminal will get it


def to_json(data: Any) -> str:
    """JSON with every control character escaped (C1 too: ``sanitize.json_safe``), so
    the exact data reaches a terminal as text it does not obey; always one JSON document:
    a NaN or an infinity (only data stored before ``workerctl.jsonvalues`` held one) is
    printed as null, as JavaScript's ``JSON.stringify`` does."""
    from workerctl.jsonvalues import dumps
    from workerctl.sanitize import json_safe

    return json_safe(dumps(data, indent=2, ensure_ascii=False, default=str))


def to_csv(rows: list[dict], columns: list[str]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(row.get(k)) for k in columns})
    return out.getvalue().rstrip("\n")


def csv_cell(value: Any) -> str:
    """A CSV cell: lists and mappings as compact JSON, booleans as true/false (as in
    the JSON output), never a Python repr."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def plain(value: Any) -> str:
    """A value as a person reads it in a table or a card: ``C-12, C-14``, ``yes``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items())
    return str(value)


def plural(count: int, word: str, many: str | None = None) -> str:
    """ "1 run", "2 runs"."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def strip(statuses: list[str]) -> str:
    """A one-line strip of status symbols, oldest left."""
    return "".join(colour(SYMBOLS.get(s, "?"), s) for s in statuses)
