"""An output's structured parts read as the statements a person reads in them.

A model asked for a dashboard line writes ``{"task": "T-1042", "status": "done"}``; one
asked for an overview writes a Markdown table. A reader takes each as statements, "the
status of T-1042 is done", but the checks that compare statements with the records read
sentences, and blank quoted text (a quote is the records' words): a wrong status in JSON
or a wrong date in a table cell was compared with nothing. ``as_statements`` writes each
JSON object (the whole output, or a fenced block) and each table as one line per value,
``key: value.``, the row's or object's first value first, so the line that names a
record comes before the values about it (``grounded.facts_check`` carries a sentence's
record to the next one).
"""

from __future__ import annotations

import re
from typing import Any

from workerctl.jsonvalues import loads

_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n(.*?)\n```", re.S | re.I)
#: a straight double quote that opens a quotation: never one right after a digit, which is a
#: unit (24", 0'45"): every pattern of quotations starts with it (claims, facts, the answer's
#: language, completion's unclosed quotation)
OPENING_QUOTE = r'(?<!\d)"'
#: a row of a Markdown table, and the rule line under its head ("|---|:---:|"): the claims
#: check reads tables by the same two
TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
RULE_ROW = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
#: a two-column table of names and values ("| Field | Value |"): each row is "name: value"
_VALUE_HEADS = {"value", "values", "wert", "detail", "details", "info", "answer", ""}


def as_statements(text: str) -> str:
    """``text`` with its JSON and its tables written as ``key: value.`` lines."""
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        lines = _json_lines(stripped)
        if lines is not None:
            return lines
    if "```" in text:
        text = _FENCE.sub(lambda m: _json_lines(m.group(1)) or m.group(0), text)
    if "|" in text:
        text = _tables(text)
    return text


def json_in(text: str) -> tuple[Any, bool] | None:
    """The JSON value ``text`` is (whole), or else holds in its first fenced block, and
    whether it was the whole text; None when it is neither."""
    for candidate, whole in ((text, True), (m.group(1) if (m := _FENCE.search(text)) else None, False)):
        if candidate is None:
            continue
        try:
            return loads(candidate), whole
        except ValueError:
            continue
    return None


def _json_lines(raw: str) -> str | None:
    try:
        data = loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict | list):
        return None
    out: list[str] = []
    _flatten(data, "", out)
    return "\n".join(out)


def _flatten(value: Any, key: str, out: list[str], depth: int = 0) -> None:
    if depth > 20:
        return
    if isinstance(value, dict):
        if out and out[-1]:
            out.append("")  # one object: one paragraph
        if key and depth:
            # an object under a key is about what the key names ({"T-1042": {"due": …}}: the
            # due date is T-1042's), as a person reads it
            out.append(f"{key}.")
        for k, v in value.items():
            _flatten(v, str(k).replace("_", " "), out, depth + 1)
    elif isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            if key and value:
                out.append(f"{key}: {', '.join(_scalar(v) for v in value)}.")
            return
        for item in value:
            _flatten(item, key, out, depth + 1)
    elif key:
        out.append(f"{key}: {_scalar(value)}.")


def _scalar(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("\n", " ")


def _tables(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and TABLE_ROW.match(lines[i]) and RULE_ROW.match(lines[i + 1]):
            heads = _cells(lines[i])
            i += 2
            while i < len(lines) and TABLE_ROW.match(lines[i]):
                out.append(_row_line(heads, _cells(lines[i])))
                i += 1
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def _cells(line: str) -> list[str]:
    m = TABLE_ROW.match(line)
    return [c.strip() for c in (m.group(1) if m else line).split("|")]


def _row_line(heads: list[str], cells: list[str]) -> str:
    if len(heads) == 2 and heads[1].lower() in _VALUE_HEADS and len(cells) >= 2:
        return f"{cells[0]}: {cells[1]}." if cells[0] else ""
    pairs = list(zip(heads, cells, strict=False))
    # the row's record first, wherever its column stands: a "Title" column before the
    # "ID" column gave each title to the record of the row above
    pairs.sort(key=lambda pair: pair[0].strip().lower() not in _ID_HEADS)
    return " ".join(f"{h}: {c}." if h else f"{c}." for h, c in pairs if c)


#: column heads that name the row's record
_ID_HEADS = frozenset(
    {"id", "record", "record id", "task", "task id", "invoice", "ticket", "issue", "key", "ref", "#"}
)
