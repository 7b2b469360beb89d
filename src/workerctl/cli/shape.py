"""Shaping JSON output for scripts: ``--json FIELD,…``, ``--jq EXPR``, ``--format ndjson``.

Every command that prints JSON prints it through ``echo_json``, so picking fields,
filtering with jq and one-object-per-line output work the same everywhere
(``docs/json.md``). jq is the real jq (the ``jq`` binding of libjq), imported only
when ``--jq`` is used.
"""

from __future__ import annotations

import re
from typing import Any

import click

from workerctl.cli.output import Shape, ndjson_line, print_json, shape_of
from workerctl.cli.suggest import SuggestingGroup

__all__ = [
    "KNOWN_FIELDS",
    "Shape",
    "ShapedCommand",
    "ShapedGroup",
    "current_shape",
    "echo_json",
    "ndjson_line",
    "set_shape",
]

META_KEY = "workerctl.shape"
FIELD_LIST = re.compile(r"^[a-z][a-z_]*(,[a-z][a-z_]*)*$")

# Every field name any JSON output has (docs/json.md; a test keeps them in step). After
# a bare ``--json``, a word made only of these is a field list; anything else (a run
# id, a worker name) is the command's argument: ``run inspect --json 3k9`` still works.
KNOWN_FIELDS = frozenset(
    (
        "id",
        "worker",
        "status",
        "created",
        "started",
        "finished",
        "duration",
        "record_id",
        "record_type",
        "trigger",
        "executor",
        "config_hash",
        "preview",
        "error_kind",
        "error_message",
        "needs_review",
        "review",
        "rerun_of",
        "iterations",
        "tokens",
        "side_effects",
        "config",
        "transitions",
        "record_title",
        "record_fingerprint",
        "reason",
        "test",
        "plugins",
        "output_mode",
        "context",
        "output",
        "error",
        "owner",
        "record_exists",
        "worker_now",
        "current_config_hash",
        "review_pending",
        "worker_version",
        "usage",
        "cost",
        "input_tokens",
        "output_tokens",
        "name",
        "file",
        "valid",
        "problems",
        "template",
        "context_sources",
        "tool_categories",
        "description",
        "last_run",
        "last_status",
        "last_run_at",
        "success_rate",
        "runs_counted",
        "max_iterations",
        "timeout",
        "executor_settings",
        "instructions",
        "recent_runs",
        "type",
        "title",
        "fields",
        "links",
        "safe_for_testing",
        "restricted_to",
        "source",
        "due",
        "comments",
        "version",
        "time",
        "action",
        "hash",
        "run_id",
        "applicable",
        "message",
        "steps",
        "causes",
        "rerun",
        "counts",
        "p50_seconds",
        "p95_seconds",
        "failed",
        "completed",
        "runs",
        "key",
        "files",
        "added",
        "replaced",
        "dry_run",
        "removed",
        "kept_unfinished",
        "refused_calls",
        "checks",
        "reads",
        "human_items",
        "review_reasons",
        "reviewed",
        "model",
        "currency",
        "failures",
        "estimated_cost",
        "runs_priced",
        "seconds",
        "ok",
        "interrupted",
        "reruns",
        "cancelled",
        "side_effects_forgotten",
        "refused",
        "verdict",
        "allowed",
        "effects",
        "running",
        "changed",
        "step",
        "target",
        "kind",
        "state",
        "at",
        "committed_at",
        "detail",
        "settled",
    )
)


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


def _is_field_list(token: str) -> bool:
    """A known field, or several separated by commas (no id or name holds a comma)."""
    names = token.split(",")
    return bool(FIELD_LIST.match(token)) and (len(names) > 1 or all(n in KNOWN_FIELDS for n in names))


class ShapedCommand(click.Command):
    """A command whose ``--json`` takes an optional field list.

    click gives an option with an optional value the next word whatever it is, so
    ``run inspect --json 3k9`` would read the run id as a field list. The word after a
    bare ``--json`` is taken as fields only when every name in it is a known field.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = list(args)
        for index, token in enumerate(args[:-1]):
            if token == "--":
                break
            follow = args[index + 1]
            if token == "--json" and not follow.startswith("-") and not _is_field_list(follow):
                args[index] = "--json="
        return super().parse_args(ctx, args)


class ShapedGroup(SuggestingGroup):
    command_class = ShapedCommand
