"""The built-in review checks, registered through the same hook as a plugin's.

Each check is decided from recorded data (``runs.evidence``): the checklist of
the original product (status, record, contract, context, tools, duplicates,
claims, next step) and the checks grounded in what the run saw (``runs.grounded``).
"""

from __future__ import annotations

from collections.abc import Callable

from workerctl.api import hookimpl


@hookimpl
def register_review_checks(register: Callable[..., None]) -> None:
    from workerctl.runs.grounded import grounded_checks
    from workerctl.runs.review import builtin_checks

    for check in [*builtin_checks(), *grounded_checks()]:
        register(check)
