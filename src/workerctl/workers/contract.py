"""The output contract: what a worker's output must contain, declared in its YAML.

::

    output_contract:
      sections: [Blocker, Evidence, Suggested next step, Owner]
      names_record: true
      max_length: 1200
      max_lines: 6

``sections`` are labels that must each begin a line as ``Label:`` (a leading
``-``, ``*`` or ``#`` and any case are allowed); ``names_record`` asks for the
linked record's id in the text; ``max_length`` counts characters and
``max_lines`` non-empty lines.

A run that breaks its contract still completes: the output was produced (and
an output mode may already have written it), so the run's status stays the
truth about what happened, and review's ``contract`` check fails with each
broken rule as evidence. Failing the run instead would hide a usable output
behind troubleshooting, whose steps are about permissions, data and providers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workerctl.workers.validation import _Checker

KEYS = ("sections", "names_record", "max_length", "max_lines")
MAX_LENGTH = (1, 100_000)
MAX_LINES = (1, 1_000)


@dataclass(frozen=True)
class OutputContract:
    sections: list[str] = field(default_factory=list)
    names_record: bool = False
    max_length: int | None = None
    max_lines: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.sections:
            out["sections"] = list(self.sections)
        if self.names_record:
            out["names_record"] = True
        if self.max_length is not None:
            out["max_length"] = self.max_length
        if self.max_lines is not None:
            out["max_lines"] = self.max_lines
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> OutputContract | None:
        if not data:
            return None
        return cls(
            sections=list(data.get("sections") or []),
            names_record=bool(data.get("names_record")),
            max_length=data.get("max_length"),
            max_lines=data.get("max_lines"),
        )

    def describe(self) -> str:
        rules = [
            f"sections {', '.join(self.sections)}" if self.sections else "",
            "names the linked record" if self.names_record else "",
            f"at most {self.max_length} characters" if self.max_length else "",
            f"at most {self.max_lines} lines" if self.max_lines else "",
        ]
        return "; ".join(r for r in rules if r)

    def yaml_lines(self) -> list[str]:
        """The block as it is written into a new worker file."""
        lines = ["output_contract:"]
        if self.sections:
            lines.append(f"  sections: [{', '.join(self.sections)}]")
        if self.names_record:
            lines.append("  names_record: true")
        if self.max_length is not None:
            lines.append(f"  max_length: {self.max_length}")
        if self.max_lines is not None:
            lines.append(f"  max_lines: {self.max_lines}")
        return lines


def section_line(label: str) -> re.Pattern:
    return re.compile(rf"^[ \t]*(?:[-*#]+[ \t]*)?{re.escape(label)}[ \t]*:", re.I | re.M)


def names_id(text: str, record_id: str) -> bool:
    """Whether ``text`` names ``record_id`` as a word of its own (not inside ``T-10421``
    or ``XT-1042``). Searched as a string: a pattern made for each record's id would be
    compiled once per run and push the patterns every run uses out of ``re``'s cache."""
    start = text.find(record_id)
    while start >= 0:
        end = start + len(record_id)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not _in_word(before) and not _in_word(after):
            return True
        start = text.find(record_id, start + 1)
    return False


def _in_word(char: str) -> bool:
    return char.isalnum() or char in "_-"  # what ``[\w-]`` matches


def broken_rules(contract: OutputContract, text: str, record_id: str | None) -> list[str]:
    """Each rule of ``contract`` that ``text`` breaks, in words; [] when it keeps them all."""
    problems = []
    missing = [s for s in contract.sections if not section_line(s).search(text)]
    if missing:
        problems.append("missing section(s): " + ", ".join(f"'{s}:'" for s in missing))
    if contract.names_record and record_id and not names_id(text, record_id):
        problems.append(f"does not name the linked record {record_id}")
    if contract.max_length is not None and len(text) > contract.max_length:
        problems.append(f"{len(text)} characters, more than the {contract.max_length} allowed")
    lines = [line for line in text.splitlines() if line.strip()]
    if contract.max_lines is not None and len(lines) > contract.max_lines:
        problems.append(f"{len(lines)} lines, more than the {contract.max_lines} allowed")
    return problems


def check(checker: _Checker, data: Any) -> OutputContract | None:
    """Validate the ``output_contract`` block with ``checker`` (see workers.validation),
    reporting each problem at its FILE:LINE:COL; the contract, or None."""
    if data is None:
        return None
    key = "output_contract"
    if not isinstance(data, dict):
        checker.add(
            (key,),
            "must be a mapping of rules",
            "e.g. output_contract: {sections: [Summary], names_record: true}",
        )
        return None
    ok = True
    for name in data:
        if name not in KEYS:
            checker.add((key, name), "unknown contract rule", f"known rules: {', '.join(KEYS)}", at_key=True)
            ok = False
    sections: list[str] = []
    raw = data.get("sections")
    if raw is not None:
        if not isinstance(raw, list):
            checker.add((key, "sections"), "must be a list of labels", "e.g. sections: [Blocker, Evidence]")
            ok = False
        else:
            for index, label in enumerate(raw):
                if (
                    not isinstance(label, str)
                    or not label.strip()
                    or ":" in label
                    or "\n" in label
                    or len(label) > 60
                ):
                    checker.add(
                        (key, "sections", index),
                        "must be a label of up to 60 characters, without ':'",
                        "write the label as it starts its line, e.g. Blocker",
                    )
                    ok = False
                elif label.strip().lower() in (s.lower() for s in sections):
                    checker.add(
                        (key, "sections", index), f"section {label!r} listed twice", "remove the repeat"
                    )
                    ok = False
                else:
                    sections.append(label.strip())
    names_record = data.get("names_record", False)
    if not isinstance(names_record, bool):
        checker.add((key, "names_record"), "must be true or false", "write names_record: true")
        ok = False
    limits = {}
    for name, bounds in (("max_length", MAX_LENGTH), ("max_lines", MAX_LINES)):
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            checker.add((key, name), "must be a whole number", f"use a value from {bounds[0]} to {bounds[1]}")
            ok = False
        elif not bounds[0] <= value <= bounds[1]:
            checker.add(
                (key, name),
                f"{value} is outside {bounds[0]}..{bounds[1]}",
                f"use a value from {bounds[0]} to {bounds[1]}",
            )
            ok = False
        else:
            limits[name] = value
    if not ok:
        return None
    if not (sections or names_record or limits):
        checker.add((key,), "states no rule", f"give at least one of {', '.join(KEYS)}, or remove the block")
        return None
    return OutputContract(
        sections=sections,
        names_record=bool(names_record),
        max_length=limits.get("max_length"),
        max_lines=limits.get("max_lines"),
    )
