"""workerctl: run, record, troubleshoot and review AI workers from the command line.

Plugin authors import the hook marker from here::

    from workerctl import hookimpl

    @hookimpl
    def register_tools(register):
        ...
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("workerctl")

__all__ = ["__version__", "hookimpl"]
