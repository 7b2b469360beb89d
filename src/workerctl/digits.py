"""The one way text read from a file, a file name or the environment becomes a number.

``str.isdigit`` is no guard for ``int``: ``"²"`` is a digit to it and not to ``int``
(a ``ValueError``, a traceback), and ``"٣"`` is a digit to both, so a file name
written in Arabic-Indic digits would name shard 3. A state file's id, a shard's or
a ref log's number, a process id in a folder's name, a count in a note: each is
read here, ASCII digits only, and anything else is "not a number" to the caller,
which then treats it as the damage or the stranger it is.
"""

from __future__ import annotations

#: the most digits a number read from state may have: below 2**63, what SQLite's
#: INTEGER holds (a document id or a shard number goes into the search index) and any
#: count, id or pid workerctl writes
MAX_DIGITS = 18
#: the largest magnitude any number in a state file may have (a count, an id, a shard, a
#: pid, a token sum): every number of at most ``MAX_DIGITS`` digits is below it
MAX_NUMBER = 10**MAX_DIGITS


def whole_number(text: str | bytes) -> int | None:
    """``text`` as a whole number when it is one written in ASCII digits (``"0"``,
    ``"17"``, ``"000123"``), at most ``MAX_DIGITS`` of them, else None."""
    if not text or len(text) > MAX_DIGITS or not text.isascii() or not text.isdigit():
        return None
    return int(text)
