"""Printing a command's result as asked: a table, JSON (whole, picked, through jq,
one object per line), CSV or ids.

Every command prints a result through ``emit`` (a listing) or ``print_json``
(one document), so ``--json``, ``--jq``, ``--format`` mean the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from click import echo


@dataclass(frozen=True)
class Shape:
    """How ``--json FIELDS``, ``--jq`` and ``--format ndjson`` shape JSON output."""

    fields: tuple[str, ...] | None = None  # None: every field
    jq: str | None = None
    ndjson: bool = False


def shape_of(json_value: str | None, jq_expr: str | None, ndjson: bool = False) -> tuple[Shape, bool]:
    """The shape ``--json [FIELDS]``, ``--jq`` and ``--format ndjson`` ask for, and
    whether the output is JSON at all."""
    fields = None
    if json_value:
        names = [n.strip() for n in json_value.split(",") if n.strip()]
        fields = tuple(dict.fromkeys(names)) or None
    as_json = json_value is not None or jq_expr is not None or ndjson
    return Shape(fields, jq_expr, ndjson), as_json


def check_fields(fields: tuple[str, ...] | None, available: Iterable[str]) -> None:
    """``--json FIELDS`` against the fields an answer has (or will have): exit 2 naming
    the first unknown one and those there are."""
    known = set(available)
    unknown = [f for f in fields or () if f not in known]
    if unknown:
        from workerctl.errors import UsageError

        raise UsageError(f"unknown JSON field {unknown[0]!r}", hint="available: " + ", ".join(sorted(known)))


def pick(data: Any, fields: tuple[str, ...] | None) -> Any:
    """Only ``fields`` of a document, or of each document of a list, in that order."""
    if not fields:
        return data
    docs = data if isinstance(data, list) else [data]
    available: set[str] = set()
    for doc in docs:
        if isinstance(doc, dict):
            available.update(doc)
    if docs:
        check_fields(fields, available)
    picked = [{f: doc.get(f) for f in fields} if isinstance(doc, dict) else doc for doc in docs]
    return picked if isinstance(data, list) else picked[0]


def run_jq(expression: str, data: Any) -> list[Any]:
    """Every result of a jq program over ``data`` (libjq through the ``jq`` package)."""
    import jq

    from workerctl.errors import UsageError

    try:
        program = jq.compile(expression)
    except ValueError as exc:
        raise UsageError(
            f"--jq: {str(exc).strip()}", hint="the expression is jq's language: https://jqlang.org/manual/"
        ) from None
    from workerctl.jqrun import results
    from workerctl.sanitize import for_jq

    try:
        return results(program, for_jq(data))
    except ValueError as exc:
        raise UsageError(f"--jq: {str(exc).strip()}") from None


def _json_safe(text: str) -> str:
    from workerctl.sanitize import json_safe

    return json_safe(text)


def ndjson_line(item: Any) -> str:
    from workerctl.jsonvalues import dumps

    return _json_safe(dumps(item, ensure_ascii=False, separators=(",", ":"), default=str))


def print_json(data: Any, shape: Shape) -> None:
    """Print ``data`` whole, picked, through jq, or one object per line."""
    from workerctl import render
    from workerctl.jsonvalues import dumps

    data = pick(data, shape.fields)
    if shape.jq is not None:
        for result in run_jq(shape.jq, data):
            # strings come out raw, as 'gh --jq' and 'jq -r' print them
            echo(result if isinstance(result, str) else _json_safe(dumps(result, ensure_ascii=False)))
    elif shape.ndjson:
        for item in data if isinstance(data, list) else [data]:
            echo(ndjson_line(item))
    else:
        echo(render.to_json(data))


def emit(
    fmt: str,
    items: list[dict],
    columns: list[str],
    rows: Callable[[], list[list[Any]]],
    headers: list[str],
    shape: Shape,
    id_key: str = "id",
    empty: str = "nothing to show",
) -> None:
    """Print ``items`` as JSON/CSV/ids, or as a table built by ``rows()``."""
    from workerctl import render

    if fmt == "json":
        print_json(items, shape)
    elif fmt == "csv":
        echo(render.to_csv(items, columns))
    elif fmt == "ids":
        for item in items:
            echo(item[id_key])
    elif not items:
        echo(empty, err=True)
    else:
        echo(render.table(rows(), headers))
