"""``runs search`` and ``runs list --search``: the full-text index of the run history.

The index is derived data (``history/search_index.py``): these tests compare what it
answers with a brute-force reading of the run files, on generated texts and queries,
and check that a crash between a run file and its index entry, a damaged, deleted or
stale index, and an index that cannot be written never give a wrong answer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ROOT, run_workerctl, search_table
from workerctl.history import search_index
from workerctl.history.search_text import columns
from workerctl.history.store import History, RunFilter
from workerctl.runs.model import Run
from workerctl.runs.search import SEARCH_FIELDS, search
from workerctl.runs.states import new_run_id
from workerctl.storage.faults import FAULT_ENV

WORDS = ["vat", "rates", "refund", "denied", "permission", "invoice", "late", "glossary", "legal", "zeta9"]


def _run(history: History, output: str, worker: str = "w", record: str | None = "T-1", **kw) -> Run:
    run = Run(
        id=new_run_id(),
        worker=worker,
        config_hash="h",
        config={},
        executor="echo",
        created="",
        status="completed",
        record_id=record,
        output=output,
        **kw,
    )
    return history.create(run)


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def brute(history: History, test) -> set[str]:
    """The runs whose run file (read as the index reads it) satisfies ``test``."""
    out = set()
    for path in (history.root / "runs").rglob("*.json"):
        data = json.loads(path.read_text())
        if test(_tokens(" ".join(columns(data)))):
            out.add(data["id"])
    return out


def found(history: History, query: str, flt: RunFilter | None = None) -> set[str]:
    hits, _note = search(history, query, flt, None)
    return {h["id"] for h in hits}


@pytest.fixture
def history(workspace):
    h = History(workspace)
    search_index.create_empty(h)
    return h


texts = st.lists(
    st.one_of(st.sampled_from(WORDS), st.text(alphabet="abcdefgh0123 .,-:'\"\n", max_size=12)),
    max_size=12,
).map(" ".join)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    outputs=st.lists(texts, min_size=1, max_size=6),
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
)
def test_generated_texts_and_queries_match_a_brute_force_scan(history, outputs, words):
    """Words (all must match), a phrase, a prefix and OR, against the run files read
    one by one: the index (kept by every commit) answers exactly the same runs."""
    for text in outputs:
        _run(history, text)
    assert found(history, " ".join(words)) == brute(history, lambda t: all(w in t for w in words))
    assert found(history, " OR ".join(words)) == brute(history, lambda t: any(w in t for w in words))
    prefix = words[0][:3]
    assert found(history, prefix + "*") == brute(history, lambda t: any(x.startswith(prefix) for x in t))
    phrase = words[:2]

    def has_phrase(t: list[str]) -> bool:
        return any(t[i : i + len(phrase)] == phrase for i in range(len(t)))

    assert found(history, '"' + " ".join(phrase) + '"') == brute(history, has_phrase)


def test_the_index_and_a_scan_of_the_run_files_agree(history):
    for n in range(30):
        _run(history, f"{WORDS[n % len(WORDS)]} number {n}", worker="a" if n % 2 else "b")
    from_index = found(history, "refund OR rates", RunFilter(workers=("a",)))
    search_index.index_path(history).unlink()
    scanned = search_index.memory(history)
    try:
        matches = search_index.matching(scanned, "refund OR rates", RunFilter(workers=("a",)))
    finally:
        scanned.close()
    assert {m.run_id for m in matches} == from_index
    assert from_index  # the filter left some


def test_commas_columns_and_comments_are_searchable(history):
    run = Run(
        id=new_run_id(),
        worker="triage",
        config_hash="h",
        config={},
        executor="echo",
        created="",
        status="completed",
        record_id="T-77",
        record_title="Customer wants a refund",
        output="done",
        side_effects=[
            {"kind": "comment", "record_id": "T-77", "text": "Escalated to billing", "state": "committed"}
        ],
    )
    history.create(run)
    assert found(history, "comments:billing") == {run.id}
    assert found(history, "output:billing") == set()
    assert found(history, "title:refund") == {run.id}
    assert found(history, '"T-77"') == {run.id}


def test_a_damaged_index_is_rebuilt_and_a_deleted_one_too(history):
    first = _run(history, "the vat rates changed")
    path = search_index.index_path(history)
    path.write_bytes(b"this is not a database" * 100)
    assert found(history, "vat") == {first.id}
    assert path.read_bytes().startswith(b"SQLite format 3")  # rebuilt
    second = _run(history, "vat again")  # kept by the commit from then on
    path.unlink()
    assert found(history, "vat") == {first.id, second.id}


def test_a_stale_copy_of_the_index_is_caught_up(history, tmp_path):
    _run(history, "vat one")
    path = search_index.index_path(history)
    shutil.copy(path, tmp_path / "old.db")
    later = _run(history, "vat two")
    shutil.copy(tmp_path / "old.db", path)  # restored from a backup: behind the history
    assert later.id in found(history, "vat")


def test_an_index_that_cannot_be_written_answers_from_the_run_files(history, monkeypatch):
    """A read-only mount (cannot be caused as root): the rebuild fails, the scan answers."""
    run = _run(history, "permission denied on the ledger")
    search_index.index_path(history).unlink()

    def refused(_history, **_options):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(search_index, "rebuild", refused)
    hits, note = search(history, '"permission denied"', None, None)
    assert [h["id"] for h in hits] == [run.id]
    assert "answered from the run files" in note
    assert not search_index.index_path(history).exists()


# -- the command line, in real processes --


def _start(workspace, *args: str) -> str:
    done = run_workerctl("run", "start", *args, "--json", workspace=workspace)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["id"]


def test_runs_search_finds_a_run_by_its_output_with_filters_and_json(workspace):
    run_id = _start(workspace, "overdue-task-review", "--task", "T-1042")
    other = _start(workspace, "overdue-task-review", "--task", "T-1043")
    found_ = run_workerctl("runs", "search", "glossary", "--json", workspace=workspace)
    assert found_.returncode == 0, found_.stderr
    rows = json.loads(found_.stdout)
    assert [r["id"] for r in rows] == [run_id]
    assert set(SEARCH_FIELDS) <= set(rows[0]) and "glossary" in rows[0]["output"]
    start, end = rows[0]["highlights"][0]
    assert rows[0]["snippet"][start:end].lower() == "glossary"
    by_record = run_workerctl(
        "runs", "list", "--search", "ids:T*", "--task", "T-1043", "--json", "id", workspace=workspace
    )
    assert json.loads(by_record.stdout) == [{"id": other}]
    jq = run_workerctl("runs", "search", "glossary", "--jq", ".[].matched_in", workspace=workspace)
    assert jq.stdout.strip() == "output"


def test_runs_list_json_holds_the_full_output(workspace):
    _start(workspace, "overdue-task-review", "--task", "T-1042")
    row = json.loads(run_workerctl("runs", "list", "--json", workspace=workspace).stdout)[0]
    assert len(row["output"]) > 160
    assert " ".join(row["output"].split()).startswith(row["preview"].rstrip("…"))


@pytest.mark.parametrize(
    "query", ["T-1042", '"unterminated', "nosuchcolumn:x", "a AND", "NEAR(a b", "", "   "]
)
def test_a_query_fts5_cannot_read_is_one_line_and_exit_2(workspace, query):
    done = run_workerctl("runs", "search", query, workspace=workspace)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0].startswith("error: ")


def test_a_crash_between_the_run_file_and_its_index_entry(workspace, tmp_path):
    """Killed (SIGKILL) at the index's write point: the run file is there and the
    index is not; the search still finds the run (its marker says the index may be
    behind), and the next command that writes settles it into the index."""
    run_workerctl("runs", "search", "anything", workspace=workspace)  # the index exists
    trace = tmp_path / "points"
    args = ("run", "start", "overdue-task-review", "--task", "T-1042")
    run_workerctl(*args, workspace=workspace, env={FAULT_ENV: f"trace:{trace}"})
    points = [int(line.split()[0]) for line in trace.read_text().splitlines() if line.endswith("search.db")]
    assert points
    killed = run_workerctl(
        *args, "--allow-repeat", workspace=workspace, env={FAULT_ENV: f"kill:{points[-1]}"}
    )
    assert killed.returncode == -9
    hits = json.loads(
        run_workerctl("runs", "search", "glossary", "--json", "id,status", workspace=workspace).stdout
    )
    assert len(hits) == 2
    run_workerctl("runs", "reindex", workspace=workspace)
    again = json.loads(
        run_workerctl("runs", "search", "glossary", "--json", "id", workspace=workspace).stdout
    )
    assert {h["id"] for h in again} == {h["id"] for h in hits}


def test_escape_sequences_in_a_run_never_reach_the_terminal(workspace):
    history = History(workspace)
    _run(history, "refund \x1b]0;owned\x07 please \x1b[2J now", record=None)
    done = run_workerctl(
        "runs", "search", "refund", workspace=workspace, env={"FORCE_COLOR": "1", "NO_COLOR": ""}
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b]" not in done.stdout and "\x1b[2J" not in done.stdout
    assert "\x1b[1mrefund" in done.stdout  # the match, in bold


def test_docs_search_has_the_query_syntax_and_the_readme_links_it():
    doc = (ROOT / "docs" / "search.md").read_text()
    for word in ("prefix", "phrase", "OR", "NOT", "NEAR", "reindex"):
        assert word in doc
    assert "docs/search.md" in (ROOT / "README.md").read_text()


# -- regressions from the hostile cases tried by hand --


def test_a_rebuild_leaves_no_file_behind(history):
    """Found by hand: each rebuild left its build file's journal behind."""
    _run(history, "vat")
    path = search_index.index_path(history)
    for _ in range(2):
        path.write_bytes(b"")  # damaged: rebuilt
        assert found(history, "vat")
    left = sorted(p.name for p in path.parent.iterdir() if p.name.startswith("search.db"))
    assert left in (["search.db"], ["search.db", "search.db-journal"])


def test_a_nul_in_a_run_does_not_cut_its_snippet(history):
    """Found by hand: SQLite's snippet() stopped at a NUL in the output."""
    _run(history, "refund \x00 after the nul")
    hits, _ = search(history, "refund", None, None)
    assert "after the nul" in hits[0]["snippet"]


def test_a_link_planted_at_the_journal_is_refused(workspace, tmp_path):
    run_workerctl("runs", "search", "x", workspace=workspace)
    journal = workspace.state_dir / "search.db-journal"
    journal.unlink(missing_ok=True)
    journal.symlink_to(tmp_path / "elsewhere")
    done = run_workerctl("runs", "search", "x", workspace=workspace)
    assert done.returncode == 4 and "search.db-journal" in done.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_a_long_bad_query_is_cut_in_the_message(workspace):
    done = run_workerctl("runs", "search", "(" + "word " * 5000, workspace=workspace)
    assert done.returncode == 2 and len(done.stderr.splitlines()[0]) < 200


def test_a_lock_held_past_its_timeout_answers_from_the_run_files(workspace):
    """A rebuild needs the history lock for its last step; another command holding it
    past WORKERCTL_LOCK_TIMEOUT makes the search answer from a scan, not fail."""
    history = History(workspace)
    run = _run(history, "the glossary is late")
    with history.lock:
        done = run_workerctl(
            "runs",
            "search",
            "glossary",
            "--format",
            "ids",
            workspace=workspace,
            env={"WORKERCTL_LOCK_TIMEOUT": "0.5"},
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [run.id]
    assert "answered from the run files" in done.stderr


def test_the_search_index_reads_the_history_only_through_its_public_reader():
    """The index is derived from the history's files through ``History.reader`` (and
    public methods), never the store's private methods: a change inside the store
    cannot silently change what the index reads. Checked on the module's syntax tree."""
    import ast

    from helpers import ROOT

    for name in ("search_index.py", "search_text.py"):
        tree = ast.parse((ROOT / "src" / "workerctl" / "history" / name).read_text())
        private = [
            f"{name}:{node.lineno}: history.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "history"
            and node.attr.startswith("_")
        ]
        assert private == []


def _force_catch_up(history: History) -> None:
    """As after a restart: the index's boot is not this one, so every stamp is compared."""
    import sqlite3

    con = sqlite3.connect(search_index.index_path(history), isolation_level=None)
    con.execute("UPDATE meta SET value = 'another boot' WHERE key = 'boot'")
    con.close()


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, 4), st.sampled_from(WORDS), st.sampled_from(["", "2025-01-02T00:00:00Z", "x"])
        ),
        max_size=6,
    )
)
def test_a_run_file_edited_under_the_index_is_found_once_by_its_words_now(history, edits):
    """Rows are keyed by (created, id) (schema 3): a run file rewritten behind the
    index's back (its output, even its creation time, changed) and then caught up is
    one row, matched by its words now, never by its old ones nor twice."""
    runs = [_run(history, f"{WORDS[n]} start {n}") for n in range(5)]
    for n, word, created in edits:
        path = history.body_path(runs[n].id)
        data = json.loads(path.read_text())
        data["output"], data["created"] = f"{word} edited", created
        path.write_text(json.dumps(data))
    _force_catch_up(history)
    for word in WORDS:
        hits, _note = search(history, word, None, None)
        ids = [h["id"] for h in hits]
        assert len(ids) == len(set(ids))
        assert set(ids) == brute(history, lambda t, w=word: w in t), word


def test_a_schema_2_index_is_used_as_it_is_not_rebuilt(history):
    """An index written before rows were keyed by (created, id) answers the same and is
    kept by commits (found through its index of ids); it is not rebuilt on the first
    search after an upgrade (at 1,000,000 runs that took minutes)."""
    import sqlite3

    first = _run(history, "vat before the upgrade")
    path = search_index.index_path(history)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("DROP INDEX runs_key")
    con.execute("CREATE UNIQUE INDEX runs_id ON runs(id)")  # as schema 2's UNIQUE(id) was
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema'")
    con.close()
    inode = path.stat().st_ino
    second = _run(history, "vat after it")
    assert found(history, "vat") == {first.id, second.id}
    assert path.stat().st_ino == inode
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("2",)
    con.close()


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.lists(
        st.tuples(
            st.integers(0, 7), st.sampled_from(["delete", "edit", "keep", "rewrite", "move", "created"])
        ),
        max_size=8,
    ),
    added=st.integers(0, 3),
)
def test_catch_up_after_run_files_deleted_edited_and_added_behind_its_back(history, changes, added):
    """The catch-up (a merge of the index's rows and the run files, both in id order):
    after run files were deleted, rewritten and written behind the index's back, and
    a restart, every word finds exactly the runs whose files say it; the index equals
    one rebuilt from scratch, row for row; and a run file rewritten with the same words
    (copied, given a new slot as a reindex does, its creation time edited) leaves no
    orphaned words behind (they would skew every score: a reindex killed after moving
    330 runs left 330)."""

    runs = [_run(history, f"{WORDS[n % len(WORDS)]} first {n}") for n in range(8)]
    reworded = set()
    for n, what in changes:
        path = history.body_path(runs[n].id)
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        if what == "delete":
            path.unlink()
            reworded.add(runs[n].id)  # its words cannot be deleted either
        elif what == "edit":
            data["output"] = f"{WORDS[(n + 3) % len(WORDS)]} rewritten"
            path.write_text(json.dumps(data))
            reworded.add(runs[n].id)
        elif what in ("rewrite", "move", "created"):
            if what == "move":
                data["_shard"], data["_doc"] = data["_shard"] + 1, data["_doc"] + 50
            elif what == "created":
                data["created"] = "2020-01-01T00:00:00.000Z"
            fresh = path.with_name(path.name + ".new")
            fresh.write_text(json.dumps(data))
            os.replace(fresh, path)  # a new inode: a new stamp
    for n in range(added):  # a run file the index never saw
        data = runs[0].to_stored()
        data["id"], data["output"] = f"zz{n}added", "glossary added"
        data["_shard"], data["_doc"] = 1, 900 + n
        path = history.body_path(data["id"])
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(data))
    orphans = _orphans(history)
    _force_catch_up(history)
    for word in WORDS:
        source = search_index.open_for_reading(history)
        try:
            ids = [m.run_id for m in search_index.matching(source.con, word, None, source.skip)]
        finally:
            source.close()
        assert len(ids) == len(set(ids))
        assert set(ids) == brute(history, lambda t, w=word: w in t), word
    assert _orphans(history) - orphans <= len(reworded), "new orphaned words only where words changed or went"
    caught_up = search_table(history)
    search_index.rebuild(History(history.workspace))
    assert caught_up == search_table(history)


def _orphans(history: History) -> int:
    """Word sets in the FTS5 table no row points at (a contentless table cannot delete)."""
    con = sqlite3.connect(search_index.index_path(history))
    try:
        docs, worded = con.execute(
            "SELECT (SELECT count(*) FROM text_docsize), count(t) FROM runs"
        ).fetchone()
    finally:
        con.close()
    return int(docs - worded)


@pytest.mark.parametrize("index", ["kept", "deleted"])
def test_a_damaged_run_file_is_named_never_left_out_of_an_answer(workspace, index):
    """The adversarial report: with the index rebuilt after a run file was damaged, the
    run silently dropped out of every search (exit 0, "no runs match") while runs list
    still showed it. Now exit 4 naming the file, whatever the index's state; after
    ``runs reindex`` sets the file aside, the rest is searched again."""
    damaged = _start(workspace, "overdue-task-review", "--task", "T-1042")
    kept = _start(workspace, "overdue-task-review", "--task", "T-1043")
    assert run_workerctl("runs", "search", "glossary", workspace=workspace).returncode == 0  # an index
    history = History(workspace)
    history.body_path(damaged).write_text("{garbage", encoding="utf-8")
    if index == "deleted":
        search_index.index_path(history).unlink()
    for args in (("runs", "search", "glossary"), ("runs", "list", "--search", "Blocker")):
        refused = run_workerctl(*args, workspace=workspace)
        assert refused.returncode == 4, (args, refused.stdout, refused.stderr)
        assert damaged in refused.stderr and "runs reindex" in refused.stderr
    assert run_workerctl("runs", "reindex", workspace=workspace).returncode == 0
    after = run_workerctl("runs", "search", "Blocker", "--json", "id", workspace=workspace)
    assert after.returncode == 0, after.stderr
    assert [row["id"] for row in json.loads(after.stdout)] == [kept]


HOLD_THE_INDEX = """
import fcntl, os, sqlite3, sys
fd = os.open(sys.argv[1], os.O_RDWR)
if sys.argv[3] == "both":
    fcntl.flock(fd, fcntl.LOCK_EX)
con = sqlite3.connect(sys.argv[2], isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.read()
"""


def _index_holder(workspace, path, holds: str):
    """A process holding SQLite's lock on the index (and the history lock, for "both")
    until its stdin closes; held when this returns."""
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_INDEX, str(workspace.history_dir / "lock"), str(path), holds],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize("holds", ["both", "sqlite"])
def test_a_search_beside_a_stopped_writer_of_the_index_answers_and_keeps_the_index(workspace, holds):
    """A command stopped while it writes the index (a search catching it up, a start
    keeping a run: it holds SQLite's lock, with the history lock or past it): another
    search waited SQLite's 10 s busy time, called the index "damaged (database is
    locked)" and rebuilt or removed it. It now waits at most REPAIR_WAIT, answers
    from the run files, says the index is being written, and the index is kept."""
    import time

    run_id = _start(workspace, "overdue-task-review", "--task", "T-1042")
    path = workspace.state_dir / "search.db"
    assert run_workerctl("runs", "search", "glossary", workspace=workspace).stderr == ""
    inode = os.stat(path).st_ino
    holder = _index_holder(workspace, path, holds)
    assert holder.stdin is not None
    try:
        began = time.monotonic()
        found_ = run_workerctl(
            "runs", "search", "glossary", "--json", workspace=workspace, env={"WORKERCTL_LOCK_TIMEOUT": "300"}
        )
        took = time.monotonic() - began
        assert found_.returncode == 0, found_.stderr
        assert [r["id"] for r in json.loads(found_.stdout)] == [run_id]
        assert "being written by another command" in found_.stderr and "damaged" not in found_.stderr
        assert took < 8, took  # REPAIR_WAIT and start-up, not SQLite's 10 s busy wait
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert os.stat(path).st_ino == inode  # neither removed nor rebuilt
    again = run_workerctl("runs", "search", "glossary", "--json", workspace=workspace)
    assert again.stderr == "" and [r["id"] for r in json.loads(again.stdout)] == [run_id]


@pytest.mark.parametrize("with_its_own", [True, False])
def test_a_run_file_in_the_wrong_folder_is_no_run_of_the_search_either(one_run, with_its_own):
    """A copy of a run file put in another folder (runs/zz/ID.json, as a copy-in from
    another workspace can leave): the history's reindex names it and leaves it; the
    search index took it for a run, so with the run's own file beside it the rebuild
    ended in a UNIQUE constraint traceback (exit 1) on every reindex (the fresh-brief
    round's C12). Now both leave it out, and reindex and search answer."""
    workspace, run_id = one_run
    own = History(workspace).body_path(run_id)
    other = "zz" if own.parent.name != "zz" else "zy"  # never the run's own folder (ids are random)
    stray = own.parent.parent / other / own.name
    stray.parent.mkdir()
    shutil.copy2(own, stray)
    if not with_its_own:
        own.unlink()
    (workspace.state_dir / "search.db").unlink(missing_ok=True)
    reindex = run_workerctl("runs", "reindex", workspace=workspace)
    assert reindex.returncode == 0, reindex.stderr
    assert f"{stray} (left where it is" in reindex.stdout + reindex.stderr
    listed = json.loads(run_workerctl("runs", "list", "--json", "id", workspace=workspace).stdout)
    found = run_workerctl("runs", "search", "glossary", "--json", workspace=workspace)
    assert found.returncode == 0, found.stderr
    assert [r["id"] for r in json.loads(found.stdout)] == [r["id"] for r in listed]
    assert ([r["id"] for r in listed] == [run_id]) is with_its_own


def test_a_writer_beside_another_holder_of_the_index_leaves_it_behind_in_time(workspace):
    """Another process holds SQLite's lock on the index: a run start waited SQLite's 10 s
    at each of its commits, holding the history lock past every other writer's timeout,
    then removed the index (the fresh-brief round's second pass). Now it waits at most
    REPAIR_WAIT once, removes the index's name (the holder keeps its file), and the next
    search rebuilds it."""
    import time

    run_id = _start(workspace, "overdue-task-review", "--task", "T-1043")
    path = workspace.state_dir / "search.db"
    assert run_workerctl("runs", "search", "blocker", workspace=workspace).returncode == 0
    holder = _index_holder(workspace, path, "sqlite")
    assert holder.stdin is not None
    try:
        began = time.monotonic()
        second = _start(workspace, "overdue-task-review", "--task", "T-1042")
        assert time.monotonic() - began < 8  # one REPAIR_WAIT, not 10 s per commit
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    found = run_workerctl("runs", "search", "blocker", "--json", workspace=workspace)
    assert {r["id"] for r in json.loads(found.stdout)} == {run_id, second}


def test_a_hard_link_made_while_a_writer_has_the_index_open_is_never_written_through(workspace, tmp_path):
    """A backup of hard links taken while a run start is stopped at its index write: the
    resumed writer wrote the index in place, into the backup's file too."""
    from test_reader_lock_wait import _stopped_writer, _write_points

    _start(workspace, "overdue-task-review", "--task", "T-1043")
    assert run_workerctl("runs", "search", "blocker", workspace=workspace).returncode == 0
    argv = ("run", "start", "overdue-task-review", "--task", "T-1042")
    points = _write_points(workspace.root, tmp_path, argv)
    # its second commit's index write: the first opened the index, and it is still open
    point = 1 + [n for n, p in enumerate(points) if p.endswith("search.db")][1]
    writer = _stopped_writer(workspace.root, point, argv)
    backup = tmp_path / "backup.db"
    os.link(workspace.state_dir / "search.db", backup)
    before = backup.read_bytes()
    import signal

    os.kill(writer.pid, signal.SIGCONT)
    assert writer.wait(timeout=60) == 0, writer.communicate()
    assert backup.read_bytes() == before
    found = run_workerctl("runs", "search", "blocker", "--json", workspace=workspace)
    assert found.returncode == 0 and len(json.loads(found.stdout)) == 2
