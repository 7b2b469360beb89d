"""Refused tool calls that look like prompt injection, and where the request came from.

The gate refuses any call to a tool that was not offered to the worker. When the
worker's own instructions ask for that tool, the refusal is a configuration
question (should the worker be allowed it?). When they do not, the model was
steered by something else, typically text inside a record it was given or a
tool result it read: that is a possible prompt injection, and widening the
worker's tool categories or context sources would hand the attacker what they
asked for. The card, the troubleshooting walk and the review all ask this module,
so they say the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from workerctl.runs.model import Run, ToolCallRecord

if TYPE_CHECKING:
    from workerctl.records.book import RecordBook

QUOTE_LENGTH = 160
NEVER_WIDEN = (
    "do not add tool categories or context sources for it: that would grant the "
    "request; treat the text that asked for it as untrusted"
)


@dataclass
class RefusedCall:
    """One refused call, judged: asked for by the instructions, or a possible injection."""

    iteration: int
    name: str
    category: str | None
    reason: str
    asked_by_instructions: bool
    source: str = ""  # e.g. "task T-1042 field description", "result of read_task"
    quote: str = ""
    # a read or write the records API refused (``ToolCallRecord.refused_record``): the
    # request judged is the one naming that record, not the tool
    refused_record: dict[str, str] | None = None

    @property
    def possible_injection(self) -> bool:
        return not self.asked_by_instructions

    @property
    def asked_for(self) -> str:
        """What was asked for: the tool, or the read or write of one record."""
        if self.refused_record:
            return f"a {self.refused_record.get('what', 'write')} of {self.refused_record.get('id', '?')}"
        return self.name

    def describe(self) -> str:
        """One line for a person: what is suspicious and where the request came from."""
        if self.asked_by_instructions:
            return f"{self.asked_for}: the worker's instructions ask for it"
        where = (
            f'the request is in {self.source}: "{self.quote}"'
            if self.source
            else "no record text given to the run names it; check the executor's "
            "prompt or program and the tool results it read"
        )
        return (
            f"possible prompt injection: nothing in the worker's instructions asks for "
            f"{self.asked_for}; {where}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "possible_injection": self.possible_injection}


def _pattern(name: str) -> re.Pattern[str]:
    """The tool's name as written, or with spaces for underscores ("read invoice")."""
    words = [re.escape(w) for w in re.split(r"[_\s]+", name) if w]
    if not words:
        return re.compile(r"(?!x)x")
    return re.compile(r"(?<![\w])" + r"[_\s]+".join(words) + r"(?![\w])", re.I)


def _quote(text: str, match: re.Match[str]) -> str:
    """The line holding the request, cut to QUOTE_LENGTH around it."""
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    line = text[start : end if end != -1 else len(text)]
    at = match.start() - start
    if len(line) > QUOTE_LENGTH:
        lo = max(0, min(at - QUOTE_LENGTH // 3, len(line) - QUOTE_LENGTH))
        line = (
            ("…" if lo else "")
            + line[lo : lo + QUOTE_LENGTH]
            + ("…" if lo + QUOTE_LENGTH < len(line) else "")
        )
    return " ".join(line.split())


def _texts(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside a record field, with where it is (``fields.notes[2]``)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _texts(item, f"{path}[{i}]")


def _read_ids(run: Run, before: int) -> dict[str, str]:
    """Record ids that allowed tool calls before iteration ``before`` asked for."""
    out: dict[str, str] = {}
    for it in run.iterations:
        if it.number > before:
            break
        for call in it.tool_calls:
            if call.allowed and isinstance(call.arguments, dict):
                for value in call.arguments.values():
                    if isinstance(value, str) and len(value) <= 200:
                        out.setdefault(value, f"read by {call.name} in iteration {it.number}")
    return out


def _record_texts(run: Run, records: RecordBook | None, before: int) -> Iterator[tuple[str, str]]:
    """(where, text) for the records the run was given or read, as they are now."""
    if records is None:
        return
    ids = {r["id"]: "" for r in (run.context or {}).get("records", [])}
    if run.record_id:
        ids = {run.record_id: "", **ids}
    for record_id, how in _read_ids(run, before).items():
        ids.setdefault(record_id, how)
    for record_id, how in ids.items():
        record = records.peek(record_id)
        if record is None:
            continue
        label = f"{record.type} {record.id}" + (f" ({how})" if how else "")
        yield f"{label} title", record.title
        for where, text in _texts(record.fields, ""):
            yield f"{label} field {where}", text
        for comment in records.comments(record_id):
            if not comment.run_id:  # a worker's own comment is output, not input
                yield f"{label} comment {comment.id} by {comment.author}", comment.text


def _earlier_results(run: Run, before: int) -> Iterator[tuple[str, str]]:
    for it in run.iterations:
        if it.number >= before:
            break
        for call in it.tool_calls:
            if call.allowed and call.result_summary:
                yield f"the result of {call.name} (iteration {it.number})", call.result_summary


def _asked(call: ToolCallRecord) -> re.Pattern[str]:
    """What to look for in the texts: the refused record's id, else the tool's name."""
    target = (call.refused_record or {}).get("id")
    if target:
        return re.compile(r"(?<![\w-])" + re.escape(target) + r"(?![\w-])", re.I)
    return _pattern(call.name)


def _find_source(run: Run, call: ToolCallRecord, number: int, records: RecordBook | None) -> tuple[str, str]:
    pattern = _asked(call)
    for where, text in (*_record_texts(run, records, number), *_earlier_results(run, number)):
        match = pattern.search(text)
        if match:
            return where, _quote(text, match)
    return "", ""


def refused_calls(run: Run, records: RecordBook | None = None) -> list[RefusedCall]:
    """Every call the gate refused in ``run``, judged against the run's instructions."""
    instructions = str((run.config or {}).get("instructions") or "")
    out = []
    for it in run.iterations:
        for call in it.tool_calls:
            if call.allowed:
                continue
            asked = bool(_asked(call).search(instructions))
            source, quote = ("", "") if asked else _find_source(run, call, it.number, records)
            out.append(
                RefusedCall(
                    it.number,
                    call.name,
                    call.category,
                    call.reason,
                    asked,
                    source,
                    quote,
                    getattr(call, "refused_record", None),
                )
            )
    return out


def suspects(run: Run, records: RecordBook | None = None) -> list[RefusedCall]:
    """Only the refused calls that nothing in the instructions asked for."""
    return [c for c in refused_calls(run, records) if c.possible_injection]
