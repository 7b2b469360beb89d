"""A run file checked against the dataclasses it is read into, down to the parts.

A run file is the truth the card, ``run diff``, troubleshooting and review read; each
reads typed fields (``run.trigger``, ``iteration.usage``, ``transition["at"]``) as the
dataclasses declare them. ``Run.from_dict`` accepts any JSON in them, so a run file
holding ``"output": 5`` or ``"transitions": [{"at": 1.5}]`` became a traceback in
whichever command met it first. Here every field is held to its declared type
(``list[dict[str, str]]`` is a list of objects of text, a nested dataclass an object
with its required fields), and the parts that are declared loosely (``dict[str, Any]``)
but read by name to ``PARTS`` (a run's context, its side effects, usage, cost ...).
The first difference, named by its path (``iterations[0].usage``), makes the file
damaged: exit 4 naming it.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Union

from workerctl.storage.shapes import numbers_fit

#: what readers take by name from a run's ``context`` (each optional, of its kind)
CONTEXT: dict[str, Any] = {
    "sources": list[str],
    "records": list[dict[str, Any]],
    "missing_links": list[dict[str, Any]],
}
#: a link of the record the run could not follow (``engine.context``): cards and
#: troubleshooting print each
MISSING_LINK: dict[str, Any] = {"link": str, "id": str, "from": str, "reason": str | None}
#: and from each of its ``side_effects`` (``kind`` always there)
SIDE_EFFECT: dict[str, Any] = {"kind": str, "key": str | None, "record_id": str | None, "state": str | None}


@dataclasses.dataclass
class ModelTokens:
    """What ``runs.usage.usage_totals`` writes for each model in a run's ``usage``."""

    input_tokens: int
    output_tokens: int


#: and from ``usage`` and ``cost`` (each part optional: readers take a missing one as unknown)
USAGE: dict[str, Any] = {
    "input_tokens": int | None,
    "output_tokens": int | None,
    "models": dict[str, ModelTokens],
}
COST: dict[str, Any] = {
    "amount": int | float | None,
    "currency": str | None,
    "estimate": bool | None,
    "price_table": str | None,
    "unpriced_models": list[str] | None,
    "error": str | None,
}
CHECK: dict[str, Any] = {"key": str, "title": str, "verdict": str, "evidence": list[str]}
ITERATION_USAGE: dict[str, Any] = {
    "input_tokens": int | None,
    "output_tokens": int | None,
    "model": str | None,
    "latency_ms": int | float | None,
    "ignored": list[str] | None,
}
TRANSITION: dict[str, Any] = {"status": str, "at": str}
#: the process in charge: a pid is probed and signalled (``history.sweep``, ``runs.cancel``)
OWNER: dict[str, Any] = {
    "pid": int | None,
    "host": str | None,
    "proc_start": str | None,
    "boot_id": str | None,
    "pid_ns": str | None,
    "remote": str | None,
}
READ: dict[str, Any] = {"type": str, "id": str}
#: field path -> the named parts of a loosely declared object, and those it must hold
PARTS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "transitions[]": (TRANSITION, ("status", "at")),
    "owner": (OWNER, ()),
    "reads[]": (READ, ("type", "id")),
    "context.records[]": (READ, ("type", "id")),
    "context.missing_links[]": (MISSING_LINK, ("link", "id", "from")),
    "context": (CONTEXT, ()),
    "side_effects[]": (SIDE_EFFECT, ("kind",)),
    "usage": (USAGE, ()),
    "cost": (COST, ()),
    "checks[]": (CHECK, ("key", "verdict")),
    "iterations[].usage": (ITERATION_USAGE, ()),
}


def run_problem(data: dict[str, Any], cls: type) -> str | None:
    """The first way ``data`` (a run file) differs from what ``cls`` (``Run``) declares."""
    return _object_problem(data, cls, "", "")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _form(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """(origin, arguments) of a type hint, worked out once per hint."""
    return typing.get_origin(hint), typing.get_args(hint)


@functools.cache
def _required(cls: type) -> frozenset[str]:
    return frozenset(
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )


def _object_problem(value: Any, cls: type, where: str, generic: str) -> str | None:
    if type(value) is not dict:
        return f"{where or 'the run'} is {type(value).__name__}, not an object"
    missing = _required(cls) - value.keys()
    if missing:
        return f"{where or 'the run'} has no {sorted(missing)[0]!r}"
    hints = _hints(cls)
    for name, part in value.items():
        hint = hints.get(name)
        if hint is not None and hint is not Any:
            dotted = f"{where}.{name}" if where else name
            problem = _problem(part, hint, dotted, f"{generic}.{name}" if generic else name)
            if problem:
                return problem
    return None


def _problem(value: Any, hint: Any, where: str, generic: str) -> str | None:
    """``where``: the value's path (``iterations[0].usage``); ``generic``: the same
    without the indexes (``iterations[].usage``), the key of ``PARTS``."""
    origin, args = _form(hint)
    if hint is Any:
        problem = None
    elif origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        problems = [_problem(value, a, where, generic) for a in args if a is not type(None)]
        return None if None in problems else next(p for p in problems if p)
    elif dataclasses.is_dataclass(hint):
        return _object_problem(value, hint, where, generic)  # type: ignore[arg-type]
    elif origin is list:
        if type(value) is not list:
            return f"{where} is {type(value).__name__}, not a list"
        if args[0] is Any and f"{generic}[]" not in PARTS:
            return None
        for index, part in enumerate(value):
            problem = _problem(part, args[0], f"{where}[{index}]", f"{generic}[]")
            if problem:
                return problem
        return None
    elif origin is dict:
        if type(value) is not dict:
            return f"{where} is {type(value).__name__}, not an object"
        problem = None
        if args[1] is not Any:
            problem = next(
                (
                    p
                    for k, v in value.items()
                    if (p := _problem(v, args[1], f"{where}.{k}", f"{generic}.{k}"))
                ),
                None,
            )
    else:
        kinds = (int, float) if hint is float else (hint,)
        fits = type(value) in kinds and (type(value) not in (int, float) or numbers_fit([value]))
        wanted = getattr(hint, "__name__", hint)
        problem = None if fits else f"{where} is {type(value).__name__}, not {wanted}"
    return problem or (_parts(value, generic, where) if generic in PARTS else None)


def _parts(value: Any, generic: str, where: str) -> str | None:
    """The named parts of a value at a ``PARTS`` path (``generic``), when it is an object."""
    if type(value) is not dict:
        return None
    named, required = PARTS[generic]
    for name in required:
        if name not in value:
            return f"{where} has no {name!r}"
    for name, hint in named.items():
        if name in value:
            problem = _problem(value[name], hint, f"{where}.{name}", f"{generic}.{name}")
            if problem:
                return problem
    return None
