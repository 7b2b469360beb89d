"""The ledger's per-worker summaries are split by record into 64 files, so the write
one run makes there is bounded however many records the worker wrote to; ``ledger
list --worker`` reads them all, and a single file an older workerctl wrote is read
too (until ``runs reindex`` rebuilds the summaries)."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from workerctl.history.store import History
from workerctl.runs.model import Run, new_run_id, now_iso


def _writing_run(worker: str, record: str) -> Run:
    run = Run(id=new_run_id(), worker=worker, config_hash="h", config={}, executor="echo", created=now_iso())
    run.record_id = record
    run.side_effects = [
        {
            "kind": "comment",
            "key": f"{run.id}:output",
            "record_id": record,
            "state": "committed",
            "at": now_iso(),
            "committed_at": now_iso(),
        }
    ]
    return run


def test_one_write_rewrites_a_bounded_file(workspace, wcli):
    history = History(workspace)
    records = [f"T-{n}" for n in range(400)]
    with history.lock:
        for record in records:
            history.ledger.sync(_writing_run("busy", record), None)
    folder = history.ledger.root / "workers" / "busy"
    sizes = [p.stat().st_size for p in folder.glob("*.json")]
    assert sum(sizes) > 25_000 and max(sizes) < sum(sizes) / 20, sizes
    listed = json.loads(wcli("ledger", "list", "--worker", "busy", "--limit", "0", "--json").stdout)
    assert sorted(e["target"] for e in listed) == sorted(records)


_SHARED: dict[str, History] = {}
_NAMES = itertools.count()


@settings(max_examples=15, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=12, unique=True))
def test_every_record_is_summarised_once(tmp_path_factory, records):
    from workerctl.plugins.manager import get_registry
    from workerctl.workspace import init_workspace

    if "h" not in _SHARED:  # one workspace; a worker of its own per example
        _SHARED["h"] = History(init_workspace(tmp_path_factory.mktemp("ws") / "ws", get_registry()))
    history = _SHARED["h"]
    worker = f"w{next(_NAMES)}"
    with history.lock:
        for record in records:
            history.ledger.sync(_writing_run(worker, record), None)
    summary = history.ledger.records_of(worker)
    assert sorted(d["record_id"] for d in summary) == sorted(records)
    assert worker in history.ledger.workers()


def test_an_older_single_worker_file_is_still_read(workspace):
    history = History(workspace)
    legacy = history.ledger.root / "workers" / "old.json"
    legacy.parent.mkdir(parents=True, exist_ok=True)
    doc = {"record_id": "T-9", "effects": 1, "unknown": 0, "last_at": now_iso()}
    legacy.write_text(json.dumps({"records": {"1": doc}}))
    assert [d["record_id"] for d in history.ledger.records_of("old")] == ["T-9"]
    with history.lock:
        history.ledger.sync(_writing_run("old", "T-10"), None)
    assert sorted(d["record_id"] for d in history.ledger.records_of("old")) == ["T-10", "T-9"]
    assert history.ledger.workers() == ["old"]
