"""Launching a detached run: the background process that executes it.

``run start --detach`` stores the run and returns at once; the run is executed
by ``workerctl run execute ID`` in a new session, so closing the terminal that
started it does not stop it. Its output goes to the run's log file.
"""

from __future__ import annotations

import subprocess
import sys

from workerctl.workspace import ENV_VAR, Workspace


def spawn_executing_process(workspace: Workspace, run_id: str) -> subprocess.Popen:
    """Start ``workerctl run execute RUN_ID`` in the background, logging to the run's log."""
    import os

    from workerctl.storage import fs
    from workerctl.storage.atomic import PRIVATE_FILE

    log = workspace.logs_dir / f"{run_id}.log"
    # never through a link: the log is state like any other (see storage.fs)
    fd = fs.open_file(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE, create_parents=True)
    os.fchmod(fd, PRIVATE_FILE)
    # the workspace goes by the environment, not '-w': an argument must be UTF-8 text
    # (cli.root refuses others), and a folder's path need not be (the process refused
    # its own argument and the run was marked crashed, with no word to the user)
    env = {**os.environ, ENV_VAR: str(workspace.root)}
    with os.fdopen(fd, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "workerctl", "run", "execute", run_id],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
