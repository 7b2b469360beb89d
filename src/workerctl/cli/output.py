"""Printing a command's result as asked: a table, JSON (whole, picked, through jq,
one object per line), CSV or ids.

Nothing here imports click, so the fast path (``cli.fast``) prints through the
same functions as the click commands (``common.emit``, ``shape.echo_json``): the
two cannot format a result differently.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import sys
from collections.abc import Callable
from typing import Any, NamedTuple


class Shape(NamedTuple):
    """How ``--json FIELDS``, ``--jq`` and ``--format ndjson`` shape JSON output."""

    fields: tuple[str, ...] | None = None  # None: every field
    jq: str | None = None
    ndjson: bool = False


def echo(text: str = "", err: bool = False) -> None:
    """One line to stdout (or stderr), flushed, written as ``click.echo`` writes text
    (the click group prints its errors and help with it; a test compares the two):
    nothing when the stream is closed (``>&-``), escape sequences stripped when it is
    not a terminal (a path or a record title may hold them), and UTF-8 when the
    stream is set to ASCII (``LC_ALL=C`` without UTF-8, ``PYTHONIOENCODING=ascii``),
    where a table's status symbols would otherwise end in UnicodeEncodeError."""
    stream = _text_stream(sys.stderr if err else sys.stdout)
    if stream is None:
        return
    line = f"{text}\n"
    if "\x1b" in line and not _isatty(stream):
        import re

        line = re.sub(r"\033\[[0-?]*[ -/]*[@-~]", "", line)  # click's ``strip_ansi``
    stream.write(line)
    stream.flush()


class _Utf8Writer(io.TextIOWrapper):
    """A stream's bytes as UTF-8 that, like click's wrapper, never closes them."""

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # already detached or closed
            self.detach()


_UTF8_WRITERS: dict[int, tuple[Any, _Utf8Writer]] = {}


def _text_stream(stream: Any) -> Any:
    """The stream ``click.echo`` writes to for ``stream`` (``click._compat``): the
    stream itself unless it is set to ASCII, else its bytes as UTF-8 with errors
    replaced (one writer per stream, kept, as click keeps it)."""
    if stream is None:
        return None
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        ascii_set = codecs.lookup(encoding).name == "ascii"
    except LookupError:
        ascii_set = False
    buffer = getattr(stream, "buffer", None)
    if not ascii_set or buffer is None:
        return stream
    kept = _UTF8_WRITERS.get(id(stream))
    if kept is None or kept[0] is not stream:
        kept = (stream, _Utf8Writer(buffer, "utf-8", "replace", line_buffering=True))
        _UTF8_WRITERS[id(stream)] = kept
    return kept[1]


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except Exception:  # click's rule: a stream that cannot say is not a terminal
        return False


def pick(data: Any, fields: tuple[str, ...] | None) -> Any:
    """Only ``fields`` of a document, or of each document of a list, in that order."""
    if not fields:
        return data
    docs = data if isinstance(data, list) else [data]
    available: set[str] = set()
    for doc in docs:
        if isinstance(doc, dict):
            available.update(doc)
    unknown = [f for f in fields if docs and f not in available]
    if unknown:
        from workerctl.errors import UsageError

        raise UsageError(f"unknown JSON field {unknown[0]!r}",
                         hint="available: " + ", ".join(sorted(available)))
    picked = [{f: doc.get(f) for f in fields} if isinstance(doc, dict) else doc for doc in docs]
    return picked if isinstance(data, list) else picked[0]


def run_jq(expression: str, data: Any) -> list[Any]:
    """Every result of a jq program over ``data`` (libjq through the ``jq`` package)."""
    import jq

    from workerctl.errors import UsageError

    try:
        program = jq.compile(expression)
    except ValueError as exc:
        raise UsageError(f"--jq: {str(exc).strip()}",
                         hint="the expression is jq's language: https://jqlang.org/manual/") \
            from None
    plain = json.loads(json.dumps(data, default=str))
    try:
        return program.input_value(plain).all()
    except ValueError as exc:
        raise UsageError(f"--jq: {str(exc).strip()}") from None


def ndjson_line(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"), default=str)


def print_json(data: Any, shape: Shape) -> None:
    """Print ``data`` whole, picked, through jq, or one object per line."""
    from workerctl import render

    data = pick(data, shape.fields)
    if shape.jq is not None:
        for result in run_jq(shape.jq, data):
            # strings come out raw, as 'gh --jq' and 'jq -r' print them
            echo(result if isinstance(result, str) else json.dumps(result, ensure_ascii=False))
    elif shape.ndjson:
        for item in data if isinstance(data, list) else [data]:
            echo(ndjson_line(item))
    else:
        echo(render.to_json(data))


def emit(fmt: str, items: list[dict], columns: list[str], rows: Callable[[], list[list[Any]]],
         headers: list[str], shape: Shape, id_key: str = "id",
         empty: str = "nothing to show") -> None:
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
