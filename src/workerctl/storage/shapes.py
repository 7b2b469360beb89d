"""The one rule for every state file workerctl reads: check its shape on load.

Valid JSON of the wrong shape (``null``, ``[]``, ``{}`` where a table belongs, a
document without the fields the code indexes) is as damaged as a truncated
file: read as "empty", it would hide runs, records or versions, and the next
write would replace what is left. So each kind of file declares its shape here
and ``read_json(path, shape=...)`` refuses anything else with ``DamagedFile``
(exit 4, the file left byte for byte).

A shape is a function ``data -> problem or None``; ``tinydb_file`` and
``json_object`` build the usual ones from a field table, where each required
field maps to the type (or tuple of types) it must have, or to a frozenset of the
values it may take::

    RUNS = tinydb_file("runs", {"id": str, "status": frozenset(STATES)})
    read_json(path, shape=RUNS)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Shape = Callable[[Any], "str | None"]
FieldSpec = type | tuple[type, ...] | frozenset
Fields = Mapping[str, FieldSpec]

_NAMES = {
    dict: "an object",
    list: "a list",
    str: "text",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


def describe(value: Any) -> str:
    """What a JSON value is, in words (for the damage message)."""
    if isinstance(value, bool):
        return "true or false"
    for kind, name in _NAMES.items():
        if type(value) is kind:
            return "an empty object" if kind is dict and not value else name
    return type(value).__name__


def _wanted(spec: FieldSpec) -> str:
    if isinstance(spec, frozenset):
        return "one of " + ", ".join(sorted(map(str, spec)))
    kinds = spec if isinstance(spec, tuple) else (spec,)
    return " or ".join(_NAMES.get(k, k.__name__) for k in kinds)


def _fits(value: Any, spec: FieldSpec) -> bool:
    if spec is object:
        return True
    if isinstance(spec, frozenset):
        return isinstance(value, str | int) and value in spec
    kinds = spec if isinstance(spec, tuple) else (spec,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON true is not a number here
    return isinstance(value, kinds)


def fields_problem(doc: Any, fields: Fields) -> str | None:
    """The first way ``doc`` differs from ``fields``, or None when it fits.
    ``object`` as a field's spec: required, any value."""
    if not isinstance(doc, dict):
        return f"it is {describe(doc)}, not an object"
    for name, spec in fields.items():
        if name not in doc:
            return f"field {name!r} is missing"
        if not _fits(doc[name], spec):
            return f"field {name!r} is {describe(doc[name])}, not {_wanted(spec)}"
    return None


def json_object(fields: Fields) -> Shape:
    """A file holding one JSON object with at least ``fields``."""

    def check(data: Any) -> str | None:
        problem = fields_problem(data, fields)
        return f"expected an object with {', '.join(fields)}: {problem}" if problem else None

    return check


def tinydb_file(table: str, fields: Fields, *, others: bool = False) -> Shape:
    """A TinyDB database file holding ``table`` (``{table: {"1": doc, ...}}``) whose
    every document has ``fields``. ``others``: other tables may sit beside it (a
    database shared by several tables, each checked by its own reader)."""

    names = frozenset(fields)
    typed = [(name, spec) for name, spec in fields.items() if spec is not object]

    def fits(doc: Any) -> bool:  # the fast path: a 64 KB shard is checked in ~0.1 ms
        if type(doc) is not dict or not names <= doc.keys():
            return False
        for name, spec in typed:
            value = doc[name]
            if type(value) is spec or (type(spec) is frozenset and type(value) is str and value in spec):
                continue
            if not _fits(value, spec):
                return False
        return True

    def check(data: Any) -> str | None:
        if not isinstance(data, dict):
            return f"expected a TinyDB database (an object), found {describe(data)}"
        if table not in data:
            return f"expected a TinyDB database with a {table!r} table, found none"
        if not others and set(data) - {table}:
            extra = ", ".join(sorted(map(repr, set(data) - {table})))
            return f"unexpected table(s) {extra} beside {table!r}"
        docs = data[table]
        if not isinstance(docs, dict):
            return f"the {table!r} table is {describe(docs)}, not an object of documents"
        for doc_id, doc in docs.items():
            if not doc_id.isdigit():
                return f"the {table!r} table has a document id {doc_id!r} that is not a number"
            if fits(doc):
                continue
            problem = fields_problem(doc, fields)
            if problem:
                return f"the {table!r} table's document {doc_id}: {problem}"
        return None

    return check
