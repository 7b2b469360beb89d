"""workerctl: run, record, troubleshoot and review AI workers from the command line.

Plugin authors import from ``workerctl.api``, the one public module::

    from workerctl.api import hookimpl

(``from workerctl import hookimpl`` keeps working and gives the same marker.)

    @hookimpl
    def register_tools(register):
        ...
"""

from __future__ import annotations

from workerctl.version import __version__

# typing's names for annotations only: every start of the command imports this package
# before its stop-signal handlers are in place, and importing typing (with re and enum)
# was most of that window
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    # pluggy (and the importlib.metadata it pulls in) costs ~20 ms: import it only
    # when a plugin module asks for the marker, not on every start of the CLI
    if name == "hookimpl":
        from workerctl.api import hookimpl

        globals()["hookimpl"] = hookimpl
        return hookimpl
    raise AttributeError(f"module 'workerctl' has no attribute {name!r}")
