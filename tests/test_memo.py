"""``workerctl.memo.Memo``: a value made once per key, and never more than ``limit``
keys kept (a long batch asks for new paths with every record)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from workerctl.memo import Memo


@given(keys=st.lists(st.integers(0, 30), max_size=200), limit=st.integers(1, 8))
def test_a_memo_makes_each_value_from_its_key_and_keeps_at_most_its_limit(keys, limit):
    made: list[int] = []

    def make(key: int) -> str:
        made.append(key)
        return f"value of {key}"

    memo: Memo[int, str] = Memo(make, limit=limit)
    for key in keys:
        assert memo[key] == f"value of {key}"
        assert len(memo) <= limit
    # a key asked again while it is kept is not made again
    asked_twice_in_a_row = sum(1 for a, b in itertools.pairwise(keys) if a == b)
    assert len(made) <= len(keys) - asked_twice_in_a_row
    assert len(made) >= len(set(keys))
