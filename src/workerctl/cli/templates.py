"""``workerctl templates``."""

import click
from click import Context

from workerctl.cli.common import app, emit, json_options, output_options
from workerctl.cli.shape import ShapedGroup, echo_json

#: what the listing adds to a ``Template``'s fields
JSON_FIELDS = ("plugin",)


@click.group(cls=ShapedGroup)
def templates() -> None:
    """The catalogue of worker templates."""


@templates.command("list")
@output_options
@click.pass_context
def list_cmd(ctx: Context, fmt: str) -> None:
    """Every template: key, title, output mode, sources, categories, plugin."""
    registry = app(ctx).registry
    items = [
        {**t.to_dict(), "plugin": registry.owner("template", t.key)}
        for t in sorted(registry.templates.values(), key=lambda t: t.key)
    ]
    emit(
        fmt,
        items,
        ["key", "title", "output_mode", "plugin"],
        lambda: [
            [
                i["key"],
                i["title"],
                i["output_mode"],
                ", ".join(i["context_sources"]),
                ", ".join(i["tool_categories"]),
            ]
            for i in items
        ],
        ["key", "title", "output mode", "context", "tools"],
        id_key="key",
    )


@templates.command("show")
@click.argument("key")
@json_options
@click.pass_context
def show(ctx: Context, key: str, as_json: bool) -> None:
    """One template in full."""
    from workerctl.errors import NotFoundError

    registry = app(ctx).registry
    template = registry.templates.get(key)
    if template is None:
        raise NotFoundError(f"no template {key!r}", hint="'workerctl templates list' shows them")
    data = {**template.to_dict(), "plugin": registry.owner("template", key)}
    if as_json:
        echo_json(data)
        return
    click.echo(f"{template.key} — {template.title}\n  {template.description}")
    click.echo(f"  context sources: {', '.join(template.context_sources)}")
    click.echo(f"  tool categories: {', '.join(template.tool_categories)}")
    click.echo(f"  output mode:     {template.output_mode}")
    click.echo(f"  max iterations:  {template.max_iterations}")
    contract = getattr(template, "output_contract", None)
    if contract is not None:
        click.echo(f"  output contract: {contract.describe()}")
    click.echo(f"  plugin:          {data['plugin']}\n\nInstructions:")
    for line in template.instructions.rstrip().splitlines():
        click.echo(f"  │ {line}")
    click.echo(f"\nUse it: workerctl worker new NAME --template {template.key}")
