"""``workerctl plugins list``, ``tools list``, ``executors list``."""

from __future__ import annotations

from typing import Any

import click
from click import Context

from workerctl.cli.common import app, emit, output_options
from workerctl.cli.shape import ShapedGroup

#: the fields of the JSON these listings print (besides those of ``Tool.schema``)
JSON_FIELDS = ("name", "version", "builtin", "hooks", "commands", "error", "plugin", "tools", "needs_review")


@click.group(cls=ShapedGroup)
def plugins() -> None:
    """Installed plugins and the hooks they implement."""


@plugins.command("list")
@output_options
@click.pass_context
def plugins_list(ctx: Context, fmt: str) -> None:
    """Plugin, version, built-in or installed, hooks implemented, commands added,
    load errors."""
    from workerctl.plugins.manager import plugin_commands

    registry = app(ctx).registry
    known = len(registry.warnings)
    commands: dict[str, list[str]] = {}
    for name, (plugin, _command) in plugin_commands(registry).items():
        commands.setdefault(plugin, []).append(name)
    for warning in registry.warnings[known:]:  # the commands' own (a clash, a declared one missing)
        app(ctx).warn(warning)
    items: list[dict[str, Any]] = [
        {
            "name": p.name,
            "version": p.version,
            "builtin": p.builtin,
            "hooks": p.hooks,
            "commands": sorted(commands.get(p.name, [])),
            "error": p.error,
        }
        for p in registry.plugins
    ]
    emit(
        fmt,
        items,
        ["name", "version", "builtin", "error"],
        lambda: [
            [
                i["name"],
                i["version"],
                "built-in" if i["builtin"] else "installed",
                ", ".join(i["hooks"]) or "-",
                ", ".join(i["commands"]) or "",
                i["error"] or "",
            ]
            for i in items
        ],
        ["plugin", "version", "kind", "hooks", "commands", "error"],
        id_key="name",
    )


@click.group(cls=ShapedGroup)
def tools() -> None:
    """Tools workers can call, by category."""


@tools.command("list")
@click.option("--category", help="Only tools of this category.")
@output_options
@click.pass_context
def tools_list(ctx: Context, category: str | None, fmt: str) -> None:
    """Tool, category, read/write, plugin and description."""
    registry = app(ctx).registry
    items = [
        {**t.schema(), "plugin": registry.owner("tool", t.name)}
        for t in sorted(registry.tools.values(), key=lambda t: (t.category, t.name))
        if category is None or t.category == category
    ]
    emit(
        fmt,
        items,
        ["name", "category", "writes", "plugin", "description"],
        lambda: [
            [i["name"], i["category"], "write" if i["writes"] else "read", i["plugin"], i["description"]]
            for i in items
        ],
        ["tool", "category", "access", "plugin", "description"],
        id_key="name",
    )


@tools.command("categories")
@output_options
@click.pass_context
def categories(ctx: Context, fmt: str) -> None:
    """Tool categories with their descriptions and tool counts."""
    registry = app(ctx).registry
    items = [
        {
            "name": n,
            "description": c.description,
            "needs_review": c.needs_review,
            "plugin": registry.owner("tool category", n),
            "tools": sum(t.category == n for t in registry.tools.values()),
        }
        for n, c in sorted(registry.categories.items())
    ]
    emit(
        fmt,
        items,
        ["name", "tools", "needs_review", "plugin", "description"],
        lambda: [
            [i["name"], i["tools"], "yes" if i["needs_review"] else "no", i["plugin"], i["description"]]
            for i in items
        ],
        ["category", "tools", "review", "plugin", "description"],
        id_key="name",
    )


@click.group(cls=ShapedGroup)
def executors() -> None:
    """Installed executors."""


@executors.command("list")
@output_options
@click.pass_context
def executors_list(ctx: Context, fmt: str) -> None:
    """Executor, plugin and description."""
    registry = app(ctx).registry
    items = [
        {
            "name": name,
            "plugin": registry.owner("executor", name),
            "description": getattr(e, "description", ""),
        }
        for name, e in sorted(registry.executors.items())
    ]
    emit(
        fmt,
        items,
        ["name", "plugin", "description"],
        lambda: [[i["name"], i["plugin"], i["description"]] for i in items],
        ["executor", "plugin", "description"],
        id_key="name",
    )
