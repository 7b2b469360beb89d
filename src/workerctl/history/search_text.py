"""What the search index holds of a run: its words, by column.

One function, ``columns``, reads a stored run (the run file's JSON, or
``Run.to_stored()``) and gives the text of each column the search index keeps, so
the index, the brute-force scan that answers when there is no index, and the
tests that compare the two all read a run the same way. Pure Python (no sqlite3,
no dataclasses): a run file from disk may hold any JSON, so every value is
turned into text defensively and nothing here raises on an odd one.
"""

from __future__ import annotations

import json
from typing import Any

#: the FTS5 columns, in order; a query may name one (``output:vat``)
COLUMNS = ("ids", "title", "output", "error", "tools", "comments")
#: what each column holds (docs/search.md lists the same)
COLUMN_HELP = {
    "ids": "the run id, the worker's name, the record's id and type",
    "title": "the record's title",
    "output": "the run's output",
    "error": "the error kind, message and detail",
    "tools": "tool calls (name, arguments, result, error, refusal reason) and the text of steps",
    "comments": "the comments the run wrote (their text)",
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def _join(parts: list[str]) -> str:
    return "\n".join(p for p in parts if p)


def columns(data: dict[str, Any]) -> tuple[str, ...]:
    """The text of each column of ``COLUMNS`` for one stored run."""
    ids = _join([_text(data.get(k)) for k in ("id", "worker", "record_id", "record_type")])
    title = _text(data.get("record_title"))
    output = _text(data.get("output"))
    error = data.get("error")
    if isinstance(error, dict):
        error_text = _join([_text(error.get(k)) for k in ("kind", "message", "detail")])
    else:
        error_text = _text(error)
    tools: list[str] = []
    iterations = data.get("iterations")
    for it in iterations if isinstance(iterations, list) else ():
        if not isinstance(it, dict):
            continue
        if not it.get("text_is_output"):
            tools.append(_text(it.get("text")))
        calls = it.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                tools.extend(
                    _text(call.get(k)) for k in ("name", "arguments", "result_summary", "error", "reason")
                )
    comments: list[str] = []
    effects = data.get("side_effects")
    for effect in effects if isinstance(effects, list) else ():
        if isinstance(effect, dict) and effect.get("kind") == "comment":
            comments.append(output if effect.get("text_is_output") else _text(effect.get("text")))
    return (ids, title, output, error_text, _join(tools), _join(comments))
