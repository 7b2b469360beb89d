"""The run review checklist: automatic evidence beside each item, answers stored.

The original product's "check that the output" list and its run review
checklist. What the data can tell is checked here; what only a person can judge
(does the output match the instructions, is the next human action clear) is
asked on a terminal or given by flags, and the verdict is stored on the run.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workerctl.engine.tools import summarize
from workerctl.errors import UsageError
from workerctl.runs.checks import FAIL, PASS, UNKNOWN, Check
from workerctl.runs.evidence import ReviewEvidence, id_pattern, seen_ids
from workerctl.runs.model import COMPLETED, ERROR_KINDS, FINISHED, Review, Run, preview_of
from workerctl.runs.review_checks import ReviewCheck, checks, stored_checks

# the checklist's entry points, kept importable from here (review_checks holds them)
__all__ = [
    "HUMAN_ITEMS",
    "VERDICTS",
    "ReviewCheck",
    "checks",
    "id_pattern",
    "record_review",
    "review_document",
    "seen_ids",
    "similarity",
    "stored_checks",
]

if TYPE_CHECKING:
    from workerctl.history.store import History
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook

VERDICTS = ("approved", "needs_changes", "rejected")
HUMAN_ITEMS = {
    "matches_instructions": "The output matches the worker instructions",
    "next_action_clear": "The next human action is clear",
}
SIMILARITY = 0.85  # difflib ratio of two normalised comments at or above which they are near-equal


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def similarity(a: str, b: str, floor: float = 0.0) -> float:
    """difflib's ``SequenceMatcher.ratio`` of the normalised texts (lower case, runs of
    white space as one space): 2*M/T, M matching characters of T in both. A comment
    with a header line added to one of 400 characters still scores about 0.9.

    Below ``floor`` the exact ratio does not matter: difflib's cheap upper bounds
    (lengths, then character counts) answer first, so a record with hundreds of long,
    different comments costs little."""
    return similar_to(b)(a, floor)


def similar_to(b: str) -> Callable[[str, float], float]:
    """``similarity(a, b, floor)`` for many ``a`` against one ``b``: difflib indexes
    ``b`` (its second sequence) once, so comparing one comment with 300 earlier ones
    costs 300 cheap ``set_seq1`` calls, not 300 indexings."""
    import difflib

    target = _norm(b)
    matchers: list[difflib.SequenceMatcher] = []  # indexed at the first text near b's length

    def score(a: str, floor: float = 0.0) -> float:
        normal = _norm(a)
        if normal == target:  # difflib would take milliseconds to say 1.0
            return 1.0
        longest = len(normal) + len(target)
        # difflib's real_quick_ratio, before b is indexed: most earlier comments are far
        # shorter or longer than a run's output, and indexing b costs as much as a run's
        # whole duplicates check
        upper = 2.0 * min(len(normal), len(target)) / longest if longest else 1.0
        if upper < floor:
            return upper
        if not matchers:
            matchers.append(difflib.SequenceMatcher(None, "", target, autojunk=False))
        matcher = matchers[0]
        matcher.set_seq1(normal)
        upper = matcher.quick_ratio()
        if upper < floor:
            return upper
        return matcher.ratio()

    return score


def builtin_checks() -> list[ReviewCheck]:
    """The checks this module decides (registered by the built-in review plugin)."""
    return [
        ReviewCheck("status", "The status is completed or the error is understood", lambda e: _status(e.run)),
        ReviewCheck(
            "record",
            "The linked source record is correct and still there",
            lambda e: _record(e.run, e.records, e.registry, e),
        ),
        ReviewCheck(
            "contract",
            "The output matches the form its instructions ask for (the output contract)",
            lambda e: _contract(e.run, e.output),
        ),
        ReviewCheck(
            "context",
            "The worker used only appropriate context",
            lambda e: _context(e.run, e.registry, e.run.config or {}),
        ),
        ReviewCheck(
            "tools",
            "The worker stayed within its allowed tool categories",
            lambda e: _tools(e.run, e.run.config or {}, e.records),
        ),
        ReviewCheck(
            "duplicates",
            "No duplicate comment or record was created",
            lambda e: _duplicates(e.run, e.records),
        ),
        ReviewCheck(
            "claims",
            "The output does not claim work that was not completed",
            lambda e: _claims(e.run, e.records, e),
        ),
        ReviewCheck(
            "next_step",
            "It gives a useful next step when the worker could not finish",
            lambda e: _next_step(e.run, e.output),
        ),
    ]


def _status(run: Run) -> Check:
    title = "The status is completed or the error is understood"
    if run.status == COMPLETED:
        return Check("status", title, PASS, ["completed"])
    if run.status in FINISHED and run.error:
        return Check(
            "status",
            title,
            UNKNOWN,
            [
                f"{run.status}: {run.error.kind} — {ERROR_KINDS.get(run.error.kind, '')}",
                f"is it understood? 'workerctl run troubleshoot --id {run.id}' walks through it",
            ],
        )
    return Check("status", title, FAIL, [f"the run is still {run.status}"])


def _record(run: Run, records: RecordBook, registry: Registry, seen: ReviewEvidence) -> Check:
    title = "The linked source record is correct and still there"
    evidence: list[str] = []
    verdict = PASS
    if not run.record_id:
        ok = (
            not registry.output_modes.get(run.output_mode, None)
            or not registry.output_modes[run.output_mode].needs_record
        )
        evidence.append("the run was tied to no record")
        verdict = PASS if ok else FAIL
    else:
        record = records.peek(run.record_id)
        if record is None:
            return Check("record", title, FAIL, [f"{run.record_id} no longer exists"])
        evidence.append(
            f'{record.type} {record.id} "{record.title}" exists; read it before '
            f"acting: workerctl records show {record.id}"
        )
        if record.fingerprint() != run.record_fingerprint:
            evidence.append("it changed since the run: the output may be out of date")
            verdict = UNKNOWN
    wrong = _ids_in_output(run, seen, evidence)
    if wrong:
        return Check("record", title, FAIL, [*evidence, *wrong])
    return Check("record", title, verdict, evidence)


def _ids_in_output(run: Run, seen: ReviewEvidence, evidence: list[str]) -> list[str]:
    """Record ids the output names, against what the run saw; the problems found."""
    from workerctl.runs.claims import QUOTED

    text = QUOTED.sub(" ", seen.output)  # quoted evidence is the record's words
    pattern = seen.id_pattern if text.strip() else None
    if pattern is None:
        return []
    named = list(dict.fromkeys(pattern.findall(text)))
    if not named:
        evidence.append("the output names no record id")
        return []
    problems = [
        f"the output names {rid}, a record the run never saw (not linked, given as context, read or written)"
        for rid in named
        if rid not in seen.seen_ids and rid not in seen.linked_ids
    ]
    if run.record_id and run.record_type and run.record_id not in named:
        same_type = [
            rid
            for rid in named
            if (found := seen.by_id.get(rid)) is not None and found.type == run.record_type
        ]
        if same_type:
            problems.append(
                f"the output is about {run.record_type} {', '.join(same_type)}, "
                f"not the linked {run.record_type} {run.record_id}, which it "
                "never names"
            )
    if not problems:
        evidence.append(f"the output names {', '.join(named)}: each linked, given or read")
    return problems


def _contract(run: Run, output: str) -> Check:
    from workerctl.workers.contract import OutputContract, broken_rules

    title = "The output matches the form its instructions ask for (the output contract)"
    contract = OutputContract.from_dict((run.config or {}).get("output_contract"))
    if contract is None:
        return Check(
            "contract",
            title,
            UNKNOWN,
            [
                "the worker declares no output_contract, so its form cannot be checked; add "
                "one (sections, names_record, max_length, max_lines) to the worker file"
            ],
        )
    rules = contract.describe()
    if run.output is None:
        return Check("contract", title, UNKNOWN, [f"contract: {rules}", "the run has no output"])
    broken = broken_rules(contract, output, run.record_id)
    if broken:
        return Check("contract", title, FAIL, [f"contract: {rules}", *broken])
    return Check("contract", title, PASS, [f"contract: {rules}", "the output keeps every rule"])


def _context(run: Run, registry: Registry, config: dict) -> Check:
    title = "The worker used only appropriate context"
    sources = registry.context_sources()
    names = list(config.get("context_sources", []))
    allowed = {t for s in names for t in sources.get(s, [])}
    given = run.context.get("records", [])
    outside = [r for r in given if r["type"] not in allowed]
    evidence = [
        f"context sources: {', '.join(names) or 'none'} ({', '.join(sorted(allowed)) or 'no record type'})",
        f"records given: {', '.join(r['type'] + ' ' + r['id'] for r in given) or 'none'}",
    ]
    problems = [f"given outside the allowed sources: {r['type']} {r['id']}" for r in outside]
    calls = [(it.number, index, c) for it in run.iterations for index, c in enumerate(it.tool_calls, start=1)]
    for number, index, call in calls:
        off = [r for r in call.records_read if r["type"] not in allowed]
        if off:
            problems.append(
                f"iteration {number}, call {index}: {call.name}("
                f"{summarize(call.arguments, 60)}) read "
                f"{', '.join(r['type'] + ' ' + r['id'] for r in off)}, outside the "
                "context sources"
            )
    read = [r for r in run.reads or [] if r.get("by") == "tool"]
    if run.reads is not None:
        evidence.append(
            f"records read by tools: {', '.join(dict.fromkeys(r['type'] + ' ' + r['id'] for r in read))}"
            if read
            else "records read by tools: none"
        )
    served = {t for types in sources.values() for t in types}
    if run.record_type and run.record_type not in allowed and run.record_type in served:
        problems.append("the run's own record type is not among its context sources")
    if problems:
        return Check("context", title, FAIL, [*evidence, *problems])
    if run.reads is None and any(c.ok for _n, _i, c in calls):
        return Check(
            "context",
            title,
            UNKNOWN,
            [
                *evidence,
                "this run was recorded before reads were logged: what its tool calls read is not known",
            ],
        )
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
        evidence += [f"{c.name} ({c.category}) was outside the allowed categories" for c in outside]
        return Check("tools", title, FAIL, evidence)
    return Check(
        "tools",
        title,
        PASS,
        [f"{len(calls)} tool call(s), all in {', '.join(sorted(allowed)) or 'no category'}"],
    )


def _duplicates(run: Run, records: RecordBook) -> Check:
    """Two rules: one run leaves at most one comment on a record (a tool's and the output
    mode's together are two), and no comment it left is near-equal (``SIMILARITY``) to
    an earlier comment on that record. A comment held for a person's approval counts as
    left: approved, it is posted as it stands (two identical held comments were two
    comments waiting to be posted, and passed). A failure names the newest such earlier
    comment."""
    title = "No duplicate comment or record was created"
    from workerctl.history.ledger import COMMITTED, HELD, effect_state

    mine = [
        e
        for e in run.side_effects
        if e.get("kind") == "comment"
        and (
            (e.get("created", True) and effect_state(e, run.status in FINISHED) == COMMITTED)
            or e.get("state") == HELD
        )
    ]
    if not mine:
        return Check("duplicates", title, PASS, ["this run wrote no comment or record"])
    held = sum(1 for e in mine if e.get("state") == HELD)
    evidence, dupes = (
        [
            f"wrote {len(mine) - held} comment(s), holds {held} for approval; near-equal means a "
            f"difflib ratio of at least {SIMILARITY} on the normalised text"
        ],
        [],
    )
    by_record: dict[str, list] = {}
    for effect in mine:
        by_record.setdefault(effect["record_id"], []).append(effect)
    for record_id, effects in by_record.items():
        if len(effects) > 1:
            how = ", ".join(_left(e) for e in effects)
            dupes.append(
                f"{record_id}: this run left {len(effects)} comments ({how}); one run should leave one"
            )
        comments = records.comments(record_id)
        position = {c.id: n for n, c in enumerate(comments)}
        for effect in effects:
            if effect.get("state") == HELD:  # not on the record yet: every comment is earlier
                own_id, own_text, earlier_ones = "held for approval", run.comment_text(effect), comments
            else:
                own_at = position.get(effect.get("comment_id"))
                if own_at is None:
                    gone = effect.get("comment_id")
                    evidence.append(f"{record_id}: comment {gone} is no longer on the record")
                    continue
                own_id, own_text, earlier_ones = comments[own_at].id, comments[own_at].text, comments[:own_at]
            against_own = similar_to(own_text)
            # newest first, and the first near-equal one answers: a comment written by
            # a worker that runs every hour on one ticket meets hundreds of its own
            # twins, and naming one proves the duplicate; comparing all would make
            # every run cost more than the one before it
            for earlier in reversed(earlier_ones):
                score = against_own(earlier.text, SIMILARITY)
                if score >= SIMILARITY:
                    who = f"run {earlier.run_id}" if earlier.run_id else earlier.author
                    same = (
                        "has the same text as"
                        if _norm(own_text) == _norm(earlier.text)
                        else f"is near-equal (ratio {score:.2f}) to"
                    )
                    dupes.append(f"{record_id}: comment {own_id} {same} earlier comment {earlier.id} ({who})")
                    break
    if dupes:
        return Check("duplicates", title, FAIL, dupes + evidence)
    return Check(
        "duplicates", title, PASS, [*evidence, "no earlier comment on the same record is near-equal"]
    )


def _left(effect: dict) -> str:
    """How a comment was left, for a message: "c-4 by tool", "held by output_mode"."""
    return f"{effect.get('comment_id') or 'held'} by {effect.get('by', '?')}"


def _claims(run: Run, records: RecordBook, seen: ReviewEvidence) -> Check:
    """Each clause that says work was done needs a committed write of a kind that backs
    it (and, when the sentence names records, a write on one of them). A write whose
    outcome the ledger does not know cannot back a claim, nor disprove it."""
    from workerctl.history.ledger import COMMITTED, effect_state
    from workerctl.history.ledger import UNKNOWN as UNSURE
    from workerctl.runs.claims import claims_in

    title = "The output does not claim work that was not completed"
    text = seen.output
    finished = run.status in FINISHED
    writes = [e for e in run.side_effects if e.get("kind")]
    state = {id(e): effect_state(e, finished) for e in writes}
    kinds = sorted({e["kind"] for e in writes if state[id(e)] == COMMITTED})
    recorded = f"writes committed: {', '.join(kinds) or 'none'}"
    unsure = [e for e in writes if state[id(e)] == UNSURE]
    if unsure:
        recorded += f"; {len(unsure)} write(s) of unknown outcome (settle with 'workerctl ledger settle')"
    if not text:
        return Check("claims", title, PASS, ["no output", recorded])
    found = [c for c in claims_in(text, seen.id_pattern) if not _reported(c, seen)]
    unbacked, undecided = [], []
    for claim in found:
        said = (
            f'says "{preview_of(claim.sentence, 200)}" ({claim.verb}: '
            f"{'/'.join(claim.kinds)}" + (f" on {', '.join(claim.ids)}" if claim.ids else "") + ")"
        )
        if _on_target(
            claim.ids, [e for e in writes if state[id(e)] == COMMITTED and e["kind"] in claim.kinds]
        ):
            continue
        if _on_target(claim.ids, [e for e in unsure if e["kind"] in claim.kinds or e["kind"] == "write"]):
            undecided.append(f"{said}: the write that would back it has an unknown outcome")
        else:
            unbacked.append(f"{said} but the run committed no such write")
    if unbacked:
        return Check("claims", title, FAIL, [*unbacked, *undecided, recorded])
    if undecided:
        return Check("claims", title, UNKNOWN, [*undecided, recorded])
    if found:
        return Check(
            "claims",
            title,
            PASS,
            [f"{len(found)} claim(s) of work, each backed by a committed write", recorded],
        )
    return Check("claims", title, PASS, ["the output claims no work", recorded])


def _reported(claim: Any, seen: ReviewEvidence) -> bool:
    """A claim without the worker as its subject that only repeats what a record the
    run read already says: the record's status ("INV-2044 … sent" where its status is
    "sent"), or a comment or field that tells of the same act on the same thing
    ("Product list sent to the agency" after Lena's "Sent the product list to the
    agency"). History read from the records, not the run's work."""
    from workerctl.runs.claims import FORMS
    from workerctl.runs.evidence import content_words

    if claim.how == "first person":
        return False
    verb = claim.verb.lower()
    base = FORMS.get(verb, (verb, ""))[0]
    sentence = claim.sentence.lower()
    about = claim.ids or ([seen.run.record_id] if seen.run.record_id else [])
    # a record the sentence names by its title is what it is about too ("Invoice 7002 —
    # hosting: … sent", the title of INV-7002, whose status is "sent")
    titled = [rid for rid, s in seen.seen.items() if len(s.title) >= 4 and s.title.lower() in sentence]
    for rid in dict.fromkeys([*about, *titled]):
        record = seen.seen.get(rid)
        if record is None:
            continue
        if str(record.fields.get("status", "")).lower() == verb:
            return True
        if _field_tells(record.fields, base, sentence):
            return True
    forms = {w for w, (b, _f) in FORMS.items() if b == base}
    if not forms & set(re.findall(r"[a-z]+", sentence)):
        # told in another language ("El recordatorio fue enviado a Lena"): what the records
        # tell of acts is read in English words, and names alone are no same act
        return False
    words = content_words(claim.sentence) - forms
    return bool(words and forms) and any(words & told for told in seen.acts_told(base))


def _field_tells(fields: dict[str, Any], base: str, sentence: str) -> bool:
    """A field named for the act (``assignee`` for "assigned") whose value the sentence
    gives: "assigned to Marta Kowalski" where the record's assignee is Marta Kowalski
    describes the record; it claims no work."""
    stem = base[:5]
    return len(stem) >= 4 and any(
        stem in key.lower() and isinstance(value, str) and len(value) >= 3 and value.lower() in sentence
        for key, value in fields.items()
    )


def _on_target(ids: list[str], effects: list[dict]) -> list[dict]:
    """The effects on a record the claim names (all of them when it names none, or when
    the effects name no record)."""
    if not ids or not effects:
        return effects
    named = [e for e in effects if e.get("record_id") in ids]
    return named or ([] if any(e.get("record_id") for e in effects) else effects)


def _next_step(run: Run, text: str) -> Check:
    from workerctl.runs.claims import inability, next_step

    title = "It gives a useful next step when the worker could not finish"
    step = next_step(text) if text.strip() else None
    stuck = inability(text) if text.strip() else None
    if run.status == COMPLETED and text.strip():
        if stuck and not step:
            return Check(
                "next_step", title, FAIL, [f'says "{preview_of(stuck, 200)}" and names no next step']
            )
        if stuck:
            return Check(
                "next_step",
                title,
                PASS,
                [f'says "{preview_of(stuck, 160)}"', f'next step: "{preview_of(step, 160)}"'],
            )
        evidence = ["the worker finished; the output does not say it could not"]
        if step:
            evidence.append(f'next step: "{preview_of(step, 160)}"')
        return Check("next_step", title, PASS, evidence)
    if run.status == COMPLETED:
        return Check("next_step", title, FAIL, ["the run completed with an empty output"])
    if step:
        return Check(
            "next_step", title, PASS, [f'the partial output names a next step: "{preview_of(step, 160)}"']
        )
    hint = f"'workerctl run troubleshoot --id {run.id}'" if run.error else "none"
    return Check(
        "next_step",
        title,
        FAIL,
        [f"the run {run.status} without output that says what to do next (troubleshooting: {hint})"],
    )


#: ``run review --json``: the checklist's fields (``review_document``, and ``review`` once
#: stored) and what they mean; docs/json.md's table is these rows
CHECKLIST_FIELDS: dict[str, str] = {
    "run_id, status, needs_review": "as in `runs list`",
    "review_reasons": "as in `run inspect`",
    "reviewed": "true when a review is stored on the run",
    "checks": (
        "`[{key, title, verdict, evidence, action, details}]`, `verdict` one of `pass`, `fail`, "
        "`cannot_tell`; keys `status`, `record`, `contract`, `context`, `tools`, "
        "`duplicates`, `claims`, `next_step`, `answer`, `facts`, `provenance`, `coverage`, "
        "`privacy`, `completion`, `markup`, `freshness`, `form` and those plugins register (the `llm` "
        "plugin's `model_judged`); `details`: what a check keeps beside its verdict (a "
        "model-judged check: `model`, `prompt`, `answer`)"
    ),
    "failed": "the keys of the checks that failed",
    "human_items": (
        "key → question for the items only a person can answer (`matches_instructions`, `next_action_clear`)"
    ),
    "review": "only when a review was stored: `{verdict, reviewer, time, answers, checks, note}`",
}


def review_document(run: Run, items: list[Check]) -> dict[str, Any]:
    """``run review --json``: every check with its verdict and evidence, and whether the
    run waits for a person."""
    return {
        "run_id": run.id,
        "status": run.status,
        "needs_review": run.needs_review,
        "review_reasons": list(run.review_reasons),
        "reviewed": run.review is not None,
        "checks": [i.to_dict() for i in items],
        "failed": [i.key for i in items if i.verdict == FAIL],
        "human_items": dict(HUMAN_ITEMS),
    }


def record_review(
    history: History,
    run: Run,
    verdict: str,
    reviewer: str,
    answers: dict[str, Any],
    note: str,
    items: list[Check],
) -> Run:
    if verdict not in VERDICTS:
        raise UsageError(f"unknown verdict {verdict!r}", hint=f"use one of: {', '.join(VERDICTS)}")
    if run.status not in FINISHED:
        raise UsageError(f"run {run.id} is still {run.status}; review it once it has finished")
    review = Review(
        verdict=verdict,
        reviewer=reviewer,
        time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        answers=answers,
        note=note,
        checks=[
            {"key": i.key, "title": i.title, "verdict": i.verdict, "evidence": i.evidence}
            | ({"details": i.details} if i.details else {})
            for i in items
        ],
    )

    def store(stored: Run) -> None:
        stored.review = review

    return history.update(run.id, store)
