"""``FileLock.within`` and ``FileLock.bounded``: the waits of a repair made on the way
to reading, against a real process holding the ``flock``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workerctl.errors import LockTimeout
from workerctl.storage.lock import FileLock

HOLD = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def held(tmp_path: Path):
    path = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    yield path, holder
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)


def test_within_gives_up_after_its_wait_then_only_tries_until_that_long_has_passed(held):
    path, _ = held
    lock = FileLock(path, timeout=300)
    with pytest.raises(LockTimeout, match=r"within 0\.3s \(a reader's wait"), lock.within(0.3):
        pass
    # a command that met a stopped holder waits once: the next repair only tries
    with pytest.raises(LockTimeout, match=r"within 0s \(a reader's wait"), lock.within(0.3):
        pass
    assert not lock.held


def test_bounded_makes_every_plain_hold_in_the_block_a_bounded_one(held):
    path, _ = held
    lock = FileLock(path, timeout=300)
    with lock.bounded(0.2):
        with pytest.raises(LockTimeout, match=r"within 0\.2s \(a reader's wait"), lock:
            pass
        with lock.bounded(5):  # an inner block never widens the bound
            assert lock._bound.seconds == 0.2
    assert getattr(lock._bound, "seconds", None) is None


def test_the_wait_never_exceeds_the_lock_timeout_and_a_free_lock_is_taken(tmp_path: Path):
    lock = FileLock(tmp_path / "lock", timeout=0.5)
    assert lock.within(2.0).seconds == 0.5
    with lock.within(), lock.within():  # nested in this thread's own hold: at once
        assert lock.held
    assert not lock.held


def test_outside_the_block_a_hold_waits_the_whole_timeout(held):
    path, holder = held
    lock = FileLock(path, timeout=0.4)
    with lock.bounded(0.1), pytest.raises(LockTimeout, match=r"within 0\.1s"), lock:
        pass
    with pytest.raises(LockTimeout, match=r"within 0\.4s \((?!a reader)"), lock:
        pass
    assert holder.poll() is None
