"""The facts check finds where a sentence names a field (and what it says of it) with
patterns compiled once per field name, not once per record id (``_field_named``): it
must find exactly what the one pattern built around the record's id found."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from workerctl.runs.grounded import _field_named, whole_word

SPACE = st.sampled_from(["", " ", "  ", "\n"])
NOISE = st.sampled_from(["", "x", "-", "the ", "due", "t-1", "overdue ", "date"])


@st.composite
def sentences(draw: st.DrawFn) -> str:
    """Noise, then the pattern's parts in order, each there or not: a field's name,
    "date", "for"/"of" and an id (the record's or another), a linking word, a value."""
    parts = [draw(NOISE)]
    for options in (
        ["due", "due date", "owner", "amount", "dues"],
        ["", "date"],
        ["", "for", "of", "fore"],
        ["", "t-1", "t-12", "t-2", "x"],
        ["", "is", "was", ":", "=", "of", "on", "by", "at", "island"],
        ["", "3 december", "ann", "120"],
    ):
        parts += [draw(st.sampled_from(options)), draw(SPACE)]
    return "".join(parts) + draw(NOISE)


def _one_pattern(lowered: str, alias: str, rid: str) -> tuple[int, int] | None:
    at = re.search(
        rf"\b{re.escape(alias)}\b\s*(?:date\s*)?(?:(?:for|of)\s+{re.escape(rid)}\s*)?"
        r"(?:(?:(?:is|was|of|on|by|at|ist|war|am|bis|zum|est|était|le|au|es|era|el|il|è|é|em|op|per)\b|[:=])"
        r"\s*){0,2}",
        lowered,
    )
    return (at.start(), at.end()) if at else None


@settings(max_examples=600, deadline=None)
@given(
    lowered=sentences(),
    alias=st.sampled_from(["due", "due date", "owner", "amount"]),
    rid=st.sampled_from(["t-1", "t-12", "x"]),
)
def test_field_named_finds_what_the_pattern_with_the_id_found(lowered, alias, rid):
    assert _field_named(lowered, alias, rid) == _one_pattern(lowered, alias, rid)


def test_a_pattern_is_compiled_once_per_word():
    assert whole_word("budget") is whole_word("budget")
    assert whole_word("a.b").search("a.b c") and not whole_word("a.b").search("axb")
