"""The plugin manager: built-in plugins plus the ``workerctl`` entry-point group
(read by ``plugins.declared``).

Built-in executors, tools, templates and record sources register through the
same hooks as any installed plugin. Registration is collected into a
``Registry`` that remembers which plugin registered each name; a plugin that
fails to import, raises in a hook or registers a name already taken produces a
warning and the rest keeps working.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from workerctl.engine.tools import Tool, ToolCategory
from workerctl.plugins import hookspecs
from workerctl.version import __version__

if TYPE_CHECKING:
    from workerctl.engine.outputs import OutputMode
    from workerctl.engine.remote import RemoteExecutor
    from workerctl.engine.step import Executor
    from workerctl.records.model import LinkRule, RecordSource
    from workerctl.runs.review import ReviewCheck
    from workerctl.workers.templates import Template

ENTRY_POINT_GROUP = "workerctl"

BUILTIN_PLUGINS = (
    "workerctl.plugins.builtin.categories",
    "workerctl.plugins.builtin.record_source",
    "workerctl.plugins.builtin.record_tools",
    "workerctl.plugins.builtin.templates",
    "workerctl.plugins.builtin.output_modes",
    "workerctl.plugins.builtin.echo_executor",
    "workerctl.plugins.builtin.command_executor",
    "workerctl.plugins.builtin.review_checks",
)

COMMAND_HOOK = "register_commands"

KINDS = {
    "register_executors": "executor",
    "register_tools": "tool",
    "register_tool_categories": "tool category",
    "register_templates": "template",
    "register_record_sources": "record source",
    "register_output_modes": "output mode",
    "register_review_checks": "review check",
}


@dataclass
class PluginInfo:
    name: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    package: str = ""  # the installed package that declares it (none for a built-in)


@dataclass
class Registry:
    """Everything the plugins registered, by kind and name, with owners."""

    executors: dict[str, Executor | RemoteExecutor] = field(default_factory=dict)
    tools: dict[str, Tool] = field(default_factory=dict)
    categories: dict[str, ToolCategory] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    record_sources: dict[str, type[RecordSource]] = field(default_factory=dict)
    output_modes: dict[str, OutputMode] = field(default_factory=dict)
    review_checks: dict[str, ReviewCheck] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    command_plugins: list[tuple[str, Callable]] = field(default_factory=list)

    def owner(self, kind: str, name: str) -> str:
        return self.owners.get((kind, name), "?")

    def fingerprint(self) -> dict[str, str]:
        """Plugin name → version; a rerun compares it to see if plugins changed."""
        return {p.name: p.version for p in self.plugins if not p.error}

    def context_sources(self) -> dict[str, list[str]]:
        """Context source name → record types, gathered from the record sources."""
        found: dict[str, list[str]] = {}
        for factory in self.record_sources.values():
            for source, types in getattr(factory, "context_sources", {}).items():
                found.setdefault(source, []).extend(types)
        return found

    def link_rules(self) -> list[LinkRule]:
        """How records reach each other, as every record source declares it."""
        return [
            rule for factory in self.record_sources.values() for rule in getattr(factory, "link_rules", ())
        ]

    def owner_of_type(self, record_type: str) -> str | None:
        """The name of the record source that owns ``record_type``, if any."""
        for name, factory in self.record_sources.items():
            if record_type in getattr(factory, "record_types", ()):
                return name
        return None


def _add(registry: Registry, kind: str, table: dict[str, Any], name: object, value: Any, plugin: str) -> None:
    if not isinstance(name, str) or not name:
        registry.warnings.append(f"plugin {plugin!r} registered a {kind} without a name; ignored")
        return
    if name in table:
        registry.warnings.append(
            f"plugin {plugin!r} registers {kind} {name!r}, already registered by plugin "
            f"{registry.owner(kind, name)!r}; the second registration is ignored"
        )
        return
    table[name] = value
    registry.owners[(kind, name)] = plugin


# hook -> (the registry table it fills, the attribute that names a registered thing)
TABLES = {
    "register_executors": ("executors", "name"),
    "register_tools": ("tools", "name"),
    "register_templates": ("templates", "key"),
    "register_record_sources": ("record_sources", "name"),
    "register_output_modes": ("output_modes", "name"),
    "register_review_checks": ("review_checks", "key"),
}


def _registrar(registry: Registry, hook: str, plugin: str) -> Callable:
    kind = KINDS[hook]
    if hook == "register_tool_categories":

        def register_category(name: str, description: str = "", *, needs_review: bool = False) -> None:
            _add(
                registry,
                kind,
                registry.categories,
                name,
                ToolCategory(name, description, bool(needs_review)),
                plugin,
            )

        return register_category
    table_name, name_attr = TABLES[hook]
    table = getattr(registry, table_name)
    return lambda thing: _add(registry, kind, table, getattr(thing, name_attr, ""), thing, plugin)


class PluginCodeFailed(Exception):
    """A plugin's code (its import, a hook) raised; ``str()`` is the one-line report."""


def call_plugin(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """The one way workerctl calls a plugin's code while it builds the registry: its
    import and each of its hooks. Whatever the plugin raises (``SystemExit`` from an
    ``argparse`` at import, a ``BaseException`` of its own, an exception whose message
    cannot be read) becomes ``PluginCodeFailed`` with one line (``errors.described``),
    for the caller to record against that plugin; only Ctrl-C and SIGTERM, which are
    the user's, go on up. What the plugin prints goes to stderr, so a ``--json``
    document on stdout stays one document."""
    from workerctl.errors import Terminated, described

    try:
        with contextlib.redirect_stdout(sys.stderr):
            return function(*args, **kwargs)
    except (KeyboardInterrupt, Terminated):
        raise
    except BaseException as exc:
        raise PluginCodeFailed(described(exc)) from None


def make_plugin_manager(extra_plugins: tuple = ()) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        infos.append(PluginInfo(module_name, __version__, builtin=True))
    infos.extend(_load_entry_points(pm))
    for plugin in extra_plugins:
        name = getattr(plugin, "__name__", repr(plugin))
        pm.register(plugin, name=name)
        infos.append(PluginInfo(name, "test", builtin=False))
    return pm, infos


def _load_entry_points(pm: pluggy.PluginManager) -> list[PluginInfo]:
    from workerctl.plugins.declared import declared_plugins

    infos = []
    for declared in declared_plugins():
        info = PluginInfo(declared.name, declared.version, builtin=False, package=declared.package)
        infos.append(info)
        if declared.problem:
            info.error = f"not loaded: {declared.problem}"
            continue
        if pm.has_plugin(declared.name) or pm.is_blocked(declared.name):
            info.error = "a plugin of that name is already loaded"
            continue
        try:  # a broken plugin must not break workerctl
            module = call_plugin(declared.load)
            call_plugin(pm.register, module, name=declared.name)
        except PluginCodeFailed as failed:
            info.error = f"failed to load: {failed}"
    return infos


def build_registry(extra_plugins: tuple = ()) -> Registry:
    """Load every plugin and call its hooks one implementation at a time."""
    pm, infos = make_plugin_manager(extra_plugins)
    registry = Registry(plugins=infos)
    by_name = {info.name: info for info in infos}
    for info in infos:
        if info.error:
            registry.warnings.append(f"plugin {info.name!r} skipped: {info.error}")
    for impl in pm.hook.register_commands.get_hookimpls():
        registry.command_plugins.append((impl.plugin_name, impl.function))
        owner = by_name.get(impl.plugin_name)
        if owner is not None:
            owner.hooks.append(COMMAND_HOOK)
    for hook in KINDS:
        caller = getattr(pm.hook, hook)
        # get_hookimpls() lists in registration order: built-ins first, so they
        # win a name clash against a later plugin.
        for impl in caller.get_hookimpls():
            name = impl.plugin_name
            owner = by_name.get(name)
            if owner is not None and hook not in owner.hooks:
                owner.hooks.append(hook)
            kwargs = {"register": _registrar(registry, hook, name)}
            try:
                call_plugin(impl.function, **{k: v for k, v in kwargs.items() if k in impl.argnames})
            except PluginCodeFailed as failed:
                registry.warnings.append(f"plugin {name!r} failed in {hook}: {failed}")
    return registry


_cached: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use (plugins load lazily)."""
    global _cached
    if _cached is None:
        _cached = build_registry()
    return _cached


def reset_registry(registry: Registry | None = None) -> None:
    """Forget (or replace) the cached registry; tests use it to add plugins."""
    global _cached
    _cached = registry


def plugin_commands(registry: Registry) -> dict[str, tuple[str, Any]]:
    """Command name → (plugin, click command) for every plugin's ``register_commands``."""
    import click

    from workerctl.plugins.declared import declared_commands

    declared = declared_commands()
    package_of = {info.name: info.package for info in registry.plugins}
    adding: dict[str, list[tuple[str, Any]]] = {}
    for plugin, function in registry.command_plugins:
        group = click.Group()
        try:
            call_plugin(function, cli=group)
        except PluginCodeFailed as failed:
            registry.warnings.append(f"plugin {plugin!r} failed in register_commands: {failed}")
            continue
        for name, command in group.commands.items():
            adding.setdefault(name, []).append((plugin, command))
    found: dict[str, tuple[str, Any]] = {}
    for name, candidates in adding.items():
        # the plugin of the package --help names for this command wins a clash, so the
        # command that runs is the one that was listed; otherwise the first plugin
        listed = declared.get(name)
        chosen = next(
            (c for c in candidates if listed is not None and package_of.get(c[0]) == listed.package),
            candidates[0],
        )
        found[name] = chosen
        for plugin, _ in candidates:
            if plugin != chosen[0]:
                registry.warnings.append(
                    f"plugin {plugin!r} adds command {name!r}, already added by plugin {chosen[0]!r}; ignored"
                )
    for name, listed in sorted(declared.items()):
        if name not in found:  # listed by --help, yet typing it would say "No such command"
            registry.warnings.append(
                f"package {listed.package!r} declares command {name!r} (entry point group "
                f"workerctl.commands) but no plugin's register_commands adds it; add it there"
            )
    return found


def plugins_of_package(registry: Registry, package: str) -> list[str]:
    """The names of the plugins ``package`` declares (to quote their problems only)."""
    return [info.name for info in registry.plugins if info.package and info.package == package]
