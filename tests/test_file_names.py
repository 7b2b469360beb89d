"""One injective mapping from ids to file names (``storage.filenames``): no two ids
share a file, also where the file system folds case; old workspaces migrate on their
first write and lose nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import run_workerctl
from workerctl.names import RECORD_ID
from workerctl.storage.filenames import MAX_NAME, file_name, id_of, legacy_names

ID_CHARS = st.sampled_from("abcABCxyzXYZ019_:.-~+é ßİ\u0130\u212a\x00/\\\udc80")
ANY_ID = st.text(ID_CHARS, min_size=0, max_size=40) | st.text(max_size=300)
RECORD_IDS = st.from_regex(RECORD_ID.pattern, fullmatch=True).filter(lambda s: len(s) <= 128)


def _folded(name: str) -> str:
    return name.casefold()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(ANY_ID, min_size=50, max_size=120, unique=True)
    | st.lists(RECORD_IDS, min_size=50, max_size=120, unique=True)
)
@pytest.mark.slow
def test_no_two_ids_share_a_file_name(ids):
    """Every pair within each generated list: 60 lists of 50 to 120 ids are over 70,000
    distinct pairs, checked exactly and case-folded (generating the ids is what takes
    the time: 200 lists took 12 s of CPU)."""
    names = [file_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert len({_folded(n) for n in names}) == len(ids)  # a case-insensitive file system
    for name in names:
        assert 0 < len(name) <= MAX_NAME
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789._+-~")
        assert not name.startswith(".")


@settings(max_examples=60, deadline=None)
@given(st.text(st.sampled_from("abcxyz019-"), min_size=MAX_NAME - 5, max_size=400))
def test_a_long_plain_id_is_shortened_like_any_other(key):
    """A name of plain characters only (``[a-z0-9-]``) was returned as it was, however
    long: a 251-character id made every read of its ledger exit 4 ("File name too
    long"). Past ``MAX_NAME`` it keeps its start and ends in ``~`` and its SHA-256."""
    name = file_name(key)
    assert 0 < len(name) <= MAX_NAME
    assert (name == key) == (len(key) <= MAX_NAME)
    assert "~" in name or name == key
    assert file_name(key + "a") != name


def test_a_long_plain_record_id_is_read_without_an_error(workspace):
    ran = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace)
    assert ran.returncode == 0, ran.stderr  # the ledger's folders exist
    long_id = "y" * 251
    listed = run_workerctl("ledger", "list", "--task", long_id, workspace=workspace)
    assert listed.returncode == 0, listed.stderr


def test_ten_thousand_pairs_of_similar_ids():
    """Ids one character apart (case, odd characters): 10,000 pairs built directly."""
    import itertools
    import random

    rng = random.Random(22)
    alphabet = "aAbB_:.-9é~+"
    seen: dict[str, str] = {}
    for _ in range(10_000):
        base = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        for key in (base, base.swapcase(), base.replace("_", ":"), base.replace(":", "_")):
            folded = _folded(file_name(key))
            assert seen.setdefault(folded, key) == key, (key, seen[folded])
    assert len(seen) > 10_000
    assert list(itertools.islice(seen, 1))


@settings(max_examples=2_000, deadline=None)
@given(ANY_ID | RECORD_IDS)
@pytest.mark.slow
def test_a_name_reads_back_as_its_id(key):
    name = file_name(key)
    assert id_of(name) == (None if "~" in name else key)


def test_the_reported_pair_and_common_ids():
    assert file_name("T:500") != file_name("T_500")
    assert file_name("t-1") != file_name("T-1")
    assert file_name("overdue-task-review") == "overdue-task-review"
    assert file_name("T-1042") == "+t-1042"
    assert file_name("") == "_" and file_name(".hidden").startswith("_2e")


def test_comments_of_t_colon_500_and_t_underscore_500_stay_apart(workspace):
    for rid in ("T:500", "T_500"):
        path = workspace.root / f"{rid.replace(':', '-')}.json"
        path.write_text(json.dumps([{"id": rid, "type": "task", "title": f"task {rid}"}]), encoding="utf-8")
        assert run_workerctl("records", "import", str(path), workspace=workspace).returncode == 0
    from workerctl.records.builtin_store import BuiltinRecordStore

    store = BuiltinRecordStore(workspace)
    store.add_comment("T:500", "only on the colon one", author="a", run_id=None, key=None)
    assert [c.text for c in store.comments("T:500")] == ["only on the colon one"]
    assert store.comments("T_500") == []
    shown = run_workerctl("records", "show", "T_500", workspace=workspace)
    assert shown.returncode == 0 and "only on the colon one" not in shown.stdout


def test_an_old_workspace_migrates_on_first_write_losing_nothing(workspace):
    """Comments and ledger files in the old layout (one comments file shared by T:500 and
    T_500; ledger files under the old names): read as before, and each id's data moves
    under its new name at its first write, the other id's untouched."""
    state = workspace.state_dir
    (state / "comments").mkdir(exist_ok=True)
    shared = {
        "comments": {
            "1": {
                "id": "c-1",
                "record_id": "T:500",
                "text": "colon",
                "author": "a",
                "created": "2026-01-01T00:00:00Z",
                "run_id": None,
                "key": None,
            },
            "2": {
                "id": "c-2",
                "record_id": "T_500",
                "text": "under",
                "author": "a",
                "created": "2026-01-02T00:00:00Z",
                "run_id": None,
                "key": None,
            },
        }
    }
    (state / "comments" / "T_500.json").write_text(json.dumps(shared), encoding="utf-8")
    assert "T_500" in legacy_names("T:500") and "T_500" in legacy_names("T_500")
    from workerctl.records.builtin_store import BuiltinRecordStore

    store = BuiltinRecordStore(workspace)
    assert [c.text for c in store.comments("T:500")] == ["colon"]
    assert [c.text for c in store.comments("T_500")] == ["under"]
    store.add_comment("T:500", "second", author="a", run_id=None, key=None)
    assert [c.text for c in store.comments("T:500")] == ["colon", "second"]
    assert [c.id for c in store.comments("T:500")] == ["c-1", "c-2"]
    assert [c.text for c in store.comments("T_500")] == ["under"]
    assert (state / "comments" / f"{file_name('T:500')}.json").exists()
    assert (state / "comments" / "T_500.json").exists()  # still the other id's


def test_an_old_ledger_guards_against_duplicates_after_the_upgrade(workspace):
    """A run's comment recorded in the ledger under the old file name still blocks a
    repeat start (exit 5) after the upgrade, and the next write moves it."""
    first = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace)
    assert first.returncode == 0, first.stderr
    ledger = workspace.history_dir / "ledger" / "records"
    new = ledger / f"{file_name('T-1042')}.json"
    new.rename(ledger / "T-1042.json")  # the layout before
    again = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace)
    assert again.returncode == 5, again.stdout + again.stderr
    listed = run_workerctl("ledger", "list", "--task", "T-1042", "--json", workspace=workspace)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1
    forced = run_workerctl(
        "run", "start", "overdue-task-review", "--task", "T-1042", "--allow-repeat", workspace=workspace
    )
    assert forced.returncode == 0, forced.stderr
    assert new.exists()
    listed = run_workerctl("ledger", "list", "--task", "T-1042", "--json", workspace=workspace)
    assert len(json.loads(listed.stdout)) == 2


def _comment(record_id: str, text: str, number: int = 1) -> dict:
    return {
        "id": f"c-{number}",
        "record_id": record_id,
        "text": text,
        "author": "a",
        "created": "2026-01-01T00:00:00Z",
        "run_id": None,
        "key": None,
    }


#: ids holding a character a file name writes as ``_`` and hex: such an id's name now is
#: the old name of the id spelled like that name (``t:500`` is ``t_3a500``)
HEIRS = st.text(st.sampled_from("abz019-.:/ é_"), min_size=1, max_size=30).filter(
    lambda h: file_name(h) != h and "~" not in file_name(h) and not h.startswith(".")
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(HEIRS)
def test_an_id_whose_name_is_another_id_s_old_file_reads_only_its_own(workspace, heir):
    """In a workspace an earlier version wrote, ``key``'s comments sit under its old
    name, which is now another id's name (``t_3a500``'s old file is ``t:500``'s name):
    each id reads its own comments only, before and after either writes."""
    from workerctl.records.builtin_store import BuiltinRecordStore

    key = file_name(heir)  # an id spelled like the heir's name: its old file is that name
    assume(file_name(heir) in legacy_names(key))
    folder = workspace.state_dir / "comments"
    folder.mkdir(exist_ok=True)
    for path in folder.iterdir():
        path.unlink()
    (folder / f"{file_name(heir)}.json").write_text(
        json.dumps({"comments": {"1": _comment(key, "the old id's")}}), encoding="utf-8"
    )
    store = BuiltinRecordStore(workspace)
    assert store.comments(heir) == []
    assert [c.text for c in store.comments(key)] == ["the old id's"]
    store.add_comment(heir, "the heir's", author="a", run_id=None, key=None)
    assert [c.text for c in store.comments(heir)] == ["the heir's"]
    assert [c.text for c in store.comments(key)] == ["the old id's"]
    store.add_comment(key, "again", author="a", run_id=None, key=None)
    assert [c.text for c in store.comments(key)] == ["the old id's", "again"]
    assert [c.text for c in store.comments(heir)] == ["the heir's"]


def test_an_old_file_under_another_id_s_new_name_is_not_that_id_s(workspace):
    """The reported case, through the command line: ``t_3a500`` commented and guarded
    by the layout before (its files under its old name, ``t_3a500``, which is now the
    name of ``t:500``). ``t:500`` showed ``t_3a500``'s comment, listed its ledger entry,
    gave it to a worker as evidence and was refused as a repeat; ``t_500`` showed
    ``t_5f500``'s comment instead of its own."""
    ids = ("t:500", "t_3a500", "t_500", "t_5f500")
    path = workspace.root / "records.json"
    path.write_text(
        json.dumps([{"id": i, "type": "task", "title": f"task {i}", "status": "todo"} for i in ids]),
        encoding="utf-8",
    )
    assert run_workerctl("records", "import", str(path), workspace=workspace).returncode == 0
    first = run_workerctl("run", "start", "overdue-task-review", "--task", "t_3a500", workspace=workspace)
    assert first.returncode == 0, first.stderr
    state = workspace.state_dir
    for folder in (state / "comments", workspace.history_dir / "ledger" / "records"):
        (folder / f"{file_name('t_3a500')}.json").rename(folder / "t_3a500.json")  # the layout before
    (state / "comments" / "t_500.json").write_text(
        json.dumps({"comments": {"1": _comment("t_500", "t_500's own")}}), encoding="utf-8"
    )
    (state / "comments" / "t_5f500.json").write_text(
        json.dumps({"comments": {"1": _comment("t_5f500", "t_5f500's own")}}), encoding="utf-8"
    )

    def shown(rid: str) -> list[str]:
        out = run_workerctl("records", "show", rid, "--json", workspace=workspace)
        assert out.returncode == 0, out.stderr
        return [c["text"] for c in json.loads(out.stdout)["comments"]]

    def entries(rid: str) -> list[str]:
        out = run_workerctl("ledger", "list", "--task", rid, "--json", workspace=workspace)
        assert out.returncode == 0, out.stderr
        return [e["target"] for e in json.loads(out.stdout)]

    theirs = shown("t_3a500")
    assert len(theirs) == 1 and shown("t:500") == [] and entries("t:500") == []
    assert shown("t_500") == ["t_500's own"] and shown("t_5f500") == ["t_5f500's own"]
    argv = ("run", "start", "overdue-task-review", "--task", "t:500", "--json")
    started = run_workerctl(*argv, workspace=workspace)
    assert started.returncode == 0, started.stdout + started.stderr
    assert theirs[0] not in json.dumps(json.loads(started.stdout)["context"])
    assert len(shown("t:500")) == 1 and entries("t:500") == ["t:500"]
    assert shown("t_3a500") == theirs and entries("t_3a500") == ["t_3a500"]  # kept for that id
    repeat = run_workerctl("run", "start", "overdue-task-review", "--task", "t_3a500", workspace=workspace)
    assert repeat.returncode == 5, repeat.stdout + repeat.stderr  # its old entry still guards it


#: ids whose old and new file names collide with each other's (``t:500``'s name now is
#: the old name of ``t_3a500``), and some that collide with nothing
CONFUSABLE = ["t:500", "t_3a500", "T:500", "T_500", "t_500", "a.b", "a_2eb", "x~1", "x_7e1", "plain"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["comment", "read", "old file"]), st.sampled_from(CONFUSABLE)),
        min_size=1,
        max_size=25,
    )
)
def test_a_store_that_remembers_absent_old_files_reads_as_a_fresh_one(tmp_path_factory, steps):
    """``storage.filenames.LegacyFiles`` keeps an old name it found absent; a store that
    lives for a whole batch must still read every id's comments as a store made just now
    does, whatever was written meanwhile under new names (which may be other ids' old
    ones) and whatever old-layout file was there from the start."""
    from workerctl.plugins.manager import get_registry
    from workerctl.records.builtin_store import BuiltinRecordStore
    from workerctl.workspace import init_workspace

    workspace = init_workspace(tmp_path_factory.mktemp("legacy") / "ws", get_registry())
    folder = workspace.state_dir / "comments"
    folder.mkdir(exist_ok=True)
    # an old workspace's files, before the long-lived store is made
    for kind, rid in steps:
        if kind == "old file":
            docs = {"1": {"id": "c-1", "record_id": rid, "text": f"old on {rid}", "author": "a",
                          "created": "2026-01-01T00:00:00Z", "run_id": None, "key": None}}  # fmt: skip
            (folder / f"{legacy_names(rid)[-1] if legacy_names(rid) else file_name(rid)}.json").write_text(
                json.dumps({"comments": docs}), encoding="utf-8"
            )
    kept = BuiltinRecordStore(workspace)
    for n, (kind, rid) in enumerate(steps):
        if kind == "comment":
            kept.add_comment(rid, f"comment {n}", author="a", run_id=None, key=None)
        fresh = BuiltinRecordStore(workspace)
        for other in CONFUSABLE:
            assert [c.text for c in kept.comments(other)] == [c.text for c in fresh.comments(other)], (
                n,
                other,
            )
