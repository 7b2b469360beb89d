"""``runs.structured``: JSON and tables in an output read as ``key: value.`` lines, so
every value in them reaches the checks that compare statements with the records."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from workerctl.runs.structured import as_statements

KEYS = st.from_regex(r"[a-z]{1,10}", fullmatch=True)
VALUES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 -]{0,15}", fullmatch=True).map(str.strip).filter(bool)


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=6))
def test_every_value_of_a_json_object_is_a_line_of_its_own(obj):
    lines = as_statements(json.dumps(obj)).splitlines()
    assert [line for line in lines if line] == [f"{k}: {v}." for k, v in obj.items()]


@given(
    st.lists(KEYS, min_size=2, max_size=5, unique=True),
    st.lists(st.lists(VALUES, min_size=5, max_size=5), max_size=4),
)
def test_every_cell_of_a_table_is_read_with_its_column(heads, rows):
    table = "| " + " | ".join(heads) + " |\n|" + "---|" * len(heads) + "\n"
    table += "".join("| " + " | ".join(row[: len(heads)]) + " |\n" for row in rows)
    read = as_statements(table).splitlines()
    for line, row in zip(read, rows, strict=False):
        assert line == " ".join(f"{h}: {c}." for h, c in zip(heads, row, strict=False))


def test_prose_is_left_as_it_is():
    text = "T-1042 waits on legal | marketing. Next step: ask legal {soon}."
    assert as_statements(text) == text
