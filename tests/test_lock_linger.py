"""While a batch's threads take turns with the history lock (``FileLock.linger``), a
release waits a moment for the next thread to ask, so a chain of commits writes the
shared files once; the chain's bound still holds for every other process.

- a thread that asks within the wait is handed the lock, the flock never let go, the
  work left for the release done once, by the last holder;
- nobody asks: the work is done and the flock let go after the wait, not before;
- outside ``linger`` a release never waits;
- another process asking meanwhile gets the lock within ``HANDOVER_SECONDS`` of the
  chain's start plus the wait, however many threads keep asking (a real process);
- a real 60-run ``--jobs 4`` batch writes its shared files in fewer chains than runs.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from helpers import flock_free
from workerctl.storage.lock import HANDOVER_SECONDS, FileLock


def test_a_thread_that_asks_during_the_wait_is_handed_the_lock(tmp_path):
    lock = FileLock(tmp_path / "lock", timeout=5)
    done: list[str] = []
    seen: list[bool] = []
    first_out = threading.Event()

    def second() -> None:
        first_out.wait(5)
        time.sleep(0.005)  # after the first holder began its release's wait
        with lock:
            seen.append(flock_free(tmp_path / "lock"))
            seen.append(done == [])  # the first holder's work is not done yet

    with lock.linger(1.0):
        thread = threading.Thread(target=second)
        thread.start()
        with lock:
            lock.before_release("k", lambda: done.append("written"))
            first_out.set()
        thread.join(5)
    assert seen == [False, True]
    assert done == ["written"]
    assert flock_free(tmp_path / "lock")


def test_nobody_asks_the_work_is_done_after_the_wait(tmp_path):
    lock = FileLock(tmp_path / "lock", timeout=5)
    done: list[float] = []
    with lock.linger(0.05):
        began = time.monotonic()
        with lock:
            lock.before_release("k", lambda: done.append(time.monotonic() - began))
    assert len(done) == 1 and done[0] >= 0.045
    assert flock_free(tmp_path / "lock")


def test_outside_linger_a_release_never_waits(tmp_path):
    lock = FileLock(tmp_path / "lock", timeout=5)
    with lock.linger(5):
        pass  # over: the lock is back to releasing at once
    began = time.monotonic()
    with lock:
        lock.before_release("k", lambda: None)
    assert time.monotonic() - began < 1
    assert flock_free(tmp_path / "lock")
    assert not lock.waited_for


_OTHER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
began = time.monotonic()
fcntl.flock(fd, fcntl.LOCK_EX)
print(time.monotonic() - began)
"""


def test_another_process_waits_no_longer_than_the_chains_bound(tmp_path):
    """Four threads ask for the lock again and again for three seconds, each leaving work
    for the release; a process that asks meanwhile waits at most a chain's bound, the
    linger's wait and the work (here 5 ms a hold) beside it."""
    path = tmp_path / "lock"
    lock = FileLock(path, timeout=5)
    with lock:
        pass  # the file exists
    stop = time.monotonic() + 3.0
    linger = 0.02

    def keep_asking() -> None:
        while time.monotonic() < stop:
            with lock:
                lock.before_release("k", lambda: time.sleep(0.005))
                time.sleep(0.001)

    with lock.linger(linger):
        threads = [threading.Thread(target=keep_asking) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        other = subprocess.run([sys.executable, "-c", _OTHER, str(path)], capture_output=True, text=True)
        for t in threads:
            t.join(10)
    waited = float(other.stdout)
    # unbounded, it would wait until the threads stop (2.7 s); 0.8 s: a loaded machine's slack
    assert waited < HANDOVER_SECONDS + linger + 0.8, waited


def _chains(workspace, tasks: list[str], monkeypatch, linger: float | None, jobs: int = 4) -> list[int]:
    """The staged files of each chain's write in a ``--jobs 4`` batch over ``tasks``
    (``linger``: None as shipped, else the wait patched to it)."""
    from workerctl.engine.batch import BatchRunner
    from workerctl.engine.launcher import Engine, StartOptions
    from workerctl.history.store import History
    from workerctl.plugins.manager import get_registry

    flushes: list[int] = []
    flush = History._flush

    def counting(self: History) -> None:
        flushes.append(len(self._staged))
        flush(self)

    monkeypatch.setattr(History, "_flush", counting)
    if linger is not None:
        monkeypatch.setattr(History, "taking_turns", lambda self: self.lock.linger(linger))
    history = History(workspace)
    engine = Engine(workspace, get_registry(), history=history)
    result = BatchRunner(engine, jobs=jobs).run("overdue-task-review", tasks, StartOptions())
    assert result.counts == {"completed": len(tasks)}
    assert not history.lock.waited_for  # the batch's turns are over
    monkeypatch.undo()
    return flushes


def test_a_batch_writes_its_shared_files_in_fewer_chains(workspace, monkeypatch):
    """The same 60 runs on two sets of records: with the wait, fewer chains than
    without it (about 5 against 20 on a quiet machine)."""
    from workerctl.records.builtin_store import BuiltinRecordStore

    tasks = [{"id": f"T-{8000 + n}", "type": "task", "title": f"Task {n}"} for n in range(120)]
    BuiltinRecordStore(workspace).import_records(tasks, "test")
    ids = [t["id"] for t in tasks]
    without = _chains(workspace, ids[:60], monkeypatch, linger=0.0)
    shipped = _chains(workspace, ids[60:], monkeypatch, linger=None)
    assert len(shipped) < len(without), (shipped, without)


def test_a_batch_on_one_thread_never_waits_for_another(workspace, monkeypatch):
    """With one job there is no other thread to wait for: nothing is staged, no release
    waits (it waited 10 ms at each of a run's three commits)."""
    from workerctl.records.builtin_store import BuiltinRecordStore

    tasks = [{"id": f"T-{8200 + n}", "type": "task", "title": f"Task {n}"} for n in range(10)]
    BuiltinRecordStore(workspace).import_records(tasks, "test")
    waits: list[float] = []
    asked = FileLock._asked_soon

    def timed(self: FileLock) -> bool:
        began = time.monotonic()
        try:
            return asked(self)
        finally:
            waits.append(time.monotonic() - began)

    monkeypatch.setattr(FileLock, "_asked_soon", timed)
    assert _chains(workspace, [t["id"] for t in tasks], monkeypatch, linger=None, jobs=1) == []
    assert waits == []
