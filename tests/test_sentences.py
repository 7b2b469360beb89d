"""The one sentence splitter (``claims.sentences``) that the form, claims, next-step
and facts checks read through: a dot ends a sentence, except the dot of an
abbreviation ("Dr.", "e.g.", "z. B."), of a number ("release 2.4") or of a date written
with dots ("between 27.11. and 3.12.2026"), and before a word in lower case."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workerctl.runs.claims import sentences

WORD = st.sampled_from(["glossary", "legal", "agency", "review", "list", "login", "clinics", "release"])
NAME = st.sampled_from(["Aisha Okafor", "Lena Fischer", "Tom Reyes", "T-1042"])
# what may stand inside a sentence without ending it
INSIDE = st.one_of(
    WORD,
    NAME,
    st.builds(lambda a, n: f"{a} {n}", st.sampled_from(["Dr.", "Prof.", "Mr.", "Ms.", "St."]), NAME),
    st.builds(lambda a, w: f"{a} {w}", st.sampled_from(["e.g.", "i.e.", "cf.", "approx.", "z. B."]), WORD),
    st.builds(lambda d, m, w: f"{d}.{m}. {w}", st.integers(1, 28), st.integers(1, 12), WORD),
    st.builds(lambda a, b: f"version {a}.{b}", st.integers(0, 9), st.integers(0, 30)),
)


@st.composite
def sentence(draw: st.DrawFn) -> str:
    first = draw(st.sampled_from(["The", "Legal", "Lena", "Nobody", "Marketing"]))
    middle = draw(st.lists(INSIDE, min_size=1, max_size=6))
    return " ".join([first, *middle]) + draw(st.sampled_from([".", "!", "?"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(sentence(), min_size=1, max_size=5))
def test_each_sentence_is_one_whatever_dots_it_holds(said):
    assert sentences(" ".join(said)) == said


def test_a_semicolon_still_ends_a_part_and_lines_stay_apart():
    assert sentences("Blocked; ask legal.\nnext line.") == ["Blocked;", "ask legal.", "next line."]
