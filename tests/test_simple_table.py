"""``simple_table`` draws what tabulate draws, byte for byte, or leaves it to tabulate.

The cases are generated: any table of text cells (plain, coloured as ``render.colour``
colours, with spaces around, line breaks, wide or combining characters, numbers or
None), compared with tabulate's own output for the same call ``render.table`` makes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tabulate import tabulate

from workerctl import render
from workerctl.simple_table import ONE_COLUMN, simple_table
from workerctl.terminal import Styled

PLAIN = st.text(st.sampled_from(sorted(ONE_COLUMN)), max_size=12)
ODD = st.text(st.sampled_from([*"ab \t\n\u00e9\u4e2d\u0301\u200b\x1b[0m123-.", "…", "✓"]), max_size=8)
TRIMMED = PLAIN.map(str.strip)
COLOURED = st.builds(
    lambda text, code: f"\x1b[{code}m{text}\x1b[0m", PLAIN, st.sampled_from([1, 22, 31, 32, 33, 36])
)
CELL = st.one_of(PLAIN, PLAIN, COLOURED, ODD, st.integers(), st.none(), st.floats(allow_nan=False))


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[list[object]], list[str]]:
    columns = draw(st.integers(1, 6))
    headers = draw(st.lists(st.one_of(PLAIN, PLAIN, ODD), min_size=columns, max_size=columns))
    rows = draw(st.lists(st.lists(CELL, min_size=columns, max_size=columns), max_size=8))
    return rows, headers


def _tabulate(rows: list[list[object]], headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(tables())
def test_the_same_bytes_as_tabulate_or_none(table):
    rows, headers = table
    drawn = simple_table(rows, headers)
    if drawn is not None:
        assert drawn == _tabulate(rows, headers)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(TRIMMED, min_size=3, max_size=3), max_size=6), st.lists(TRIMMED, min_size=3, max_size=3)
)
def test_plain_text_is_drawn_without_tabulate(rows, headers):
    """The common case (what ``runs list`` shows: one-line text, nothing around it)
    never needs tabulate."""
    assert simple_table(rows, headers) == _tabulate(rows, headers)


@pytest.mark.parametrize(
    ("rows", "headers"),
    [
        (
            [["✓ completed", "22zp9c3x", "T-1044", "3 s ago", 'Blocker: task T-1044 "Book…']],
            ["status", "id", "record", "created", "output / error"],
        ),
        ([], ["status", "id"]),
        ([["a", ""], ["", ""]], ["h1", ""]),
        ([[Styled("\x1b[32m✓ completed\x1b[0m"), "x"]], ["status", "id"]),  # render.colour's
        ([["中文", "x"]], ["a", "b"]),  # wide characters: tabulate (and wcwidth, if installed) decide
        ([["two\nlines", "x"]], ["a", "b"]),
        ([[" padded ", "x"]], ["a", " b"]),
    ],
)
def test_render_table_is_tabulate_s_table(rows, headers):
    """The reported shapes, through ``render.table`` (the one entry point)."""
    assert render.table(rows, headers) == _tabulate(rows, headers)
