"""Where a jq program runs (``--where``, ``--jq``): the one place libjq is called.

libjq evaluates a program in C without giving the interpreter back, so a Python signal
handler (the one that turns SIGTERM, SIGHUP and Ctrl-C into a clean stop) waits until
the program ends: ``--where 'range(1e8) | …'`` ran on for minutes past a SIGTERM (a
fresh-brief attack). While a program runs, those signals take their default action
instead, which ends the process at once; nothing is half-written then, since no jq
program runs inside a write (they choose records before any run, or shape an answer
already made). A signal the process was started with ignored (``nohup``) stays ignored.
"""

from __future__ import annotations

from typing import Any


def results(program: Any, value: Any) -> list[Any]:
    """Every result of the compiled jq ``program`` over ``value``."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # handlers are the main thread's
        return list(program.input_value(value).all())
    stops = [signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    kept = {s: h for s in stops if (h := signal.getsignal(s)) is not signal.SIG_IGN}
    try:
        for stop in kept:
            signal.signal(stop, signal.SIG_DFL)
        return list(program.input_value(value).all())
    finally:
        for stop, handler in kept.items():
            signal.signal(stop, handler if handler is not None else signal.SIG_DFL)
