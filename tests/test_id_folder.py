"""The stamp of a folder of id-named files (``storage.id_folder``): a folder this
version made holds no name but ``file_name``'s, so its readers skip the look-ups for
an earlier version's names; a folder without the stamp is read as before."""

from __future__ import annotations

import errno
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import run_workerctl
from workerctl.names import RECORD_ID
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.storage.filenames import file_name, id_of, legacy_names
from workerctl.storage.id_folder import STAMP

RECORD_IDS = st.from_regex(RECORD_ID.pattern, fullmatch=True).filter(lambda s: 0 < len(s) <= 128)


def _comment_file(record_id: str, text: str) -> dict:
    doc = {
        "id": "c-1",
        "record_id": record_id,
        "text": text,
        "author": "a",
        "created": "2026-01-01T00:00:00Z",
        "run_id": None,
        "key": None,
    }
    return {"comments": {"1": doc}}


def test_a_new_workspace_stamps_both_folders_before_their_first_file(workspace):
    assert (workspace.state_dir / "comments" / STAMP).is_file()  # init seeds comments
    records = workspace.history_dir / "ledger" / "records"
    assert not records.exists()
    done = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace)
    assert done.returncode == 0, done.stderr
    assert (records / STAMP).is_file()
    assert [p.name for p in records.glob("*.json")] == [f"{file_name('T-1042')}.json"]


def _only_file_names(folder) -> None:
    for path in folder.iterdir():
        if path.name == STAMP:
            continue
        stem = path.name.removesuffix(".json")
        assert path.suffix == ".json" and (id_of(stem) is not None or "~" in stem), path.name
        if "~" not in stem:
            assert file_name(id_of(stem)) == stem


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(RECORD_IDS, min_size=1, max_size=6, unique=True))
def test_a_stamped_folder_holds_only_names_file_name_makes(workspace, ids):
    """Generated ids through both write paths into the stamped folders (a comment; a
    run's ledger entry): every name is ``file_name``'s, never an old version's."""
    store = BuiltinRecordStore(workspace)
    store.import_records([{"id": i, "type": "task", "title": f"t {i}", "status": "todo"} for i in ids], "t")
    for record_id in ids:
        store.add_comment(record_id, "x", author="a", run_id=None, key=None)
    started = run_workerctl(
        "run", "start", "overdue-task-review", "--task", ids[0], "--allow-repeat", workspace=workspace
    )
    assert started.returncode in (0, 1), started.stderr
    for folder in (workspace.state_dir / "comments", workspace.history_dir / "ledger" / "records"):
        if folder.exists():
            assert (folder / STAMP).is_file()
            _only_file_names(folder)
            for record_id in ids:
                for old in legacy_names(record_id):
                    assert not (folder / f"{old}.json").exists(), (record_id, old)


def test_a_stamped_folder_is_not_searched_for_old_names(workspace):
    """What the stamp buys: no look-up of ``T:500``'s old name (``T_500``) in a folder
    this version made. (A file there under that name is another id's: ``T_500``'s.)"""
    folder = workspace.state_dir / "comments"
    (folder / "T_500.json").write_text(json.dumps(_comment_file("T:500", "old layout")))
    assert BuiltinRecordStore(workspace).comments("T:500") == []
    (folder / STAMP).unlink()
    assert [c.text for c in BuiltinRecordStore(workspace).comments("T:500")] == ["old layout"]


def test_an_unstamped_folder_stays_unstamped_and_keeps_its_old_files_readable(workspace):
    """A write into a folder an older version made (no stamp) does not stamp it: it may
    hold old names still, for other ids."""
    folder = workspace.state_dir / "comments"
    (folder / STAMP).unlink()
    (folder / "T_500.json").write_text(json.dumps(_comment_file("T:500", "old layout")))
    store = BuiltinRecordStore(workspace)
    store.add_comment("T-1042", "new", author="a", run_id=None, key=None)
    assert not (folder / STAMP).exists()
    assert [c.text for c in BuiltinRecordStore(workspace).comments("T:500")] == ["old layout"]


def test_a_stamp_that_cannot_be_written_does_not_stop_the_write(workspace, monkeypatch):
    """A full disk can refuse the stamp's inode (a fault this test cannot cause for one
    file alone, so ``touch`` is made to fail): the comment is written all the same, and
    the folder is read as an old one's."""
    import shutil

    from workerctl.storage import id_folder

    shutil.rmtree(workspace.state_dir / "comments")

    def full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(id_folder.fs, "touch", full)
    store = BuiltinRecordStore(workspace)
    _comment, added = store.add_comment("T-1042", "written", author="a", run_id=None, key=None)
    assert added and [c.text for c in store.comments("T-1042")] == ["written"]
    folder = workspace.state_dir / "comments"
    assert not (folder / STAMP).exists()
    (folder / "T_500.json").write_text(json.dumps(_comment_file("T:500", "old layout")))
    assert [c.text for c in BuiltinRecordStore(workspace).comments("T:500")] == ["old layout"]
