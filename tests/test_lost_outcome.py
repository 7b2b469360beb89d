"""The rule for a remote run whose broker forgot it (``engine.remote.RemoteRuns.lost``),
checked over generated reports:
whatever the remote reported before (effects committed, intended, on its record or
another), once its outcome is lost the real duplicate guard, on the real ledger,
never lets a repeat of a worker that may write through unless the ledger proves the
write and a person asked for the repeat (``--allow-repeat``); a worker that cannot
write is not held back."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workerctl.engine.launcher import Engine, StartOptions
from workerctl.engine.remote import RemoteRuns, _may_write
from workerctl.plugins.manager import build_registry
from workerctl.runs.model import QUEUED, RUNNING, now_iso
from workerctl.workspace import init_workspace

RECORD, OTHER = "T-1042", "T-1043"

effects = st.lists(
    st.tuples(st.sampled_from([RECORD, OTHER]), st.sampled_from(["committed", "intended"])), max_size=4
)


def _worker(workspace, writes: bool) -> None:
    data = {
        "name": "remote",
        "status": "active",
        "instructions": "Do the job.",
        "context_sources": ["tasks"],
        "tool_categories": ["productivity"] if writes else [],
        "output_mode": "task_comment" if writes else "review_note",
        "executor": {"name": "echo"},  # handed over as a remote executor's run below
    }
    (workspace.workers_dir / "remote.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reported=effects, writes=st.booleans(), started=st.booleans())
def test_a_lost_outcome_never_lets_a_repeat_write_twice(reported, writes, started):
    registry = build_registry()
    with tempfile.TemporaryDirectory() as folder:
        workspace = init_workspace(Path(folder) / "ws", registry)
        _worker(workspace, writes)
        engine = Engine(workspace, registry)
        options = StartOptions(record_id=RECORD, allow_repeat=True)
        worker, run = engine.prepare("remote", options)
        run.owner = {**run.owner, "remote": "rq"}  # as Engine._submit hands it to a task queue
        engine._create_guarded(run, worker, options)
        run.move(QUEUED)
        history = engine.history
        history.save(run)

        def progress(r):  # what the remote reported before Redis forgot the job
            if started:
                r.move(RUNNING)
            r.side_effects = [
                {"kind": "comment", "key": f"{r.id}:{i}", "record_id": rec, "state": state, "at": now_iso()}
                for i, (rec, state) in enumerate(reported)
            ]

        history.update(run.id, progress)
        RemoteRuns(history, lambda r: _may_write(registry, r)).lost(run.id, "RQ no longer knows it")

        final = history.get(run.id)
        assert final.status == "failed" and final.error.kind == "outcome_unknown"
        ledger = {(e.step, e.target): e.state for t in (RECORD, OTHER) for e in history.ledger.effects(t)}
        for i, (rec, state) in enumerate(reported):
            assert ledger[(f"{run.id}:{i}", rec)] == ("committed" if state == "committed" else "unknown")
        proven = any(rec == RECORD and state == "committed" for rec, state in reported)
        open_on_record = any(rec == RECORD and state == "intended" for rec, state in reported)
        for allow in (False, True):
            _, again = engine.prepare("remote", StartOptions(record_id=RECORD, allow_repeat=allow))
            decision = engine.guard(worker, again, StartOptions(record_id=RECORD, allow_repeat=allow))
            if not writes:
                assert decision.allowed, decision
            elif allow and proven and not open_on_record:
                assert decision.allowed, decision  # the ledger proves the write; a person asked
            else:
                assert not decision.allowed, (decision, reported)
                expected = "unknown" if (open_on_record or not proven) else "repeat"
                assert decision.verdict == expected, (decision, reported)
