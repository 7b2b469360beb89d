"""tabulate's "simple" table format, for the tables whose cells are plain one-line text.

``render.table`` is the one place tables are drawn, and tabulate is its renderer. But
importing tabulate costs a cold command about 5 ms of CPU (its module, ``html`` and
``textwrap``), half a ``python -c pass``, and ``runs list`` is the command people run
most (``benchmarks/startup_bench.py``, issue 29). For the common case this module draws
the same bytes without it; for anything else (a cell that is not text, a line break, a
character whose width tabulate may count otherwise, a cell with surrounding spaces) it
answers None and tabulate draws the table. ``tests/test_simple_table.py`` holds it to
tabulate's output, byte for byte, over generated tables.

What tabulate does for such cells (``tablefmt="simple"``, ``disable_numparse=True``):
every column left-aligned and as wide as its widest cell, and at least its header's
width plus 2; columns joined by two spaces; a line of dashes under the headers; each
line's trailing spaces removed. The colour codes workerctl writes itself
(``render.colour``) take no width.
"""

from __future__ import annotations

import re
from typing import Any

#: characters every width rule counts as one column: printable ASCII and the marks of
#: the status vocabulary (``render.SYMBOLS``) and of a cut text ("…")
ONE_COLUMN = frozenset(map(chr, range(0x20, 0x7F))) | frozenset("…◷▶✓✗⊘↷○")
MIN_PADDING = 2  # tabulate's: a header is followed by at least two spaces
COLOUR_CODE = re.compile(r"\x1b\[[\d;]+m")  # workerctl's own colour codes (render.colour)


def simple_table(rows: list[list[Any]], headers: list[str]) -> str | None:
    """The table tabulate would draw, or None when tabulate must draw it."""
    columns = len(headers)
    widths = []
    for header in headers:
        if not _plain(header) or "\x1b" in header:
            return None
        widths.append(len(header) + MIN_PADDING)
    for row in rows:
        if len(row) != columns:
            return None
        for index, cell in enumerate(row):
            if not isinstance(cell, str):
                return None
            visible = COLOUR_CODE.sub("", cell) if "\x1b" in cell else cell
            if not _plain(visible) or "\x1b" in visible:
                return None
            widths[index] = max(widths[index], len(visible))

    def line(cells: list[str]) -> str:
        padded = []
        for cell, width in zip(cells, widths, strict=True):
            visible = len(COLOUR_CODE.sub("", cell)) if "\x1b" in cell else len(cell)
            padded.append(cell + " " * (width - visible))
        return "  ".join(padded).rstrip()

    out = [line(headers), "  ".join("-" * width for width in widths)]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def _plain(text: str) -> bool:
    """One line of one-column characters, without surrounding spaces (tabulate strips
    those, and counts a header's before stripping)."""
    return text == text.strip() and all(c in ONE_COLUMN for c in text)
