"""A reindex whose search index the system refuses to write (a full disk, a file-size
limit) ends in one line and exit 4, and the history stays whole.

The fourth fresh-brief attack: with 8 to 64 KiB free, ``runs reindex`` ended in a
traceback (``sqlite3.OperationalError: database or disk is full``, raised by the search
index's build) and exit 1. The refusal here is real: the child process runs under a
file-size limit (``RLIMIT_FSIZE``), so the kernel refuses the search index's pages past
it, as a full disk does, while the small history files still fit.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys

import pytest

from helpers import run_workerctl, started_on


def _limited(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("limit", [8 * 1024, 24 * 1024])
def test_a_reindex_whose_search_index_is_refused_is_one_line_and_exit_4(workspace, limit):
    started_on(workspace, "T-1042", "T-1043")
    before = json.loads(run_workerctl("runs", "list", "--json", "id", workspace=workspace).stdout)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"}  # no cache file cut short either
    cut = subprocess.run(
        [sys.executable, "-m", "workerctl", "-w", str(workspace.root), "runs", "reindex"],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_limited(limit),
        timeout=120,
    )
    assert cut.returncode == 4, cut.stderr
    assert "Traceback" not in cut.stderr and "search.db: cannot write" in cut.stderr
    assert len(cut.stderr.strip().splitlines()) == 1
    after = json.loads(run_workerctl("runs", "list", "--json", "id", workspace=workspace).stdout)
    assert after == before  # the history is whole
    again = run_workerctl("runs", "reindex", workspace=workspace)
    assert again.returncode == 0, again.stderr
