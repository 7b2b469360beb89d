"""``--records-from``'s ids (``records.select.ids_from_text``): a JSON object naming a key
twice is refused, in an array or one per line, as ``records import`` refuses it (one
reader takes the first ``id``, another the last: a run went to the record named last)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workerctl.errors import UsageError
from workerctl.records.select import ids_from_text

IDS = st.lists(st.from_regex(r"[A-Z]{1,3}-[0-9]{1,5}", fullmatch=True), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(ids=IDS, twice=st.integers(0, 5), key=st.sampled_from(["id", "note"]), lines=st.booleans())
def test_a_key_given_twice_is_refused_and_unique_ones_read(ids, twice, key, lines):
    objects = [json.dumps({"id": i}) for i in ids]
    joined = "\n".join(objects) if lines else "[" + ", ".join(objects) + "]"
    assert ids_from_text(joined, "ids.json") == ids
    at = twice % len(ids)
    objects[at] = objects[at][:-1] + f', "{key}": "X-1", "{key}": "X-2"' + "}"
    if key == "id":
        objects[at] = '{"id": "X-1", ' + objects[at][1:]
    joined = "\n".join(objects) if lines else "[" + ", ".join(objects) + "]"
    with pytest.raises(UsageError, match="given twice"):
        ids_from_text(joined, "ids.json")
