"""Starting a run: the launcher.

``Engine`` prepares a run (the checks that can refuse it before it exists, exit 2/3),
passes it through the duplicate guard under the history lock, and then either runs it
here (``engine.loop.StepLoop``), hands it to a remote executor (a task queue: queued),
or to a background process (``--detach``). The step loop itself is in ``engine.loop``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workerctl.engine import stop_signals
from workerctl.engine.launch import spawn_executing_process
from workerctl.engine.loop import StepLoop
from workerctl.engine.remote import ProgressSink, RemoteExecutor, as_remote
from workerctl.engine.step import ExecutorFailure
from workerctl.errors import NotFoundError, Terminated, UsageError, WorkerctlError
from workerctl.history.store import History
from workerctl.history.sweep import current_owner, proc_start
from workerctl.records.book import open_records
from workerctl.runs import model as R
from workerctl.runs.model import Run, RunError, new_run_id, now_iso
from workerctl.workers.files import get_worker
from workerctl.workers.influence import reasons as review_reasons
from workerctl.workers.model import Worker
from workerctl.workers.validation import validate
from workerctl.workspace import Workspace

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.runs.duplicate_guard import GuardDecision, RecordWrites
    from workerctl.workers.versions import Versions


@dataclass
class StartOptions:
    record_id: str | None = None
    trigger: str = "manual"
    reason: str = ""
    test: bool = False
    rerun_of: str | None = None
    allow_repeat: bool = False  # let the duplicate guard pass a repeat on an unchanged record


class Engine:
    """The launcher: every start of a run (``start``, ``start_detached``, a rerun, a
    batch's runs, a remote worker's ``execute_remote``) goes through it."""

    def __init__(
        self,
        workspace: Workspace,
        registry: Registry,
        history: History | None = None,
        records: RecordBook | None = None,
        versions: Versions | None = None,
    ) -> None:
        self.workspace = workspace
        self.registry = registry
        self.history = history or History(workspace)
        self.records = records or open_records(workspace, registry)
        self._versions = versions
        self._kept: dict[tuple[str, str], int] = {}
        self.loop = StepLoop(workspace, registry, self.history, self.records)

    @property
    def versions(self) -> Versions:
        if self._versions is None:
            from workerctl.workers.versions import Versions

            self._versions = Versions(self.workspace)
        return self._versions

    # -- starting --

    def runnable_worker(self, worker_name: str) -> Worker:
        """The valid worker, refused (exit 2, nothing recorded) when its model cannot do
        what it needs (``workers.capabilities``): every start, single or batch, asks here."""
        from workerctl.workers.files import display_path
        from workerctl.workers.validation import require_capabilities

        worker = get_worker(self.workspace, self.registry, worker_name)
        shown = display_path(self.workspace, worker.path) if worker.path else worker.name
        require_capabilities(worker, self.registry, shown)
        return worker

    def prepare(self, worker_name: str, options: StartOptions) -> tuple[Worker, Run]:
        """Validate what can be refused before a run exists (exit 2/3/5), build the run.

        An unknown worker or record records nothing (exit 3), nor does a paused
        worker or a draft on a record not safe for testing (exit 5: refusals are not
        runs); the worker file as it is now is kept as a version, and the run points at it.
        """
        worker = self.runnable_worker(worker_name)
        mode = self.registry.output_modes[worker.output_mode]
        record_id = clean_record_id(options.record_id)
        if options.record_id is None and mode.needs_record:
            raise UsageError(
                f"worker {worker.name!r} writes its output as {worker.output_mode}, which "
                f"needs a linked {' or '.join(mode.needs_record)}",
                hint="pass --task ID, or use output_mode: review_note for a run tied to no record",
            )
        # each run starts from the records as they are now, not as a batch's first run
        # found them: what another process changed meanwhile is seen (one stat)
        self.records.refresh()
        record = self.records.peek(record_id) if record_id else None
        if record_id and record is None:
            raise NotFoundError(
                f"no record with id {record_id!r}; no run was recorded",
                hint="'workerctl records list' shows the ids",
            )
        if record is not None and mode.needs_record and record.type not in mode.needs_record:
            raise UsageError(
                f"output mode {worker.output_mode} writes to a {' or '.join(mode.needs_record)}, "
                f"but {record.id} is a {record.type}",
                hint="link the run to a task, or use output_mode: review_note",
            )
        from workerctl.runs.duplicate_guard import refuse_status

        # a refusal is not a run: a paused worker, or a draft on a record not safe for
        # testing, is refused here, before a run exists (exit 5, nothing recorded)
        refuse_status(
            worker.name,
            worker.status,
            record_id,
            test=options.test,
            safe=bool(record and record.safe_for_testing),
            restricted_to=()
            if record is None or record.accessible_by(worker.name)
            else tuple(record.restricted_to or ()),
        )
        run = Run(
            id=new_run_id(),
            worker=worker.name,
            config_hash=worker.config_hash,
            config=worker.config,
            executor=worker.executor,
            created=now_iso(),
            record_id=record_id,
            record_type=record.type if record else None,
            record_fingerprint=record.fingerprint() if record else None,
            record_title=record.title if record else None,
            trigger=options.trigger,
            reason=options.reason,
            test=options.test,
            rerun_of=options.rerun_of,
            plugins=self.registry.fingerprint(),
            output_mode=worker.output_mode,
            owner=current_owner(),
            transitions=[{"status": R.PENDING, "at": now_iso()}],
        )
        run.review_reasons = review_reasons(worker, self.registry)
        run.needs_review = bool(run.review_reasons)
        if worker.content:
            run.worker_version = self._kept_version(worker)
        return worker, run

    def _kept_version(self, worker: Worker) -> int:
        """The stored version of the worker file as it is now (kept once per content
        in this process: a batch of runs reads the versions file once)."""
        key = (worker.name, worker.content)
        number = self._kept.get(key)
        if number is None:
            number = self.versions.keep(worker.name, worker.content, worker.config_hash).version
            self._kept[key] = number
        return number

    def start(
        self, worker_name: str, options: StartOptions, on_created: Callable[[Run], None] | None = None
    ) -> Run:
        """Run in this process and return the finished run; a remote executor (one
        with ``submit``) gets the run handed over instead, and it returns queued.
        ``on_created`` hears of the run once it is stored (a batch notes what runs)."""
        Terminated.raise_unanswered()  # a SIGTERM whose exception was lost: no run starts
        worker, run = self.prepare(worker_name, options)
        remote = as_remote(self.registry.executors.get(worker.executor))
        if remote is not None:
            return self._submit(remote, run, worker, options)
        for status in (R.QUEUED, R.RUNNING):
            run.move(status)
        # a Ctrl-C or SIGTERM between storing the run as running and the loop's handler
        # would leave it running with nobody executing it (then settled as crashed):
        # they wait until the handler is in place (then they cancel the run, recorded)
        held = stop_signals.hold()
        try:
            try:
                self._create_guarded(run, worker, options)
            except WorkerctlError:
                # a creation stopped half-way (a full disk) may have stored the run:
                # whoever hears of created runs hears of it (it is settled as crashed)
                if on_created is not None and self.history.holds(run.id):
                    on_created(run)
                raise
            if on_created is not None:
                on_created(run)
        except BaseException:
            stop_signals.release(held)
            raise
        return self.loop.execute(run, worker, held_signals=held)

    def may_write(self, worker: Worker) -> bool:
        """Whether a run of ``worker`` can write anything: its output mode writes, or a
        tool it may call writes. Only such runs are guarded against duplicates."""
        mode = self.registry.output_modes.get(worker.output_mode)
        if mode is not None and mode.apply is not None:
            return True
        return any(t.writes and t.category in worker.tool_categories for t in self.registry.tools.values())

    def guard(
        self, worker: Worker, run: Run, options: StartOptions, writers: RecordWrites | None = None
    ) -> GuardDecision:
        """The duplicate guard's decision for this start (see ``runs.duplicate_guard``).
        ``writers``: ``_writers``, read by the caller before it took the history lock (a
        record source may be a server)."""
        from workerctl.runs.duplicate_guard import RecordWrites, check

        may_write = self.may_write(worker)
        if writers is None:
            writers = self._writers(worker, run.record_id) if may_write else RecordWrites()
        return check(
            self.history,
            worker=worker.name,
            record_id=run.record_id,
            config_hash=run.config_hash,
            record_fingerprint=run.record_fingerprint,
            may_write=may_write,
            allow_repeat=options.allow_repeat,
            plugins=run.plugins,
            writers=writers,
        )

    def _writers(self, worker: Worker, record_id: str | None) -> RecordWrites:
        """What the record itself says ``worker`` wrote on it (its comments' run ids and
        keys): what the duplicate guard checks the ledger against besides the history's
        indexes, which are derived data and may be lost with it, and asks about a write
        whose end the ledger does not know."""
        from workerctl.runs.duplicate_guard import RecordWrites

        if not record_id:
            return RecordWrites()
        try:
            comments = self.records.comments(record_id)
            source = self.records.source_of(record_id)
        except WorkerctlError:
            return RecordWrites()  # the source cannot tell: the ledger and the indexes decide
        mine = [c for c in comments if c.run_id and c.author in {f"worker:{worker.name}", worker.name}]
        return RecordWrites(
            runs=tuple(dict.fromkeys(c.run_id for c in mine if c.run_id)),
            keys=frozenset(c.key for c in mine if c.key),
            local=bool(getattr(source, "local_writes", False)),
            remote_executors=frozenset(
                name for name, executor in self.registry.executors.items() if as_remote(executor) is not None
            ),
        )

    def _create_guarded(self, run: Run, worker: Worker, options: StartOptions) -> Run:
        """Store the run unless the duplicate guard refuses it; the decision and the
        creation share one hold of the history lock, so of several simultaneous
        starts on one record exactly one is created."""
        from workerctl.runs.duplicate_guard import DuplicateRefused, RecordWrites

        # read before the history lock is taken: the record may live on a server; a
        # write made meanwhile is in the ledger, which the guard reads under the lock
        writers = self._writers(worker, run.record_id) if self.may_write(worker) else RecordWrites()

        def admit() -> None:
            decision = self.guard(worker, run, options, writers)
            if not decision.allowed:
                raise DuplicateRefused(decision)

        return self.history.create(run, admit)

    def _submit(self, executor: RemoteExecutor, run: Run, worker: Worker, options: StartOptions) -> Run:
        """Hand the run to a remote executor (a task queue): pending, then queued, or
        failed with the executor's error kind when it cannot take it."""
        run.owner = {**run.owner, "remote": worker.executor}
        self._create_guarded(run, worker, options)
        run.move(R.QUEUED)
        try:
            executor.submit(run, worker, self.workspace)
        except ExecutorFailure as failure:
            run.error = RunError(failure.kind, failure.message, failure.detail)
            run.move(R.FAILED)
        return self.history.save(run)

    def execute_remote(self, run: Run, sink: ProgressSink) -> Run:
        """Execute a run handed over by a remote executor, on this machine.

        ``run`` arrives queued, with the configuration it was started with; the
        worker's ``executor.inner`` settings name the executor that does the steps
        here. Progress goes to ``sink`` (``save(run, executing=True)`` and
        ``heartbeat(run_id)``) instead of the local history, and the finished run
        is returned for the queue to carry back.
        """
        worker = self._worker_from_config(run)
        inner = dict(worker.executor_settings.get("inner") or {})
        worker.executor = inner.pop("name", "echo")
        worker.executor_settings = inner
        if run.status == R.QUEUED:
            run.move(R.RUNNING)
        run.owner = {**current_owner(), "remote": run.owner.get("remote")}
        # the sink stands in for the history (save, heartbeat): it is a RunStore, not a History
        return StepLoop(self.workspace, self.registry, sink, self.records).execute(run, worker)  # type: ignore[arg-type]

    def start_detached(self, worker_name: str, options: StartOptions) -> Run:
        """Create the run and hand it to a background process; returns at once.
        (A remote executor's runs are handed to it: they are detached already.)"""
        Terminated.raise_unanswered()  # a SIGTERM whose exception was lost: no run starts
        worker, run = self.prepare(worker_name, options)
        remote = as_remote(self.registry.executors.get(worker.executor))
        if remote is not None:
            return self._submit(remote, run, worker, options)
        self._create_guarded(run, worker, options)
        child = spawn_executing_process(self.workspace, run.id)

        def hand_over(stored: Run) -> None:
            if stored.status == R.PENDING:
                stored.move(R.QUEUED)
                stored.owner = {  # the child: this boot, this PID namespace (liveness.py)
                    **{k: run.owner.get(k) for k in ("host", "boot_id", "pid_ns")},
                    "pid": child.pid,
                    "proc_start": proc_start(child.pid),
                }

        return self.history.update(run.id, hand_over)

    def execute(self, run_id: str) -> Run:
        """Execute a stored run (the background half of ``start_detached``)."""
        owner = current_owner()
        worker_box: list[Worker] = []

        def take(run: Run) -> None:
            if run.status == R.PENDING:
                run.move(R.QUEUED)
            if run.status != R.QUEUED:
                raise UsageError(f"run {run.id} is {run.status}; only a queued run can execute")
            run.owner = owner
            try:
                worker_box.append(self._worker_from_config(run))
            except UsageError as exc:  # plugins changed since the run was asked for
                run.error = RunError(
                    "executor_error",
                    exc.message,
                    "the configuration the run was started with no longer "
                    "validates here; 'workerctl worker validate' shows why",
                )
                run.move(R.FAILED)
                return
            run.move(R.RUNNING)

        run = self.history.update(run_id, take)
        if not worker_box:
            return run
        return self.loop.execute(run, worker_box[0])

    def _worker_from_config(self, run: Run) -> Worker:
        worker, problems = validate(run.config, {}, f"run {run.id}", run.worker, self.registry)
        if worker is None:
            raise UsageError(
                f"run {run.id}: its stored configuration is no longer valid: "
                + "; ".join(f"{p.field}: {p.message}" for p in problems)
            )
        return worker


def clean_record_id(record_id: str | None) -> str | None:
    """``--task " T-1042"`` means T-1042; ``--task ""`` (an empty ``$TASK`` in a script)
    is a mistake to report, not a run without a record."""
    if record_id is None:
        return None
    from workerctl.names import RECORD_ID

    cleaned = record_id.strip()
    if not cleaned:
        raise UsageError(
            "--task is empty (an empty variable in a script?)",
            hint="give a record id, e.g. --task T-1042, or leave --task out for a run tied to no record",
        )
    return RECORD_ID.check(cleaned)


def execute_remote(run: Run, sink: ProgressSink, workspace: Workspace | None = None) -> Run:
    """Execute a run handed over by a remote executor, in this machine's workspace.

    ``run`` arrives queued, with the configuration it was started with; its
    executor's ``inner`` settings name the executor that does the steps here.
    Returns the finished run for the queue to carry back.
    """
    from workerctl.plugins.manager import get_registry
    from workerctl.workspace import find_workspace

    workspace = workspace or find_workspace(None)
    engine = Engine(workspace, get_registry(), history=sink)  # type: ignore[arg-type]
    return engine.execute_remote(run, sink)
