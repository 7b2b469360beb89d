"""The whole suite's (``tests/`` and every plugin's ``tests/``) process set-up."""

from __future__ import annotations

import signal

# A shell without job control starts background jobs with SIGINT ignored, and a
# process started with SIGINT ignored never installs Python's KeyboardInterrupt
# handler; every workerctl the tests start inherits that. The Ctrl-C tests then
# send a SIGINT nothing hears: restore the default so a suite started in the
# background (nohup, `cmd &` in a script, a CI runner) tests what a terminal does.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
