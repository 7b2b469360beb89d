"""What review derives from every record is shared between runs only while no record
changed (``RecordBook.memo``, ``RecordSource.version``).

- generated: after any sequence of imports, replacements and deletions made by another
  writer, what the book's memo gives equals a derivation from a brand-new book;
- a source that cannot tell its version is derived again at every use;
- end to end: in one engine (a batch), a record added between two runs changes the
  second run's review.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import make_worker
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.plugins.manager import get_registry
from workerctl.records.book import RecordBook, open_records
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.records.model import Record, RecordSource


def _titles(records: list[Record]) -> list[tuple[str, str]]:
    return sorted((r.id, r.title) for r in records)


NUMBERS = st.integers(min_value=9000, max_value=9012)
CHANGES = st.lists(
    st.one_of(
        st.tuples(st.just("put"), NUMBERS, st.text("abc XYZ-é日", min_size=1, max_size=12).filter(str.strip)),
        st.tuples(st.just("delete"), NUMBERS, st.just("")),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=CHANGES)
def test_the_memo_always_equals_a_fresh_derivation(workspace, changes):
    registry = get_registry()
    book = open_records(workspace, registry)
    other = BuiltinRecordStore(workspace)  # another writer, as another process would be
    for action, number, title in changes:
        book.memo("titles", _titles)  # remembered at the version before the change
        if action == "put":
            other.import_records([{"id": f"T-{number}", "type": "task", "title": title}], "test")
        else:
            other.delete(f"T-{number}")
        book.fresh("T-1")  # what the engine does before an output mode writes
        assert book.memo("titles", _titles) == _titles(open_records(workspace, registry).list())


def test_a_memo_is_built_once_per_version(workspace):
    book = open_records(workspace, get_registry())
    built = []
    book.memo("ids", lambda records: built.append(len(records)))
    book.memo("ids", lambda records: built.append(len(records)))
    assert len(built) == 1
    BuiltinRecordStore(workspace).import_records([{"id": "T-9100", "type": "task", "title": "New"}], "t")
    book.fresh("T-9100")
    book.memo("ids", lambda records: built.append(len(records)))
    assert len(built) == 2 and built[1] == built[0] + 1


class _Unversioned(RecordSource):
    name = "unversioned"
    record_types = ("note",)

    def __init__(self, workspace) -> None:
        super().__init__(workspace)
        self.notes = [Record(id="N-1", type="note", title="one")]

    def get(self, record_id):
        return next((r for r in self.notes if r.id == record_id), None)

    def list(self, type=None):
        return list(self.notes)

    def add_comment(self, record_id, text, *, author, run_id, key):
        raise NotImplementedError


def test_a_source_that_cannot_tell_its_version_is_derived_at_every_use(workspace):
    source = _Unversioned(workspace)
    book = RecordBook([BuiltinRecordStore(workspace), source])
    assert ("N-1", "one") in book.memo("titles", _titles)
    source.notes.append(Record(id="N-2", type="note", title="two"))
    assert ("N-2", "two") in book.memo("titles", _titles)


def test_a_record_added_between_two_runs_of_one_engine_changes_the_second_review(workspace):
    title = "Quarterly vendor audit plan"
    make_worker(
        workspace,
        "names-a-title",
        executor=json.dumps({"name": "echo", "script": [{"output": f"Next: see {title}."}]}),
    )
    engine = Engine(workspace, get_registry())
    first = engine.start("names-a-title", StartOptions(record_id="T-1042"))
    assert {c["key"]: c["verdict"] for c in first.checks}["provenance"] == "pass"
    # another process adds a record with that title while the engine stays up
    BuiltinRecordStore(workspace).import_records([{"id": "D-77", "type": "doc", "title": title}], "t")
    second = engine.start("names-a-title", StartOptions(record_id="T-1043"))
    provenance = next(c for c in second.checks if c["key"] == "provenance")
    assert provenance["verdict"] == "fail", provenance
    assert "D-77" in " ".join(provenance["evidence"])


def test_comments_are_read_as_the_file_is_now(workspace):
    """A record's comments are parsed again whenever the file's bytes differ from the
    last read: what another process added is seen, and a file damaged since a good
    read is reported, never answered from memory."""
    import pytest

    from workerctl.errors import DamagedFile

    store = BuiltinRecordStore(workspace)
    before = [c.text for c in store.comments("T-1042")]
    other = BuiltinRecordStore(workspace)
    other.add_comment("T-1042", "seen by the next read", author="Ann", run_id=None, key="k-1")
    assert [c.text for c in store.comments("T-1042")] == [*before, "seen by the next read"]
    store.comments_path("T-1042").write_text('{"comments": {"1": {"id": 1}}}')
    with pytest.raises(DamagedFile):
        store.comments("T-1042")
