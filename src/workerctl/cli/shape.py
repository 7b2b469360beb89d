"""Shaping JSON output for scripts: ``--json FIELD,…``, ``--jq EXPR``, ``--format ndjson``.

Every command that prints JSON prints it through ``echo_json``, so picking fields,
filtering with jq and one-object-per-line output work the same everywhere
(``docs/json.md``). jq is the real jq (the ``jq`` binding of libjq), imported only
when ``--jq`` is used.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import click

from workerctl.cli.output import Shape, ndjson_line, print_json, shape_of
from workerctl.cli.suggest import SuggestingGroup

__all__ = [
    "FIELD_SOURCES",
    "Shape",
    "ShapedCommand",
    "ShapedGroup",
    "current_shape",
    "echo_json",
    "field_names",
    "known_fields",
    "ndjson_line",
    "set_shape",
]

META_KEY = "workerctl.shape"
FIELD_NAME = re.compile(r"[a-z][a-z_]*")

#: Where the JSON output's field names are declared, beside the types they describe:
#: a mapping of documented fields (``"name"`` or ``"name, other"`` -> meaning), a
#: tuple of names, or a dataclass whose fields are the document's.
FIELD_SOURCES = (
    "workerctl.runs.model:SUMMARY_FIELDS",
    "workerctl.runs.model:RUN_FIELDS",
    "workerctl.runs.changes:CARD_FACT_FIELDS",
    "workerctl.runs.review:CHECKLIST_FIELDS",
    "workerctl.workers.operations:WORKER_ROW_FIELDS",
    "workerctl.runs.model:Iteration",
    "workerctl.runs.model:ToolCallRecord",
    "workerctl.runs.model:RunError",
    "workerctl.runs.model:Review",
    "workerctl.runs.checks:Check",
    "workerctl.runs.troubleshoot:Report",
    "workerctl.runs.injection:RefusedCall",
    "workerctl.history.ledger:Effect",
    "workerctl.runs.duplicate_guard:GuardDecision",
    "workerctl.runs.bulk:BulkRerun",
    "workerctl.runs.follow:Event",
    "workerctl.runs.stats:JSON_FIELDS",
    "workerctl.runs.search:SEARCH_FIELDS",
    "workerctl.runs.trial:JSON_FIELDS",
    "workerctl.runs.trial:TryItem",
    "workerctl.runs.diff:JSON_FIELDS",
    "workerctl.history.store:PRUNE_FIELDS",
    "workerctl.engine.batch:BatchItem",
    "workerctl.engine.batch:JSON_FIELDS",
    "workerctl.records.model:Record",
    "workerctl.records.model:Comment",
    "workerctl.records.builtin_store:ImportPlan",
    "workerctl.workers.model:Problem",
    "workerctl.workers.versions:Version",
    "workerctl.workers.templates:Template",
    # listings printed by ``emit``: their columns, declared beside the command
    "workerctl.cli.runs_list:RUN_COLUMNS",
    "workerctl.cli.workers:WORKER_COLUMNS",
    "workerctl.cli.ledger:COLUMNS",
    # documents the commands build themselves, declared beside them
    "workerctl.cli.plugins:JSON_FIELDS",
    "workerctl.cli.templates:JSON_FIELDS",
    "workerctl.cli.records:JSON_FIELDS",
    "workerctl.cli.records:SOURCE_FIELDS",
    "workerctl.cli.workers:JSON_FIELDS",
    "workerctl.cli.runs:JSON_FIELDS",
    "workerctl.cli.run:JSON_FIELDS",
    "workerctl.engine.tools:Tool",
)


def field_names(declared: object) -> frozenset[str]:
    """The field names a declaration holds (see ``FIELD_SOURCES``)."""
    import dataclasses

    if isinstance(declared, dict):
        return frozenset(n.strip() for key in declared for n in key.split(","))
    if isinstance(declared, type) and dataclasses.is_dataclass(declared):
        return frozenset(f.name for f in dataclasses.fields(declared))
    if isinstance(declared, tuple | list | frozenset | set):
        return frozenset(str(name) for name in declared)
    raise TypeError(f"not a field declaration: {declared!r}")


@functools.cache
def known_fields() -> frozenset[str]:
    """Every field name any JSON output has, from the declarations beside the types
    (imported only when a word after a bare ``--json`` has to be told from an id).
    After a bare ``--json``, a word made only of these is a field list; anything else
    (a run id, a worker name) is the command's argument: ``run inspect --json 3k9``."""
    import importlib

    names: set[str] = set()
    for source in FIELD_SOURCES:
        module, attr = source.split(":")
        names |= field_names(getattr(importlib.import_module(module), attr))
    return frozenset(names)


def set_shape(ctx: click.Context, json_value: str | None, jq_expr: str | None, ndjson: bool = False) -> bool:
    """Keep the shaping options for ``echo_json``; True when the output is JSON."""
    if jq_expr is not None and not jq_expr.strip():
        raise click.UsageError("--jq needs an expression, e.g. --jq '.[].id'")
    ctx.meta[META_KEY], as_json = shape_of(json_value, jq_expr, ndjson)
    return as_json


def current_shape() -> Shape:
    ctx = click.get_current_context(silent=True)
    return (ctx.meta.get(META_KEY) if ctx else None) or Shape()


def echo_json(data: Any, shape: Shape | None = None) -> None:
    """Print ``data`` as the command line asked: whole, picked, through jq, or ndjson."""
    print_json(data, shape or current_shape())


def _is_field_list(token: str, ambiguous: bool = True) -> bool:
    """Field names separated by commas (no id or name holds a comma). One name alone
    is a field only if some JSON output has it (``known_fields``), and that is asked
    only where the word could be the command's argument (``ambiguous``)."""
    names = [name for name in token.split(",") if name]  # ",id" and "id," as --json= reads them
    if not all(FIELD_NAME.fullmatch(name) for name in names) or not (names or "," in token):
        return False  # "," alone is the empty list, as --json=, reads it: everything
    return "," in token or not ambiguous or all(n in known_fields() for n in names)


class ShapedCommand(click.Command):
    """A command whose ``--json`` takes an optional field list.

    click gives an option with an optional value the next word whatever it is, so
    ``run inspect --json 3k9`` would read the run id as a field list. The word after a
    bare ``--json`` is taken as fields only when every name in it is a known field.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = list(args)
        # a command without arguments (runs list) reads the word as fields, whatever it
        # is: no need to gather every declaration (imports) to tell it from an id
        ambiguous = any(isinstance(p, click.Argument) for p in self.params)
        for index, token in enumerate(args[:-1]):
            if token == "--":
                break
            follow = args[index + 1]
            if token == "--json" and not follow.startswith("-") and not _is_field_list(follow, ambiguous):
                args[index] = "--json="
        return super().parse_args(ctx, args)


class ShapedGroup(SuggestingGroup):
    command_class = ShapedCommand
