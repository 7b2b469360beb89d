"""``index/.top`` notes the newest index shard so that ``runs list`` and ``run start``
need not list ``index/`` (11,628 files at a million runs). It is a hint, never the
truth: whatever it holds (absent, garbage, behind, ahead, in a gap), with whatever
shards the folder holds (holes left by a prune, gaps a reindex left, an empty or a full
newest shard), the newest-first listing and the shard a new run goes to must be exactly
what a listing of the folder gives.

One state is left out, because nothing makes it: a note naming a shard that exists,
the next one missing, and a shard above both. Shards are made only by a writer under
the lock, which notes the new newest shard before writing it (a note that cannot be
written is removed: the last test), and by a reindex, which notes its new folder's newest
shard (or none); a prune only removes shards. So a note is absent or at least the newest shard."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import run_workerctl
from workerctl.errors import PlantedLink
from workerctl.history.layout import SHARD_BYTES, TABLE, TOP_NOTE
from workerctl.history.store import History
from workerctl.plugins.manager import get_registry
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.runs.model import Run, new_run_id, now_iso
from workerctl.storage.atomic import write_json
from workerctl.workspace import init_workspace

NOTES = st.one_of(
    st.none(),  # no note
    st.integers(-3, 40).map(str),
    st.sampled_from(["", "x", "07", " 3\n", "1e3", "٣", "99999999999999999999999", "\0"]),
    st.binary(max_size=8).map(lambda b: b.decode("latin-1")),
)


def _template(history: History) -> dict:
    run = Run(id=new_run_id(), worker="alpha", config_hash="h", config={}, executor="echo", created=now_iso())
    history.create(run)
    return history.list(None, limit=1)[0]


def _brute_force(history: History, spans: list[tuple[int, int]] | None) -> list[str]:
    """Newest first, from a listing of every shard and nothing else."""
    folder = history.root / "index"
    shards = sorted(int(p.name[:-5]) for p in folder.glob("*.json") if p.name[:-5].isdigit())
    if spans is not None:
        shards = [s for s in shards if any(a <= s <= b for a, b in spans)]
    out = []
    for shard in reversed(shards):
        docs = history.reader.shard(shard)
        out.extend(docs[k]["id"] for k in sorted(docs, key=int, reverse=True))
    return out


def _current_by_listing(history: History) -> int:
    folder = history.root / "index"
    shards = sorted(int(p.name[:-5]) for p in folder.glob("*.json") if p.name[:-5].isdigit())
    if not shards:
        return 1
    return shards[-1] + 1 if history.shard_path(shards[-1]).stat().st_size >= SHARD_BYTES else shards[-1]


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    layout=st.lists(st.tuples(st.integers(1, 30), st.integers(0, 3)), min_size=0, max_size=8),
    full=st.booleans(),
    note=NOTES,
    spans=st.one_of(st.none(), st.lists(st.tuples(st.integers(0, 32), st.integers(0, 32)), max_size=3)),
)
def test_the_note_never_changes_what_the_folder_says(layout, full, note, spans):
    numbers = {shard for shard, _ in layout}
    if note is not None and note.isascii() and note.strip().isdigit():
        noted = int(note.strip())
        assume(not (noted in numbers and noted + 1 not in numbers and max(numbers) > noted + 1))
    tmp = Path(tempfile.mkdtemp(prefix="top-note-"))
    try:
        history = History(init_workspace(tmp / "ws", get_registry()))
        template = _template(history)
        shutil.rmtree(history.root / "index")
        (history.root / "index").mkdir(mode=0o700)
        shards = dict(layout)  # shard number -> documents in it (0: an empty shard, as a prune leaves)
        for shard, count in shards.items():
            docs = {str(n + 1): {**template, "id": new_run_id()} for n in range(count)}
            write_json(history.shard_path(shard), {TABLE: docs})
        if full and shards:  # the newest shard past SHARD_BYTES: a new run goes to the next
            newest = max(shards)
            docs = history.reader.shard(newest)
            padding = {str(len(docs) + 1): {**template, "id": new_run_id(), "preview": "x" * SHARD_BYTES}}
            write_json(history.shard_path(newest), {TABLE: {**docs, **padding}})
        if note is not None:
            (history.root / "index" / TOP_NOTE).write_bytes(note.encode("utf-8", "surrogateescape"))
        fresh = History(history.workspace)
        spans_given = [(min(a, b), max(a, b)) for a, b in spans] if spans is not None else None
        assert [d["id"] for d in fresh._iter_index(None, set(), spans_given)] == _brute_force(
            fresh, spans_given
        )
        assert fresh.list(None, limit=5) == [d for d in fresh.list(None, limit=None)[:5]], (
            "the first page is the head of the whole listing"
        )
        newest, whole = fresh.newest_slot(), _brute_force(fresh, None)
        assert (newest[2] if newest else None) == (whole[0] if whole else None)
        with fresh.lock:
            assert fresh._current_shard() == _current_by_listing(fresh)
        # and once a writer has noted the newest shard, it is still what the folder says
        again = History(history.workspace)
        assert [d["id"] for d in again._iter_index(None, set(), spans_given)] == _brute_force(
            again, spans_given
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_runs_created_one_after_another_keep_the_note_and_list_newest_first(workspace):
    """Runs enough to fill several shards, each created by a History of its own (as
    cron starts are): the note follows the newest shard, and the listing without a
    listing of the folder is the creation order reversed."""
    history = History(workspace)
    made = []
    for _ in range(300):
        run = Run(
            id=new_run_id(), worker="alpha", config_hash="h", config={}, executor="echo", created=now_iso()
        )
        History(workspace).create(run)
        made.append(run.id)
    shards = History(workspace).shards()
    assert len(shards) >= 2, "the test must cross a shard boundary"
    note = (history.root / "index" / TOP_NOTE).read_text()
    assert int(note) == shards[-1]
    assert [d["id"] for d in History(workspace).list(None, limit=None)] == made[::-1]
    History(workspace).reindex()  # a new folder, with its own note
    assert int((history.root / "index" / TOP_NOTE).read_text()) == History(workspace).shards()[-1]
    assert [d["id"] for d in History(workspace).list(None, limit=None)] == made[::-1]


def test_a_link_planted_as_the_note_is_refused_not_followed(workspace, tmp_path):
    history = History(workspace)
    _template(history)
    outside = tmp_path / "outside"
    outside.write_text("1")
    (history.root / "index" / TOP_NOTE).unlink(missing_ok=True)
    (history.root / "index" / TOP_NOTE).symlink_to(outside)
    with pytest.raises(PlantedLink):
        History(workspace).list(None, limit=5)
    assert outside.read_text() == "1"


def test_a_note_that_cannot_be_written_is_removed_not_left_behind(workspace, monkeypatch):
    """A note left saying an older shard beside a new one, then a prune's hole above it,
    would be believed and hide the newest runs: a note that cannot be written goes."""
    import errno

    import workerctl.history.layout as layout

    history = History(workspace)
    _template(history)
    with history.lock:
        history._note_top(1)
    assert (history.root / "index" / TOP_NOTE).read_text() == "1"

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(layout, "write_text_atomic", full_disk)
    with history.lock:
        history._note_top(2)
    assert not (history.root / "index" / TOP_NOTE).exists()
    assert History(workspace)._top_shard() is None  # the folder is listed instead


@pytest.mark.slow
def test_a_batch_across_shard_boundaries_lists_as_the_folder_says(workspace, tmp_path):
    """A ``--jobs 4`` batch (a real process) whose commits stage new shards for the lock's
    hand-over chain: afterwards the note names the newest shard, and the newest-first
    listing through it equals the one a listing of the folder gives (note removed)."""
    tasks = [f"T-{n}" for n in range(10000, 10320)]
    record = {"type": "task", "status": "todo", "due": "2026-01-01", "links": {"project": "P-7"}}
    BuiltinRecordStore(workspace).import_records(
        [{**record, "id": t, "title": f"Task {t}"} for t in tasks], "test"
    )
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(tasks) + "\n")
    argv = ("run", "start", "overdue-task-review", "--records-from", str(ids), "--jobs", "4")
    done = run_workerctl(*argv, "--json=counts", workspace=workspace)
    assert done.returncode == 0, done.stderr
    history = History(workspace)
    shards = history.shards()
    assert len(shards) >= 2, "the test must cross a shard boundary"
    assert int((history.root / "index" / TOP_NOTE).read_text()) == shards[-1]
    through_note = [d["id"] for d in History(workspace).list(None, limit=None)]
    (history.root / "index" / TOP_NOTE).unlink()
    assert through_note == _brute_force(History(workspace), None)
    assert len(through_note) == len(tasks)


def test_a_chain_of_creations_notes_a_new_shard_once(workspace, monkeypatch):
    """Creations in one hand-over chain (a batch: the shards are staged, written as the
    lock is let go) after the newest shard on disk filled: the new shard is noted once,
    when it is started, not again by every creation until the chain writes it (each one
    found the note ahead of the folder, listed the folder and wrote the note twice).
    Afterwards the note names the newest shard and the listing is the creation order
    reversed."""
    import workerctl.history.store as store_module

    monkeypatch.setattr(store_module, "SHARD_BYTES", 1500)  # a few runs a shard
    noted: list[int] = []
    real = store_module.write_top_note

    def counted(index, shard):
        noted.append(shard)
        real(index, shard)

    monkeypatch.setattr(store_module, "write_top_note", counted)

    def new_run() -> Run:
        return Run(
            id=new_run_id(), worker="alpha", config_hash="h", config={}, executor="echo", created=now_iso()
        )

    made = []
    while True:  # one commit at a time, each written: until the newest shard is full
        made.append(History(workspace).create(new_run()).id)
        history = History(workspace)
        if history.shard_path(history.shards()[-1]).stat().st_size >= 1500:
            break
    full = history.shards()[-1]
    noted.clear()
    with history.taking_turns(), history.lock:
        for _ in range(10):
            made.append(history.create(new_run()).id)
        staged = history.staged_in(history.root / "index")
        assert history.shard_path(full + 1) in staged and not history.shard_path(full + 1).exists()
    assert noted == [full + 1]
    assert History(workspace).shards()[-1] == full + 1
    assert int((history.root / "index" / TOP_NOTE).read_text()) == full + 1
    assert [d["id"] for d in History(workspace).list(None, limit=None)] == made[::-1]
    assert _brute_force(History(workspace), None) == made[::-1]
