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

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any, cast

from workerctl.digits import MAX_DIGITS, MAX_NUMBER

Shape = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Nested:
    """A field whose value has parts the code reads (a map of counts, a list of triples):
    ``fits(value)`` says whether they are all there, of the right kinds; ``wanted`` says
    what the value must be, in words (the damage message). ``column(values)``, where
    given, says whether a whole column of such values fits, faster than one by one (a
    shard's hundred run ids)."""

    fits: Callable[[Any], bool]
    wanted: str
    column: Callable[[list], bool] | None = None


def text_of(chars: str, max_length: int, wanted: str) -> Nested:
    """Text of 1 to ``max_length`` characters, each in the regex class ``chars``
    (``A-Za-z0-9_-``); a column is checked as one string (the class holds no separator)."""
    one = re.compile(f"[{chars}]+")

    def fits(value: Any) -> bool:
        return type(value) is str and 0 < len(value) <= max_length and one.fullmatch(value) is not None

    def column(values: list) -> bool:
        if not values:
            return True
        if not _TEXT.issuperset(map(type, values)):
            return False
        lengths = list(map(len, values))
        return min(lengths) > 0 and max(lengths) <= max_length and one.fullmatch("".join(values)) is not None

    return Nested(fits, wanted, column)


_TEXT = frozenset((str,))


FieldSpec = type | tuple[type, ...] | frozenset | Nested
Fields = Mapping[str, FieldSpec]


def map_of(values: FieldSpec, wanted: str, *, numbered: int = 0) -> Nested:
    """An object whose every value fits ``values``; ``numbered``: whose keys are whole
    numbers of at most that many ASCII digits (duration buckets: 4). Checked in C where
    ``values`` is only types: a month of daily counts holds thousands of buckets."""
    kinds = _exact(values)

    def values_fit(found: Iterable[Any]) -> bool:
        return _of_kinds(kinds, found) if kinds else all(_fits(v, values) for v in found)

    def fits(value: Any) -> bool:
        return (
            type(value) is dict
            and (not numbered or _digit_keys(list(value), numbered))
            and values_fit(value.values())
        )

    def column(maps: list) -> bool:  # every document's map at once
        if not _OBJECT.issuperset(map(type, maps)):
            return False
        if numbered and not _digit_keys(list(chain.from_iterable(maps)), numbered):
            return False
        return values_fit(chain.from_iterable(map(dict.values, maps)))

    return Nested(fits, wanted, column)


#: below MAX_NUMBER (``digits``) a number fits SQLite's INTEGER, a C long and a float's
#: whole numbers (a pid of 10**20 made ``os.kill`` raise OverflowError)
_NUMBERS = frozenset((int, float))


def numbers_fit(values: list[Any], *, floats: bool = True) -> bool:
    """Every number among ``values`` (None passed over) finite and within ``MAX_NUMBER``,
    in C: a month of daily counts holds thousands of them. ``floats``: whether any may
    be one (whole numbers need no check for NaN or infinity)."""
    present = list(filter(None, values))  # None, 0 and 0.0 are within any bound
    try:
        return (
            max(present, default=0) < MAX_NUMBER
            and min(present, default=0) > -MAX_NUMBER
            and (not floats or all(map(math.isfinite, present)))
        )
    except TypeError:  # not numbers: the kinds say what they are
        return True


def _of_kinds(kinds: frozenset[type], values: Iterable[Any]) -> bool:
    """Every value of one of ``kinds`` (exactly), numbers within bounds (``numbers_fit``):
    in C, the check every column of plain values goes through."""
    if not kinds & _NUMBERS:
        return kinds.issuperset(map(type, values))
    values = list(values)
    return kinds.issuperset(map(type, values)) and numbers_fit(values, floats=float in kinds)


def _digit_keys(keys: list[str], most: int) -> bool:
    """Every key a run of 1 to ``most`` ASCII digits, in C (document ids, duration buckets)."""
    joined = "".join(keys)
    return (
        "" not in keys
        and joined.isascii()
        and (joined.isdigit() or not joined)
        and max(map(len, keys), default=0) <= most
    )


def list_of(items: FieldSpec, wanted: str, *, nullable: bool = False) -> Nested:
    """A list whose every item fits ``items``; ``nullable``: or null."""
    outer = frozenset((list, type(None)) if nullable else (list,))

    def fits(value: Any) -> bool:
        return (nullable and value is None) or (type(value) is list and all(_fits(v, items) for v in value))

    def column(values: list) -> bool:
        if not outer.issuperset(map(type, values)):
            return False
        inner = chain.from_iterable(v for v in values if v is not None)
        kinds = _exact(items)
        return _of_kinds(kinds, inner) if kinds else all(_fits(v, items) for v in inner)

    return Nested(fits, wanted, column)


def row_of(*columns: FieldSpec, wanted: str) -> Nested:
    """A list of exactly ``len(columns)`` items, each fitting its column."""

    def fits(value: Any) -> bool:
        return (
            type(value) is list
            and len(value) == len(columns)
            and all(_fits(v, c) for v, c in zip(value, columns, strict=True))
        )

    def column(rows: list) -> bool:  # every document's row at once, a position at a time
        if not (_LIST.issuperset(map(type, rows)) and {len(columns)}.issuperset(map(len, rows))):
            return False
        return all(_column(rows, operator.itemgetter(i), spec) for i, spec in enumerate(columns))

    return Nested(fits, wanted, column)


_LIST = frozenset((list,))


def object_with(fields: Fields, wanted: str, *, nullable: bool = False) -> Nested:
    """An object holding ``fields`` (``fields_problem``); ``nullable``: or null."""
    return Nested(
        lambda value: (nullable and value is None) or fields_problem(value, fields) is None,
        wanted,
    )


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
    if type(value) in _NUMBERS and not numbers_fit([value]):
        return f"a number out of range ({value:.3g})"
    for kind, name in _NAMES.items():
        if type(value) is kind:
            return "an empty object" if kind is dict and not value else name
    return type(value).__name__


def _wanted(spec: FieldSpec) -> str:
    if isinstance(spec, Nested):
        return spec.wanted
    if isinstance(spec, frozenset):
        return "one of " + ", ".join(sorted(map(str, spec)))
    kinds = spec if isinstance(spec, tuple) else (spec,)
    return " or ".join(_NAMES.get(k, k.__name__) for k in kinds)


def _fits(value: Any, spec: FieldSpec) -> bool:
    if spec is object:
        return True
    if isinstance(spec, Nested):
        return spec.fits(value)
    if isinstance(spec, frozenset):
        return isinstance(value, str | int) and value in spec
    kinds = spec if isinstance(spec, tuple) else (spec,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON true is not a number here
    if type(value) in _NUMBERS and not numbers_fit([value]):
        return False
    return isinstance(value, kinds)


def fields_problem(doc: Any, fields: Fields, optional: Fields | None = None) -> str | None:
    """The first way ``doc`` differs from ``fields`` (and from ``optional``, where it
    holds them), or None when it fits. ``object`` as a field's spec: required, any value."""
    if not isinstance(doc, dict):
        return f"it is {describe(doc)}, not an object"
    for name, spec in fields.items():
        if name not in doc:
            return f"field {name!r} is missing"
        if not _fits(doc[name], spec):
            return f"field {name!r} is {describe(doc[name])}, not {_wanted(spec)}"
    for name, spec in (optional or {}).items():
        if name in doc and not _fits(doc[name], spec):
            return f"field {name!r} is {describe(doc[name])}, not {_wanted(spec)}"
    return None


Getter = Callable[[dict], Any]


class _Columns:
    """A table's documents checked a column at a time, in C wherever a spec is only
    types: the values of every field of the same kinds in one pass (``itemgetter``,
    ``chain``, ``map(type)``, ``frozenset.issuperset``), no Python call per value. A
    shard holds a hundred summaries of 27 fields and every read checks them all: about
    0.1 ms, a third of parsing it. It says only whether all fit; the message for the
    first document that does not comes from ``fields_problem`` (``tests/test_state_shapes``
    holds the two to the same answer)."""

    def __init__(self, fields: Fields, optional: Fields) -> None:
        checked = {n: s for n, s in fields.items() if s is not object}
        present = [n for n, s in fields.items() if s is object]  # required, any value
        self.present: Getter | None = operator.itemgetter(*present) if present else None
        self.required = _columns(checked)
        self.added = _columns(optional)  # where every document holds them: the usual case
        absent = {
            name: (_exact(spec) | {_Absent}) if _exact(spec) else _or_absent(spec)
            for name, spec in optional.items()
        }
        self.some_absent = [(operator.methodcaller("get", n, _ABSENT), s) for n, s in absent.items()]

    def fit(self, table: dict[str, Any]) -> bool:
        docs = list(table.values())
        try:
            if not (_OBJECT.issuperset(map(type, docs)) and (_ids_fit(table) or all(map(is_doc_id, table)))):
                return False
            if self.present is not None:
                list(map(self.present, docs))  # a field missing: KeyError
            if not all(_column(docs, get, spec) for get, spec in self.required):
                return False
        except (TypeError, KeyError):  # an unhashable value where a word belongs, a field missing
            return False
        try:
            return all(_column(docs, get, spec) for get, spec in self.added)
        except KeyError:  # an optional field some documents do not hold
            return all(_column(docs, get, spec) for get, spec in self.some_absent)
        except TypeError:
            return False


def _columns(fields: Fields) -> list[tuple[Getter | _Flat, FieldSpec]]:
    """(a getter of a document's values, their spec): the fields whose spec is only
    types, grouped by their kinds into one getter (a tuple per document); the rest one
    getter each."""
    groups: dict[frozenset[type], list[str]] = {}
    out: list[tuple[Getter | _Flat, FieldSpec]] = []
    for name, spec in fields.items():
        if _exact(spec):
            groups.setdefault(_exact(spec), []).append(name)
        else:
            out.append((operator.itemgetter(name), spec))
    for kinds, names in groups.items():
        if len(names) == 1:
            out.append((operator.itemgetter(names[0]), kinds))
        else:
            out.append((_Flat(operator.itemgetter(*names)), kinds))
    return out


class _Flat:
    """A getter of several fields whose values are checked as one column."""

    def __init__(self, get: Getter) -> None:
        self.get = get


def _column(docs: list[dict], get: Getter | _Flat, spec: FieldSpec) -> bool:
    """Whether the values ``get`` takes from ``docs`` all fit ``spec``."""
    if isinstance(get, _Flat):
        values: Iterable[Any] = chain.from_iterable(map(get.get, docs))
    else:
        values = map(get, docs)
    if isinstance(spec, type | tuple):
        spec = _exact(spec)  # a type or types: the kinds path below, in C
    if isinstance(spec, frozenset) and spec and all(type(k) is type for k in spec):
        return _of_kinds(spec, values)
    if _words(spec):
        return cast(frozenset, spec).issuperset(values)  # a value among words is text
    if isinstance(spec, Nested):
        column = list(values)
        return spec.column(column) if spec.column else all(map(spec.fits, column))
    return all(_fits(v, spec) for v in values)


def _or_absent(spec: FieldSpec) -> Nested:
    if isinstance(spec, Nested) and spec.column is not None:
        column = spec.column
        return Nested(
            lambda v: v is _ABSENT or _fits(v, spec),
            "",
            lambda values: column([v for v in values if v is not _ABSENT]),
        )
    return Nested(lambda v: v is _ABSENT or _fits(v, spec), "")


_OBJECT = frozenset((dict,))
_FIRST = operator.itemgetter(0)


def _ids_fit(ids: Iterable[str]) -> bool:
    """Every id is ``is_doc_id``'s, checked in C (a shard's hundred ids): ASCII digits, none
    starting with 0. False leaves the answer to ``is_doc_id`` one by one ("0" itself)."""
    keys = list(ids)
    return _digit_keys(keys, MAX_DIGITS) and "0" not in map(_FIRST, keys)


class _Absent:
    """An optional field's value where a document does not hold it."""


_ABSENT = _Absent()


def _words(spec: FieldSpec) -> bool:
    """A spec of text values (``status``): a value among them is text, JSON has no other."""
    return isinstance(spec, frozenset) and all(type(w) is str for w in spec)


def _exact(spec: FieldSpec) -> frozenset[type]:
    """The types a value of ``spec`` may have, exactly (``type(v) in ...``: the fast
    path); empty for a spec of values or parts, which ``_fits`` decides."""
    if isinstance(spec, type):
        return frozenset((spec,))
    if isinstance(spec, tuple):
        return frozenset(spec)
    return frozenset()


def json_object(fields: Fields) -> Shape:
    """A file holding one JSON object with at least ``fields``."""

    def check(data: Any) -> str | None:
        problem = fields_problem(data, fields)
        return f"expected an object with {', '.join(fields)}: {problem}" if problem else None

    return check


def is_doc_id(key: str) -> bool:
    """Whether ``key`` is a TinyDB document id as TinyDB writes one: a whole number in
    ASCII digits, no leading zero. Every reader turns ids into numbers (to order them,
    to count on from the highest): ``"²"`` passes ``str.isdigit`` and fails ``int``,
    and ``"03"`` would name the same document as ``"3"``."""
    return len(key) <= MAX_DIGITS and key.isascii() and key.isdigit() and (key[0] != "0" or key == "0")


def tinydb_file(table: str, fields: Fields, *, optional: Fields | None = None, others: bool = False) -> Shape:
    """A TinyDB database file holding ``table`` (``{table: {"1": doc, ...}}``) whose
    every document has ``fields``, and ``optional`` ones of their kind where they are
    (a field newer workerctl versions write). ``others``: other tables may sit beside it
    (a database shared by several tables, each checked by its own reader)."""

    columns = _Columns(fields, optional or {})

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
        if columns.fit(docs):
            return None
        for doc_id, doc in docs.items():  # the first damage, named
            if not is_doc_id(doc_id):
                return (
                    f"the {table!r} table has a document id {doc_id!r} that is not a whole number "
                    f"of at most {MAX_DIGITS} ASCII digits (1, 2, 3 ...)"
                )
            problem = fields_problem(doc, fields, optional)
            if problem:
                return f"the {table!r} table's document {doc_id}: {problem}"
        return None

    return check
