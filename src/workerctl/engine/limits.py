"""Bounded runs: every text a step brings back is capped before it is stored.

A run file is read whole by ``run inspect`` and rewritten on each state change,
so one step that prints 100 MB must not become a 100 MB field (or two). Step
output, stderr, tool-call arguments and tool results are each cut to
``max_field_bytes`` (workerctl.yaml; about 1 MB by default) and carry a visible
note saying how big they were, so nobody mistakes a cut text for the whole.
"""

from __future__ import annotations

import json
import re
from typing import Any

DEFAULT_MAX_FIELD_BYTES = 1_000_000
NOTE = "\n[… truncated, {total} bytes; the first {kept} kept]"
_NOTE_AT_END = re.compile(r"\n\[… truncated, \d+ bytes; the first (\d+) kept\]\Z")


def cap_text(text: str | None, limit: int, *, total: int | None = None) -> str | None:
    """``text`` if it fits in ``limit`` UTF-8 bytes, else its head and the note.

    ``total``: the size of the text before something upstream already cut it
    (the ``command`` executor reads at most a bounded head of a flood).
    """
    if text is None:
        return None
    if total is None and len(text) * 4 <= limit:
        return text  # fits whatever the characters: no encoding needed
    data = text.encode("utf-8", errors="surrogatepass")
    size = max(total or 0, len(data))
    if size <= limit and total is None:
        return text
    noted = _NOTE_AT_END.search(text[-80:])
    if noted and total is None and int(noted.group(1)) <= limit:
        return text  # cut already (by the executor that read the stream)
    head = data[:limit].decode("utf-8", errors="ignore")
    return head + NOTE.format(total=size, kept=len(head.encode("utf-8", errors="ignore")))


def cap_value(value: Any, limit: int) -> Any:
    """A JSON value (tool arguments, a tool result) as it is, or, when its JSON is
    bigger than ``limit``, that JSON capped as text."""
    if isinstance(value, str):
        return cap_text(value, limit)
    if value is None or isinstance(value, bool | int | float):
        return value
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) * 4 <= limit or len(text.encode("utf-8", "surrogatepass")) <= limit:
        return value
    return cap_text(text, limit)
