"""The step loop of a run: checks, context assembly, the iteration loop, the tool
gate, the output mode and its side effects.

Starting a run (preparing it, the duplicate guard, handing it to a remote executor
or to a background process) is the launcher's (``engine.launcher``); the launcher
hands a stored, running run to ``StepLoop.execute``. The loop owns the steps: an
executor only answers one step at a time; every tool call it asks for passes through
the gate here, the iteration limit and the timeout are enforced here, and every step
is recorded in the history before the next one starts, so a crash leaves an honest
trail.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from workerctl.engine import halts, stop_signals
from workerctl.engine.context import assemble, enabled_types, source_for_type
from workerctl.engine.heartbeat import Heartbeat, beat_interval
from workerctl.engine.limits import cap_text, cap_value
from workerctl.engine.outputs import OutputContext
from workerctl.engine.remote import as_remote
from workerctl.engine.replay import Recorded, fingerprint, plain_json
from workerctl.engine.run_records import Refused, RunRecords
from workerctl.engine.step import (
    Executor,
    ExecutorFailure,
    Step,
    StepRequest,
    ToolCall,
    checked_usage,
    normal_finish_reason,
    shape_finish_reason,
)
from workerctl.engine.stop_signals import TERMINATING
from workerctl.engine.tool_gate import ToolGate
from workerctl.engine.tools import ToolContext, summarize
from workerctl.errors import ConfigError, HistoryError, Terminated, stop_within
from workerctl.history.ledger import COMMITTED, INTENDED, NOT_WRITTEN, UNKNOWN
from workerctl.history.store import History, RunFinishedElsewhere
from workerctl.records.http import RecordSourceError
from workerctl.runs import model as R
from workerctl.runs.approval import approval_word
from workerctl.runs.model import Iteration, Run, RunError, ToolCallRecord, now_iso
from workerctl.runs.states import STATE_UNUSABLE
from workerctl.workers.influence import run_reasons as run_review_reasons
from workerctl.workers.model import Worker
from workerctl.workspace import Workspace

if TYPE_CHECKING:
    from workerctl.engine.review_process import ReviewProcess
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.records.model import Record
    from workerctl.runs.evidence import ReviewEvidence


class RunFailed(Exception):
    """Raised inside the loop to end a run with an error kind."""

    def __init__(self, kind: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.error = RunError(kind, message, detail)


class StepLoop:
    """The loop of one run, once the launcher (``engine.launcher``) has stored it as
    running: checks, context, the steps with their tool calls through the gate, the
    output mode, signals, write intents and cost. ``execute`` returns the finished
    run as stored."""

    def __init__(
        self, workspace: Workspace, registry: Registry, history: History, records: RecordBook
    ) -> None:
        self.workspace = workspace
        self.registry = registry
        self.history = history
        self.records = records
        self.max_field_bytes = int(workspace.setting("max_field_bytes"))
        self._evidence: dict[str, ReviewEvidence] = {}  # run id -> what review read before its write
        # a batch's helper process that decides review on another core (``engine.review_process``),
        # and the runs whose first stage it decided (their second goes there too)
        self.reviews: ReviewProcess | None = None
        self._elsewhere: set[str] = set()
        # run id -> the past run a ``worker try`` gives recorded answers and reads from
        # (``engine.replay``); empty for real runs
        self.recorded: dict[str, Recorded] = {}

    def execute(self, run: Run, worker: Worker, held_signals: stop_signals.Held | None = None) -> Run:
        stale_after = float(self.workspace.setting("stale_after"))
        beat = Heartbeat(self.history, run.id, beat_interval(stale_after))
        in_main = threading.current_thread() is threading.main_thread()
        # a signal the process was started with ignored (nohup) stays ignored: not a cancel
        previous = {sig: signal.getsignal(sig) for sig in stop_signals.STOPPING} if in_main else {}
        previous = {sig: h for sig, h in previous.items() if h is not signal.SIG_IGN}
        _stopping.clear()
        state_problem: HistoryError | None = None
        halts.watch(run.id)
        try:
            try:  # a Ctrl-C from here on cancels the run (it is stored as running already)
                for sig in previous:
                    signal.signal(sig, _raise_stop)
                with stop_signals.held():  # a thread's start waits (stop_signals.held)
                    beat.start()
                stop_signals.release(held_signals or {})
                held_signals = None
                self._loop(run, worker)
                run.move(R.COMPLETED)
            except RunFailed as failed:
                run.error = failed.error
                run.move(R.FAILED)
            except (Terminated, KeyboardInterrupt) as stop:
                run.error = _cancelled_by(stop)
                run.move(R.CANCELLED)
            except RecordSourceError as exc:  # a record's server failed or refused: its kind, its fix
                run.error = RunError(exc.kind, exc.message, f"fix: {exc.hint}" if exc.hint else "")
                run.move(R.FAILED)
            except HistoryError as exc:  # a damaged or unwritable state file met mid-run
                run.error = RunError(STATE_UNUSABLE, exc.message, exc.hint or "")
                run.move(R.FAILED)
                state_problem = exc
            except Exception as exc:  # a bug in a plugin must not leave the run running
                wrapped = stop_within(exc)  # unless it is a stop signal's, wrapped on its way
                refused = self._state_refusal(exc)
                if refused is not None:  # the system refused a state path: the state's problem
                    run.error = RunError(STATE_UNUSABLE, refused.message, refused.hint or "")
                    run.move(R.FAILED)
                    state_problem = refused
                elif wrapped is not None:
                    run.error = _cancelled_by(wrapped)
                    run.move(R.CANCELLED)
                else:
                    run.error = RunError(
                        "executor_error", f"{type(exc).__name__}: {exc}", traceback.format_exc()
                    )
                    run.move(R.FAILED)
            # the run's end is decided, and nothing may cut its save in two: a Ctrl-C, a
            # SIGTERM or a SIGHUP now waits for it (a Ctrl-C left the run file saying
            # running, a write intended, and the run was later settled as crashed with the
            # write unknown; a SIGTERM raised mid-save ended the command in a traceback),
            # then ends the command (130, 143, 129): never dropped, the command does not
            # go on as if it had not come. One exception: 'run cancel' stores the run
            # cancelled, then sends SIGTERM; a save that finds it so (RunFinishedElsewhere)
            # drops the SIGTERM it holds, which has nothing left to stop
            ending = stop_signals.hold()
            _stopping.clear()  # held from here: one that came since the first is raised after the save
            cancelled_elsewhere = False
            try:
                if run.error is not None:
                    run.error.message = cap_text(run.error.message, self.max_field_bytes) or ""
                    run.error.detail = cap_text(run.error.detail, self.max_field_bytes) or ""
                self._count_usage(run)
                if run.status in (R.COMPLETED, R.FAILED):
                    self._decide_checks(run)
                self._evidence.pop(run.id, None)
                self._forget_elsewhere(run)
                if worker.review_required is None:
                    touched = [r for r in run_review_reasons(run) if r not in run.review_reasons]
                    run.review_reasons = [*run.review_reasons, *touched]
                    run.needs_review = bool(run.review_reasons)
                beat.stop()
                for effect in run.side_effects:
                    if effect.get("state") == INTENDED:  # the write raised: it may have happened
                        effect["state"] = UNKNOWN
                run.approval = approval_word(run)
                try:
                    saved = self.history.save(run, executing=True)
                except RunFinishedElsewhere:
                    cancelled_elsewhere = True
                    raise
            finally:
                # a stop signal held meanwhile is raised now (the cancel's SIGTERM dropped)
                stop_signals.release(ending, drop=TERMINATING if cancelled_elsewhere else ())
            if state_problem is not None:
                # the run is recorded as failed; the command still says what is damaged
                # (exit 4), as any command meeting that file does
                raise state_problem
            return saved
        except RunFinishedElsewhere as other:
            return self._adopt_writes(run, other.stored)
        finally:
            halts.forget(run.id)
            stop_signals.release(held_signals or {})
            beat.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _adopt_writes(self, run: Run, stored: Run) -> Run:
        """The run was finished elsewhere (cancelled, say) while this process was
        making a write whose intent was already stored: the write's outcome is a fact
        only this process knows. Recorded on the stored run (the ledger follows, through
        the one commit path), it stays the truth: a comment that landed is
        ``committed``, not an ``unknown`` that blocks the record until someone settles
        it. The run's end stays as the other party recorded it."""
        known = {
            e["key"]: e
            for e in run.side_effects
            if e.get("key") and e.get("state") in (COMMITTED, NOT_WRITTEN)
        }
        if not any(e.get("key") in known and e.get("state") == INTENDED for e in stored.side_effects):
            return stored

        def adopt(current: Run) -> None:
            for at, effect in enumerate(current.side_effects):
                if effect.get("state") == INTENDED and effect.get("key") in known:
                    current.side_effects[at] = {**effect, **known[effect["key"]]}

        try:
            return self.history.update(run.id, adopt)
        except HistoryError:  # the history cannot take it now: the outcome stays unknown
            return stored

    def _count_usage(self, run: Run) -> None:
        """Tokens in total (as the executor reported them per iteration) and, with a
        price table in the workspace, the estimated cost."""
        from workerctl.runs.usage import price_table, usage_totals

        run.usage = usage_totals(run.iterations)
        try:
            table = price_table(self.workspace.root) if run.usage else None
        except ConfigError as bad:  # a broken price table must not fail the run
            run.cost = {"estimate": True, "amount": None, "error": bad.message}
            return
        run.cost = table.estimate(run.usage) if table else None

    def _checks(self, run: Run, worker: Worker) -> Record | None:
        # a paused worker and a draft's unsafe record were refused before the run
        # existed (``engine.launcher.Engine.prepare``): refusals are not runs
        record = None
        if run.record_id:
            record = self.records.peek(run.record_id)
            if record is None:
                raise RunFailed(
                    "record_missing",
                    f"record {run.record_id} does not exist",
                    "it may have been deleted or the id mistyped; 'workerctl records list' shows what exists",
                )
            if not record.accessible_by(worker.name):
                raise RunFailed(
                    "record_access_denied",
                    f"worker {worker.name!r} may not access {record.id}",
                    f"{record.id} is restricted to: {', '.join(record.restricted_to or [])}",
                )
        if record is not None and record.type not in enabled_types(worker, self.registry):
            needed = ", ".join(source_for_type(record.type, self.registry)) or record.type
            raise RunFailed(
                "missing_context",
                f"the run is on a {record.type} but the worker's context sources "
                f"({', '.join(worker.context_sources) or 'none'}) do not include "
                f"{needed}",
                f"add {needed} to context_sources",
            )
        return record

    def _state_refusal(self, exc: BaseException) -> HistoryError | None:
        """An ``OSError`` on a path under the workspace's state folder, as the
        ``StorageError`` it is (an unreadable ``.workerctl/comments`` failed runs as
        ``executor_error``, blaming the executor); None for anything else."""
        if not isinstance(exc, OSError) or not exc.filename:
            return None
        import os

        from workerctl.errors import StorageError

        state = os.path.abspath(self.workspace.state_dir)
        path = os.path.abspath(os.fsdecode(exc.filename))
        if path != state and not path.startswith(state + os.sep):
            return None
        return StorageError(path, exc, "use")

    def _loop(self, run: Run, worker: Worker) -> None:
        # what a run of this version read and saw is known from its start, even when the
        # checks below refuse it: null keeps meaning "recorded before these were kept"
        # (a run refused its record showed null, and review said it was an old run);
        # its context stays {} until it is assembled (troubleshooting reads that)
        run.reads = []
        run.seen = {}
        record = self._checks(run, worker)
        with self.records.reading() as read:  # this run's, not the batch's other threads'
            if record is not None:
                context, missing = assemble(worker, record, self.records, self.registry)
            else:
                context, missing = [], []
        run.reads.extend({"type": t, "id": i, "by": "context"} for t, i in _unique(read))
        if record is not None:
            self._note_seen(run, [(record.type, record.id)], "context")
        self._note_seen(run, read, "context")
        run.context = {
            "sources": list(worker.context_sources),
            "records": [{"type": c["type"], "id": c["id"]} for c in context],
            "missing_links": missing,
        }
        executor = self.registry.executors.get(worker.executor)
        if executor is None:
            raise RunFailed(
                "executor_error",
                f"executor {worker.executor!r} is not installed",
                "'workerctl executors list' shows what is installed",
            )
        if as_remote(executor) is not None:  # its runs are submitted, never stepped here
            raise RunFailed(
                "executor_error",
                f"executor {worker.executor!r} hands runs to a queue; it does no steps in this process",
                "start the run with 'workerctl run start', which submits it to the queue",
            )
        executor = cast("Executor", executor)  # not a remote one: it does its steps here
        records = RunRecords(
            self.records,
            run=run,
            worker=worker,
            registry=self.registry,
            save=lambda: self._save_executing(run),
        )
        if record is not None:
            records.know(record)
        gate = ToolGate(self.registry.tools, worker.tool_categories)
        offered = [t.schema() for t in gate.offered()]
        fit = self._context_fit(executor, worker)
        messages: list[dict] = []
        deadline = time.monotonic() + float(worker.timeout)
        halt = halts.of(run.id)
        for number in range(1, worker.max_iterations + 1):
            time_left = deadline - time.monotonic()
            if time_left <= 0:
                raise RunFailed("timeout", f"the run exceeded its timeout of {worker.timeout:g}s")
            iteration = Iteration(number=number, started=now_iso())
            run.iterations.append(iteration)
            request = StepRequest(
                run_id=run.id,
                worker=worker.name,
                instructions=worker.instructions,
                output_mode=worker.output_mode,
                settings=worker.executor_settings,
                iteration=number,
                max_iterations=worker.max_iterations,
                context=context,
                tools=offered,
                messages=list(messages),
                record_id=run.record_id,
                time_left=time_left,
                workspace=str(self.workspace.root),
                output_contract=(worker.output_contract.to_dict() if worker.output_contract else None),
                max_field_bytes=self.max_field_bytes,
                halted=halt.event if halt is not None else threading.Event(),
            )
            step = self._step(executor, request, iteration, worker, fit, self.recorded.get(run.id))
            if time.monotonic() > deadline:
                raise RunFailed(
                    "timeout",
                    f"the run exceeded its timeout of {worker.timeout:g}s during iteration {number}",
                )
            if not step.tool_calls:
                self._finish(run, worker, records, record, step.text)
                return
            messages.append(
                {
                    "role": "assistant",
                    "text": step.text,
                    "tool_calls": [
                        {"id": c.id, "name": c.name, "arguments": c.arguments} for c in step.tool_calls
                    ],
                }
            )
            for index, call in enumerate(step.tool_calls):
                messages.append(self._call_tool(run, records, gate, iteration, index, call))
            iteration.finished = now_iso()
            self.history.save(run, executing=True)
        raise RunFailed(
            "max_iterations",
            f"no final answer after {worker.max_iterations} iterations",
            "the worker kept calling tools; narrow its instructions or raise max_iterations",
        )

    def _save_executing(self, run: Run) -> None:
        self.history.save(run, executing=True)

    def _context_fit(self, executor: Executor, worker: Worker) -> Callable[[StepRequest], None]:
        """The context-window check every step of this run passes (``engine.context_fit``):
        the model's capabilities are asked once; a model its library does not know (or
        another failure the executor names) fails the run with its kind here."""
        from workerctl.engine import context_fit
        from workerctl.workers.capabilities import ask

        try:
            caps = ask(executor, worker.executor_settings)
        except ExecutorFailure as failure:
            raise RunFailed(failure.kind, failure.message, failure.detail) from None
        except Exception:  # the executor could not say: its step will fail with its own kind
            caps = None
        source_of: dict[str, str] = {}  # record type -> the worker's context source giving it
        for source, types in self.registry.context_sources().items():
            if source in worker.context_sources:
                for record_type in types:
                    source_of.setdefault(record_type, source)
        return lambda request: context_fit.check(executor, caps, request, source_of)

    def _step(
        self,
        executor: Executor,
        request: StepRequest,
        iteration: Iteration,
        worker: Worker,
        fit: Callable[[StepRequest], None] | None = None,
        recorded: Recorded | None = None,
    ) -> Step:
        """The executor's answer to ``request``, recorded on ``iteration`` with the
        request's fingerprint: the one place a step is asked for. In a ``worker try``
        (``recorded``), a request the past run made gets its recorded answer instead."""
        started = time.monotonic()
        asked = fingerprint(request, worker.executor)
        replayed = recorded.answer(asked, iteration.number) if recorded is not None else None
        try:
            if replayed is not None:
                step = replayed
            else:
                if fit is not None:
                    fit(request)
                step = _bounded_step(executor, request, worker, halts.of(request.run_id))
                if request.halted.is_set():  # it returned as it was halted: not an answer
                    raise Terminated(HALTED)
        except ExecutorFailure as failure:
            iteration.finished = now_iso()
            message = failure.message
            if failure.kind == "timeout":
                message = f"{message} (run timeout {worker.timeout:g}s)"
            raise RunFailed(failure.kind, message, failure.detail) from None
        except (Terminated, RunFailed):
            raise
        except Exception as exc:
            iteration.finished = now_iso()
            raise RunFailed(
                "executor_error",
                f"executor {worker.executor!r} raised {type(exc).__name__}: {exc}",
                traceback.format_exc(),
            ) from None
        iteration.finished = now_iso()
        _check_step(step, worker)
        step.text = cap_text(step.text, self.max_field_bytes)  # the output is this object
        step.stderr = cap_text(step.stderr, self.max_field_bytes) or ""
        iteration.text = step.text
        iteration.stderr = step.stderr
        iteration.finish_reason = normal_finish_reason(step.finish_reason) or shape_finish_reason(step)
        latency = round((time.monotonic() - started) * 1000, 1)
        iteration.usage = {"latency_ms": latency, **checked_usage(step.usage)}
        iteration.request = asked
        return step

    def _call_tool(
        self, run: Run, records: RunRecords, gate: ToolGate, iteration: Iteration, index: int, call: ToolCall
    ) -> dict[str, Any]:
        tool = self.registry.tools.get(call.name)
        decision = gate.decide(call.name)
        record = ToolCallRecord(
            name=call.name,
            arguments=cap_value(call.arguments, self.max_field_bytes),
            category=tool.category if tool else None,
            allowed=decision.allowed,
            reason=decision.reason,
            writes=bool(tool and tool.writes),
            id=call.id,
        )
        iteration.tool_calls.append(record)
        if not decision.allowed:
            raise RunFailed(
                "tool_not_allowed",
                decision.reason,
                f"iteration {iteration.number} asked for {call.name}({summarize(call.arguments)})",
            )
        where = f"{iteration.number}.{index + 1}"
        key = f"{run.id}:{iteration.number}:{index}"
        ctx = ToolContext(run_id=run.id, worker=run.worker, records=records, call_key=key)
        records.serve(by="tool", key=key, tool=call.name, call=where)
        write_mark = len(run.side_effects)
        ok, result = False, None
        recorded = self.recorded.get(run.id)
        kept = None
        if recorded is not None and tool is not None and not tool.writes:
            kept = recorded.read(call.name, record.arguments, where)
        try:
            if kept is not None:  # a try reading as the past run did: its recorded result
                records.replay_reads(kept.records_read, recorded.past.seen if recorded else None)
                ok, result = kept.ok, kept.result
            else:
                ok, result = gate.execute(call.name, call.arguments, ctx)
        except Refused:
            pass  # remembered on ``records``: handled below, whatever the tool did with it
        except KeyboardInterrupt as stop:
            if _stopping:  # a real Ctrl-C: its handler noted the signal (``_raise_stop``)
                raise
            raise _contained(stop, f"tool {call.name!r}") from None  # the plugin's own
        except (Exception, Terminated):
            raise
        except BaseException as exc:  # SystemExit, GeneratorExit, ... from the tool's plugin
            raise _contained(exc, f"tool {call.name!r}") from None
        finally:
            self._log_records(run, record, where, write_mark)
        refusal = records.refusal
        if refusal is not None:
            record.allowed, record.reason = False, refusal.message
            record.refused_record = {
                "what": refusal.what,
                "id": refusal.record_id,
                "type": refusal.record_type,
            }
            raise RunFailed(
                refusal.kind,
                refusal.message,
                f"iteration {iteration.number} asked for {call.name}({summarize(call.arguments)})",
            )
        record.ok, record.result_summary = ok, summarize(result)
        if not ok:
            error = result.get("error") if isinstance(result, dict) else result
            record.error = summarize(error, 300) or "the call failed"
        given = cap_value(result, self.max_field_bytes)
        if tool is not None and not tool.writes:  # kept for a try that reads as this run did
            record.read_result = {"ok": ok, "result": plain_json(given)}
        return {"role": "tool", "id": call.id, "name": call.name, "ok": ok, "result": given}

    def _log_records(self, run: Run, call: ToolCallRecord, where: str, write_mark: int) -> None:
        """Note on the call what it read (the records API logged it in the run's read
        log) and wrote, so review can tell which records a tool reached."""
        call.records_read = [
            {"type": r["type"], "id": r["id"]} for r in run.reads or [] if r.get("call") == where
        ]
        self._note_seen(run, [(r["type"], r["id"]) for r in call.records_read], "tool")
        for effect in run.side_effects[write_mark:]:
            target = effect.get("record_id")
            found = self.records.peek(target) if target else None
            call.records_written.append(
                {"kind": effect.get("kind", ""), "type": found.type if found else "", "id": target or ""}
            )

    def _note_seen(self, run: Run, reads: list[tuple[str, str]], by: str) -> None:
        """Keep a snapshot of each record the first time the run reads it (review
        compares the output with the records as the run saw them)."""
        from workerctl.runs.evidence import snapshot

        if run.seen is None:
            return
        for _type, record_id in _unique(list(reads)):
            if record_id in run.seen:
                continue
            found = self.records.peek(record_id)
            if found is not None:
                run.seen[record_id] = snapshot(found, self.records.comments(record_id), run.id, by)

    def _finish(
        self, run: Run, worker: Worker, records: RunRecords, record: Record | None, text: object
    ) -> None:
        if not isinstance(text, str) or not text.strip():
            raise RunFailed(
                "invalid_output",
                "the executor finished with an empty output",
                "a final step must carry the worker's output text",
            )
        run.output = text
        mode = self.registry.output_modes[worker.output_mode]
        if mode.apply is not None:
            self._check_before_write(run, mode.name)
            if record is not None:
                from workerctl.runs.evidence import snapshot

                now = self.records.fresh(record.id)
                if now is not None:
                    run.record_at_write = snapshot(now, self.records.comments(record.id), run.id, "write")
            key = f"{run.id}:output"
            ctx = OutputContext(run_id=run.id, worker=worker.name, record=record, records=records, key=key)
            records.serve(by="output_mode", key=key)
            # only the run's end follows this write: the run's final save, which comes
            # next, stores its confirmation together with the end (one write less)
            records.defer_last_save = True
            with contextlib.suppress(Refused):  # remembered on ``records``: handled below
                mode.apply(ctx, text)
            refusal = records.refusal
            if refusal is not None:
                raise RunFailed(refusal.kind, refusal.message, f"output mode {mode.name}")

    def _check_before_write(self, run: Run, mode: str) -> None:
        """The review checks that stand before a write (``before_write``): an output
        that fails one (not an answer to the task, cut off) is kept on the run for a
        person to read, and nothing is written: the run fails ``output_rejected``."""
        from workerctl.runs.checks import FAIL
        from workerctl.runs.evidence import ReviewEvidence
        from workerctl.runs.review_checks import REJECTED, checks

        decided = self.reviews.decide(run, "before_write") if self.reviews is not None else None
        if decided is not None:
            self._elsewhere.add(run.id)
        else:
            evidence = ReviewEvidence(
                run, self.records, self.registry, "before_write", dict(self.workspace.settings)
            )
            # the finish stage reuses it (records read once); keyed by run: a batch shares this loop
            self._evidence[run.id] = evidence
            decided = checks(
                run, records=self.records, registry=self.registry, stage="before_write", evidence=evidence
            )
        failed = [c for c in decided if c.verdict == FAIL]
        if failed:
            raise RunFailed(
                REJECTED,
                f"output mode {mode} did not write: the output failed "
                + ", ".join(f"{c.key} ({c.title.lower()})" for c in failed),
                "\n".join(e for c in failed for e in c.evidence[:3]),
            )

    def _decide_checks(self, run: Run) -> None:
        """The automatic review verdict, kept on the finished run (card, runs list)."""
        from workerctl.runs.review_checks import checks, stored_checks

        try:
            evidence = self._evidence.pop(run.id, None)
            self._elsewhere.discard(run.id)
            # where its first stage was decided (or the helper, when there was none)
            decided = None
            if evidence is None and self.reviews is not None:
                decided = self.reviews.decide(run, "finish")
            if decided is None:
                decided = checks(
                    run,
                    records=self.records,
                    registry=self.registry,
                    stage="finish",
                    settings=dict(self.workspace.settings),
                    evidence=evidence,
                )
            run.checks = stored_checks(decided)
        except Exception as exc:  # a review must never change how a run ended
            run.checks = [
                {
                    "key": "review",
                    "title": "The automatic checks could be decided",
                    "verdict": "cannot_tell",
                    "evidence": [f"{type(exc).__name__}: {exc}"],
                }
            ]

    def _forget_elsewhere(self, run: Run) -> None:
        """A run whose first review stage the helper decided and whose second was never
        asked (cancelled, failed before it): the helper drops the evidence it kept."""
        if run.id in self._elsewhere:
            self._elsewhere.discard(run.id)
            if self.reviews is not None:
                self.reviews.forget(run)


def _unique(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(pairs))


#: ``Terminated.signum`` of a run halted by its own process (``engine.halts``), no signal
HALTED = 0

TERMINATED_BY: dict[int, str] = {
    HALTED: "cancelled while a step ran; the step was abandoned",
    signal.SIGTERM: "the process executing the run was terminated (SIGTERM)",
    signal.SIGHUP: "the process executing the run lost its terminal (SIGHUP)",
}


#: a run's error when Ctrl-C cancelled it (the command then exits 130, as every Ctrl-C)
INTERRUPTED = "interrupted (Ctrl-C) while it was running"
TERMINATED = "the process executing the run was terminated"

#: how long past the run's deadline a step may take to return its own timeout
STEP_GRACE_SECONDS = 0.5


def _stop_if_halted(halt: halts.Halt | None) -> None:
    """A run cancelled while its step ran is cancelled, whatever the step did (returned,
    raised, or was woken by the cancel itself)."""
    if halt is not None and halt.requested:
        raise Terminated(HALTED) from None


def _bounded_step(
    executor: Executor, request: StepRequest, worker: Worker, halt: halts.Halt | None = None
) -> Step:
    """``executor.step(request)`` within the engine's bounds: the run's time left, and
    nothing the executor raises escapes as anything but an executor error.

    An executor that says it bounds itself (``bounds_itself = True``: the ``command``
    executor, which kills its program's process group at the run's deadline, on cancel
    and on Ctrl-C; ``echo``, whose only wait ends at the deadline and at a cancel) is
    called here. Any other runs on a daemon thread that the loop waits
    for until the run's time is up (plus ``STEP_GRACE_SECONDS`` for its own timeout to
    arrive first): a step still running then is abandoned, the run fails with kind
    ``timeout``, and whatever the step later returns is ignored (its thread never keeps
    the process alive). SIGTERM and Ctrl-C still reach the loop at once (signals go to
    the main thread), and a run cancelled by this very process (a batch's Ctrl-C) wakes
    the wait through its ``halt`` (``engine.halts``): the step is abandoned as at a
    timeout. An executor that bounds itself is told through ``request.halted`` and
    ends its step (the ``command`` executor kills its program's group); whatever it
    raises then, the run ends cancelled. ``SystemExit``, ``KeyboardInterrupt`` and any
    other ``BaseException`` a plugin raises become ``executor_error``."""
    if getattr(executor, "bounds_itself", False):
        try:
            step = executor.step(request)
        except (Exception, Terminated, RunFailed, KeyboardInterrupt):
            _stop_if_halted(halt)
            raise  # a real Ctrl-C or SIGTERM in this thread cancels the run
        except BaseException as exc:  # SystemExit, GeneratorExit, ... from the plugin
            raise _contained(exc, f"executor {worker.executor!r}") from None
        _stop_if_halted(halt)  # as below
        return step
    box: dict[str, Any] = {}
    raised: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            box["step"] = executor.step(request)
        except BaseException as exc:  # reported to the loop, whatever it is
            raised.append(exc)
        finally:
            done.set()

    # the signals wait from the thread's start to the end of the wait (stop_signals.held)
    with stop_signals.held() as came:
        threading.Thread(target=work, name=f"workerctl-step-{request.run_id}", daemon=True).start()
        if halt is not None:
            halt.wake_on(done)
        try:
            ended = stop_signals.wait(done, max(request.time_left, 0) + STEP_GRACE_SECONDS, came)
        finally:
            if halt is not None:
                halt.wake_on(None)
    _stop_if_halted(halt)
    if not ended:
        raise RunFailed(
            "timeout",
            f"the run exceeded its timeout of {worker.timeout:g}s: executor {worker.executor!r} "
            f"did not return from step {request.iteration}, which was abandoned",
            "the step's result, if it ever comes, is ignored; raise the worker's timeout, or make "
            "the executor honour request.time_left",
        )
    if not raised:
        return box["step"]
    if isinstance(raised[0], Exception) and stop_within(raised[0]) is None:
        raise raised[0]
    # no signal reaches the step's thread: a Ctrl-C or SIGTERM in what it raised is the
    # plugin's own, an executor error (the loop takes a wrapped stop for the user's)
    raise _contained(raised[0], f"executor {worker.executor!r}")


def _check_step(step: Any, worker: Worker) -> None:
    """What an executor returned, as the history can keep it (``workerctl.jsonvalues``):
    a ``Step`` whose text and stderr are text and whose tool calls have a text name and
    id and JSON arguments. Anything else fails the run as the executor's error, naming
    the part (before, ``Step(text=b"...")`` or a date in a call's arguments ended the
    command in a traceback and the run was later marked crashed)."""
    from workerctl.jsonvalues import not_json, where

    problem = None
    if not isinstance(step, Step):
        problem = f"returned {type(step).__name__}, not a Step"
    elif step.text is not None and not isinstance(step.text, str):
        problem = f"returned text of type {type(step.text).__name__}, not str"
    elif not isinstance(step.stderr, str | None):
        problem = f"returned stderr of type {type(step.stderr).__name__}, not str"
    elif not isinstance(step.tool_calls, list):
        problem = f"returned tool_calls of type {type(step.tool_calls).__name__}, not a list"
    else:
        for n, call in enumerate(step.tool_calls):
            named = isinstance(call, ToolCall) and isinstance(call.name, str) and isinstance(call.id, str)
            if not named:
                problem = f"returned tool_calls[{n}] without a text name and id"
                break
            found = not_json(call.arguments)
            if found is not None:
                problem = f"returned {where(found[0], f'tool_calls[{n}].arguments')}: {found[1]}"
                break
    if problem is not None:
        raise RunFailed(
            "executor_error",
            f"executor {worker.executor!r} {problem}; workerctl keeps JSON values only",
            "fix the executor plugin: a step's text is str, a tool call's arguments are JSON values",
        )


def _contained(exc: BaseException, raiser: str) -> RunFailed:
    """A plugin's ``SystemExit``, its own ``KeyboardInterrupt`` or other ``BaseException``
    (``raiser``: "executor 'x'" or "tool 'y'"): the run fails ``executor_error`` naming it,
    instead of the process ending with the plugin's exit code (``sys.exit(3)`` read as
    "not found") or a run recorded cancelled by a Ctrl-C no one pressed."""
    return RunFailed(
        "executor_error",
        f"{raiser} raised {type(exc).__name__}"
        + (f"({exc})" if str(exc) else "")
        + "; workerctl contained it",
        "".join(traceback.format_exception(exc)),
    )


def _cancelled_by(stop: BaseException) -> RunError:
    """The error of a run a stop cancelled: SIGTERM, SIGHUP or a halt (``Terminated``),
    or Ctrl-C."""
    if isinstance(stop, Terminated):
        return RunError("cancelled", TERMINATED_BY.get(stop.signum, TERMINATED))
    return RunError("cancelled", INTERRUPTED)


#: the stop signal a run's process is ending the run for (one at most)
_stopping: list[int] = []


def _raise_stop(signum: int, frame: object) -> None:
    """A stop signal during a run: the first cancels it (Ctrl-C as ``KeyboardInterrupt``,
    SIGTERM and SIGHUP as ``Terminated``); one that follows while the first is recorded
    waits for the record, and is raised once the run is saved (``stop_signals``). Raised
    then, in the middle of the first one's handling, it left the run running with no one
    to save it (marked crashed, the test suite's two-signal case under load)."""
    if _stopping:
        stop_signals.remember(signum)
        return
    _stopping.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)
