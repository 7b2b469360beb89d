"""``worker try``: a worker (as on disk, or an edited copy) run again on the inputs of
past runs, with every write captured and none committed.

Each try runs the engine's own loop (checks, context, steps, the tool gate, the
output mode, the review checks) on a run that never reaches the history: it is
kept in memory (``TrySink`` stands in for the history) and marked ``trigger:
try``, and the one door to records during a run (``engine.run_records``) turns
every write of such a run into an effect ``not_written`` with the reason "worker
try: captured, not written". So nothing is written to a record, a comment, the
ledger, the history or the search index; no worker version is kept. The tries are
recorded apart, in ``.workerctl/tries/ID.json`` (``runs list --tries``), out of the
stats and the duplicate guard, which read only the history.

The inputs: the past run's record as it is **now**. The model: called live; with
``replay``, step by step, a request the past run made (the same fingerprint,
``engine.replay``) gets the answer it recorded, any other is called live (each step
says which). A past run recorded before requests were fingerprinted is replayed
whole or not at all: when the worker's configuration and its record are unchanged
since. Tool reads see the records as they are now; with ``reads="recorded"``, a read
tool call the past run made with the same arguments gets the result it recorded
(each read says which).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workerctl.history.store import History
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.runs.model import Run
    from workerctl.workers.model import Worker
    from workerctl.workspace import Workspace

TRIGGER = "try"
CAPTURED = "worker try: captured, not written"
READS = ("now", "recorded")

#: ``worker try --json``: the document
JSON_FIELDS = ("try_id", "worker", "file", "replay", "reads", "items", "summary")


@dataclass
class TryItem:
    """One past run and its try, side by side."""

    run_id: str
    record_id: str | None
    answer: str  # live | replayed
    old_status: str
    new_status: str
    old_output: str | None
    new_output: str | None
    output_changed: bool
    old_failed_checks: list[str] | None
    new_failed_checks: list[str] | None
    newly_failing: list[str]
    old_tokens: int
    new_tokens: int
    old_cost: float | None
    new_cost: float | None
    new_error: str | None = None
    would_write: list[dict[str, Any]] = field(default_factory=list)
    # per step: {iteration, answer: live|replayed}
    steps: list[dict[str, Any]] = field(default_factory=list)
    # per read tool call: {call, tool, read: now|recorded}
    reads: list[dict[str, Any]] = field(default_factory=list)


class TrySink:
    """Where the loop keeps a try's run: in memory (a ``RunStore``, never the history)."""

    def __init__(self) -> None:
        self.saved: dict[str, Run] = {}

    def save(self, run: Run, *, executing: bool = False) -> Run:
        self.saved[run.id] = run
        return run

    def heartbeat(self, run_id: str) -> None:
        """Nobody else watches a try: nothing to touch."""


def _tokens(run: Run) -> int:
    return sum(
        (it.usage.get("input_tokens") or 0) + (it.usage.get("output_tokens") or 0) for it in run.iterations
    )


def _trial_run(worker: Worker, past: Run, records: RecordBook, registry: Registry) -> Run:
    """The run a try executes: the past run's input (its record), this worker."""
    from workerctl.history.sweep import current_owner
    from workerctl.runs import model as R
    from workerctl.runs.model import Run, new_run_id, now_iso
    from workerctl.workers.influence import reasons as review_reasons

    record = records.peek(past.record_id) if past.record_id else None
    run = Run(
        id=new_run_id(),
        worker=worker.name,
        config_hash=worker.config_hash,
        config=worker.config,
        executor=worker.executor,
        created=now_iso(),
        record_id=past.record_id,
        record_type=record.type if record else past.record_type,
        record_fingerprint=record.fingerprint() if record else None,
        record_title=record.title if record else past.record_title,
        trigger=TRIGGER,
        reason=f"worker try of run {past.id}",
        test=True,
        rerun_of=past.id,
        plugins=registry.fingerprint(),
        output_mode=worker.output_mode,
        owner=current_owner(),
        transitions=[{"status": R.PENDING, "at": now_iso()}],
    )
    run.review_reasons = review_reasons(worker, registry)
    run.needs_review = bool(run.review_reasons)
    return run


def _replayable(worker: Worker, past: Run, records: RecordBook) -> bool:
    """The request would be the one the past run made: same configuration, same record."""
    if past.config_hash != worker.config_hash or past.status != "completed":
        return False
    if past.record_id is None:
        return True
    record = records.peek(past.record_id)
    return record is not None and record.fingerprint() == past.record_fingerprint


def try_on(
    workspace: Workspace,
    registry: Registry,
    records: RecordBook,
    history: History,
    worker: Worker,
    past_ids: list[str],
    *,
    replay: bool,
    reads: str = "now",
) -> list[TryItem]:
    """Try ``worker`` on the inputs of the runs ``past_ids``; nothing is written."""
    from workerctl.engine.loop import StepLoop
    from workerctl.engine.replay import LIVE, REPLAYED, Recorded, answered
    from workerctl.runs import model as R
    from workerctl.runs.model import failed_checks

    sink = TrySink()
    loop = StepLoop(workspace, registry, sink, records)  # type: ignore[arg-type]
    items: list[TryItem] = []
    for past_id in past_ids:
        past = history.get(past_id)
        old_failed = failed_checks(past.checks)
        if replay and not answered(past) and _replayable(worker, past, records):
            # recorded before requests were fingerprinted: the whole run, unchanged
            new, answer = past, REPLAYED
            steps = [{"iteration": it.number, "answer": REPLAYED} for it in past.iterations]
            read_log: list[dict[str, Any]] = []
            would = [
                {**e, "state": "not_written", "reason": CAPTURED}
                for e in past.side_effects
                if e.get("state") in ("committed", "held")
            ]
        else:
            run = _trial_run(worker, past, records, registry)
            for status in (R.QUEUED, R.RUNNING):
                run.move(status)
            given = Recorded(past, answers=replay, reads=reads == "recorded")
            loop.recorded[run.id] = given
            records.hide_comments_of = past.id  # the past run's input, not what it wrote
            try:
                new = loop.execute(run, worker)
            finally:
                loop.recorded.pop(run.id, None)
                records.hide_comments_of = None
            steps, read_log = given.steps, given.read_log
            kinds = {s["answer"] for s in steps}
            answer = REPLAYED if kinds == {REPLAYED} else LIVE if REPLAYED not in kinds else "partly replayed"
            would = [dict(e) for e in new.side_effects]
        new_failed = failed_checks(new.checks)
        items.append(
            TryItem(
                run_id=past.id,
                record_id=past.record_id,
                answer=answer,
                old_status=past.status,
                new_status=new.status,
                old_output=past.output,
                new_output=new.output,
                output_changed=(past.output or "") != (new.output or ""),
                old_failed_checks=old_failed,
                new_failed_checks=new_failed,
                newly_failing=sorted(set(new_failed or ()) - set(old_failed or ())),
                old_tokens=_tokens(past),
                new_tokens=_tokens(new),
                old_cost=past.cost.get("amount") if past.cost else None,
                new_cost=new.cost.get("amount") if new.cost else None,
                new_error=f"{new.error.kind}: {new.error.message}" if new.error else None,
                would_write=would,
                steps=steps,
                reads=read_log,
            )
        )
    return items


def summary(items: list[TryItem]) -> dict[str, Any]:
    return {
        "runs": len(items),
        "outputs_changed": sum(i.output_changed for i in items),
        "newly_failing": sum(bool(i.newly_failing) for i in items),
        "failed_before": sum(i.old_status == "failed" for i in items),
        "failed_now": sum(i.new_status == "failed" for i in items),
        "would_write": sum(len(i.would_write) for i in items),
        "steps_replayed": sum(s["answer"] == "replayed" for i in items for s in i.steps),
        "steps_live": sum(s["answer"] == "live" for i in items for s in i.steps),
        "reads_recorded": sum(r["read"] == "recorded" for i in items for r in i.reads),
        "reads_now": sum(r["read"] == "now" for i in items for r in i.reads),
        "tokens_before": sum(i.old_tokens for i in items),
        "tokens_now": sum(i.new_tokens for i in items),
    }


def record_try(
    workspace: Workspace,
    worker: Worker,
    file: str | None,
    replay: bool,
    items: list[TryItem],
    reads: str = "now",
) -> dict[str, Any]:
    """Keep the try apart from the runs: ``.workerctl/tries/ID.json`` (its own ledger
    of what it would have written is in its items' ``would_write``)."""
    from workerctl.runs.model import new_run_id, now_iso
    from workerctl.storage.atomic import private_dirs, write_json

    doc = {
        "try_id": new_run_id(),
        "worker": worker.name,
        "created": now_iso(),
        "file": file,
        "replay": replay,
        "reads": reads,
        "items": [asdict(i) for i in items],
        "summary": summary(items),
    }
    folder = workspace.state_dir / "tries"
    private_dirs(folder)
    write_json(folder / f"{doc['try_id']}.json", doc)
    return doc


def list_tries(workspace: Workspace) -> list[dict[str, Any]]:
    """The recorded tries, newest first (``runs list --tries``)."""
    from workerctl.storage import fs
    from workerctl.storage.atomic import read_json
    from workerctl.storage.shapes import json_object

    shape = json_object({"try_id": str, "worker": str, "created": str, "items": list, "summary": dict})
    out = []
    for path in fs.glob(workspace.state_dir / "tries", "*.json"):
        doc = read_json(path, shape=shape)
        if doc is not None:
            out.append(doc)
    out.sort(key=lambda d: d["created"], reverse=True)
    return out


def edited_worker(workspace: Workspace, registry: Registry, name: str, file: str) -> Worker:
    """The worker ``name`` as an edited copy at ``file`` says (any file name: it is
    checked as if it were ``NAME.yaml``, every problem at once, exit 2)."""
    from pathlib import Path

    from workerctl.errors import ConfigError, NotFoundError
    from workerctl.workers.files import load_text
    from workerctl.workers.yaml_positions import WORKER_FILE, read_yaml_text

    try:
        text, problems = read_yaml_text(Path(file), file, WORKER_FILE)
    except FileNotFoundError:
        raise NotFoundError(f"{file}: no such file", hint="give the path of the edited worker file") from None
    wf = load_text(text, workspace.worker_file(name), registry, file) if text is not None else None
    if wf is None or wf.worker is None:
        raise ConfigError(
            f"{file} is not a valid worker file for {name!r}:",
            problems if wf is None else wf.problems,
            hint="fix it and try again ('workerctl worker validate' checks a file in the workspace)",
        )
    return wf.worker
