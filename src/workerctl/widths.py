"""How wide text is on a terminal, and tables fitted to it.

A terminal gives a CJK character or an emoji two columns and a combining mark none, so
``len`` is not a width: columns padded by ``len`` drift apart, and a table measured by
it runs past the edge. Widths come from wcwidth (the library tabulate measures with, so
the two agree); plain ASCII and the status marks, the usual case, are measured without
importing it (``runs list`` stays within its start-up budget).

The rule for tables (``render.table``, the one place they are drawn): on a terminal, or
wherever ``COLUMNS`` says how wide the page is, a table is never wider than that. The
widest columns of one-line text are cut (ending in "…"), the widest first, until the
table fits, none to fewer than ``MIN_COLUMN`` columns or its header's width; a column
holding workerctl's colour codes (a status while colour is on) or text of several lines
is never cut. A table that cannot fit even so keeps
those minimums (a 30-column terminal is not given unreadable stubs).
"""

from __future__ import annotations

from typing import Any

from workerctl.simple_table import COLOUR_CODE, ONE_COLUMN
from workerctl.simple_table import MIN_PADDING as HEADER_PADDING  # a column: its header and two spaces

MIN_COLUMN = 8
SEPARATOR = 2  # tabulate's "simple" format joins columns with two spaces


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal (its widest line)."""
    if "\x1b" in text:
        text = COLOUR_CODE.sub("", text)  # workerctl's own colour codes take no width
    if "\n" in text:
        return max(display_width(line) for line in text.split("\n"))
    if text.isascii() or ONE_COLUMN.issuperset(text):
        return len(text)
    from wcwidth import wcswidth

    width = wcswidth(text)
    return width if width >= 0 else len(text)


def cut_to_width(text: str, room: int) -> str:
    """``text`` on one line in at most ``room`` columns, "…" where it was cut."""
    flat = " ".join(text.split())
    if display_width(flat) <= room:
        return flat
    if flat.isascii() or ONE_COLUMN.issuperset(flat):
        return flat[: room - 1] + "…"
    from wcwidth import wcwidth

    kept, used = [], 0
    for char in flat:
        width = max(wcwidth(char), 0)
        if used + width > room - 1:
            break
        kept.append(char)
        used += width
    return "".join(kept) + "…"


def fit_columns(cells: list[list[Any]], headers: list[str], width: int) -> None:
    """Cut ``cells`` in place (see the module) so that the table is at most ``width``."""
    columns = len(headers)
    if not cells or any(len(row) != columns for row in cells):
        return
    widths = [  # tabulate gives a column at least its header's width and 2
        max(display_width(header) + HEADER_PADDING, *(display_width(str(row[index])) for row in cells))
        for index, header in enumerate(headers)
    ]
    cuttable = [all(_one_plain_line(row[index]) for row in cells) for index in range(columns)]
    floors = [max(MIN_COLUMN, display_width(header) + HEADER_PADDING) for header in headers]
    target = list(widths)
    excess = sum(widths) + SEPARATOR * (columns - 1) - width
    while excess > 0:  # one column at a time off the widest: the wide ones end level
        candidates = [i for i in range(columns) if cuttable[i] and target[i] > floors[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: target[i])
        target[widest] -= 1
        excess -= 1
    for index in range(columns):
        if target[index] < widths[index]:
            for row in cells:
                row[index] = cut_to_width(row[index], target[index])


def _one_plain_line(cell: Any) -> bool:
    """Text a cut cannot spoil: one line, none of workerctl's own colour codes."""
    return isinstance(cell, str) and "\n" not in cell and "\x1b" not in cell
