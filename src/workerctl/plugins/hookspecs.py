"""The plugin contract: every hook a ``workerctl`` plugin can implement.

Each hook receives a ``register`` callback and may call it any number of times.
The plugin manager knows which plugin made each call, so ``workerctl plugins
list`` can show who registered what, and a name registered twice is reported
with both plugins named (the first registration wins).

Plugins are found through the ``workerctl`` entry-point group::

    # pyproject.toml of your plugin
    [project.entry-points.workerctl]
    helpdesk = "workerctl_helpdesk"

and implement hooks with the marker exported by ``workerctl.api``, the one module
a plugin imports from::

    from workerctl.api import hookimpl
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

hookspec = pluggy.HookspecMarker("workerctl")


@hookspec
def register_executors(register: Callable[..., None]) -> None:
    """Register executors: the things that do one step of a run.

    ``register(executor)`` takes an object with ``name`` (str), ``description``
    (str) and ``step(request: StepRequest) -> Step``; it may also define
    ``check_settings(settings: dict) -> list[tuple]`` returning
    ``(field, problem, fix)`` tuples (``fix`` optional; ``field`` dotted, e.g.
    ``"script.2"``) so that ``worker validate`` reports bad settings on the
    right line. The engine owns the loop, the tool gate and the iteration
    limit: ``step`` only returns text or tool calls. Raise
    ``workerctl.api.ProviderUnavailable`` or ``InvalidOutput`` for those
    failure kinds (or ``ContextTooLong``, ``ModelNotInstalled``,
    ``UnsupportedFeature``, ``ModelRefused``, ``RateLimited``,
    ``ProviderAuthFailed``); any other exception becomes ``executor_error``.
    Optional for a model executor: ``capabilities(settings) -> Capabilities``,
    ``count_tokens(settings, text)`` and ``own_parts(request)`` (checked before
    a run and before each step: ``docs/local-models.md``).

    Example::

        from workerctl.api import Step, hookimpl

        class Shout:
            name = "shout"
            description = "Answers with the instructions in capitals"

            def step(self, request):
                return Step(text=request.instructions.upper())

        @hookimpl
        def register_executors(register):
            register(Shout())
    """


@hookspec
def register_tools(register: Callable[..., None]) -> None:
    """Register tools: callable actions that workers reach through the tool gate.

    ``register(tool)`` takes a ``workerctl.api.Tool``: a name, the category it
    belongs to, a description, whether it writes, a JSON-schema-like parameter
    description (``type: object`` with ``properties`` and ``required``), and the
    function, called as ``function(ctx, **arguments)`` with a
    ``workerctl.api.ToolContext``. ``ctx.records`` (``workerctl.api.RunRecords``) is
    the only way a tool reads or writes records: it gates reads by the worker's context
    sources and writes by its write scope, leaves out records the worker may not
    access, logs every read, and journals every write (held when the run needs a
    person). See docs/plugins.md, "The records API".

    Example::

        from workerctl.api import Tool, hookimpl

        def read_ticket(ctx, ticket_id):
            return ctx.records.get(ticket_id, type="ticket").to_dict()

        @hookimpl
        def register_tools(register):
            register(Tool(
                name="read_ticket", category="support", function=read_ticket,
                description="Read one helpdesk ticket",
                parameters={"type": "object",
                            "properties": {"ticket_id": {"type": "string"}},
                            "required": ["ticket_id"]},
            ))
    """


@hookspec
def register_tool_categories(register: Callable[..., None]) -> None:
    """Register tool categories that workers can list in ``tool_categories``.

    ``register(name, description, needs_review=False)``. A worker may call a
    tool only when the tool's category is among the worker's
    ``tool_categories``. ``needs_review=True`` says that what the category's
    tools do can reach a customer, an invoice or a support decision: output of
    a worker allowed it is reviewed by a person before anyone acts on it.

    Example::

        @hookimpl
        def register_tool_categories(register):
            register("support", "Read and answer helpdesk tickets", needs_review=True)
    """


@hookspec
def register_templates(register: Callable[..., None]) -> None:
    """Register worker templates: named starting points for ``worker new``.

    ``register(template)`` takes a ``workerctl.api.Template`` (key,
    title, description, instructions, context_sources, tool_categories,
    output_mode, max_iterations).

    Example::

        from workerctl.api import Template

        @hookimpl
        def register_templates(register):
            register(Template(
                key="ticket-triage", title="Ticket triage",
                description="Draft a first answer for a new ticket",
                instructions="You triage one helpdesk ticket...",
                context_sources=["tickets"], tool_categories=["support"],
                output_mode="review_note",
            ))
    """


@hookspec
def register_record_sources(register: Callable[..., None]) -> None:
    """Register record sources: where business records and their comments live.

    ``register(factory)`` takes a callable ``factory(workspace)`` returning a
    ``workerctl.api.RecordSource``. The source declares what it owns: its
    ``record_types`` (``records import`` sends records of those types to it),
    the context sources that expose them to workers (``context_sources =
    {"tickets": ["ticket"]}``, so ``worker validate`` accepts those names) and
    its ``link_rules`` (``LinkRule``: how its records reach others when a
    run's context is assembled).

    Example::

        @hookimpl
        def register_record_sources(register):
            register(TicketSource)   # TicketSource(workspace) -> RecordSource
    """


@hookspec
def register_output_modes(register: Callable[..., None]) -> None:
    """Register output modes: what happens to a run's final text.

    ``register(mode)`` takes a ``workerctl.api.OutputMode`` with a
    ``name``, a ``description``, ``needs_record`` (the record types it writes
    to, or ``()`` when it writes nowhere) and ``apply(ctx, text)`` which writes
    through ``ctx.records`` (the same records API and gates as a tool), once per run.

    Example::

        @hookimpl
        def register_output_modes(register):
            register(OutputMode(name="ticket_reply", description="Reply on the ticket",
                                needs_record=("ticket",), apply=post_reply))
    """


@hookspec
def register_review_checks(register: Callable[..., None]) -> None:
    """Register review checks: what ``run review`` (and the card) decides about a run.

    ``register(check)`` takes a ``workerctl.api.ReviewCheck``: a ``key``, a
    ``title`` (the checklist item), and ``decide(evidence) -> Check``, where
    ``evidence`` is a ``workerctl.api.ReviewEvidence`` (the run with its
    iterations, tool calls and output; ``snapshots``: the records it read, as
    it read them; ``seen``: their text; the record book). Return a
    ``workerctl.api.Check`` with ``PASS``, ``FAIL`` or ``CANNOT_TELL`` and evidence
    lines quoting the sentence and the data compared; say ``CANNOT_TELL`` when
    the data is missing (an older run), never ``PASS``. Checks with
    ``at_finish=True`` (the default) are decided as each run finishes and their
    verdict is kept on the run (card, ``runs list``): keep them offline and
    cheap, or pass ``at_finish=False``. ``before_write=True`` also decides the
    check before an output mode writes: a fail stops the write. A check that
    raises says ``CANNOT_TELL``. The built-in checks register through this hook.

    Example::

        from workerctl.api import CANNOT_TELL, FAIL, PASS, Check, ReviewCheck, hookimpl

        def no_shouting(evidence):
            text = evidence.output
            if not text:
                return Check("no_shouting", "The output does not shout", CANNOT_TELL, ["no output"])
            loud = [line for line in text.splitlines() if line.isupper() and len(line) > 12]
            verdict = FAIL if loud else PASS
            return Check("no_shouting", "The output does not shout", verdict, loud or ["no line in capitals"])

        @hookimpl
        def register_review_checks(register):
            register(ReviewCheck("no_shouting", "The output does not shout", no_shouting))
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add command groups to the ``workerctl`` command line.

    ``cli`` is the top-level click group; add commands to it with
    ``cli.add_command`` or the ``@cli.group()`` decorator. Plugin commands are
    loaded only when their name is used, so they do not slow down other
    commands; ``workerctl plugins list`` shows which plugin adds which command.

    Example::

        import click

        @hookimpl
        def register_commands(cli: click.Group) -> None:
            @cli.group()
            def weather():
                "Weather commands."

            @weather.command()
            def today():
                click.echo("sunny")
    """
