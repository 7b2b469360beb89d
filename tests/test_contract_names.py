"""``contract.names_id``: a record id named as a word of its own, found by a string
search (a pattern per id thrashed ``re``'s cache). Generated: texts and ids of id
characters, word characters of any script, hyphens and separators; the answer must be
the one of the pattern it replaces, ``(?<![\\w-])ID(?![\\w-])``."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from workerctl.workers.contract import names_id

PIECES = st.text("T-1042_xé日 \n.5٣", max_size=30)
IDS = st.one_of(
    st.sampled_from(["T-1042", "T-1", "x", "日", "é-5", "INV-٣"]), st.text("T-10x_", min_size=1, max_size=6)
)


@settings(max_examples=400, deadline=None)
@given(text=PIECES, record_id=IDS)
def test_names_id_answers_as_the_pattern_it_replaces(text, record_id):
    pattern = rf"(?<![\w-]){re.escape(record_id)}(?![\w-])"
    assert names_id(text, record_id) == bool(re.search(pattern, text))


def test_an_id_inside_a_longer_one_is_not_named():
    assert not names_id("see T-10421 and XT-1042", "T-1042")
    assert names_id("see T-10421, then T-1042.", "T-1042")
