"""The run review checklist: automatic evidence beside each item, answers stored.

The original product's "check that the output" list and its run review
checklist. What the data can tell is checked here; what only a person can judge
(does the output match the instructions, is the next human action clear) is
asked on a terminal or given by flags, and the verdict is stored on the run.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from workerctl.errors import UsageError
from workerctl.runs.checks import FAIL, PASS, UNKNOWN, Check
from workerctl.runs.model import COMPLETED, ERROR_KINDS, FINISHED, Review, Run

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.runs.history import History

VERDICTS = ("approved", "needs_changes", "rejected")
HUMAN_ITEMS = {
    "matches_instructions": "The output matches the worker instructions",
    "next_action_clear": "The next human action is clear",
}
# phrases that claim a change was made, and the side-effect kinds that would back them
CLAIMS = [
    (re.compile(r"\b(?:i|we)(?:'ve| have)?\s+(?:added|posted|left|wrote|written)\b.{0,40}?"
                r"\bcomment", re.I), ("comment",)),
    (re.compile(r"\b(?:i|we)(?:'ve| have)?\s+(updated|changed|modified|edited|set|marked|"
                r"closed|reassigned|assigned|moved|rescheduled|scheduled|created|sent|"
                r"emailed|deleted|refunded)\b", re.I), ("update", "create", "send", "delete")),
    (re.compile(r"\bhas been (updated|changed|modified|marked|closed|reassigned|assigned|"
                r"moved|rescheduled|created|sent|deleted|refunded)\b", re.I),
     ("update", "create", "send", "delete")),
]
NEXT_STEP = re.compile(r"next step|next action|suggest|recommend|should|please|ask|"
                       r"follow[- ]up|confirm|escalat", re.I)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def checks(run: Run, *, records: RecordBook, registry: Registry) -> list[Check]:
    """The automatic checks, each decided from the stored run and the records now."""
    config = run.config or {}
    return [
        _status(run),
        _record(run, records, registry),
        _context(run, registry, config),
        _tools(run, config, records),
        _duplicates(run, records),
        _claims(run),
        _next_step(run),
    ]


def _status(run: Run) -> Check:
    title = "The status is completed or the error is understood"
    if run.status == COMPLETED:
        return Check("status", title, PASS, ["completed"])
    if run.status in FINISHED and run.error:
        return Check("status", title, UNKNOWN, [
            f"{run.status}: {run.error.kind} — {ERROR_KINDS.get(run.error.kind, '')}",
            f"is it understood? 'workerctl run troubleshoot --id {run.id}' walks through it"])
    return Check("status", title, FAIL, [f"the run is still {run.status}"])


def _record(run: Run, records: RecordBook, registry: Registry) -> Check:
    title = "The linked source record is correct and still there"
    if not run.record_id:
        ok = not registry.output_modes.get(run.output_mode, None) or \
            not registry.output_modes[run.output_mode].needs_record
        return Check("record", title, PASS if ok else FAIL,
                    ["the run was tied to no record"])
    record = records.peek(run.record_id)
    if record is None:
        return Check("record", title, FAIL, [f"{run.record_id} no longer exists"])
    evidence = [f"{record.type} {record.id} \"{record.title}\" exists; read it before acting: "
                f"workerctl records show {record.id}"]
    if record.fingerprint() != run.record_fingerprint:
        evidence.append("it changed since the run: the output may be out of date")
        return Check("record", title, UNKNOWN, evidence)
    return Check("record", title, PASS, evidence)


def _context(run: Run, registry: Registry, config: dict) -> Check:
    title = "The worker used only appropriate context"
    sources = registry.context_sources()
    allowed = {t for s in config.get("context_sources", []) for t in sources.get(s, [])}
    given = run.context.get("records", [])
    outside = [r for r in given if r["type"] not in allowed]
    read = [c for it in run.iterations for c in it.tool_calls if c.allowed and c.ok]
    evidence = [f"records given: {', '.join(r['type'] + ' ' + r['id'] for r in given) or 'none'}"]
    if read:
        evidence.append(f"{len(read)} successful tool call(s) read more")
    if outside:
        return Check("context", title, FAIL, [*evidence, "outside the allowed sources: "
                                             + ", ".join(r["id"] for r in outside)])
    served = {t for types in sources.values() for t in types}
    if run.record_type and run.record_type not in allowed and run.record_type in served:
        return Check("context", title, FAIL, [*evidence, "the run's own record type is not "
                                             "among its context sources"])
    return Check("context", title, PASS, evidence)


def _tools(run: Run, config: dict, records: RecordBook) -> Check:
    from workerctl.runs.injection import NEVER_WIDEN, refused_calls

    title = "The worker stayed within its allowed tool categories"
    allowed = set(config.get("tool_categories", []))
    calls = [c for it in run.iterations for c in it.tool_calls]
    refused = refused_calls(run, records)
    outside = [c for c in calls if c.allowed and c.category and c.category not in allowed]
    if refused or outside:
        evidence = []
        for r in refused:
            evidence.append(f"{r.name} ({r.category or 'unknown tool'}) was refused by the gate")
            if r.possible_injection:
                evidence.append(f"{r.describe()}; {NEVER_WIDEN}")
        evidence += [f"{c.name} ({c.category}) was outside the allowed categories"
                     for c in outside]
        return Check("tools", title, FAIL, evidence)
    return Check("tools", title, PASS, [f"{len(calls)} tool call(s), all in "
                                       f"{', '.join(sorted(allowed)) or 'no category'}"])


def _duplicates(run: Run, records: RecordBook) -> Check:
    title = "No duplicate comment or record was created"
    mine = [e for e in run.side_effects if e.get("kind") == "comment" and e.get("created", True)]
    evidence, dupes = [], []
    by_record: dict[str, list] = {}
    for effect in mine:
        by_record.setdefault(effect["record_id"], []).append(effect)
    for record_id, effects in by_record.items():
        comments = records.comments(record_id)
        texts = {c.id: c for c in comments}
        for effect in effects:
            own = texts.get(effect.get("comment_id"))
            if own is None:
                continue
            same = [c for c in comments if c.id != own.id and _norm(c.text) == _norm(own.text)]
            also = [c for c in comments if c.id != own.id and c.author == own.author
                    and c.run_id and c.run_id != run.id]
            for c in same:
                dupes.append(f"{record_id}: comment {c.id} (run {c.run_id or '-'}) has the same "
                             f"text as {own.id}")
            if also and not same:
                evidence.append(f"{record_id}: {len(also)} other comment(s) by {own.author} from "
                                f"runs {', '.join(sorted({c.run_id or '-' for c in also}))}")
    if dupes:
        return Check("duplicates", title, FAIL, dupes + evidence)
    if not mine:
        return Check("duplicates", title, PASS, ["this run wrote no comment or record"])
    return Check("duplicates", title, PASS if not evidence else UNKNOWN,
                [f"wrote {len(mine)} comment(s)", *evidence])


def _claims(run: Run) -> Check:
    title = "The output does not claim work that was not completed"
    text = run.output or ""
    kinds = {str(e.get("kind")) for e in run.side_effects}
    unbacked = []
    for pattern, backing in CLAIMS:
        for match in pattern.finditer(text):
            if not kinds & set(backing):
                unbacked.append(f"says \"{match.group(0)}\" but the run recorded no "
                                f"{'/'.join(backing)} side effect")
    if unbacked:
        return Check("claims", title, FAIL, unbacked)
    if not text:
        return Check("claims", title, PASS, ["no output"])
    return Check("claims", title, PASS, [f"side effects recorded: {', '.join(sorted(kinds)) or 'none'}"
                                        "; no claim of other work found"])


def _next_step(run: Run) -> Check:
    title = "It gives a useful next step when the worker could not finish"
    text = run.output or ""
    if run.status == COMPLETED and text.strip():
        if NEXT_STEP.search(text):
            return Check("next_step", title, PASS, ["the output names a next step"])
        return Check("next_step", title, UNKNOWN, ["the output names no next step"])
    if run.status == COMPLETED:
        return Check("next_step", title, FAIL, ["the run completed with an empty output"])
    if text and NEXT_STEP.search(text):
        return Check("next_step", title, PASS, ["the partial output names a next step"])
    hint = f"'workerctl run troubleshoot --id {run.id}'" if run.error else "none"
    return Check("next_step", title, FAIL, [f"the run {run.status} without output that says "
                                           f"what to do next (troubleshooting: {hint})"])


def record_review(history: History, run: Run, verdict: str, reviewer: str,
                  answers: dict[str, Any], note: str, items: list[Check]) -> Run:
    if verdict not in VERDICTS:
        raise UsageError(f"unknown verdict {verdict!r}", hint=f"use one of: {', '.join(VERDICTS)}")
    if run.status not in FINISHED:
        raise UsageError(f"run {run.id} is still {run.status}; review it once it has finished")
    review = Review(verdict=verdict, reviewer=reviewer,
                    time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    answers=answers, note=note,
                    checks=[{"key": i.key, "title": i.title, "verdict": i.verdict,
                             "evidence": i.evidence} for i in items])

    def store(stored: Run) -> None:
        stored.review = review

    return history.update(run.id, store)
