"""Every stop signal ends a command in one line with its status, wherever it lands and
however many come: the cases a fresh-brief attack found, each made to happen at its
exact point in a real process.

- Ctrl-C while click made or tore down the command's context ended in click's own
  "Aborted!", exit 1 (click turns a ``KeyboardInterrupt`` anywhere in its ``main`` into
  that): it now reaches ``cli.main``, exit 130 (``cli.root._standalone``).
- A second signal within a millisecond of the first landed in the ending itself
  (``end_terminated``) and ended it in a traceback: once the command is ending, further
  stop signals are ignored (``cli.failures.ignore_stop_signals``).
- Two signals during a step's wait left ``threading.Condition``'s lock released
  ("RuntimeError: release unlocked lock"): the run was recorded failed, as the
  executor's fault, and the next start on that record was refused. The loop now waits
  with the signals held and raises them after (``engine.stop_signals.wait``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from helpers import make_worker, run_workerctl, start_workerctl, wait_for

INJECT = textwrap.dedent(
    """
    import os, signal, sys
    import click
    root, where, *names = sys.argv[1:]
    sys.argv = ["workerctl", "-w", root, "runs", "list"]
    fired = []
    def send(these=None):
        if not fired or these is not None:
            fired.append(1)
            for name in names if these is None else these:
                os.kill(os.getpid(), getattr(signal, name))
            for _ in range(5000):  # the handlers run here, one after the other
                pass
    if where == "the ending":  # the first signal stops the command, the rest come as it ends
        from workerctl.cli import failures
        first, names = names[:1], names[1:]
        original_end = failures.end_terminated
        def end_terminated(signum):
            send(names)
            return original_end(signum)
        failures.end_terminated = end_terminated
        original_echo = click.echo
        def echo(*args, **kwargs):
            send(first)
            return original_echo(*args, **kwargs)
        click.echo = echo
    if where == "context teardown":
        original_exit = click.Context.__exit__
        def exit_(self, *exc):
            send()
            return original_exit(self, *exc)
        click.Context.__exit__ = exit_
    elif where == "context setup":
        original_enter = click.Context.__enter__
        def enter(self):
            send()
            return original_enter(self)
        click.Context.__enter__ = enter
    elif where == "the command's output":
        original_echo = click.echo
        def echo(*args, **kwargs):
            send()
            return original_echo(*args, **kwargs)
        click.echo = echo
    from workerctl.cli import main
    main()
    """
)

SIGNALS = [
    ("SIGINT",),
    ("SIGINT", "SIGINT"),
    ("SIGTERM", "SIGINT"),
    ("SIGHUP", "SIGINT"),
    ("SIGINT", "SIGTERM"),
    ("SIGTERM", "SIGHUP"),
]


@pytest.mark.parametrize("names", SIGNALS, ids="+".join)
@pytest.mark.parametrize("where", ["context setup", "context teardown", "the command's output", "the ending"])
def test_stop_signals_anywhere_end_in_one_line(one_run, where, names):
    workspace, _ = one_run
    if where == "the ending" and names[0] == "SIGINT":
        pytest.skip("Ctrl-C's ending is a SystemExit(130): no code of its own to reach")
    done = subprocess.run(
        [sys.executable, "-c", INJECT, str(workspace.root), where, *names],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    statuses = {128 + getattr(signal, n) for n in names}
    if names[0] != "SIGINT" and "SIGINT" not in names[1:]:
        statuses.add(-getattr(signal, names[1]))  # a second SIGTERM or SIGHUP ends it at once
    assert done.returncode in statuses, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "Aborted!" not in done.stderr, done.stderr
    said = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(said) <= 1, said
    if done.returncode in (143, 129):
        assert said == [
            f"error: stopped by {signal.Signals(done.returncode - 128).name} before the command finished"
        ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "second"),
    [
        (signal.SIGINT, signal.SIGINT),
        (signal.SIGINT, signal.SIGTERM),
        (signal.SIGTERM, signal.SIGINT),
        (signal.SIGHUP, signal.SIGINT),
        (signal.SIGTERM, signal.SIGTERM),
    ],
    ids=lambda s: s.name,
)
def test_two_signals_during_a_step_cancel_the_run(workspace, first, second):
    make_worker(
        workspace,
        "slowone",
        output_mode="review_note",
        executor="{name: echo, script: [{sleep: 30, output: late}]}",
    )
    proc = start_workerctl("run", "start", "slowone", "--task", "T-1042", workspace=workspace)
    running = lambda: run_workerctl("runs", "list", "--json", workspace=workspace).stdout  # noqa: E731
    wait_for(lambda: '"running"' in running(), timeout=30)
    proc.send_signal(first)
    proc.send_signal(second)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (1, 128 + first, 128 + second), (proc.returncode, err)
    assert "Traceback" not in err
    listed = json.loads(run_workerctl("runs", "list", "--json", workspace=workspace).stdout)
    assert [(r["status"], r["error_kind"]) for r in listed] == [("cancelled", "cancelled")], listed
    again = run_workerctl("run", "start", "slowone", "--task", "T-1042", "--detach", workspace=workspace)
    assert again.returncode == 0, again.stderr  # not refused over a failure the signals made up
