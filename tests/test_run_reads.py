"""A run's reads are its own: a batch's threads share one record book, and what one
run read (``Run.reads``, ``Run.seen``, the records review counts as read) never holds
what another run read meanwhile.

Reported case: in a ``--jobs 4`` batch, a run on T-6023 (linked to P-9) whose output
named P-7 passed provenance now and then, because another thread had read P-7 while
this run's context was assembled, and the run's reads were a slice of the book's log.

- generated: threads reading interleaved record ids through one book, each inside
  ``RecordBook.reading``, each gather exactly their own reads, in order;
- end to end, a real process: a ``--jobs 4`` batch over tasks each linked to its own
  project, every run's reads and snapshots are its task and its project only, and a
  run whose output names another task's project fails provenance every time.
"""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import make_worker, run_workerctl
from workerctl.history.store import History
from workerctl.plugins.manager import get_registry
from workerctl.records.book import open_records
from workerctl.records.builtin_store import BuiltinRecordStore

SAMPLE_IDS = ["T-1042", "T-1043", "P-7", "INV-2031", "CO-3", "no-such-id"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=st.lists(st.lists(st.sampled_from(SAMPLE_IDS), max_size=6), min_size=2, max_size=4))
def test_each_thread_gathers_its_own_reads(workspace, plans):
    book = open_records(workspace, get_registry())
    steps = max(len(p) for p in plans)
    turn = threading.Barrier(len(plans), timeout=20)  # every thread reads at each step
    gathered: dict[int, list[tuple[str, str]]] = {}

    def reader(n: int) -> None:
        with book.reading() as read:
            for step in range(steps):
                turn.wait()
                if step < len(plans[n]):
                    book.get(plans[n][step])
        gathered[n] = read

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(len(plans))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, plan in enumerate(plans):
        assert [i for _t, i in gathered[n]] == [i for i in plan if i != "no-such-id"]
    assert sorted(i for _t, i in book.reads) == sorted(i for p in plans for i in p if i != "no-such-id")


def test_an_enclosing_block_gets_the_inner_reads(workspace):
    book = open_records(workspace, get_registry())
    with book.reading() as outer:
        book.get("T-1042")
        with book.reading() as inner:
            book.get("P-7")
        book.get("CO-3")
    assert [i for _t, i in inner] == ["P-7"]
    assert [i for _t, i in outer] == ["T-1042", "P-7", "CO-3"]


@pytest.mark.parametrize("helper", ["off", "on"])
def test_a_batchs_runs_read_only_their_own_records(workspace, helper):
    count = 80
    tasks = [
        {
            "id": f"T-{6000 + n}",
            "type": "task",
            "title": f"Glossary chapter {n}",
            "status": "todo",
            "links": {"project": f"P-{900 + n}"},
        }
        for n in range(count)
    ]
    projects = [{"id": f"P-{900 + n}", "type": "project", "title": f"Project {n}"} for n in range(count)]
    BuiltinRecordStore(workspace).import_records(projects + tasks, "test")
    # every run's output names P-900, which only T-6000 links to
    step = {"output": "Blocker: waiting on project P-900 before this can move."}
    make_worker(
        workspace,
        "linked",
        sources=("tasks", "projects"),
        output_mode="review_note",
        executor=json.dumps({"name": "echo", "script": [step]}),
    )
    ids = workspace.root / "ids.txt"
    ids.write_text("\n".join(t["id"] for t in tasks) + "\n")
    result = run_workerctl(
        "run",
        "start",
        "linked",
        "--records-from",
        str(ids),
        "--jobs",
        "4",
        "--json",
        workspace=workspace,
        timeout=120,
        env={"WORKERCTL_REVIEW_PROCESS": helper},
    )
    assert result.returncode in (0, 1), result.stderr
    items = json.loads(result.stdout)["runs"]
    assert len(items) == count
    history = History(workspace)
    linked = {t["id"]: t["links"]["project"] for t in tasks}
    for item in items:
        run = history.get(item["run_id"])
        own = {item["record_id"], linked[item["record_id"]]}
        assert {r["id"] for r in run.reads} == own, item["record_id"]
        assert set(run.seen) == own, item["record_id"]
        provenance = next(c for c in run.checks if c["key"] == "provenance")
        expected = "pass" if item["record_id"] == "T-6000" else "fail"
        assert provenance["verdict"] == expected, (item["record_id"], provenance)
