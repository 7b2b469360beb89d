"""The ``rq`` executor: runs go to RQ (Redis Queue) and execute on ``workerctl rq
worker`` processes, possibly on other machines.

The RQ job id is the run id. RQ's job states map onto run states one to one
(queued → queued, started → running, finished → completed, failed/stopped/
canceled → failed or cancelled), and RQ marks a job whose work horse died as
failed at once, which becomes ``crashed`` here. The local history learns of
progress through ``refresh``, which every command that reads the history calls.
"""

from __future__ import annotations

from typing import Any

from workerctl.api import (
    CANCELLED,
    FAILED,
    FINISHED,
    PENDING,
    QUEUED,
    RUNNING,
    ProviderUnavailable,
    Run,
    RunError,
    installed_executors,
    is_remote,
)
from workerctl_rq.connection import ENV_VAR, connect, has_password, redis_url, safe_url

SETTINGS = ("queue", "redis_url", "inner", "retries", "result_days")
JOB_TIMEOUT_MARGIN = 30  # seconds beyond the run's own timeout before RQ kills the horse
KNOWN_STATES = (
    "queued",
    "deferred",
    "scheduled",
    "created",
    "started",
    "finished",
    "failed",
    "stopped",
    "canceled",
)


class RQExecutor:
    name = "rq"
    description = (
        "Hands runs to RQ (Redis Queue); 'workerctl rq worker' executes them with "
        "the inner executor, on any machine"
    )

    def check_settings(self, settings: dict) -> list[tuple]:
        problems: list[tuple] = [
            (k, f"unknown rq setting {k!r}", f"known: {', '.join(SETTINGS)}")
            for k in settings
            if k not in SETTINGS
        ]
        if not isinstance(settings.get("queue"), str) or not settings.get("queue"):
            problems.append(("queue", "needs 'queue': the RQ queue name", "e.g. queue: workers"))
        url = settings.get("redis_url")
        if url is not None:
            if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
                problems.append(("redis_url", "must be a redis:// URL", "e.g. redis://redis.internal:6379/0"))
            elif has_password(url):
                problems.append(
                    (
                        "redis_url",
                        "holds a password, which would be stored with every run",
                        f"put the URL in {ENV_VAR} instead",
                    )
                )
        retries = settings.get("retries", 0)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
            problems.append(
                (
                    "retries",
                    "must be a whole number from 0 to 10",
                    "retries: 1 re-runs a job whose work horse died",
                )
            )
        days = settings.get("result_days", 7)
        if isinstance(days, bool) or not isinstance(days, int | float) or days <= 0:
            problems.append(("result_days", "must be a positive number of days", "e.g. 7"))
        problems.extend(self._check_inner(settings.get("inner")))
        return problems

    def _check_inner(self, inner: Any) -> list[tuple]:
        if not isinstance(inner, dict) or not isinstance(inner.get("name"), str):
            return [
                (
                    "inner",
                    "needs 'inner': the executor that does the steps remotely",
                    "e.g. inner: {name: llm, model: gpt-4o-mini}",
                )
            ]
        executors = installed_executors()
        name = inner["name"]
        executor = executors.get(name)
        if executor is None or name == self.name or is_remote(executor):
            usable = sorted(n for n, e in executors.items() if not is_remote(e))
            return [
                ("inner.name", f"{name!r} cannot do the steps remotely", f"use one of: {', '.join(usable)}")
            ]
        settings = {k: v for k, v in inner.items() if k != "name"}
        return [
            (f"inner.{where}" if where else "inner", message, *fix)
            for where, message, *fix in getattr(executor, "check_settings", lambda s: [])(settings)
        ]

    # -- the local side --

    def submit(self, run: Run, worker, workspace) -> None:
        from redis.exceptions import RedisError
        from rq import Queue, Retry

        from workerctl_rq.jobs import execute_run

        settings = worker.executor_settings
        url = redis_url(settings)
        queue = Queue(settings["queue"], connection=connect(url))
        days = float(settings.get("result_days", 7))
        retries = int(settings.get("retries", 0))
        try:
            queue.enqueue(
                execute_run,
                args=(run.to_dict(),),
                job_id=run.id,
                job_timeout=int(worker.timeout) + JOB_TIMEOUT_MARGIN,
                result_ttl=int(days * 86400),
                failure_ttl=int(days * 86400),
                retry=Retry(max=retries) if retries else None,
                description=f"workerctl run {run.id}: {run.worker} on {run.record_id or '-'}",
            )
        except RedisError as exc:
            raise ProviderUnavailable(
                f"cannot reach Redis at {safe_url(url)}: {exc}",
                f"start Redis, or check redis_url / {ENV_VAR}",
            ) from None

    def refresh(self, history, run_ids: list[str], workspace) -> None:
        """Bring these runs up to date from what the remote reported (``jobs.read_report``)
        and what RQ says of the job. Liveness and a lost job are judged by the engine
        (``history.alive``, ``history.lost``): never by the remote's clock, never as
        "failed, no side effects" when Redis forgot the job."""
        from redis.exceptions import RedisError

        unreachable: list[str] = []
        connections: dict[str, Any] = {}  # one per Redis: a connection per run cost 2 ms each
        for run_id in run_ids:
            run = history.get(run_id)
            if run.finished:
                continue
            url = redis_url(run.config.get("executor") or {})
            if safe_url(url) in unreachable:
                continue  # one wait for the connect timeout per Redis, not one per run
            try:
                if url not in connections:
                    connections[url] = connect(url)
                job, status, report = _look(connections[url], run_id)
            except RedisError:
                unreachable.append(safe_url(url))  # the run keeps its last known state
                continue
            _apply(history, run_id, job, status, report, safe_url(url))
        if unreachable:
            raise ProviderUnavailable(
                f"cannot reach Redis at {', '.join(sorted(set(unreachable)))}; "
                "the runs there keep their last known state"
            )

    def cancel(self, run: Run, workspace) -> None:
        from redis.exceptions import RedisError
        from rq.command import send_stop_job_command
        from rq.exceptions import InvalidJobOperation, NoSuchJobError
        from rq.job import Job

        from workerctl_rq.jobs import ask_to_stop

        url = redis_url(run.config.get("executor") or {})
        try:
            connection = connect(url)
            ask_to_stop(connection, run.id)  # heard by the horse even when RQ lost the job
            job = Job.fetch(run.id, connection=connection)
            if job.get_status() == "started":
                send_stop_job_command(connection, run.id)
            else:
                job.cancel()
        except (NoSuchJobError, InvalidJobOperation):
            pass
        except RedisError as exc:
            raise ProviderUnavailable(
                f"cannot reach Redis at {safe_url(url)} to cancel the job: {exc}"
            ) from None


def _fail(run: Run, kind: str, message: str, detail: str = "") -> None:
    if run.finished:
        return
    run.error = RunError(kind, message, detail)
    run.move(FAILED)


def _look(connection, run_id: str) -> tuple[Any, str | None, dict]:
    """RQ's job (None when RQ no longer knows it), its status, and the remote's report."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from workerctl_rq.jobs import read_report

    report = read_report(connection, run_id)
    try:
        job = Job.fetch(run_id, connection=connection)
    except NoSuchJobError:
        return None, None, report
    status = job.get_status(refresh=False)
    return job, (str(status.value if hasattr(status, "value") else status) if status else None), report


def _apply(history, run_id: str, job, status: str | None, report: dict, url: str) -> None:
    """Bring one local run up to date with its RQ job and the remote's report."""
    remote = _as_run(report.get("run"), run_id)
    if remote is not None and remote.status in FINISHED:
        # the remote's own last word: it holds whatever became of the job in RQ
        history.update(run_id, lambda r: _merge(r, remote))
        return
    if status in ("queued", "deferred", "scheduled", "created"):
        return
    if job is None and not report and history.get(run_id).status == PENDING:
        # the start stored the run but died before it stored it queued (it enqueues in
        # between): neither RQ nor any worker has heard of it, so it never ran
        history.update(
            run_id,
            lambda r: _fail(
                r,
                "crashed",
                "the start that hands this run to RQ died before RQ had it; it never ran",
                f"RQ has no job {run_id} at {url}",
            ),
        )
        return
    if status is None or status not in KNOWN_STATES:
        # RQ no longer knows the job (Redis flushed, or restarted without its data);
        # a work horse still executing it writes its report again at its next beat
        if history.alive(run_id, report.get("beat")):
            if report:
                history.update(run_id, lambda r: _progress(r, report, remote))
            return
        history.lost(
            run_id,
            f"RQ no longer knows job {run_id} at {url}, and no report of it arrived for "
            f"{history.workspace.setting('stale_after')}s: what it did after its last report is unknown",
            "Redis lost its data (flushed, or restarted without persistence) or the result expired; "
            "'workerctl ledger list --state unknown' shows what may have been written",
        )
        return
    if status == "started":
        if not history.alive(run_id, report.get("beat")):
            history.update(
                run_id,
                lambda r: _crashed(
                    r,
                    report,
                    remote,
                    f"the worker executing this run ({report.get('where', '?')}) stopped sending "
                    f"heartbeats: none arrived for {history.workspace.setting('stale_after')}s by this "
                    "machine's clock",
                    "its machine or process died; RQ will also move the job to failed",
                ),
            )
            return
        history.update(run_id, lambda r: _progress(r, report, remote))
        return
    if status == "finished":
        result = _as_run(job.return_value(), run_id)
        if result is not None:
            history.update(run_id, lambda r: _merge(r, result))
            return
        history.update(run_id, lambda r: _fail(r, "invalid_output", "the RQ job finished without a run"))
        return
    text = _exc_string(job)
    if status in ("stopped", "canceled") or "stopped by user" in text:
        history.update(run_id, lambda r: _cancel(r, f"the RQ job was {status or 'stopped'}", report, remote))
    elif "Work-horse terminated unexpectedly" in text:
        history.update(
            run_id,
            lambda r: _crashed(
                r,
                report,
                remote,
                f"the process executing this run ({report.get('where', '?')}) died",
                text.strip()[-1000:],
            ),
        )
    elif "JobTimeoutException" in text:
        history.update(
            run_id,
            lambda r: _fail(
                _progress(r, report, remote),
                "timeout",
                "RQ killed the job after its timeout",
                text.strip()[-1000:],
            ),
        )
    else:
        history.update(
            run_id,
            lambda r: _fail(
                _progress(r, report, remote),
                "executor_error",
                "the RQ job failed on the worker",
                text.strip()[-2000:],
            ),
        )


def _as_run(data: Any, run_id: str) -> Run | None:
    """A run the remote reported, when it is one and this one (a damaged or foreign
    report is no report)."""
    if not isinstance(data, dict):
        return None
    try:
        run = Run.from_dict(data)
    except Exception:
        return None
    return run if run.id == run_id and run.status in (QUEUED, RUNNING, *FINISHED) else None


def _crashed(run: Run, report: dict, remote: Run | None, message: str, detail: str) -> None:
    """The process executing the run died: what it reported stands (its intended
    writes become unknown in the ledger), then the run fails as crashed."""
    if not run.finished:
        _fail(_progress(run, report, remote), "crashed", message, detail)


def _exc_string(job) -> str:
    try:
        result = job.latest_result()
        return (result.exc_string or "") if result is not None else ""
    except Exception:
        return ""


def _cancel(run: Run, message: str, report: dict, remote: Run | None) -> None:
    if not run.finished:
        _progress(run, report, remote)
        run.error = RunError("cancelled", message)
        run.move(CANCELLED)


def _progress(run: Run, report: dict, remote: Run | None) -> Run:
    """Copy what the remote reported (steps, context, side effects) onto the local run."""
    if run.finished:
        return run
    if run.status == QUEUED and (remote is not None or report):
        run.move(RUNNING)
    if report:
        # the process that asked for the run is not the one executing it; until the
        # job reports its work horse, the executing process is unknown (None)
        run.owner = {"pid": report.get("pid"), "host": report.get("host"), "remote": run.owner.get("remote")}
    if remote is not None:
        run.iterations, run.context = remote.iterations, remote.context
        run.side_effects = remote.side_effects
        run.owner = {**remote.owner, "remote": run.owner.get("remote")}
    return run


def _merge(run: Run, remote: Run) -> None:
    """Take what the engine recorded on the worker: steps, context, effects, result."""
    if run.finished:
        return
    seen = {t["status"] for t in run.transitions}
    run.transitions += [t for t in remote.transitions if t["status"] not in seen]
    run.status = remote.status if remote.status in FINISHED else FAILED
    for name in ("iterations", "context", "side_effects", "output", "error"):
        setattr(run, name, getattr(remote, name))
    run.owner = {**remote.owner, "remote": run.owner.get("remote")}
