"""The Worker model: YAML loading with line numbers, and strict validation.

Every problem in every worker file is reported at once, each as
``FILE:LINE:COLUMN: field: what is wrong (what would fix it)``, so a person can
fix a whole workspace in one pass. Only safe YAML loading is used.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workerctl.errors import ConfigError, NotFoundError

STATUSES = ("draft", "active", "paused")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_ITERATIONS = (1, 50)
TIMEOUT_RANGE = (1, 86400)
REVIEW_CATEGORIES = ("finance", "crm", "commerce", "hrm")
FIELDS = (
    "name", "description", "status", "instructions", "context_sources", "tool_categories",
    "output_mode", "max_iterations", "timeout", "template", "executor", "review_required",
)
REQUIRED = ("name", "status", "instructions", "output_mode", "executor")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    field: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        fix = f" ({self.fix})" if self.fix else ""
        return f"{self.file}:{self.line}:{self.column}: {self.field}: {self.message}{fix}"

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "column": self.column,
                "field": self.field, "message": self.message, "fix": self.fix}


@dataclass
class Worker:
    name: str
    status: str
    instructions: str
    output_mode: str
    executor: str
    description: str = ""
    context_sources: list[str] = field(default_factory=list)
    tool_categories: list[str] = field(default_factory=list)
    max_iterations: int = 5
    timeout: float = 300
    template: str | None = None
    executor_settings: dict[str, Any] = field(default_factory=dict)
    review_required: bool | None = None
    path: Path | None = None
    content: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    @property
    def needs_review(self) -> bool:
        """Output that can influence customers, money, projects or support needs a person."""
        if self.review_required is not None:
            return self.review_required
        return any(c in REVIEW_CATEGORIES for c in self.tool_categories)


@dataclass
class WorkerFile:
    path: Path
    name: str
    content: str
    worker: Worker | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.worker is not None


def config_hash(config: dict) -> str:
    canonical = json.dumps(config, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# -- YAML with positions -------------------------------------------------------

Locs = dict[tuple, tuple[tuple[int, int], tuple[int, int]]]  # path -> (key pos, value pos)


def _pos(mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def parse_yaml(text: str, file: str) -> tuple[Any, Locs, list[Problem]]:
    """Safe-load ``text`` and remember where every key and item stands."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, [Problem(file, 1, 1, "(file)", "the file is empty",
                                      "write the worker's fields, see 'workerctl worker new'")]
        data = loader.construct_document(node)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark else (1, 1)
        return None, {}, [Problem(file, line, col, "(yaml)", f"unsupported YAML: {exc.problem}",
                                  "only plain YAML is allowed: remove the !!tag")]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        return None, {}, [Problem(file, line, col, "(yaml)", f"invalid YAML: {what}",
                                  "fix the syntax at this position")]
    except yaml.YAMLError as exc:
        return None, {}, [Problem(file, 1, 1, "(yaml)", f"invalid YAML: {exc}", "fix the syntax")]
    finally:
        loader.dispose()
    locs: Locs = {(): (_pos(node.start_mark), _pos(node.start_mark))}
    problems: list[Problem] = []
    _walk(node, (), locs, problems, file)
    return data, locs, problems


def _walk(node, path: tuple, locs: Locs, problems: list[Problem], file: str) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value
            sub = (*path, key)
            if key in seen:
                line, col = _pos(key_node.start_mark)
                problems.append(Problem(file, line, col, _dotted(sub), "key given twice",
                                        "keep only one of them"))
            seen.add(key)
            locs[sub] = (_pos(key_node.start_mark), _pos(value_node.start_mark))
            _walk(value_node, sub, locs, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            sub = (*path, index)
            locs[sub] = (_pos(item.start_mark), _pos(item.start_mark))
            _walk(item, sub, locs, problems, file)


def _dotted(path: tuple) -> str:
    if not path:
        return "(file)"
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- validation ----------------------------------------------------------------

class _Checker:
    def __init__(self, file: str, locs: Locs) -> None:
        self.file, self.locs, self.problems = file, locs, []

    def add(self, path: tuple, message: str, fix: str = "", at_key: bool = False) -> None:
        """Report at ``path``, or at its nearest parent that exists in the file."""
        where = path
        while where not in self.locs and where:
            where = where[:-1]
        key_pos, value_pos = self.locs.get(where, ((1, 1), (1, 1)))
        line, col = key_pos if at_key else value_pos
        self.problems.append(Problem(self.file, line, col, _dotted(path), message, fix))

    def text(self, data: dict, key: str, *, required: bool, nonempty: bool = False) -> str | None:
        if key not in data or data[key] is None:
            if required:
                self.problems.append(Problem(self.file, 1, 1, key, "missing required field",
                                             f"add '{key}: ...'"))
            return None
        value = data[key]
        if not isinstance(value, str):
            self.add((key,), f"must be text, got {_type_name(value)}", "quote the value")
            return None
        if nonempty and not value.strip():
            self.add((key,), "must not be empty", f"write the {key}")
            return None
        return value

    def choice(self, data: dict, key: str, options, what: str, required: bool = True):
        value = self.text(data, key, required=required)
        if value is not None and value not in options:
            self.add((key,), f"unknown {what} {value!r}", f"use one of: {', '.join(options)}")
            return None
        return value

    def names(self, data: dict, key: str, known, what: str) -> list[str]:
        if key not in data or data[key] is None:
            return []
        value = data[key]
        if not isinstance(value, list):
            self.add((key,), f"must be a list, got {_type_name(value)}",
                     f"write it as [{', '.join(list(known)[:2])}]")
            return []
        out = []
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.add((key, index), f"must be a {what} name, got {_type_name(item)}")
            elif item not in known:
                self.add((key, index), f"unknown {what} {item!r}",
                         f"use one of: {', '.join(sorted(known))}")
            elif item in out:
                self.add((key, index), f"{what} {item!r} listed twice", "remove the repeat")
            else:
                out.append(item)
        return out

    def number(self, data: dict, key: str, bounds: tuple, integer: bool, default):
        if key not in data:
            return default
        value = data[key]
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            what = "a whole number" if integer else "a number of seconds"
            self.add((key,), f"must be {what}, got {_type_name(value)}",
                     f"use a value from {bounds[0]} to {bounds[1]}")
            return default
        if not bounds[0] <= value <= bounds[1]:
            self.add((key,), f"{value} is outside {bounds[0]}..{bounds[1]}",
                     f"use a value from {bounds[0]} to {bounds[1]}")
            return default
        return value


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false",
            int: "a number", float: "a number", type(None): "nothing"}.get(type(value),
                                                                         type(value).__name__)


def validate(data: Any, locs: Locs, file: str, stem: str, registry,
             deep: bool = False) -> tuple[Worker | None, list[Problem]]:
    """Check a parsed worker file against the registry of plugins. ``deep`` also runs
    the executor's ``check_settings_deep`` (which may import a heavy library, like
    llm's model list): ``worker validate`` asks for it, everyday commands do not."""
    check = _Checker(file, locs)
    if not isinstance(data, dict):
        check.add((), f"a worker file must be a mapping of fields, got {_type_name(data)}",
                  "start with 'name: ...'")
        return None, check.problems
    for key in data:
        if key not in FIELDS:
            check.add((key,), "unknown field", f"known fields: {', '.join(FIELDS)}", at_key=True)
    name = check.text(data, "name", required=True)
    if name is not None:
        if not SLUG.match(name) or len(name) > 64:
            check.add(("name",), f"{name!r} is not a slug",
                      "use lower-case letters, digits and single hyphens, e.g. overdue-review")
        elif name != stem:
            check.add(("name",), f"{name!r} does not match the file name {stem}.yaml",
                      f"rename the file to {name}.yaml or set name: {stem}")
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
        check.add(("template",), f"unknown template {template!r}",
                  f"use one of: {', '.join(sorted(registry.templates))}, or remove the key")
    review_required = data.get("review_required")
    if review_required is not None and not isinstance(review_required, bool):
        check.add(("review_required",), f"must be true or false, got {_type_name(review_required)}",
                  "write review_required: true or false")
        review_required = None
    executor, settings = _check_executor(check, data, registry, deep)
    if check.problems:
        return None, check.problems
    worker = Worker(
        name=name, status=status, instructions=instructions, output_mode=output_mode,
        executor=executor, description=description, context_sources=sources,
        tool_categories=categories, max_iterations=max_iterations, timeout=timeout,
        template=template, executor_settings=settings, review_required=review_required,
        config=data,
    )
    return worker, []


def _check_executor(check: _Checker, data: dict, registry,
                    deep: bool = False) -> tuple[str | None, dict]:
    if "executor" not in data or data["executor"] is None:
        check.problems.append(Problem(check.file, 1, 1, "executor", "missing required field",
                                      "add 'executor: {name: echo}' or another executor"))
        return None, {}
    value = data["executor"]
    if isinstance(value, str):
        name, settings, path = value, {}, ("executor",)
    elif isinstance(value, dict):
        name = value.get("name")
        settings = {k: v for k, v in value.items() if k != "name"}
        path = ("executor", "name") if "name" in value else ("executor",)
        if not isinstance(name, str):
            check.add(path, "the executor needs a name", "add 'name: echo' under executor")
            return None, {}
    else:
        check.add(("executor",), f"must be a name or a mapping, got {_type_name(value)}",
                  "write 'executor: {name: echo}'")
        return None, {}
    executor = registry.executors.get(name)
    if executor is None:
        check.add(path, f"unknown executor {name!r}",
                  f"use one of: {', '.join(sorted(registry.executors))}, or install its plugin")
        return None, {}
    problems = list(getattr(executor, "check_settings", lambda s: [])(settings))
    deep_checker = getattr(executor, "check_settings_deep", None)
    if deep and deep_checker is not None and not problems:
        try:
            problems = list(deep_checker(settings))
        except ImportError as exc:
            problems = [("", f"executor {name!r} cannot load its library: {exc}",
                         "reinstall its plugin")]
    if problems:
        for where, message, *fix in problems:
            sub = where if isinstance(where, tuple) else tuple(p for p in str(where).split(".") if p)
            sub = tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in sub)
            check.add(("executor", *sub), message,
                      fix[0] if fix else f"see 'workerctl executors list' for {name}'s settings")
    return name, settings


# -- files ---------------------------------------------------------------------

def load_text(text: str, path: Path, registry, display: str | None = None,
              deep: bool = False) -> WorkerFile:
    file = display or str(path)
    data, locs, problems = parse_yaml(text, file)
    wf = WorkerFile(path=path, name=path.stem, content=text, problems=list(problems))
    if problems and data is None:
        return wf
    worker, more = validate(data, locs, file, path.stem, registry, deep)
    wf.problems.extend(more)
    if worker is not None and not wf.problems:
        worker.path, worker.content = path, text
        wf.worker = worker
    return wf


_PARSED: dict[tuple, WorkerFile] = {}


def load_file(path: Path, registry, display: str | None = None, deep: bool = False) -> WorkerFile:
    """Load and validate a worker file; unchanged files are not parsed twice in a process."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such worker file") from None
    key = (str(path), st.st_mtime_ns, st.st_size, id(registry), display, deep)
    cached = _PARSED.get(key)
    if cached is not None:
        return cached
    _PARSED[key] = wf = _load_file(path, registry, display, deep)
    return wf


def _load_file(path: Path, registry, display: str | None, deep: bool) -> WorkerFile:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return WorkerFile(path, path.stem, "", problems=[Problem(
            display or str(path), 1, 1, "(file)", f"not UTF-8 text: {exc}", "save it as UTF-8")])
    return load_text(text, path, registry, display, deep)


def worker_paths(workspace) -> list[Path]:
    folder = workspace.workers_dir
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.suffix in (".yaml", ".yml") and not p.name.startswith("."))


def display_path(workspace, path: Path) -> str:
    try:
        return str(path.relative_to(workspace.root))
    except ValueError:
        return str(path)


def load_all(workspace, registry, deep: bool = False) -> list[WorkerFile]:
    return [load_file(p, registry, display_path(workspace, p), deep)
            for p in worker_paths(workspace)]


def find_path(workspace, name: str) -> Path:
    for suffix in (".yaml", ".yml"):
        path = workspace.workers_dir / f"{name}{suffix}"
        if path.is_file():
            return path
    names = [p.stem for p in worker_paths(workspace)]
    close = [n for n in names if name in n or n in name]
    hint = (f"did you mean {', '.join(close)}?" if close
            else "'workerctl workers list' shows the workers")
    raise NotFoundError(f"no worker named {name!r} in {workspace.workers_dir}", hint=hint)


def get_worker(workspace, registry, name: str) -> Worker:
    """The valid worker ``name``; a broken file is a ``ConfigError`` listing its problems."""
    path = find_path(workspace, name)
    wf = load_file(path, registry, display_path(workspace, path))
    if wf.worker is None:
        raise ConfigError(f"worker {name!r} is invalid:", wf.problems,
                          hint=f"fix it with 'workerctl worker edit {name}'")
    return wf.worker


def status_edit(text: str, new_status: str) -> str:
    """Change the top-level ``status:`` line in place, keeping comments and layout."""
    pattern = re.compile(r"^(status:[ \t]*)(['\"]?)([A-Za-z]+)\2([ \t]*(#.*)?)$", re.M)
    if not pattern.search(text):
        raise ConfigError("cannot find a top-level 'status:' line to change",
                          hint="add 'status: draft' to the worker file")
    return pattern.sub(lambda m: f"{m.group(1)}{new_status}{m.group(4)}", text, count=1)


def render_new(name: str, template=None, executor: str = "echo") -> str:
    """The YAML of a new worker, from a template or a commented skeleton."""
    import yaml

    if template is not None:
        description, instructions = template.description, template.instructions
        sources, categories = template.context_sources, template.tool_categories
        mode, iterations = template.output_mode, template.max_iterations
    else:
        description = "What this worker does, in one line"
        instructions = ("Role: ...\nRecords to review: ...\nOutput format: ...\n"
                        "Do not: ...\nStop and ask for human review when: ...\n")
        sources, categories, mode, iterations = ["tasks"], ["productivity"], "task_comment", 5
    lines = [
        f"name: {name}",
        f"description: {yaml.safe_dump(description, width=1000).strip().removesuffix('...').strip()}",
        "status: draft",
    ]
    if template is not None:
        lines.append(f"template: {template.key}")
    lines.append("instructions: |")
    lines.extend(f"  {line}" if line else "" for line in instructions.rstrip().splitlines())
    lines += [
        f"context_sources: [{', '.join(sources)}]",
        f"tool_categories: [{', '.join(categories)}]",
        f"output_mode: {mode}",
        f"max_iterations: {iterations}",
        "timeout: 120",
    ]
    if template is not None and template.review_required is not None:
        lines.append(f"review_required: {'true' if template.review_required else 'false'}")
    lines += ["executor:", f"  name: {executor}", ""]
    return "\n".join(lines)
