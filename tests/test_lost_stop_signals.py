"""A stop signal is never lost, wherever in the code it lands.

Found by ``test_sigterm_ends``' start-up test (one run in several): a SIGTERM that
arrived while importlib ran a module lock's weakref callback raised ``Terminated``
inside that callback, where Python cannot propagate an exception: it printed
"Exception ignored ... Traceback" and the command ran to its end, exit 0. The rule: a
stop exception swallowed in a finalizer is raised again where it can propagate
(``cli.failures._deliver_lost_stops``, the one hook every unraisable exception goes
through). Each case is a real process whose handler is made to run inside a finalizer
of another kind.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import gc, os, signal, sys, time, weakref
    from workerctl.cli.failures import raise_on_sigterm
    from workerctl.errors import Terminated

    SIG, WHERE = int(sys.argv[1]), sys.argv[2]
    raise_on_sigterm()

    def land_here():  # the signal comes, and its handler runs, inside this finalizer
        os.kill(os.getpid(), SIG)
        for _ in range(2000):
            pass

    class Finalized:
        def __del__(self):
            land_here()

    class Anything:
        pass

    def finalize_one():
        if WHERE == "__del__":
            Finalized()
        elif WHERE == "weakref callback":
            thing = Anything()
            ref = weakref.ref(thing, lambda r: land_here())
            del thing
        elif WHERE == "weakref.finalize":
            thing = Anything()
            weakref.finalize(thing, land_here)
            del thing
        elif WHERE == "cycle collected":
            a, b = Finalized(), Finalized()
            a.other, b.other = b, a
            del a, b
            gc.collect()

    began = time.monotonic()
    try:
        finalize_one()
        time.sleep(10)  # where the stop must arrive instead
        print("lost: ran on", flush=True)
    except Terminated as stop:
        print("stopped", stop.signum, signal.getsignal(SIG) == signal.SIG_DFL, flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    print("seconds", round(time.monotonic() - began, 1))
    """
)

WHERE = ["__del__", "weakref callback", "weakref.finalize", "cycle collected"]


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_handled_inside_a_finalizer_still_stops(signum, where):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(int(signum)), where],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    lines = done.stdout.splitlines()
    if signum == signal.SIGINT:
        assert lines[0] == "interrupted", done.stdout
    else:  # the same exception, and what its handler left after it: a second one kills
        assert lines[0] == f"stopped {int(signum)} True", done.stdout
    assert float(lines[1].split()[1]) < 5, "the stop came only after the sleep"


def test_other_unraisable_exceptions_are_still_reported():
    """The hook takes only what a stop signal raised; anything else a finalizer raises
    is printed as before (Python's own hook)."""
    script = textwrap.dedent(
        """
        from workerctl.cli.failures import raise_on_sigterm
        from workerctl.errors import Terminated
        raise_on_sigterm()
        class Broken:
            def __del__(self):
                raise ValueError("from a finalizer")
        class Halted:
            def __del__(self):
                raise Terminated(0)  # a halt, not a signal: nothing to send again
        Broken()
        Halted()
        print("went on")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout == "went on\n"
    assert "ValueError: from a finalizer" in done.stderr
    assert "workerctl.errors.Terminated: 0" in done.stderr


DROPPED = textwrap.dedent(
    """
    import os, signal, sys
    from workerctl.cli import main
    from workerctl.cli.failures import raise_on_sigterm

    raise_on_sigterm()
    try:  # the handler raises, and code on the way drops it: C code did, in the
        os.kill(os.getpid(), int(sys.argv[1]))  # compile() of a module being imported
        for _ in range(2000):
            pass
    except BaseException:
        pass
    sys.argv = ["workerctl", *sys.argv[2:]]
    main()
    """
)


@pytest.mark.parametrize(
    "argv",
    [
        ("run", "start", "overdue-task-review", "--task", "T-1042"),
        ("run", "start", "overdue-task-review", "--task", "T-1042", "--task", "T-1043", "--jobs", "2"),
        ("run", "start", "overdue-task-review", "--task", "T-1042", "--detach"),
        ("runs", "list"),
    ],
)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_whose_exception_was_dropped_still_ends_the_command(workspace, argv, signum):
    """Nothing starts, and the command ends as the signal says (last round's c51: a
    SIGTERM during start-up ran the worker and exited 0, one try in 20 to 100)."""
    from workerctl.history.store import History

    done = subprocess.run(
        [sys.executable, "-c", DROPPED, str(int(signum)), "-w", str(workspace.root), *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 128 + signum, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert f"stopped by {signal.Signals(signum).name}" in done.stderr
    assert History(workspace).list(None, limit=None) == []
