"""A batch's review checks decided in a second process, on another core.

A ``--jobs`` batch runs its runs on threads of one process, and Python runs one
thread at a time: review's checks are about a third of a run's Python time (the
echo executor's runs), and while one thread decides them the thread holding the
history lock waits for its turn. Here a batch on a machine with a second core
starts one helper process (``serve``, on the batch's own ``sys.path``), and a
run thread hands both of its review stages to it (the checks
that stand before the output mode's write, then the verdicts kept when the run
finishes) and waits for the answer without holding Python's lock.

The rules that keep the verdicts what the batch's own threads would decide:

- **The same checks, or none.** The helper builds its registry, records and
  settings from the workspace, as any command does, and answers the batch's
  first line with whether they are the batch's own (each review check's key and
  function, and the settings). A batch whose registry was changed in its
  process (a test's plugin), or whose settings differ, decides everything
  itself.
- **A run's stages in one place.** ``before_write`` builds the evidence the
  ``finish`` stage reuses (records read once, before the write), as the step
  loop does in process; a run whose first stage was decided in process has its
  second decided there too.
- **Only local records.** Review reads records and comments; the helper reads
  them from the workspace's files. A workspace with a record source on a server
  (one with a ``kind``, a ``record_sources:`` entry) is reviewed in process, so
  no server is asked twice.
- **Never a different outcome, only a different place.** A helper that is not
  ready yet, has died, answered out of turn or was refused is simply not asked:
  the thread decides in process. One that stops answering (stopped, stuck) is
  given up after ``ANSWER_SECONDS``, and meanwhile the other threads decide
  their runs themselves rather than queue behind it (``TURN_SECONDS``). The
  helper ignores Ctrl-C (the batch handles it) and ends when the batch closes
  its input, or dies with it.

``WORKERCTL_REVIEW_PROCESS``: ``off`` never starts it, ``on`` starts it for any
batch of two or more jobs (the tests), unset (``auto``) only when the batch has
``MIN_RUNS`` records or more and the process may use two cores.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from workerctl.jsonvalues import loads

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.runs.checks import Check
    from workerctl.runs.model import Run
    from workerctl.workspace import Workspace

#: the environment variable that turns the helper off (``off``) or on for any batch (``on``)
ENV = "WORKERCTL_REVIEW_PROCESS"
#: below this many records a batch is over before the helper has started (0.3 s)
MIN_RUNS = 16
#: how long a run thread waits for the helper's answer before it gives the helper up and
#: decides itself: a run's checks take milliseconds (none asks a model as a run ends,
#: docs/review.md), so a helper this late is stopped (SIGSTOP) or stuck
ANSWER_SECONDS = 10.0
#: how long a run thread waits for its turn on the helper before deciding itself: the
#: turn is one run's checks, milliseconds, unless the helper is stuck in one
TURN_SECONDS = 0.5
#: the stages a run hands over, in order
STAGES = ("before_write", "finish")


def wanted(jobs: int, runs: int, records: RecordBook) -> bool:
    """Whether a batch of ``runs`` records on ``jobs`` threads starts the helper."""
    setting = os.environ.get(ENV, "auto").strip().lower()
    if setting == "off" or jobs < 2:
        return False
    if any(source.kind for source in records.sources):  # a source on a server
        return False
    if setting == "on":
        return True
    return runs >= MIN_RUNS and _cores() > 1


def _cores() -> int:
    """The cores this process may run on (its affinity where the system tells it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def signature(registry: Registry, settings: dict[str, Any]) -> str:
    """What decides a verdict besides the run and the records: each review check's key
    and function, and the settings. Both sides compute it; equal means same checks."""
    checks = [
        (rc.key, getattr(rc.decide, "__module__", ""), getattr(rc.decide, "__qualname__", repr(rc.decide)))
        for rc in registry.review_checks.values()
    ]
    text = json.dumps([checks, settings], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class ReviewProcess:
    """The batch's side: one helper process, asked by one run thread at a time."""

    def __init__(self, workspace: Workspace, registry: Registry) -> None:
        self._turn = threading.Lock()  # one request on the pipes at a time
        self._ready = False
        self._broken = False
        self.decided = 0  # stages the helper decided (tests, benchmarks)
        answers, self._answer_w = os.pipe()
        self._expected = signature(registry, dict(workspace.settings))
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                # -P: nothing from the current folder; the batch's own sys.path instead
                [
                    sys.executable,
                    "-P",
                    "-c",
                    _BOOT,
                    str(workspace.root),
                    str(self._answer_w),
                    str(os.getpid()),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,  # a check that prints cannot reach the answers
                stderr=subprocess.DEVNULL,
                pass_fds=(self._answer_w,),
                close_fds=True,
                env={**os.environ, _PATH_ENV: json.dumps(sys.path)},
            )
        except OSError:
            self._proc = None
            self._broken = True
        finally:
            os.close(self._answer_w)
        self._answers = os.fdopen(answers, "rb")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def wait_ready(self, timeout: float) -> bool:
        """Block until the helper has said it is ready (tests; a batch never waits)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._turn:
                if self._usable(0.05):
                    return True
                if self._broken:
                    return False
        return False

    def decide(self, run: Run, stage: str) -> list[Check] | None:
        """``stage``'s checks of ``run`` as the helper decided them, or None when the
        helper cannot be asked now (the caller then decides in process)."""
        from workerctl.runs.checks import Check

        if not self._turn.acquire(timeout=TURN_SECONDS):
            return None  # a turn this long is a helper stuck: the thread does not queue behind it
        try:
            if not self._usable(0):
                return None
            request = json.dumps({"stage": stage, "run": run.to_dict()}).encode() + b"\n"
            answer = self._ask(request)
            if answer is None:
                return None
            self.decided += 1
            return [Check(**c) for c in answer]
        finally:
            self._turn.release()

    def forget(self, run: Run) -> None:
        """Drop what the helper keeps of ``run`` between its stages (a run that ended
        before its ``finish`` stage was asked)."""
        if not self._turn.acquire(timeout=TURN_SECONDS):
            return  # a stuck helper keeps what it kept; it ends with the batch
        try:
            if self._usable(0):
                self._ask(json.dumps({"stage": "forget", "run_id": run.id}).encode() + b"\n")
        finally:
            self._turn.release()

    def _usable(self, wait: float) -> bool:
        """Whether the helper can be asked: its first answer (ready or refused) is read
        when it has come, never waited for in a batch."""
        if self._broken or self._proc is None:
            return False
        if not self._ready:
            if not select.select([self._answers], [], [], wait)[0]:
                return False
            first = self._answers.readline()
            if first.strip() != f"ready {self._expected}".encode():
                self.abandon()  # refused (other checks or settings), or died starting
                return False
            self._ready = True
        return True

    def _ask(self, request: bytes) -> list[dict[str, Any]] | None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(request)
            self._proc.stdin.flush()
            if not select.select([self._answers], [], [], ANSWER_SECONDS)[0]:
                raise OSError("no answer")
            line = self._answers.readline()
            answer = loads(line)
            if not isinstance(answer, dict) or "checks" not in answer:
                raise ValueError(line[:200])
        except (OSError, ValueError):
            self.abandon()  # from here on every stage is decided in process
            return None
        checks: list[dict[str, Any]] = answer["checks"]
        return checks

    def abandon(self) -> None:
        """Never ask the helper again, and kill it: it was refused, answered wrongly or
        not at all, or the batch is stopping (Ctrl-C, SIGTERM; a stopped helper held a
        Ctrl-C for a minute). A thread in the middle of a request reads its end and
        decides in process."""
        self._broken = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def close(self) -> None:
        """End the helper: its input closed, it exits; one that does not is killed."""
        with self._turn:
            self._broken = True
            proc = self._proc
            if proc is not None:
                with contextlib.suppress(OSError):
                    assert proc.stdin is not None
                    proc.stdin.close()
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self._answers.close()


#: where the batch hands the helper its ``sys.path``
_PATH_ENV = "WORKERCTL_REVIEW_PROCESS_PATH"
#: the helper's first lines: the batch's ``sys.path``, exactly (not the current folder,
#: which ``python -m`` would put first: a ``workerctl`` or ``pluggy.py`` lying there was
#: imported by the helper and not by the batch), then ``serve``. It ends with
#: ``os._exit``: the batch waits for it at its end (``ReviewProcess.close``), and the
#: interpreter's own teardown took 30 ms of that wait, for nothing: the helper writes
#: no file, and each answer is flushed as it is written
_BOOT = (
    f"import json, os, sys; sys.path[:] = json.loads(os.environ.pop({_PATH_ENV!r})); "
    "from workerctl.engine.review_process import _die_with, serve; _die_with(int(sys.argv[3])); "
    "code = serve(*sys.argv[1:3]); sys.stderr.flush(); os._exit(code)"
)


def _die_with(parent: int) -> None:
    """The helper ends when the batch does, even killed (SIGKILL, which the batch cannot
    pass on) and even while it is stopped or busy with a long review: the kernel kills
    it when its parent ends (Linux's parent-death signal). Where the system has none,
    a closed input still ends it once it reads."""
    import signal

    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the batch ended before the signal was asked for
        os._exit(0)


def serve(root: str, answer_fd: int | str) -> int:
    """The helper's side: a line per request on stdin, a line per answer on ``answer_fd``."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch's to handle
    answer_fd = int(answer_fd)
    answers = os.fdopen(answer_fd, "wb")
    try:
        from pathlib import Path

        from workerctl.plugins.manager import get_registry
        from workerctl.records.book import open_records
        from workerctl.workspace import load_workspace

        workspace = load_workspace(Path(root))
        registry = get_registry()
        settings = dict(workspace.settings)
        records = open_records(workspace, registry)
    except Exception as exc:  # the batch reads this as a refusal and reviews in process
        answers.write(f"cannot {type(exc).__name__}\n".encode())
        answers.flush()
        return 1
    answers.write(f"ready {signature(registry, settings)}\n".encode())
    answers.flush()
    desk = _Desk(registry, records, settings)
    for line in sys.stdin.buffer:
        answers.write(json.dumps({"checks": desk.answer(loads(line))}).encode() + b"\n")
        answers.flush()
    return 0


class _Desk:
    """The helper's review: the step loop's two stages (``engine.loop``), the evidence
    of ``before_write`` kept for ``finish`` as the loop keeps it."""

    def __init__(self, registry: Registry, records: RecordBook, settings: dict[str, Any]) -> None:
        self.registry = registry
        self.records = records
        self.settings = settings
        self._evidence: dict[str, Any] = {}

    def answer(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        from workerctl.runs.evidence import ReviewEvidence
        from workerctl.runs.model import Run
        from workerctl.runs.review_checks import checks

        if request["stage"] == "forget":
            self._evidence.pop(request["run_id"], None)
            return []
        run = Run.from_dict(request["run"])
        self.records.refresh()  # what the batch wrote since: the run's own comment
        stage = request["stage"]
        if stage == "before_write":
            evidence = self._evidence[run.id] = ReviewEvidence(
                run, self.records, self.registry, stage, self.settings
            )
        else:
            evidence = self._evidence.pop(run.id, None)
            if evidence is not None:
                evidence.run = run  # the run as it ends; what was read before the write stays
        decided = checks(
            run,
            records=self.records,
            registry=self.registry,
            stage=stage,
            settings=self.settings,
            evidence=evidence,
        )
        return [c.to_dict() for c in decided]
