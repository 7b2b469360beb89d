"""A run's end larger than the space set aside for it, meeting a full disk, is still
recorded as its process knew it: its long texts cut to fit (``jsonvalues.shortened``,
each cut one saying so), its status, error and side effects whole.

Before, such an end (a 200 KB answer, a fresh-brief case) was tried once more as usual
in the space its file gave back; where that failed too, the sweep recorded the run
``failed``/``state_unusable`` with its comment ``unknown`` although the comment was on
the record. The full disk is real to the process from the write point of the run's
last save on (``storage/faults.py``: ENOSPC at that point and every later one that
needs space).
"""

from __future__ import annotations

import json
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import make_worker, run_workerctl
from workerctl.jsonvalues import CUT_NOTE, shortened
from workerctl.storage.atomic import encode_json

ANSWER = """
import json, sys
sys.stdin.read()
lines = [f"Part {n}: T-1042 needs its owner to confirm the scope of part {n} by Friday." for n in range(2000)]
print(json.dumps({"text": "\\n".join(lines)}))
"""


def _last_run_file_point(workspace, tmp_path) -> int:
    import shutil

    from workerctl.workspace import load_workspace

    probe = load_workspace(shutil.copytree(workspace.root, tmp_path / "probe"))
    trace = tmp_path / "trace"
    done = run_workerctl(
        "run",
        "start",
        "longer",
        "--task",
        "T-1042",
        workspace=probe,
        env={"WORKERCTL_TEST_FAULT": f"trace:{trace}"},
    )
    assert done.returncode == 0, done.stderr
    points = [line.split(" ", 1) for line in trace.read_text().splitlines()]
    return max(int(n) for n, path in points if "/history/runs/" in path)


def test_a_long_end_on_a_full_disk_is_recorded_with_its_texts_cut(workspace, tmp_path):
    (tmp_path / "answer.py").write_text(ANSWER)
    argv = json.dumps([sys.executable, str(tmp_path / "answer.py")])
    make_worker(workspace, "longer", executor=f"{{name: command, argv: {argv}}}")
    point = _last_run_file_point(workspace, tmp_path)

    result = run_workerctl(
        "run",
        "start",
        "longer",
        "--task",
        "T-1042",
        workspace=workspace,
        env={"WORKERCTL_TEST_FAULT": f"enospc:{point}"},
    )
    assert result.returncode == 4 and "Traceback" not in result.stderr
    assert "ended completed, and its run file says so" in result.stderr, result.stderr

    listed = run_workerctl("runs", "list", "--json", workspace=workspace)
    assert listed.returncode == 0, listed.stderr
    [run] = json.loads(listed.stdout)
    card = json.loads(run_workerctl("run", "inspect", run["id"], "--json", workspace=workspace).stdout)
    assert run["status"] == card["status"] == "completed" and card["error"] is None
    # the comment was written, in full, and the history and the ledger know it
    [effect] = card["side_effects"]
    assert effect["state"] == "committed"
    comments = json.loads(run_workerctl("records", "show", "T-1042", "--json", workspace=workspace).stdout)
    posted = [c for c in comments["comments"] if c.get("run_id") == run["id"]]
    assert len(posted) == 1 and posted[0]["text"].count("Part ") == 2000
    unknown = run_workerctl("ledger", "list", "--state", "unknown", "--json", workspace=workspace)
    assert unknown.returncode == 0 and json.loads(unknown.stdout) == []
    # the output kept its head and says where and why it was cut
    assert card["output"].startswith("Part 0: T-1042 needs its owner")
    assert "to fit the space set aside on a full disk]" in card["output"]
    assert len(card["output"]) < len(posted[0]["text"])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=400),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


def _same_shape(before, after, floor: int) -> None:
    """The same keys and lists, every non-text and every short text unchanged; a long
    text either whole or its own head followed by the note."""
    if isinstance(before, str):
        if after == before:
            return
        assert len(before) > floor
        head, note = after.split(" … [cut here: ", 1)
        assert before.startswith(head) and len(head) >= floor
        assert note == CUT_NOTE.format(total=len(before), kept=len(head)).split(" … [cut here: ", 1)[1]
    elif isinstance(before, list):
        assert isinstance(after, list) and len(after) == len(before)
        for b, a in zip(before, after, strict=True):
            _same_shape(b, a, floor)
    elif isinstance(before, dict):
        assert isinstance(after, dict) and list(after) == list(before)
        for key in before:
            _same_shape(before[key], after[key], floor)
    else:
        assert after == before and type(after) is type(before)


@settings(max_examples=300, deadline=None)
@given(value=JSON, limit=st.integers(0, 6000), floor=st.integers(0, 300))
def test_shortened_fits_or_says_it_cannot_and_changes_only_long_texts(value, limit, floor):
    def size(v) -> int:
        return len(encode_json(v).encode("utf-8", "backslashreplace"))

    try:
        cut = shortened(value, lambda v: size(v) <= limit, floor=floor)
    except ValueError:  # not even with every text cut to the floor
        assert size(value) > limit
        return
    assert size(cut) <= limit
    _same_shape(value, cut, floor)
    if size(value) <= limit:
        assert cut is value
