"""How wide text is on a terminal, and tables fitted to it.

A terminal gives a CJK character or an emoji two columns and a combining mark none, so
``len`` is not a width: columns padded by ``len`` drift apart, and a table measured by
it runs past the edge. Widths come from wcwidth (the library tabulate measures with, so
the two agree); plain ASCII and the status marks, the usual case, are measured without
importing it (``runs list`` stays within its start-up budget).

The rule for tables (``render.table``, the one place they are drawn): on a terminal, or
wherever ``COLUMNS`` says how wide the page is, a table is never wider than that. The
widest columns of one-line text are cut (ending in "…"), the widest first, until the
table fits, none to fewer than ``MIN_COLUMN`` columns or its header's width. A cell that
workerctl coloured (a status, a search's highlights) is cut as its text is, the codes
kept, so a table takes the same columns with colour on or off; a column holding text of
several lines is never cut. A table that cannot fit even so keeps
those minimums (a 30-column terminal is not given unreadable stubs). A cell is drawn as the
table places it (``placed``, which ``render.table`` applies to every text cell): a tab as a
space, and a line beginning with a mark that takes a column only after something given a
dotted circle for its base.

The rule for text blocks (a run card, ``render.fit_page``): no line is wider than the
page. A wider one is wrapped at spaces, each continuation under the line's own
indentation, so a 3,000-character output line reads as a paragraph of the card instead
of running back to the terminal's first column; a word wider than the room left is
split (never inside a colour code); on a page narrower than the indentation plus
``MIN_COLUMN`` the indentation gives way; tabs count as a terminal's tab stops place
them. Only line breaks (and, in a wrapped line, spaces for tabs and indentation) change:
every other character is kept.
"""

from __future__ import annotations

import re
from typing import Any

from workerctl.simple_table import COLOUR_CODE, ONE_COLUMN
from workerctl.simple_table import MIN_PADDING as HEADER_PADDING  # a column: its header and two spaces

MIN_COLUMN = 8
TAB = 8  # a terminal's tab stops
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


#: what stands for the missing base of a mark that begins a cell's line (Unicode's way to
#: show a mark on its own)
DOTTED_CIRCLE = "\u25cc"


def placed(cell: str) -> str:
    """A text cell as a table places it: a tab as a space (a terminal puts a tab at its
    own tab stops, not in the table's column: "in<TAB>progress" pushed the next column
    along), and a line that begins with a mark taking a column after the space before it
    (U+093E after a space is one column, alone none: the row's later columns moved one
    to the right) given a dotted circle for a base, so that it takes the same columns
    alone, as tabulate measures it, as after the column's separator."""
    if "\t" in cell:
        cell = cell.replace("\t", " ")
    if cell.isascii():
        return cell
    lines = cell.split("\n")
    for n, line in enumerate(lines):
        if line and not line[0].isascii() and display_width(" " + line) != 1 + display_width(line):
            lines[n] = DOTTED_CIRCLE + line
    return "\n".join(lines)


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
    cut = "".join(kept)
    # a character's width may depend on its neighbours (a mark that takes a column
    # after a letter): the cut is measured whole, as the table will be
    while cut and display_width(cut + "…") > room:
        cut = cut[:-1]
    return cut + "…"


def fit_columns(cells: list[list[Any]], headers: list[str], width: int) -> None:
    """Cut ``cells`` in place (see the module) so that the table is at most ``width``."""
    columns = len(headers)
    if not cells or any(len(row) != columns for row in cells):
        return
    widths = [  # tabulate gives a column at least its header's width and 2
        max(display_width(header) + HEADER_PADDING, *(display_width(str(row[index])) for row in cells))
        for index, header in enumerate(headers)
    ]
    cuttable = [all(_cuttable(str(row[index])) for row in cells) for index in range(columns)]
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
                row[index] = _cut_inside_colour(str(row[index]), target[index])


# one line of text coloured whole (or not at all): workerctl's colour codes only around it
_ONE_LINE = re.compile(r"((?:\x1b\[[\d;]+m)*)([^\x1b\n]*)((?:\x1b\[[\d;]+m)*)")
_RESET = "\x1b[0m"


def _cuttable(cell: str) -> bool:
    """Text a cut cannot spoil: one line coloured whole or not at all, or one line of
    single-spaced text with workerctl's codes inside (a search's highlights)."""
    if "\n" in cell:
        return False
    if _ONE_LINE.fullmatch(cell):
        return True
    visible = COLOUR_CODE.sub("", cell)
    return "\x1b" not in visible and visible == " ".join(visible.split())


def _cut_inside_colour(cell: str, room: int) -> str:
    """``cut_to_width`` of the text a cell shows, its colour codes kept where they were
    (those past the cut dropped, a reset added if one was left open): the same text as
    the cut of the cell without colour, so colour changes nothing but the codes."""
    match = _ONE_LINE.fullmatch(cell)
    if match is not None:
        before, text, after = match.groups()
        return before + cut_to_width(text, room) + after
    visible = COLOUR_CODE.sub("", cell)  # single-spaced (``_cuttable``): a cut keeps its characters
    cut = cut_to_width(visible, room)
    if cut == visible:
        return cell
    keep, shown, out, open_code = len(cut) - 1, 0, [], False
    for token in re.split(f"({COLOUR_CODE.pattern})", cell):
        if COLOUR_CODE.fullmatch(token):
            if shown < keep:
                out.append(token)
                open_code = token != _RESET
            continue
        taken = token[: keep - shown]
        out.append(taken)
        shown += len(taken)
    return "".join(out) + "…" + (_RESET if open_code else "")


def wrap_to_width(text: str, room: int) -> str:
    """``text`` with every line wider than ``room`` columns wrapped (the rule above)."""
    return "\n".join(_wrap_line(line, room) for line in text.split("\n"))


def _wrap_line(line: str, room: int) -> str:
    shown = _expand_tabs(line) if "\t" in line else line  # as a terminal's tab stops place it
    if display_width(shown) <= room:
        return line
    body = shown.lstrip(" ")
    indent = shown[: len(shown) - len(body)]
    if room - len(indent) < MIN_COLUMN:  # a narrow page: the indentation gives way first
        indent = indent[: max(room - MIN_COLUMN, 0)]
    # each row is measured whole, its indentation included: a character's width may
    # depend on its neighbours (a mark after a letter or a space takes a column)
    rows: list[str] = []
    current: str | None = None
    for word in body.split(" "):  # runs of spaces give empty words: every space is kept
        if current is not None:
            joined = f"{current} {word}"
            if display_width(joined) <= room:
                current = joined
                continue
            rows.append(current)
        current = indent + word
        while display_width(current) > room:  # a word wider than the room: split it
            head, word = _split_at(word, room, indent)
            rows.append(indent + head)
            current = indent + word
    rows.append(current if current is not None else indent)
    return "\n".join(rows)


def _expand_tabs(line: str) -> str:
    """``line`` with each tab as the spaces a terminal's tab stops give it: counted in
    display columns (``str.expandtabs`` counts characters: "漢漢<TAB>" is four columns
    before the tab, not two)."""
    parts = line.split("\t")
    out, column = [], 0
    for part in parts[:-1]:
        column += display_width(part)
        pad = TAB - column % TAB
        out += [part, " " * pad]
        column += pad
    out.append(parts[-1])
    return "".join(out)


#: a colour code (kept whole, no width) or one character
_TOKEN = re.compile(rf"{COLOUR_CODE.pattern}|.", re.S)


def _split_at(word: str, room: int, prefix: str = "") -> tuple[str, str]:
    """The longest head of ``word`` that takes at most ``room`` columns after ``prefix``
    (at least one character), and the rest; a colour code is never cut. Measured
    whole: the characters' widths summed are only where to start looking."""
    used, starts, at = display_width(prefix), [], len(word)
    for token in _TOKEN.finditer(word):
        width = 0 if token.group().startswith("\x1b") else display_width(token.group())
        if used + width > room and token.start() > 0:
            at = token.start()
            break
        starts.append(token.start())
        used += width
    while display_width(prefix + word[:at]) > room and len(starts) > 1:
        at = starts.pop()  # one token back
    return word[:at], word[at:]
