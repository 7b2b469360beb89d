"""The search index keeps no journal file: SQLite opened one by name at each write, and
a hard link planted there while a run executed was written through (the outside file
overwritten with journal bytes). Its journal is in memory; a write a crash cuts is
found by the note the writer leaves for the length of the write (``search.db.writing``),
and by an older version's hot journal: the index is then rebuilt, never believed."""

from __future__ import annotations

import os
import sqlite3

from helpers import make_worker, run_workerctl
from workerctl.history.search_index import _HOT

NOTE, JOURNAL = "search.db.writing", "search.db-journal"


def _index(workspace, name: str = "search.db"):
    return workspace.state_dir / name


def _with_index(workspace) -> None:
    """The index built (a search builds it), so that runs keep it up to date."""
    assert run_workerctl("runs", "search", "anything", workspace=workspace).returncode == 0
    assert _index(workspace).exists()


def _mark(workspace) -> None:
    """A row of our own in the index's meta table: gone once the index is rebuilt (an
    inode number cannot tell: a file removed frees it for the next)."""
    con = sqlite3.connect(_index(workspace))
    with con:
        con.execute("INSERT INTO meta(key, value) VALUES('canary', '1')")
    con.close()


def _marked(workspace) -> bool:
    con = sqlite3.connect(f"file:{_index(workspace)}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM meta WHERE key = 'canary'").fetchone()[0] == 1
    finally:
        con.close()


def test_a_hard_link_planted_at_the_journal_mid_run_is_never_written(workspace, tmp_path):
    _with_index(workspace)
    victim = tmp_path / "outside.txt"
    victim.write_bytes(b"PRECIOUS OUTSIDE DATA\n" * 100)
    before = victim.read_bytes()
    step = workspace.root / "plant.py"
    step.write_text(
        "import json, os, sys\n"
        "sys.stdin.read()\n"
        f"os.link({str(victim)!r}, {str(_index(workspace, JOURNAL))!r})\n"
        'print(json.dumps({"text": "Blocker: none. Next step: ask Ann. T-1042"}))\n',
        encoding="utf-8",
    )
    make_worker(
        workspace, "plant", output_mode="review_note", executor="{name: command, argv: [python3, plant.py]}"
    )
    # the index is open for writing before the step runs: the run's creation kept it
    started = run_workerctl("run", "start", "plant", "--task", "T-1042", workspace=workspace)
    assert started.returncode == 0, started.stdout + started.stderr
    assert victim.read_bytes() == before
    assert victim.stat().st_nlink in (1, 2)  # the name planted may stay or go; the data stays
    found = run_workerctl("runs", "search", "vendor", workspace=workspace)
    assert "Traceback" not in found.stderr and victim.read_bytes() == before


def test_a_write_cut_by_a_kill_is_found_and_the_index_rebuilt(workspace):
    _with_index(workspace)
    killed = run_workerctl(
        "run",
        "start",
        "overdue-task-review",
        "--task",
        "T-1042",
        workspace=workspace,
        env={"WORKERCTL_TEST_FAULT": f"kill-at:1:{NOTE}"},
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert _index(workspace, NOTE).exists()  # the process is gone, its note stays
    _mark(workspace)
    found = run_workerctl("runs", "search", '"T-1042"', "--json", "id", workspace=workspace)
    assert found.returncode == 0, found.stderr
    assert not _index(workspace, NOTE).exists()
    assert not _marked(workspace)  # rebuilt, not believed
    again = run_workerctl("runs", "search", '"T-1042"', "--json", "id", workspace=workspace)
    assert again.stdout == found.stdout and found.stdout.count('"id"') == 1


def test_an_older_versions_journal_hot_means_rebuilt_cold_means_removed(workspace):
    _with_index(workspace)
    journal = _index(workspace, JOURNAL)
    _mark(workspace)
    journal.write_bytes(_HOT + os.urandom(504))  # a write to undo: the file may be torn
    found = run_workerctl("runs", "search", "anything", workspace=workspace)
    assert found.returncode == 0, found.stderr
    assert not _marked(workspace) and not journal.exists()
    _mark(workspace)
    journal.write_bytes(bytes(512))  # written out and zeroed: nothing to undo
    started = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace)
    assert started.returncode == 0, started.stderr
    assert _marked(workspace) and not journal.exists()


def test_a_wal_header_is_not_believed_and_its_shm_never_written(workspace, tmp_path):
    """Two header bytes make the index a WAL database, which SQLite opens with a -shm
    file by name, written even for a search: a hard link planted there was truncated
    and written. Such an index is not believed (rebuilt), and the link is not opened."""
    _with_index(workspace)
    _mark(workspace)
    with open(_index(workspace), "r+b") as db:
        db.seek(18)
        db.write(b"\x02\x02")
    victim = tmp_path / "outside.txt"
    victim.write_bytes(b"precious\n" * 5000)
    os.link(victim, _index(workspace, "search.db-shm"))
    found = run_workerctl("runs", "search", "anything", workspace=workspace)
    assert found.returncode == 0, found.stderr
    assert victim.read_bytes() == b"precious\n" * 5000
    assert not _marked(workspace)  # rebuilt, not believed
    assert not _index(workspace, "search.db-shm").exists()  # the name is gone; the file is not


def test_damage_met_by_the_query_itself_is_answered_from_the_run_files(workspace):
    """A page SQLite reads only for the query ("database disk image is malformed"):
    the answer comes from the run files, as for an index that cannot be opened; it
    used to end the search in a traceback (exit 1) until a reindex."""
    started = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace)
    assert started.returncode == 0, started.stderr
    _with_index(workspace)
    index = _index(workspace)
    size = index.stat().st_size
    con = sqlite3.connect(index)
    pages = [row[0] for row in con.execute("SELECT pageno FROM dbstat WHERE name LIKE 'text%'")]
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    assert pages and size
    with open(index, "r+b") as db:  # the words' pages garbled, the schema and meta kept
        for page in set(pages):
            db.seek((page - 1) * page_size)
            db.write(b"\xff" * page_size)
    found = run_workerctl("runs", "search", '"T-1042"', "--json", "id", workspace=workspace)
    assert found.returncode == 0, found.stderr
    assert "Traceback" not in found.stderr
    assert found.stdout.count('"id"') == 1


def test_a_dead_writers_note_is_read_whatever_its_spacing(workspace):
    """A note naming a process that is gone means a cut write, however the line ends."""
    _with_index(workspace)
    _mark(workspace)
    from workerctl.storage.lock import hostname

    _index(workspace, NOTE).write_text(f"999999999 None {hostname()}\n")  # no such pid
    found = run_workerctl("runs", "search", "anything", workspace=workspace)
    assert found.returncode == 0, found.stderr
    assert not _marked(workspace) and not _index(workspace, NOTE).exists()
