"""The built-in review checks, registered through the same hook as a plugin's.

Each check is decided from recorded data (``runs.evidence``): the checklist of
the original product (status, record, contract, context, tools, duplicates,
claims, next step) and the checks grounded in what the run saw (``runs.grounded``,
``runs.completion``, ``runs.answer``, ``runs.markup``). ``answer``, ``privacy``,
``completion`` and ``markup`` also stand before a write.
"""

from __future__ import annotations

from collections.abc import Callable

from workerctl.api import hookimpl


@hookimpl
def register_review_checks(register: Callable[..., None]) -> None:
    from workerctl.runs import answer, completion, grounded, markup
    from workerctl.runs.review import builtin_checks
    from workerctl.runs.review_checks import ReviewCheck

    for check in [
        *builtin_checks(),
        ReviewCheck("answer", answer.ANSWER_TITLE, answer.answer_check, before_write=True),
        ReviewCheck("facts", grounded.FACTS_TITLE, grounded.facts_check),
        ReviewCheck("provenance", grounded.PROVENANCE_TITLE, grounded.provenance_check),
        ReviewCheck("coverage", grounded.COVERAGE_TITLE, grounded.coverage_check),
        ReviewCheck("privacy", grounded.PRIVACY_TITLE, grounded.privacy_check, before_write=True),
        ReviewCheck(
            "completion", completion.COMPLETION_TITLE, completion.completion_check, before_write=True
        ),
        ReviewCheck("markup", markup.MARKUP_TITLE, markup.markup_check, before_write=True),
        ReviewCheck("freshness", completion.FRESHNESS_TITLE, completion.freshness_check),
        ReviewCheck("form", answer.FORM_TITLE, answer.form_check),
    ]:
        register(check)
