"""examples/cron/roundup-stale-review.sh against a real roundup-server: one message per
stale issue, never two, even when the answer to a message is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from roundup_server import configure, workerctl

pytestmark = pytest.mark.slow  # a real roundup-server and workerctl processes

SCRIPT = Path(__file__).resolve().parents[3] / "examples" / "cron" / "roundup-stale-review.sh"


def sweep(root: Path, env: dict[str, str], days: str = "0") -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent
    full = {**os.environ, **env, "WORKERCTL_WORKSPACE": str(root), "DAYS": days, "COLUMNS": "200",
            "PATH": f"{bin_dir}:{os.environ['PATH']}", "NO_COLOR": "1"}  # fmt: skip
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=full, timeout=600)


@pytest.mark.slow
def test_each_morning_one_message_per_stale_issue_never_two(make_tracker_with, roundup_env, tmp_path):
    tracker = make_tracker_with(issues=6)
    root = tmp_path / "ws"
    assert workerctl("init", str(root), env=roundup_env).returncode == 0
    configure(root, tracker.url)
    made = workerctl("-w", str(root), "worker", "new", "stale-review", "--template", "tracker-stale-review",
                     env=roundup_env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert workerctl("-w", str(root), "worker", "activate", "stale-review", env=roundup_env).returncode == 0
    open_issues = [i for i in tracker.issues if _status(tracker, i) != "resolved"]
    # DAYS=0 selects activity strictly before now, to the second: issues made within the
    # second the first sweep starts would be left out (it failed so on a fast machine)
    time.sleep(1.1)
    first = sweep(root, roundup_env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{len(open_issues)} completed" in first.stdout
    # DAYS=0 selects activity strictly before now, to the second: a message posted within
    # the second the next sweep starts would leave its issue out of that sweep
    time.sleep(1.1)
    second = sweep(root, roundup_env)  # the next morning, nothing changed
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{len(open_issues)} skipped" in second.stdout
    for issue in tracker.issues:
        mine = [m for m in tracker.messages(issue) if "worker:stale-review" in m["content"]]
        assert len(mine) == (issue in open_issues)
    tracker.change(open_issues[0], priority="critical")  # someone touched one issue
    time.sleep(1.1)
    third = sweep(root, roundup_env)
    assert "1 completed" in third.stdout and f"{len(open_issues) - 1} skipped" in third.stdout
    bad = sweep(root, roundup_env, days="soon")
    assert bad.returncode == 2 and "whole number of days" in bad.stderr


def _status(tracker, issue: str) -> str:
    data, _ = tracker.rest("GET", f"data/issue/{issue[5:]}?@verbose=2")
    return data["data"]["attributes"]["status"]["name"]
