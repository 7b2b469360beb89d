"""Strict validation of a worker's fields, every problem at once.

Every problem is reported with its position and a fix, so a person can repair
a whole workspace in one pass; nothing is guessed or silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from workerctl.digits import whole_number
from workerctl.workers.contract import check as check_contract
from workerctl.workers.model import Problem, Worker
from workerctl.workers.yaml_positions import Locs, dotted

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry

STATUSES = ("draft", "active", "paused")


SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


MAX_ITERATIONS = (1, 50)


TIMEOUT_RANGE = (1, 86400)


FIELDS = (
    "name",
    "description",
    "status",
    "instructions",
    "context_sources",
    "tool_categories",
    "output_mode",
    "max_iterations",
    "timeout",
    "template",
    "executor",
    "review_required",
    "write_scope",
    "output_contract",
)


REQUIRED = ("name", "status", "instructions", "output_mode", "executor")


class _Checker:
    def __init__(self, file: str, locs: Locs) -> None:
        self.file, self.locs = file, locs
        self.problems: list[Problem] = []

    def add(self, path: tuple, message: str, fix: str = "", at_key: bool = False) -> None:
        """Report at ``path``, or at its nearest parent that exists in the file."""
        where = path
        while where not in self.locs and where:
            where = where[:-1]
        key_pos, value_pos = self.locs.get(where, ((1, 1), (1, 1)))
        line, col = key_pos if at_key else value_pos
        self.problems.append(Problem(self.file, line, col, dotted(path), message, fix))

    def text(self, data: dict, key: str, *, required: bool, nonempty: bool = False) -> str | None:
        if key not in data or data[key] is None:
            if required:
                self.problems.append(
                    Problem(self.file, 1, 1, key, "missing required field", f"add '{key}: ...'")
                )
            return None
        value = data[key]
        if not isinstance(value, str):
            self.add((key,), f"must be text, got {_type_name(value)}", "quote the value")
            return None
        if nonempty and not value.strip():
            self.add((key,), "must not be empty", f"write the {key}")
            return None
        return value

    def choice(
        self, data: dict, key: str, options: Collection[str], what: str, required: bool = True
    ) -> str | None:
        value = self.text(data, key, required=required)
        if value is not None and value not in options:
            self.add((key,), f"unknown {what} {value!r}", f"use one of: {', '.join(options)}")
            return None
        return value

    def names(self, data: dict, key: str, known: Collection[str], what: str) -> list[str]:
        if key not in data or data[key] is None:
            return []
        value = data[key]
        if not isinstance(value, list):
            self.add(
                (key,),
                f"must be a list, got {_type_name(value)}",
                f"write it as [{', '.join(list(known)[:2])}]",
            )
            return []
        out = []
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.add((key, index), f"must be a {what} name, got {_type_name(item)}")
            elif item not in known:
                self.add((key, index), f"unknown {what} {item!r}", f"use one of: {', '.join(sorted(known))}")
            elif item in out:
                self.add((key, index), f"{what} {item!r} listed twice", "remove the repeat")
            else:
                out.append(item)
        return out

    def number(self, data: dict, key: str, bounds: tuple, integer: bool, default: Any) -> Any:
        if key not in data:
            return default
        value = data[key]
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            what = "a whole number" if integer else "a number of seconds"
            self.add(
                (key,),
                f"must be {what}, got {_type_name(value)}",
                f"use a value from {bounds[0]} to {bounds[1]}",
            )
            return default
        if not bounds[0] <= value <= bounds[1]:
            self.add(
                (key,),
                f"{value} is outside {bounds[0]}..{bounds[1]}",
                f"use a value from {bounds[0]} to {bounds[1]}",
            )
            return default
        return value


def _type_name(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def validate(
    data: Any, locs: Locs, file: str, stem: str, registry: Registry, deep: bool = False
) -> tuple[Worker | None, list[Problem]]:
    """Check a parsed worker file against the registry of plugins. ``deep`` also runs
    the executor's ``check_settings_deep`` (which may import a heavy library, like
    llm's model list): ``worker validate`` asks for it, everyday commands do not."""
    check = _Checker(file, locs)
    if not isinstance(data, dict):
        check.add(
            (), f"a worker file must be a mapping of fields, got {_type_name(data)}", "start with 'name: ...'"
        )
        return None, check.problems
    for key in data:
        if key not in FIELDS:
            check.add((key,), "unknown field", f"known fields: {', '.join(FIELDS)}", at_key=True)
    name = check.text(data, "name", required=True)
    if name is not None:
        if not SLUG.match(name) or len(name) > 64:
            check.add(
                ("name",),
                f"{name!r} is not a slug",
                "use lower-case letters, digits and single hyphens, e.g. overdue-review",
            )
        elif name != stem:
            check.add(
                ("name",),
                f"{name!r} does not match the file name {stem}.yaml",
                f"rename the file to {name}.yaml or set name: {stem}",
            )
    description = check.text(data, "description", required=False) or ""
    status = check.choice(data, "status", STATUSES, "status")
    instructions = check.text(data, "instructions", required=True, nonempty=True)
    sources = check.names(data, "context_sources", registry.context_sources(), "context source")
    categories = check.names(data, "tool_categories", registry.categories, "tool category")
    output_mode = check.choice(data, "output_mode", sorted(registry.output_modes), "output mode")
    max_iterations = check.number(data, "max_iterations", MAX_ITERATIONS, True, 5)
    timeout = check.number(data, "timeout", TIMEOUT_RANGE, False, 300)
    template = check.text(data, "template", required=False)
    if template is not None and template not in registry.templates:
        check.add(
            ("template",),
            f"unknown template {template!r}",
            f"use one of: {', '.join(sorted(registry.templates))}, or remove the key",
        )
    review_required = data.get("review_required")
    if review_required is not None and not isinstance(review_required, bool):
        check.add(
            ("review_required",),
            f"must be true or false, got {_type_name(review_required)}",
            "write review_required: true or false",
        )
        review_required = None
    write_scope = _check_write_scope(check, data)
    contract = check_contract(check, data.get("output_contract"))
    executor, settings = _check_executor(check, data, registry, deep)
    if deep and executor and not check.problems:
        from workerctl.workers.capabilities import problems as capability_problems

        for path, message, fix in capability_problems(executor, settings, categories, registry):
            check.add(path, message, fix)
    if check.problems:
        return None, check.problems
    assert name and instructions and executor and status and output_mode  # checked above
    worker = Worker(
        name=name,
        status=status,
        instructions=instructions,
        output_mode=output_mode,
        executor=executor,
        description=description,
        context_sources=sources,
        tool_categories=categories,
        max_iterations=max_iterations,
        timeout=timeout,
        template=template,
        executor_settings=settings,
        review_required=review_required,
        write_scope=write_scope,
        output_contract=contract,
        config=data,
    )
    return worker, []


def require_capabilities(worker: Worker, registry: Registry, display: str) -> None:
    """``run start``: refuse a worker its model cannot run (``ConfigError``, exit 2),
    each problem at its line in the worker file (``workers.capabilities``, the same
    check ``worker validate`` makes); nothing is recorded."""
    from workerctl.workers.capabilities import problems as capability_problems

    categories = list(worker.tool_categories)
    gaps = capability_problems(worker.executor, worker.executor_settings, categories, registry)
    if not gaps:
        return
    from workerctl.errors import ConfigError
    from workerctl.workers.yaml_positions import parse_yaml

    _data, locs, _ = parse_yaml(worker.content, display) if worker.content else (None, {}, [])
    check = _Checker(display, locs)
    for path, message, fix in gaps:
        check.add(path, message, fix)
    raise ConfigError(
        f"worker {worker.name!r} cannot run on its model; no run was recorded:",
        check.problems,
        hint=f"fix it with 'workerctl worker edit {worker.name}', then check it with "
        f"'workerctl worker validate {worker.name}'",
    )


def _check_write_scope(check: _Checker, data: dict) -> str:
    """``write_scope``: one of ``engine.write_scope.SCOPES`` (the default when absent)."""
    from workerctl.engine.write_scope import DEFAULT_SCOPE, SCOPES

    value = check.text(data, "write_scope", required=False)
    if value is None:
        return DEFAULT_SCOPE
    if value not in SCOPES:
        check.add(
            ("write_scope",),
            f"unknown write scope {value!r}",
            "use one of: " + "; ".join(f"{k} ({v})" for k, v in SCOPES.items()),
        )
        return DEFAULT_SCOPE
    return value


def _check_executor(
    check: _Checker, data: dict, registry: Registry, deep: bool = False
) -> tuple[str | None, dict]:
    if "executor" not in data or data["executor"] is None:
        check.problems.append(
            Problem(
                check.file,
                1,
                1,
                "executor",
                "missing required field",
                "add 'executor: {name: echo}' or another executor",
            )
        )
        return None, {}
    value = data["executor"]
    path: tuple[str, ...] = ("executor",)
    settings: dict[str, Any] = {}
    if isinstance(value, str):
        name: Any = value
    elif isinstance(value, dict):
        name = value.get("name")
        settings = {k: v for k, v in value.items() if k != "name"}
        path = ("executor", "name") if "name" in value else ("executor",)
        if not isinstance(name, str):
            check.add(path, "the executor needs a name", "add 'name: echo' under executor")
            return None, {}
    else:
        check.add(
            ("executor",),
            f"must be a name or a mapping, got {_type_name(value)}",
            "write 'executor: {name: echo}'",
        )
        return None, {}
    executor = registry.executors.get(name)
    if executor is None:
        check.add(
            path,
            f"unknown executor {name!r}",
            f"use one of: {', '.join(sorted(registry.executors))}, or install its plugin",
        )
        return None, {}
    problems = list(getattr(executor, "check_settings", lambda s: [])(settings))
    deep_checker = getattr(executor, "check_settings_deep", None)
    if deep and deep_checker is not None and not problems:
        try:
            problems = list(deep_checker(settings))
        except ImportError as exc:
            problems = [("", f"executor {name!r} cannot load its library: {exc}", "reinstall its plugin")]
    if problems:
        for where, message, *fix in problems:
            sub = where if isinstance(where, tuple) else tuple(p for p in str(where).split(".") if p)
            sub = tuple(_index_or_key(p) for p in sub)
            check.add(
                ("executor", *sub),
                message,
                fix[0] if fix else f"see 'workerctl executors list' for {name}'s settings",
            )
    return name, settings


def _index_or_key(part: object) -> object:
    """A path part a plugin's check names: a list index when it is a number."""
    number = whole_number(part) if isinstance(part, str) else None
    return part if number is None else number
