"""Two review checks about the run's course rather than its words.

*completion*: the output is whole and honest about how the run went: the model
did not stop at its token limit or a content filter (the iteration's finish
reason), the text was not cut by the engine's field limit and does not end in
the middle of a sentence, every failed tool call is acknowledged (or retried
successfully), and the answer did not come at the last allowed iteration (when
the worker could not call a tool again). Before a write (``before_write``) only
the cut-off part decides: a truncated answer is never posted.

*freshness*: the linked record did not change between the run's read and the
output mode's write (fields, or comments by someone else than the run).
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from workerctl.engine.tools import summarize
from workerctl.runs.checks import FAIL, PASS, UNKNOWN, Check
from workerctl.runs.claims import LABEL
from workerctl.runs.evidence import ReviewEvidence
from workerctl.runs.grounded import OLD_RUN
from workerctl.runs.states import COMPLETED, preview_of
from workerctl.runs.structured import OPENING_QUOTE

if TYPE_CHECKING:
    from workerctl.runs.model import ToolCallRecord

COMPLETION_TITLE = "The output is complete: not cut off, no unacknowledged failure, not forced by the limit"
FRESHNESS_TITLE = "The record did not change between the run's read and its write"
#: the field limit's note (``engine.limits.NOTE``), as the visible reading writes it too
#: (NFKC folds its "…" into "...")
LIMIT_NOTE = re.compile(r"\[(?:…|\.\.\.) truncated, \d+ bytes; the first \d+ kept\]\s*\Z")
#: any note in brackets at the end that says the text was cut, the field limit's among them
#: ("[… truncated, 4096 bytes; …]", as the docs abbreviate it, "(output truncated)", "[cut
#: off]"): an answer that says it is not whole is not whole
CUT_NOTE = re.compile(
    r"[\[(<]\s*(?:…|\.\.\.)?\s*(?:(?:output|text|response|answer|message|content|rest)\s+)?"
    r"(?:truncated|cut(?:\s+off)?|abgeschnitten|gekürzt)\b[^\]\)>\n]{0,80}[\])>]\s*\Z",
    re.I,
)
DANGLING = {
    "and", "or", "but", "the", "a", "an", "to", "of", "with", "for", "because", "that", "which",
    "in", "on", "at", "by", "from", "is", "are", "was", "were", "will", "should", "und", "der", "die",
}  # fmt: skip
ACKNOWLEDGED = re.compile(
    r"\b(?:could not|couldn't|cannot|can't|unable|not able|failed|fails|failure|error|errors|not found|"
    r"missing|refused|rejected|denied|invalid|unavailable|did not work|didn't work|not possible|"
    r"no such|does not exist|doesn't exist|blocked)\b",
    re.I,
)


def cut_off(ev: ReviewEvidence) -> list[str]:
    """Why the output looks cut off: the finish reason, the field limit's note, a
    dangling end. [] when it looks whole."""
    run, text = ev.run, ev.output
    problems = []
    last = run.iterations[-1] if run.iterations else None
    reason = last.finish_reason if last is not None else None
    if reason == "length":
        problems.append(
            f"the model stopped at its token limit (iteration {last.number if last else '?'}: finish reason "
            f'"length"); the output ends: "…{text.rstrip()[-80:]}"'
        )
    elif reason == "content_filter":
        problems.append('the provider\'s content filter stopped the answer (finish reason "content_filter")')
    if LIMIT_NOTE.search(text):
        problems.append("the output was cut at max_field_bytes (it ends with the truncation note)")
    elif CUT_NOTE.search(text):
        problems.append("the output says it was cut (it ends with a note that it was truncated)")
    # a closing tag at the end ("… See <a href=…>the task</a>") ends its element, not the
    # sentence: the words before it say whether the text is whole
    stripped = TAGS_AT_END.sub("", QUOTE_END.sub("", text.rstrip()))
    words = re.findall(r"[\w'’-]+|[,;(\[{“\"]$", stripped)
    # a sentence that ends with its own mark is whole, whatever its last word
    # ("What do you need help with?"): a dangling word counts only without one
    ended = stripped.endswith((".", "!", "?", "…", ":", ")", "]", "}", '"', "”", "'"))
    if stripped and (
        stripped[-1] in ",;([{“"
        or stripped.endswith(("-", "—"))
        or (not ended and words and words[-1].lower() in DANGLING)
    ):
        problems.append(f'the output ends mid-sentence: "…{preview_of(stripped[-80:], 80)}"')
    if stripped and not ended and not problems and words:
        stem = _cut_word(words[-1], text, ev)
        if stem:
            end = preview_of(stripped[-80:], 80)
            problems.append(f'the output ends mid-word ("{words[-1]}", the start of "{stem}"): "…{end}"')
    loop = _loop(text)
    if loop:
        problems.append(f'the output repeats "{loop[0]}" {loop[1]} times in a row: a model caught in a loop')
    if text.count("```") % 2:
        problems.append("the output opens a code block it never closes")
    unfinished = _unfinished_line(stripped)
    if unfinished and not problems:
        problems.append(f'the output ends {unfinished}: "…{preview_of(stripped[-80:], 80)}"')
    return problems


def _cut_word(last: str, text: str, ev: ReviewEvidence) -> str:
    """The word ``last`` is the start of, when it is no word itself: neither the output
    nor what the run read uses it, but they use a longer word that begins with it
    ("legal rev" for "legal review"). "" otherwise."""
    low = last.lower()
    if len(low) < 2 or not low.isalpha() or low in _SHORT_WORDS:
        return ""
    earlier = text[: -len(last)].lower()
    word = re.compile(rf"\b{re.escape(low)}\b")
    if word.search(earlier) or word.search(ev.seen_lower):
        return ""
    # three letters or more missing: "catalog" for "catalogue" is a spelling, not a cut
    longer = re.search(rf"\b{re.escape(low)}([^\W\d_]{{3,}})", earlier) or re.search(
        rf"\b{re.escape(low)}([^\W\d_]{{3,}})", ev.seen_lower
    )
    return low + longer.group(1) if longer else ""


#: words shorter than three letters, or common enough to end a line on their own
_SHORT_WORDS = frozenset(
    {"a", "an", "to", "of", "in", "on", "at", "by", "is", "it", "be", "as", "or", "no", "ok", "so"}
)


LOOP_WORDS = 12  # the longest phrase a loop is looked for in


@functools.lru_cache(maxsize=16)  # a run asks twice of one text: before its write, as it finishes
def _loop(text: str) -> tuple[str, int] | None:
    """The shortest phrase of one to twelve words said four or more times in a row,
    wherever it starts (a sentence or a list line repeated is a phrase too), with how
    many times. Looked for only from words said four times or more, at the distances
    they recur at: a run reads its output once, not once per phrase length."""
    # numbers left out: a list's counters ("1. Ask legal. 2. Ask legal.") number a loop
    words = [w for w in re.findall(r"[\w'’-]+", text.lower()) if any(map(str.isalpha, w))]
    where: dict[str, list[int]] = {}
    for n, word in enumerate(words):
        where.setdefault(word, []).append(n)
    found: tuple[int, int, int] | None = None  # (size, start, times)
    for positions in where.values():
        if len(positions) < 4:
            continue
        recur = set(positions)
        for start in positions:
            for size in range(1, LOOP_WORDS + 1 if found is None else found[0]):
                if not {start + size, start + 2 * size, start + 3 * size} <= recur:
                    continue
                phrase = words[start : start + size]
                times = 1
                while words[start + times * size : start + (times + 1) * size] == phrase:
                    times += 1
                if times >= 4 and (found is None or (size, start) < found[:2]):
                    found = (size, start, times)
                    break
    if found is None:
        return None
    size, start, times = found
    return " ".join(words[start : start + size]), times


LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)]|\[[ xX]\])\s*(.*)$")


def _unfinished_line(text: str) -> str:
    """How the last line of ``text`` is left unfinished, by the shape of what it began
    ("" if it is whole): a table row without its closing bar, or a list item with
    nothing after its mark. (A line of prose without an end mark is not enough: labels,
    lists and tool summaries end so too.)"""
    lines = text.splitlines()
    last = lines[-1].strip() if lines else ""
    if not last:
        return ""
    rows = [line.strip() for line in lines if line.strip().startswith("|")]
    if (
        last.startswith("|")
        and len(rows) >= 2
        and all(r.endswith("|") for r in rows[:-1])
        and not last.endswith("|")
    ):
        return "in the middle of a table row"
    item = LIST_ITEM.match(last)
    if item is not None and not item.group(1).strip():
        return "on an empty list item"
    label = LABEL.match(last)
    if label and not last[label.end() :].strip() and len(lines) > 1:
        return "on a label with nothing after it"
    if last.count("(") > last.count(")") and not last.endswith((".", "!", "?", ")")):
        return "inside a parenthesis it never closes"
    if _open_quote(last):
        return "inside a quotation it never closes"
    if CUT_DATE.search(last):
        return "inside a date"
    whole = text.strip()
    if whole[:1] in "{[" and whole[-1:] not in "}]":
        return "in the middle of its JSON"
    return ""


def _open_quote(line: str) -> bool:
    """Whether ``line`` ends inside a quotation: one opened ("…" or “…”) and never
    closed, with no end mark after it (``wrote "Agency promised the logo files``)."""
    if line.endswith((".", "!", "?", "…", '"', "”")):
        return False
    if line.count("“") > line.count("”"):
        return True
    # a straight quote left once the pairs are taken out, unless it follows a digit (a
    # 12" pizza: inches, seconds)
    left = re.sub(r'"[^"]*"', " ", line)
    return re.search(OPENING_QUOTE, left) is not None


#: an ISO date cut short at the end ("due on 2026-1")
CUT_DATE = re.compile(r"(?<![\d-])\d{4}-(?:\d{1,2}-?)?\Z")


QUOTE_END = re.compile(r"\s+\Z")
#: markup tags at the very end of a text: HTML's closing (and self-closing) tags
TAGS_AT_END = re.compile(r"(?:\s*</[A-Za-z][\w-]*\s*>)+\s*\Z")


def completion_check(ev: ReviewEvidence) -> Check:
    run = ev.run
    title = COMPLETION_TITLE
    if ev.stage != "before_write" and (run.status != COMPLETED or run.output is None):
        return Check(
            "completion",
            title,
            UNKNOWN if ev.stage != "before_write" else PASS,
            [f"the run {run.status} without a final answer"],
        )
    problems = cut_off(ev)
    if ev.stage == "before_write":
        return Check("completion", title, FAIL if problems else PASS, problems or ["the output looks whole"])
    evidence = []
    calls = [(it.number, n, c) for it in run.iterations for n, c in enumerate(it.tool_calls, start=1)]
    for number, index, call in calls:
        if not call.allowed or call.ok:
            continue
        # a retry is the same call again: the same tool with the same arguments
        retried = any(
            c.ok and c.name == call.name and c.arguments == call.arguments and (num, i) > (number, index)
            for num, i, c in calls
        )
        if retried:
            evidence.append(
                f"iteration {number}, call {index}: {call.name} failed and the same call later succeeded"
            )
            continue
        said = _acknowledged(ev.output, call)
        failure = call.error or call.result_summary or "failed"
        if said:
            evidence.append(
                f"iteration {number}, call {index}: {call.name} failed ({preview_of(failure, 100)}); "
                f'the output says so: "{preview_of(_sentence_at(ev.output, said.start()), 120)}"'
            )
        else:
            problems.append(
                f"iteration {number}, call {index}: {call.name}({summarize(call.arguments, 60)}) failed: "
                f'{preview_of(failure, 120)}; the output does not say so: "{preview_of(run.output, 120)}"'
            )
    limit = (run.config or {}).get("max_iterations")
    if isinstance(limit, int) and limit > 1 and len(run.iterations) >= limit:
        problems.append(
            f"the answer came at the last allowed iteration ({len(run.iterations)} of {limit}), when the "
            "worker could not call a tool again: it may be forced, not finished"
        )
    reasons = [it.finish_reason for it in run.iterations]
    if problems:
        return Check("completion", title, FAIL, [*problems, *evidence])
    if reasons and all(r is None for r in reasons):
        return Check(
            "completion", title, UNKNOWN, ["the run was recorded before finish reasons were kept", *evidence]
        )
    evidence.insert(
        0,
        f'the model finished on its own (finish reason "{reasons[-1]}") after '
        f"{len(run.iterations)} of {limit} iterations",
    )
    return Check("completion", title, PASS, evidence)


#: a sentence told by the worker of itself ("I could not read D-51", "we were unable to …")
FIRST_PERSON = re.compile(r"\b(?:i|we|my|our)\b|\bi['’](?:m|ve|d)\b", re.I)


def _acknowledged(output: str, call: ToolCallRecord) -> re.Match[str] | None:
    """Where the output says that ``call`` failed: a sentence with a word of failure that
    is about that call: it names what the call was given (an id, a value of its
    arguments), the tool, or the worker itself ("I could not …"). Someone else's
    failure ("the agency could not deliver") acknowledges nothing."""
    subjects = {s.lower() for s in _argument_texts(call.arguments) if 2 <= len(s) <= 80}
    subjects |= {w for w in re.split(r"[_\W]+", call.name.lower()) if len(w) >= 4}
    for m in ACKNOWLEDGED.finditer(output):
        sentence = _sentence_at(output, m.start()).lower()
        if FIRST_PERSON.search(sentence) or any(s in sentence for s in subjects):
            return m
    return None


def _argument_texts(value: object) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _argument_texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _argument_texts(v)]
    return [str(value)] if isinstance(value, str | int) and not isinstance(value, bool) else []


def _sentence_at(text: str, at: int) -> str:
    start = max(text.rfind(".", 0, at), text.rfind("\n", 0, at)) + 1
    end = min([i for i in (text.find(".", at), text.find("\n", at)) if i >= 0] or [len(text)])
    return text[start : end + 1].strip()


def freshness_check(ev: ReviewEvidence) -> Check:
    run = ev.run
    title = FRESHNESS_TITLE
    wrote = [
        e for e in run.side_effects if e.get("by") == "output_mode" and e.get("record_id") == run.record_id
    ]
    if not run.record_id or not wrote:
        return Check("freshness", title, PASS, ["the output mode wrote nothing to the linked record"])
    read = (run.seen or {}).get(run.record_id)
    at_write = run.record_at_write
    if read is None or at_write is None:
        return Check("freshness", title, UNKNOWN, [OLD_RUN])
    problems = []
    before, after = read.get("fingerprint", {}), at_write.get("fingerprint", {})
    if before.get("fields") != after.get("fields"):
        changed = sorted(
            k
            for k in set(read.get("fields", {})) | set(at_write.get("fields", {}))
            if read.get("fields", {}).get(k) != at_write.get("fields", {}).get(k)
        ) or ["title or links"]
        own = [
            e for e in run.side_effects if e.get("record_id") == run.record_id and e.get("kind") == "update"
        ]
        shown = ", ".join(
            f"{k}: {read.get('fields', {}).get(k)!r} → {at_write.get('fields', {}).get(k)!r}"
            for k in changed[:4]
        )
        if own:
            return Check(
                "freshness",
                title,
                UNKNOWN,
                [f"{run.record_id} changed ({shown}), and the run updated it itself"],
            )
        problems.append(
            f"{run.record_id} changed between the read ({read.get('at')}) and the write "
            f"({at_write.get('at')}): {shown}"
        )
    if before.get("comments") != after.get("comments"):
        last = at_write.get("last_comment") or {}
        problems.append(
            f"{run.record_id} got comments between the read and the write ({read.get('comments')} → "
            f"{at_write.get('comments')}; the newest by {last.get('author', '?')} "
            f"at {last.get('created', '?')})"
        )
    if problems:
        return Check(
            "freshness", title, FAIL, [*problems, "the output may answer a record that no longer is"]
        )
    return Check(
        "freshness",
        title,
        PASS,
        [f"{run.record_id} was the same at the read ({read.get('at')}) and the write ({at_write.get('at')})"],
    )
