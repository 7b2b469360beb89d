"""Tables fit the terminal, measured in display columns (a CJK character or an emoji
takes two, a combining mark none), and their columns line up whatever the text; a run
card's long lines wrap to the page under their own indentation, losing nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from wcwidth import wcswidth

from helpers import make_worker, run_workerctl
from workerctl.sanitize import own_sgr
from workerctl.simple_table import COLOUR_CODE
from workerctl.widths import (
    HEADER_PADDING,
    MIN_COLUMN,
    SEPARATOR,
    cut_to_width,
    display_width,
    fit_columns,
    wrap_to_width,
)

#: one-line text as records hold it: letters of any script, CJK, emoji, combining marks
TEXT = st.text(
    alphabet=st.characters(
        whitelist_categories=("Lu", "Ll", "Lo", "Nd", "Mn", "So", "Zs", "Po"),
        blacklist_characters="\u3164\u115f",
    ),
    min_size=0,
    max_size=60,
).map(lambda t: " ".join(t.split()))


# a mark that takes a column after a letter (wcwidth measures it in context): the sum
# of the characters' widths said the cut fitted, and the table ran a column wider (CI)
@example("0000000\U0001171e0", 8)
@example("\u0915\u0903\u0915\u0903\u0915\u0903\u0915\u0903", 3)
@given(TEXT, st.integers(min_value=2, max_value=80))
def test_a_cut_text_fits_its_room(text, room):
    cut = cut_to_width(text, room)
    assert display_width(cut) <= room
    assert cut == text or cut.endswith("…")


HEADERS = ["id", "title", "status", "due", "a much longer header"]


@settings(max_examples=60)
@example(
    (
        ["id", "id", "id", "id", "status", "id"],
        [
            ["", "", "", "00000000", "", ""],
            ["", "", "00000000", "", "", "00000000"],
            ["00000000", "0000000\U0001171e0", "", "", "", ""],
        ],
    ),
    30,
)
@given(
    st.integers(min_value=1, max_value=6).flatmap(
        lambda n: st.tuples(
            st.lists(st.sampled_from(HEADERS), min_size=n, max_size=n),
            st.lists(st.lists(TEXT, min_size=n, max_size=n), min_size=1, max_size=8),
        )
    ),
    st.integers(min_value=30, max_value=200),
)
def test_a_fitted_table_is_no_wider_than_the_page_unless_its_floors_are(table, width):
    from tabulate import tabulate

    headers, rows = table
    cells = [list(row) for row in rows]
    fit_columns(cells, headers, width)
    drawn = tabulate(cells, headers=headers, tablefmt="simple", disable_numparse=True)
    widest = max(wcswidth(line) for line in drawn.split("\n"))
    floors = sum(max(MIN_COLUMN, display_width(h) + HEADER_PADDING) for h in headers)
    assert widest <= max(width, floors + SEPARATOR * (len(headers) - 1))


def _paint(text: str, how: int) -> str:
    if not text or how == 0:
        return text
    if how == 1:
        return f"\x1b[32m{text}\x1b[0m"
    middle = len(text) // 3
    return f"{text[:middle]}\x1b[1m{text[middle : 2 * middle + 1]}\x1b[22m{text[2 * middle + 1 :]}"


@settings(max_examples=60)
@given(
    st.integers(min_value=1, max_value=6).flatmap(
        lambda n: st.tuples(
            st.lists(st.sampled_from(HEADERS), min_size=n, max_size=n),
            st.lists(
                st.lists(st.tuples(TEXT, st.integers(0, 2)), min_size=n, max_size=n), min_size=1, max_size=8
            ),
        )
    ),
    st.integers(min_value=30, max_value=200),
)
def test_colour_changes_nothing_but_the_codes(table, width):
    """A cell coloured whole (a status) is fitted as its text is: the table takes the
    same columns with colour on or off (with colour, the status column was left uncut
    and the table ran 2 columns past an 80-column terminal)."""
    from workerctl.simple_table import simple_table

    headers, rows = table
    plain = [[text for text, _ in row] for row in rows]
    # workerctl colours no empty text (a status is a word), or a part of it (a search's
    # highlight: the second attack found runs search laid out otherwise with colour on)
    coloured = [[_paint(text, paint) for text, paint in row] for row in rows]
    fit_columns(plain, headers, width)
    fit_columns(coloured, headers, width)
    assert [[COLOUR_CODE.sub("", c) for c in row] for row in coloured] == plain
    drawn = simple_table(coloured, headers)
    if drawn is not None:
        assert COLOUR_CODE.sub("", drawn) == simple_table(plain, headers)


def test_runs_list_takes_the_same_columns_with_colour_on_or_off(one_run):
    workspace, _ = one_run
    for columns in (80, 120):
        for _ in range(3):  # the two listings may fall either side of a second ("36 s ago", "37 s ago")
            shown = {
                name: run_workerctl("runs", "list", workspace=workspace, env={"COLUMNS": str(columns), **env})
                for name, env in (("on", {"FORCE_COLOR": "1", "NO_COLOR": ""}), ("off", {"NO_COLOR": "1"}))
            }
            if COLOUR_CODE.sub("", shown["on"].stdout) == shown["off"].stdout:
                break
        assert "\x1b[" in shown["on"].stdout and "\x1b[" not in shown["off"].stdout
        assert COLOUR_CODE.sub("", shown["on"].stdout) == shown["off"].stdout
        assert max(wcswidth(line) for line in _lines(shown["off"].stdout)) <= columns


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line]


def test_records_list_fits_and_lines_up_with_wide_characters(workspace, tmp_path):
    """The adversarial report: a CJK title and status pushed the due column to 115,
    165 and 117; tables ran past 40, 60 and 100 columns."""
    titles = [
        ("漢字のタイトル" * 6, "開いている"),
        ("e\u0301mile 👩\u200d💻 🇪🇺 " * 4, "open"),
        ("plain", "open"),
    ]
    records = [
        {"id": f"T-88{n}", "type": "task", "title": title, "status": status, "due": f"2026-12-2{n}"}
        for n, (title, status) in enumerate(titles)
    ]
    (tmp_path / "wide.json").write_text(json.dumps(records), encoding="utf-8")
    imported = run_workerctl("records", "import", str(tmp_path / "wide.json"), workspace=workspace)
    assert imported.returncode == 0, imported.stderr
    for columns in (80, 100, 140):
        page = {"COLUMNS": str(columns)}
        shown = run_workerctl("records", "list", "--type", "task", workspace=workspace, env=page)
        assert shown.returncode == 0, shown.stderr
        lines = _lines(shown.stdout)
        assert max(wcswidth(line) for line in lines) <= columns, (columns, shown.stdout)
        starts = {wcswidth(line[: line.index("2026-12-2")]) for line in lines if "2026-12-2" in line}
        assert len(starts) == 1, (columns, shown.stdout)  # the due column starts at one place
    piped = run_workerctl("records", "list", "--type", "task", workspace=workspace)
    assert "漢字のタイトル" * 6 in piped.stdout  # a pipe no COLUMNS describes gets every character


def test_runs_and_workers_tables_fit_a_standard_terminal(one_run):
    workspace, _ = one_run
    for command in (("runs", "list"), ("workers", "list"), ("records", "list")):
        for columns in (80, 100):
            shown = run_workerctl(*command, workspace=workspace, env={"COLUMNS": str(columns)})
            assert shown.returncode == 0, shown.stderr
            widest = max(wcswidth(line) for line in _lines(shown.stdout))
            assert widest <= columns, (command, columns, shown.stdout)


#: lines of a card: an indentation, then words of any script, single or runs of spaces,
#: tabs, and workerctl's own colour codes (a status, a verdict)
CARD_LINE = st.tuples(
    st.sampled_from(["", "  ", "    ", "               ", " " * 40]),
    st.lists(
        st.characters(
            whitelist_categories=("Lu", "Ll", "Lo", "Nd", "Mn", "So", "Po"),
            blacklist_characters="\u3164\u115f",
        )
        | st.sampled_from([" ", " ", "\t", own_sgr("31"), own_sgr("0")]),
        max_size=300,
    ).map("".join),
).map("".join)


# at least 2 columns: a CJK character or an emoji cannot fit in one
@example("    a \U0001171e\U0001171e b\u0915\u0903\u0915\u0903\u0915\u0903 c", 9)
@example("\u0915\u0903\u0915\u0903\u0915\u0903\u0915\u0903\u0915\u0903", 3)
@given(st.lists(CARD_LINE, min_size=1, max_size=5).map("\n".join), st.integers(min_value=2, max_value=120))
def test_a_wrapped_card_fits_the_page_and_keeps_every_character(text, room):
    wrapped = wrap_to_width(text, room)
    assert all(display_width(line) <= room for line in wrapped.split("\n")), wrapped
    assert "".join(wrapped.split()) == "".join(text.split())  # only white space changed
    assert "\x1b" not in COLOUR_CODE.sub("", wrapped)  # no colour code was cut
    for before in text.split("\n"):
        if _page_width(before) <= room:  # tabs where a terminal puts them
            assert wrap_to_width(before, room) == before  # a line that fits is left as it is


def test_a_card_with_a_long_output_line_fits_the_terminal(workspace):
    """Found by attacking the last round: a 3,000-character output line ran past the
    card's indentation back to the terminal's first column."""
    words = "the blocker on T-1042 waits for the 漢字 vendor contract; " * 60
    make_worker(workspace, "long", output_mode="review_note",
                executor=f"{{name: echo, script: [{{output: '{words}'}}]}}")  # fmt: skip
    for columns in (40, 80):
        shown = run_workerctl("run", "start", "long", "--task", "T-1042", "--allow-repeat",
                              workspace=workspace, env={"COLUMNS": str(columns)})  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.split("\n")
        assert max(display_width(line) for line in lines) <= columns
        body = lines[lines.index("  output") + 1 :]
        assert body[0].startswith("    the blocker") and body[1].startswith("    ")
    last = run_workerctl("runs", "list", "--format", "ids", "--limit", "1", workspace=workspace)
    piped = run_workerctl("run", "inspect", last.stdout.strip(), workspace=workspace)
    assert words.strip() in piped.stdout  # a pipe no COLUMNS describes gets the line whole


def test_a_coloured_failed_card_with_tabs_fits_any_page(workspace):
    """Found by the fresh-brief attack: lines holding colour codes (the status, the
    verdict, the error) were never wrapped, a tab counted as one column, indentation
    kept lines over a narrow page, and a pipe lost the output's trailing spaces."""
    tabbed = {"output": "Blocker:\tcol0\tcol1\tcol2\tcol3\tcol4 \nOwner: nobody   "}
    make_worker(workspace, "tabbed", output_mode="review_note",
                executor=json.dumps({"name": "echo", "script": [tabbed]}))  # fmt: skip
    failing = {"error": "the provider said no; " * 9}
    make_worker(workspace, "failing", executor=json.dumps({"name": "echo", "script": [failing]}))
    family = {"output": "12345678901 \U0001f468\u200d\U0001f469\u200d\U0001f467 end"}  # joiners: U+FFFD
    make_worker(workspace, "family", output_mode="review_note",
                executor=json.dumps({"name": "echo", "script": [family]}, ensure_ascii=False))  # fmt: skip
    for worker in ("tabbed", "failing", "family"):
        for columns in (12, 20, 40):
            env = {"COLUMNS": str(columns), "FORCE_COLOR": "1", "NO_COLOR": ""}
            shown = run_workerctl("run", "start", worker, "--task", "T-1042", "--allow-repeat",
                                  workspace=workspace, env=env)  # fmt: skip
            assert "\x1b[" in shown.stdout, "colour is on"
            widest = max(display_width(line.expandtabs(8)) for line in shown.stdout.split("\n"))
            assert widest <= columns, (worker, columns, shown.stdout)
    ids = ("runs", "list", "--worker", "tabbed", "--format", "ids", "--limit", "1")
    last = run_workerctl(*ids, workspace=workspace).stdout.strip()
    piped = run_workerctl("run", "inspect", last, workspace=workspace)
    assert "    Owner: nobody   \n" in piped.stdout and "\tcol4 \n" in piped.stdout


def test_worker_shows_recent_runs_fit_the_page_in_columns(workspace, tmp_path):
    """A recent run's row in ``worker show`` is cut in columns, not characters (a CJK
    title ran 76 columns past a 120-column page; second fresh-brief attack)."""
    title = "日本語のタイトル：カタログを翻訳する作業がまだ終わっていない件について詳しく"
    record = {
        "id": "T-5001",
        "type": "task",
        "title": title,
        "fields": {"status": "todo", "due": "2026-11-20"},
    }
    (tmp_path / "r.json").write_text(json.dumps([record]), encoding="utf-8")
    assert run_workerctl("records", "import", str(tmp_path / "r.json"), workspace=workspace).returncode == 0
    started = run_workerctl("run", "start", "overdue-task-review", "--task", "T-5001", workspace=workspace)
    assert started.returncode == 0, started.stderr
    for columns in (80, 120, 200):
        shown = run_workerctl(
            "worker", "show", "overdue-task-review", workspace=workspace, env={"COLUMNS": str(columns)}
        )
        [row] = [line for line in shown.stdout.splitlines() if "T-5001" in line]
        assert wcswidth(row) <= columns, (columns, row)


def _page_width(line: str) -> int:
    """A line's columns on a terminal: tabs at its tab stops, counted in display columns
    (workerctl's own colour codes take none)."""
    column = 0
    for part in line.split("\t")[:-1]:
        column += display_width(part)
        column += 8 - column % 8
    return column + display_width(line.split("\t")[-1])


def test_a_cell_beginning_with_a_mark_or_holding_a_tab_keeps_the_columns_in_line(workspace, tmp_path):
    """The second width round: a title beginning with a mark that takes a column after
    a space (U+093E, Ahom U+1171E) moved the row's later columns one to the right, and a
    status holding a tab pushed them to the terminal's next tab stop."""
    records = [
        {"id": "T-8801", "type": "task", "title": "\u093ex", "status": "todo", "due": "2026-12-21"},
        {
            "id": "T-8802",
            "type": "task",
            "title": "\U0001171e\U0001171ey",
            "status": "todo",
            "due": "2026-12-22",
        },
        {"id": "T-8803", "type": "task", "title": "plain", "status": "in\tprogress", "due": "2026-12-23"},
        {"id": "T-8804", "type": "task", "title": "plain", "status": "todo", "due": "2026-12-24"},
    ]
    (tmp_path / "marks.json").write_text(json.dumps(records), encoding="utf-8")
    assert (
        run_workerctl("records", "import", str(tmp_path / "marks.json"), workspace=workspace).returncode == 0
    )
    shown = run_workerctl("records", "list", "--type", "task", workspace=workspace, env={"COLUMNS": "80"})
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in _lines(shown.stdout) if "2026-12-2" in line]
    assert len(lines) == 4 and "\t" not in shown.stdout
    starts = {_page_width(line[: line.index("2026-12-2")]) for line in lines}
    assert len(starts) == 1, shown.stdout  # the due column starts at one place on every row
    status = {
        _page_width(line[: line.index(" todo")])
        for line in _lines(shown.stdout)
        if "T-880" in line and " todo" in line
    }
    assert len(status) == 1, shown.stdout  # and the status column, after a title of marks


@example("    漢漢\t" + "x" * 30, 40)
@given(
    st.text(st.sampled_from(["漢", "a", "\t", " ", "\u093e", "x"]), max_size=60),
    st.integers(min_value=10, max_value=60),
)
def test_a_wrapped_line_with_tabs_fits_the_page_as_a_terminal_places_them(text, room):
    """Tabs are placed by display columns: "    漢漢<TAB>" is eight columns before the tab
    (the helper's case: drawn 46 columns wide on a 40-column page)."""
    for line in wrap_to_width(text, room).split("\n"):
        assert _page_width(line) <= room or len(line.strip()) <= 1, (text, room, line)


@pytest.mark.parametrize(
    "command",
    [("records", "show", "T-1042"), ("worker", "show", "overdue-task-review"), ("runs", "stats")],
)
def test_text_blocks_fit_the_page_as_a_run_card_does(one_run, command):
    """The second width round: records show, worker show and runs stats printed their
    lines as built (a comment, a description, a chart's second line: 105 columns on an
    80-column page, 58 on a 40-column one); they now go through the page's fitting."""
    workspace, _ = one_run
    for columns in (40, 80):
        shown = run_workerctl(*command, workspace=workspace, env={"COLUMNS": str(columns)})
        assert shown.returncode == 0, shown.stderr
        assert max(_page_width(line) for line in _lines(shown.stdout)) <= columns, (columns, shown.stdout)
