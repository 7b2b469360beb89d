"""The one rule for values that come into workerctl: JSON values only.

Text, whole numbers, finite numbers, true/false, null, lists, and mappings whose keys are
text (or numbers, true/false or null, which JSON writes as text): what every state file holds and every
``--json`` prints. Anything else a file or a plugin hands over (NaN or an infinity, bytes,
a set, a date object, any other Python object) is refused where it comes in, naming where
it stands, and so never reaches a state file, whose encoder refuses it too
(``storage.atomic.encode_json``). The doors: the one YAML loader
(``workers.yaml_positions``, which builds a plain date as its ISO text and refuses the
rest at its line), the record files and lists read as JSON (``records``), and what an
executor or a tool returns (``engine.loop``). Before, a date in a step program's
arguments ended a run in a traceback, and a NaN reached the history and made ``--json``
output that no JSON parser reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


class TooDeep(ValueError):
    """JSON text nested deeper than Python's reader can follow (its recursion limit): a
    ``ValueError`` like any other JSON that cannot be read, so that every caller's
    ``except ValueError`` covers it too."""


def loads(text: str | bytes, **options: Any) -> Any:
    """``json.loads``, with JSON nested too deeply to read raised as ``TooDeep`` (a
    ``ValueError``) instead of ``RecursionError``. The one reader of JSON text in
    workerctl (``tests/test_one_json_reader.py`` holds every module to it): text from
    a file, a server, a step program or a model may be nested thousands deep, and a
    reader that caught only ``ValueError`` ended a command in a traceback (a records
    file of JSON lines whose first line was nested 2,000 deep: a fresh-brief case)."""
    import json

    try:
        return json.loads(text, **options)
    except RecursionError:
        raise TooDeep("JSON nested too deeply to read") from None


def not_json(value: Any) -> tuple[tuple, str] | None:
    """The path of the first value in ``value`` that is no JSON value, and what it is;
    None when every value is one. Walked without recursion (a plugin's answer may be
    nested deeper than Python's stack)."""
    stack: list[tuple[tuple, Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if item is None or isinstance(item, str | int):  # bool is an int
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return path, f"{item!r}, not a finite number"
            continue
        if isinstance(item, list | tuple):
            stack.extend(((*path, n), v) for n, v in reversed(list(enumerate(item))))
            continue
        if isinstance(item, dict):
            for key, sub in reversed(list(item.items())):
                if not (key is None or isinstance(key, str | int) or _finite(key)):  # JSON writes as text
                    return (*path, key), f"a key of type {type(key).__name__}, not text or a number"
                stack.append(((*path, key), sub))
            continue
        kind = type(item).__name__
        return path, f"a value of type {kind} ({_shown(item)}), not text, a number, true/false or null"
    return None


def where(path: tuple, root: str = "") -> str:
    """``fields.due``, ``tool_calls[0].arguments.due`` (``root`` given): a path as a
    reader names it."""
    out = root
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(the value itself)"


def finite_or_null(value: Any) -> Any:
    """``value`` with every NaN and infinity as null, as JavaScript's ``JSON.stringify``
    writes them: what a ``--json`` output prints of data stored before this rule (a
    record imported with a NaN), so that the output is always one JSON document."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [finite_or_null(v) for v in value]
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    return value


def _finite(key: Any) -> bool:
    return isinstance(key, float) and math.isfinite(key)


def _shown(item: Any) -> str:
    text = repr(item)
    return text if len(text) <= 40 else text[:37] + "..."


def dumps(data: Any, **options: Any) -> str:
    """``json.dumps`` that always writes one JSON document (``finite_or_null``): the one
    encoder of what workerctl prints as JSON."""
    import json

    try:
        return json.dumps(data, allow_nan=False, **options)
    except ValueError:  # out of range: the slow path, for old data alone
        return json.dumps(finite_or_null(data), allow_nan=False, **options)


#: what a text cut by ``shortened`` ends with: the reader sees that it was cut, and why
CUT_NOTE = " … [cut here: {total} characters, {kept} kept, to fit the space set aside on a full disk]"


def shortened(value: Any, fits: Callable[[Any], bool], *, floor: int = 200) -> Any:
    """``value`` as it is when it ``fits``; else a copy in which every text longer than
    one bound is cut to that bound (and ends with ``CUT_NOTE``), the bound as high as
    still fits. ``ValueError`` when it does not fit even with every text cut to
    ``floor`` characters. Nothing else changes: the same keys, the same lists, every number, flag
    and short text (an id, a status, a key, a time) as it was, so the copy still reads
    as what it is. Why: a run's end that must be written into a fixed space (a full
    disk, ``storage.atomic.write_reserved``) is better kept with its long texts cut
    than not kept at all."""
    if fits(value):
        return value
    if not fits(_cut(value, floor)):
        raise ValueError(f"does not fit even with every text cut to {floor} characters")
    low, high = floor, max(_longest(value), floor)  # low fits; high (nothing cut) does not
    while high - low > 1:
        middle = (low + high) // 2
        if fits(_cut(value, middle)):
            low = middle
        else:
            high = middle
    return _cut(value, low)


def _cut(value: Any, bound: int) -> Any:
    if isinstance(value, str):
        if len(value) <= bound:
            return value
        return value[:bound] + CUT_NOTE.format(total=len(value), kept=bound)
    if isinstance(value, list | tuple):
        return [_cut(item, bound) for item in value]
    if isinstance(value, dict):
        return {key: _cut(item, bound) for key, item in value.items()}
    return value


def _longest(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        return max((_longest(item) for item in value), default=0)
    if isinstance(value, dict):
        return max((_longest(item) for item in value.values()), default=0)
    return 0
