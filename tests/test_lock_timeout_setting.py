"""WORKERCTL_LOCK_TIMEOUT: a value that is no usable number of seconds is a usage error
(exit 2) naming the variable, never a traceback when the lock is held."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import run_workerctl
from test_lock_within import HOLD  # a process holding a flock until its stdin closes
from workerctl.errors import UsageError
from workerctl.storage.lock import LOCK_TIMEOUT_ENV, MAX_LOCK_TIMEOUT, resolve_timeout


@pytest.mark.parametrize("value", ["inf", "-inf", "1e400", "9999999999999999999999", "nan", "-1", "abc"])
def test_a_value_that_is_no_usable_wait_is_exit_2_beside_a_holder(workspace, value):
    lock = workspace.history_dir / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run_workerctl(
            "run", "start", "overdue-task-review", "--task", "T-1042", workspace=workspace,
            env={LOCK_TIMEOUT_ENV: value}, timeout=30,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"error: {LOCK_TIMEOUT_ENV}=") and "Traceback" not in result.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


@given(
    st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=30)
)
def test_every_accepted_value_is_a_finite_wait_a_timer_can_count(raw):
    import os

    os.environ[LOCK_TIMEOUT_ENV] = raw
    try:
        value, source = resolve_timeout(None)
    except UsageError as exc:
        assert LOCK_TIMEOUT_ENV in exc.message
        return
    finally:
        del os.environ[LOCK_TIMEOUT_ENV]
    if raw.strip():
        assert math.isfinite(value) and 0 <= value < MAX_LOCK_TIMEOUT and source.startswith(LOCK_TIMEOUT_ENV)
