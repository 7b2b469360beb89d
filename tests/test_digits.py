"""Numbers read from state (a document id, a shard's or a ref log's file name, a comment
id, a process id in a folder's name) go through ``digits.whole_number``: ASCII digits or
not a number. ``str.isdigit`` takes ``"²"`` (which ``int`` refuses: a traceback) and
``"٣"`` (which ``int`` reads as 3: a stranger's file taken for shard 3)."""

from __future__ import annotations

import json
import shutil
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workerctl.digits import MAX_DIGITS, whole_number
from workerctl.history.layout import numbered
from workerctl.storage.shapes import is_doc_id
from workerctl.testing import CliRunnerBound
from workerctl.workspace import load_workspace

#: digits to ``str.isdigit`` (Nd: ٣ ৩ ３; No: ² ③ ...), and ASCII ones among them
DIGITS = st.characters(categories=("Nd", "No"))
NUMERALS = st.text(DIGITS, min_size=1, max_size=6)


@given(st.one_of(st.text(), st.binary(), NUMERALS))
def test_whole_number_reads_ascii_digits_and_nothing_else(text):
    chars = text.decode("latin-1") if isinstance(text, bytes) else text
    ascii_digits = bool(chars) and all(c in string.digits for c in chars) and len(chars) <= MAX_DIGITS
    assert whole_number(text) == (int(text) if ascii_digits else None)


@given(st.integers(0, 10**30))
def test_a_number_past_what_sqlite_holds_is_no_number(n):
    """A document id or a shard number goes into the search index (SQLite INTEGER, below
    2**63): "99999999999999999999999" as a shard's document id made the next run's save
    end with a traceback after its comment was written."""
    text = str(n)
    assert whole_number(text) == (n if len(text) <= MAX_DIGITS else None)
    assert is_doc_id(text) == (len(text) <= MAX_DIGITS)
    if whole_number(text) is not None:
        assert whole_number(text) < 2**63


@given(NUMERALS)
def test_a_document_id_is_what_int_reads_back_the_same(key):
    """The shape check takes an id only if every reader can turn it into a number
    and back into the same key (no two keys for one document)."""
    if is_doc_id(key):
        assert str(int(key)) == key
    else:
        assert not (key.isascii() and key.isdigit() and str(int(key)) == key)


@given(st.lists(st.one_of(NUMERALS, st.integers(0, 999_999).map("{:06d}".format)), max_size=8))
def test_numbered_files_are_the_ascii_ones(stems):
    names = [f"{s}.json" for s in stems]
    assert numbered(names) == sorted({int(s) for s in stems if s.isascii() and s.isdigit()})


def _plant_and_read(root, plant):
    plant(root / ".workerctl")
    cli = CliRunnerBound(load_workspace(root))
    return cli("runs", "list", "--json"), cli("workers", "list"), cli("runs", "stats")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NUMERALS.filter(lambda s: not (s.isascii() and s.isdigit())))
def test_a_shard_or_ref_log_named_in_other_digits_is_no_shard(one_run, tmp_path_factory, name):
    """A file in ``index/`` or a ref log's folder named in digits other than ASCII is a
    stranger's: never read as a shard (``٣٣٣٣٣٣.json`` would have been shard 3), never a
    traceback (``²²²²²².json``)."""
    ws, run_id = one_run
    root = tmp_path_factory.mktemp("digits") / "ws"
    shutil.copytree(ws.root, root, symlinks=True)
    history = root / ".workerctl" / "history"
    shard = history / "index" / "000001.json"
    # the planted shard holds a run that does not exist: listed, it would show
    fake = json.loads(shard.read_text())
    for doc in fake["runs"].values():
        doc["id"] = "zzzzzzzz"
    (history / "index" / f"{name}.json").write_text(json.dumps(fake))
    for log in (history / "indexes").glob("by-*/*"):
        shutil.copy(next(log.glob("*.json")), log / f"{name}.json")
    listed, workers, stats = _plant_and_read(root, lambda state: None)
    assert listed.exit_code == 0, listed.output
    assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]
    assert workers.exit_code == 0 and stats.exit_code == 0, workers.output + stats.output


def test_a_document_id_in_other_digits_is_a_damaged_shard(one_run):
    ws, _ = one_run
    shard = ws.root / ".workerctl" / "history" / "index" / "000001.json"
    data = json.loads(shard.read_text())
    data["runs"]["²"] = data["runs"].pop("1")
    shard.write_text(json.dumps(data))
    before = shard.read_bytes()
    result = CliRunnerBound(ws)("runs", "list")
    assert result.exit_code == 4, result.output
    assert "000001.json" in result.output and "'²'" in result.output
    assert "Traceback" not in result.output
    assert shard.read_bytes() == before  # left as it was


def test_a_comment_id_in_other_digits_does_not_stop_the_next_comment(one_run):
    """Comment ids are counted on from the highest ASCII one; ``c-²`` (hand-edited, or
    a record source's) is passed over, not a traceback at the next write."""
    ws, _ = one_run
    comments = ws.root / ".workerctl" / "comments" / "+t-1042.json"
    data = json.loads(comments.read_text())
    docs = data["comments"]
    docs["99"] = {**docs["1"], "id": "c-²", "key": "hand-made"}
    comments.write_text(json.dumps(data))
    result = CliRunnerBound(ws)("run", "start", "overdue-task-review", "--record", "T-1042", "--allow-repeat")
    assert result.exit_code == 0, result.output
    ids = [d["id"] for d in json.loads(comments.read_text())["comments"].values()]
    ascii_ids = [int(i[2:]) for i in ids if i[2:].isascii()]
    assert "c-²" in ids and len(ascii_ids) == len(set(ascii_ids)) == len(ids) - 1
    assert max(ascii_ids) == len(docs)  # the new one counted on from the highest ASCII id


ODD_SECONDS = st.sampled_from(["nan", "NaN", "-nan", "inf", "1e999", "²", "٣", " 2.5 ", "-0"])


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=8), ODD_SECONDS))
def test_the_lock_timeout_from_the_environment_is_seconds_or_a_usage_error(monkeypatch, raw):
    """WORKERCTL_LOCK_TIMEOUT: a number of seconds from 0 up (inf: wait for ever), or
    exit 2 naming it; "nan" is no number (it waited for ever without a word)."""
    import math

    from workerctl.errors import UsageError
    from workerctl.storage.lock import LOCK_TIMEOUT_ENV, resolve_timeout

    monkeypatch.setenv(LOCK_TIMEOUT_ENV, raw.replace("\x00", ""))
    try:
        seconds, _ = resolve_timeout(None)
    except UsageError as refused:
        assert LOCK_TIMEOUT_ENV in refused.message
        return
    assert not math.isnan(seconds) and seconds >= 0


@given(
    st.one_of(
        st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 1, 2**22, 2**31, 2**63]), st.text(max_size=3)
    )
)
def test_a_pid_read_from_state_is_probed_only_when_it_can_be_one(pid):
    """Every pid read from state (a marker, a reindex journal's owner, a folder of files
    written ahead) passes ``_pid_alive``: 0 and -1 would probe a whole process group or
    every process (and say "alive"), 10**20 made os.kill raise OverflowError."""
    import os

    from workerctl.history.sweep import PID_LIMIT, _pid_alive

    alive = _pid_alive(pid, None)
    if not (type(pid) is int and 0 < pid < PID_LIMIT):
        assert alive is False
    if pid == os.getpid():
        assert alive is True
