"""Review checks: the type a plugin registers, and the one place they are decided.

``checks`` decides every registered ``ReviewCheck`` for ``run review`` and the card,
as a run finishes (``stage="finish"``, its verdict kept on the run) and before an
output mode writes (``stage="before_write"``). It sits below the engine's layer's
users and above nothing but the evidence, so the step loop can call it; what each
check decides lives with the checks (``runs.review``, ``runs.grounded`` ...), reached
through the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workerctl.runs.checks import FAIL, PASS, UNKNOWN, Check
from workerctl.runs.checks import VERDICTS as CHECK_VERDICTS
from workerctl.runs.evidence import ReviewEvidence
from workerctl.runs.states import preview_of

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.runs.model import Run


STAGES = ("review", "finish", "before_write")


@dataclass(frozen=True)
class ReviewCheck:
    """A review check a plugin registers (``register_review_checks``).

    ``decide(evidence)`` gets a ``ReviewEvidence`` (the run, the snapshots of the
    records it saw, the record book) and returns a ``Check`` saying ``pass``,
    ``fail`` or ``cannot_tell``, with evidence quoting the sentence and the data it
    compared. ``at_finish``: decided as every run finishes (its verdict is kept on
    the run, shown on the card and in ``runs list``); keep those cheap and offline.
    ``before_write``: also decided before an output mode writes; a fail stops the
    write and fails the run (``output_rejected``)."""

    key: str
    title: str
    decide: Callable[[ReviewEvidence], Check]
    at_finish: bool = True
    before_write: bool = False


def checks(
    run: Run,
    *,
    records: RecordBook,
    registry: Registry,
    stage: str = "review",
    settings: dict[str, Any] | None = None,
    evidence: ReviewEvidence | None = None,
) -> list[Check]:
    """Every registered review check, decided from the stored run and the records.

    The one place checks are run, for ``run review``, the card, the verdict kept
    when a run finishes (``stage="finish"``: the ``at_finish`` checks) and the
    stop before a write (``stage="before_write"``). A check that raises says
    ``cannot_tell`` with the error: a broken plugin never passes a run. ``evidence``:
    what an earlier stage of the same run built (the step loop passes it on)."""
    if evidence is None or evidence.run is not run:
        evidence = ReviewEvidence(run, records, registry, stage, settings)
    out = _decided(run, registry, stage, evidence)
    if stage != "before_write" and run.error is not None and run.error.kind == REJECTED:
        # its output was stopped before the write: what stopped it is what the review
        # shows (decided after the fact, privacy saw no text written, completion no answer)
        stopped = {c.key: c for c in _decided(run, registry, "before_write", evidence) if c.verdict == FAIL}
        evidence.stage = stage
        out = [stopped.pop(c.key, c) for c in out] + list(stopped.values())
    return out


#: the error kind of a run whose output a ``before_write`` check stopped (``engine.loop``)
REJECTED = "output_rejected"


def _decided(run: Run, registry: Registry, stage: str, evidence: ReviewEvidence) -> list[Check]:
    evidence.stage = stage  # one run's evidence serves its stages: records are read once
    out = []
    for rc in registry.review_checks.values():
        if (stage == "finish" and not rc.at_finish) or (stage == "before_write" and not rc.before_write):
            continue
        try:
            found = rc.decide(evidence)
            if not isinstance(found, Check) or found.verdict not in CHECK_VERDICTS:
                raise TypeError(f"decide() returned {found!r}, not a Check with a known verdict")
        except Exception as exc:
            found = Check(
                rc.key,
                rc.title,
                UNKNOWN,
                [f"the check failed to decide: {type(exc).__name__}: {preview_of(str(exc), 200)}"],
            )
        out.append(Check(rc.key, rc.title, found.verdict, found.evidence, found.action, found.details))
    return out


def stored_checks(items: list[Check]) -> list[dict[str, Any]]:
    """The verdicts kept on the run when it finishes: evidence only for the checks
    that did not pass (a run file stays small; ``run review`` decides them again)."""
    return [
        {
            "key": c.key,
            "title": c.title,
            "verdict": c.verdict,
            "evidence": [preview_of(e, 300) for e in c.evidence[:4]] if c.verdict != PASS else [],
        }
        for c in items
    ]
