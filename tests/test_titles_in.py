"""The provenance check finds the record titles an output names through ``_titles_in``,
at a cost that grows with the output, not with the workspace: it must find exactly what
asking ``title in text`` of every title finds, in the same order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workerctl.records.model import Record
from workerctl.runs.grounded import _distinct_titles, _title_heads, _titles_in

# few letters, a space, and characters whose lower case is longer ("İ") or equal to
# another's ("K", the Kelvin sign): titles share heads, overlap and nest
ALPHABET = st.sampled_from(["a", "b", " ", "İ", "K", "\u212a", "-"])
TITLES = st.lists(st.text(ALPHABET, min_size=10, max_size=20), min_size=0, max_size=12)


def _records(titles: list[str]) -> list[Record]:
    return [Record(id=f"R-{n}", type="task", title=t) for n, t in enumerate(titles)]


def _brute(text: str, records: list[Record]) -> list[tuple[str, str]]:
    return [(title, r.id) for title, r in _distinct_titles(records) if title in text]


@settings(max_examples=400, deadline=None)
@given(titles=TITLES, picks=st.lists(st.integers(0, 11), max_size=4), noise=st.text(ALPHABET, max_size=30))
def test_titles_in_finds_what_every_title_asked_would(titles, picks, noise):
    records = _records(titles)
    # a text holding some titles whole, some cut, with noise between
    parts = [noise]
    for n in picks:
        if titles:
            title = titles[n % len(titles)]
            parts += [title if n % 3 else title[: len(title) // 2], noise[: n % 7]]
    text = "".join(parts).lower()
    found = [(title, r.id) for title, r in _titles_in(text, _title_heads(records))]
    assert found == _brute(text, records)


def test_titles_in_among_twenty_thousand_records():
    records = _records([f"Task number {n:05d} of the backlog" for n in range(20000)])
    text = "blocker: see task number 00042 of the backlog and task number 19999 of the backlog."
    found = _titles_in(text, _title_heads(records))
    assert [r.id for _, r in found] == ["R-42", "R-19999"]
    assert [(t, r.id) for t, r in found] == _brute(text, records)


def _blanked_by_pattern(text: str, words: str) -> str:
    import re

    return re.sub(re.escape(words), lambda m: " " * len(m.group(0)), text, flags=re.I)


CASES = st.sampled_from(["a", "A", "b", "B", " ", ".", "(", "İ", "i", "K", "\u212a", "ſ", "s", "S"])


@settings(max_examples=400, deadline=None)
@given(words=st.text(CASES, min_size=1, max_size=5), noise=st.lists(st.text(CASES, max_size=6), max_size=4))
def test_a_title_is_blanked_as_the_case_blind_pattern_blanks_it(words, noise):
    """The facts check blanks a record's title out of a sentence (its words hedge
    nothing): found by lowering ASCII text, it is blanked exactly where the case-blind
    pattern finds it, overlapping and repeated occurrences, other cases and the
    characters whose case lowering does not know included."""
    from workerctl.runs.grounded import blanked

    flips = [words.upper(), words.lower(), words.swapcase(), words]
    text = "".join(n + flips[i % 4] for i, n in enumerate(noise)) + words[: len(words) // 2]
    assert blanked(text, words) == _blanked_by_pattern(text, words)
