"""``stale_after`` and the heartbeat: a live run beats four times in every ``stale_after``
window, so that a reader judging it by its beats (another PID namespace, a remote) never
marks it crashed; a setting too short for that is refused, naming the field and the floor
(a ``stale_after`` of 0.3 s, with a beat every 0.5 s, made such readers mark live runs
crashed)."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from workerctl.engine.heartbeat import beat_interval
from workerctl.workspace import MIN_STALE_AFTER, settings_problem


@given(st.floats(min_value=1e-9, max_value=1e8, allow_nan=False))
def test_every_accepted_stale_after_fits_four_beats(stale_after):
    problem = settings_problem({"stale_after": stale_after})
    if stale_after < MIN_STALE_AFTER:
        assert problem is not None and "stale_after" in problem and f"{MIN_STALE_AFTER:g}" in problem
    else:
        assert problem is None
        assert beat_interval(stale_after) <= stale_after / 4


def test_a_stale_after_below_the_floor_is_named_in_workerctl_yaml(workspace):
    path = workspace.root / "workerctl.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("stale_after: 120", "stale_after: 0.3"), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "workerctl", "-w", str(workspace.root), "runs", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "workerctl.yaml: stale_after: must be at least 2 seconds" in done.stderr
    assert "not 0.3" in done.stderr
