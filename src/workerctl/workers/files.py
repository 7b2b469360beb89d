"""Worker files in the workspace: finding, loading (cached per process) and writing.

Loading never stops at the first broken file: each file becomes a
``WorkerFile`` holding its worker or its problems.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from workerctl.errors import ConfigError, NotFoundError, UsageError
from workerctl.names import WORKER_NAME, inside
from workerctl.workers.model import Problem, Worker, WorkerFile
from workerctl.workers.validation import validate
from workerctl.workers.yaml_positions import WORKER_FILE, parse_yaml, read_yaml_text

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry
    from workerctl.workers.templates import Template
    from workerctl.workspace import Workspace


def load_text(
    text: str, path: Path, registry: Registry, display: str | None = None, deep: bool = False
) -> WorkerFile:
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


def load_file(path: Path, registry: Registry, display: str | None = None, deep: bool = False) -> WorkerFile:
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


def _load_file(path: Path, registry: Registry, display: str | None, deep: bool) -> WorkerFile:
    try:
        text, problems = read_yaml_text(path, display or str(path), WORKER_FILE)
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such worker file") from None
    if text is None:
        return WorkerFile(path, path.stem, "", problems=problems)
    return load_text(text, path, registry, display, deep)


def worker_paths(workspace: Workspace) -> list[Path]:
    """The worker files, for every command that lists or finds workers: a ``workers``
    that is not a folder is said, not read as "no workers" (which then recorded every
    worker as deleted)."""
    folder = workspace.workers_dir
    if not folder.is_dir():
        if os.path.lexists(folder):
            raise ConfigError(
                f"{folder} is not a folder; the workers are the YAML files in the folder {folder}",
                hint=f"move {folder} aside and make the folder: mkdir {folder}",
            )
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and not p.name.startswith("."))


def duplicates(paths: list[Path]) -> dict[str, list[Path]]:
    """Worker names defined by more than one file (``x.yaml`` beside ``x.yml``; names
    compared case-folded, as a case-insensitive disk would): the one rule that
    ``workers list``, ``worker validate`` and every command naming a worker
    (``find_path``) apply."""
    by_name: dict[str, list[Path]] = {}
    for path in paths:
        by_name.setdefault(path.stem.casefold(), []).append(path)
    return {name: found for name, found in by_name.items() if len(found) > 1}


def _twins_problem(workspace: Workspace, path: Path, twins: list[Path]) -> Problem:
    others = ", ".join(display_path(workspace, p) for p in twins if p != path)
    return Problem(
        display_path(workspace, path),
        1,
        1,
        "(file)",
        f"worker {path.stem!r} is defined by more than one file (also {others}); none of them runs",
        "keep one file per worker: remove or rename the others",
    )


def display_path(workspace: Workspace, path: Path) -> str:
    try:
        return str(path.relative_to(workspace.root))
    except ValueError:
        return str(path)


def load_all(workspace: Workspace, registry: Registry, deep: bool = False) -> list[WorkerFile]:
    """Every worker file, each loaded on its own: a broken, hostile or outside file
    is a ``WorkerFile`` with problems and never stops the others."""
    out = []
    paths = worker_paths(workspace)
    twins = {p: found for found in duplicates(paths).values() for p in found}
    for path in paths:
        display = display_path(workspace, path)
        if path in twins:
            out.append(
                WorkerFile(path, path.stem, "", problems=[_twins_problem(workspace, path, twins[path])])
            )
            continue
        try:
            inside(workspace.root, path, "worker file")
        except UsageError as exc:
            out.append(
                WorkerFile(
                    path,
                    path.stem,
                    "",
                    problems=[Problem(display, 1, 1, "(file)", f"not read: {exc.message}", exc.hint or "")],
                )
            )
            continue
        try:
            out.append(load_file(path, registry, display, deep))
        except NotFoundError:  # gone since the listing, or a link to nothing: one broken file
            what, fix = (
                (
                    f"a link to {os.readlink(path)}, which does not exist",
                    "restore the file it names, or remove the link",
                )
                if path.is_symlink()
                else ("it is gone", "list the workers again")
            )
            problem = Problem(display, 1, 1, "(file)", f"not read: {what}", fix)
            out.append(WorkerFile(path, path.stem, "", problems=[problem]))
    return out


def read_worker_text(workspace: Workspace, path: Path) -> str:
    """A worker file's raw text (for editing, diffs, versions), within the same limits
    as loading it."""
    display = display_path(workspace, path)
    text, problems = read_yaml_text(path, display, WORKER_FILE)
    if text is None:
        raise ConfigError(f"{display} cannot be read as a worker file:", problems)
    return text


def find_path(workspace: Workspace, name: str) -> Path:
    """The file of worker ``name``: the name follows the rule before any file is looked
    at, and the file (symlinks followed) must be inside the workspace."""
    checked_name(workspace, name)
    candidates = [p for p in worker_paths(workspace) if p.stem.casefold() == name.casefold()]
    if len(candidates) > 1:
        problem = _twins_problem(workspace, candidates[0], candidates)
        raise ConfigError(f"{problem.file}: {problem.message}", hint=problem.fix)
    for suffix in (".yaml", ".yml"):
        path = workspace.workers_dir / f"{name}{suffix}"
        if path.is_symlink() or path.exists():
            inside(workspace.root, path, "worker file")
        if path.is_file():
            return path
    names = [p.stem for p in worker_paths(workspace)]
    close = similar(name, names)
    hint = f"did you mean {', '.join(close)}?" if close else "'workerctl workers list' shows the workers"
    raise NotFoundError(f"no worker named {name!r} in {workspace.workers_dir}", hint=hint)


def checked_name(workspace: Workspace, name: str) -> str:
    """``name`` if it follows the worker-name rule; else the rule's usage error, which
    names the workers it is one slip away from (``overdue--task-review`` breaks the
    rule, yet is as much a typo of ``overdue-task-review`` as ``overdue-task-reviev``)."""
    from workerctl.errors import UsageError

    try:
        return WORKER_NAME.check(name)
    except UsageError as broken:
        close = similar(name, [p.stem for p in worker_paths(workspace)]) if len(name) <= 200 else []
        if not close:
            raise
        raise UsageError(broken.message, hint=f"did you mean {', '.join(close)}? ({broken.hint})") from None


def similar(name: str, names: list[str]) -> list[str]:
    """The names a mistyped one probably meant: a typo or a part of it."""
    from workerctl.spelling import close_spellings

    close = close_spellings(name, names)
    close += [n for n in names if (name in n or n in name) and n not in close]
    return close[:5]


def _is_file(path: Path) -> bool:
    """A file or a symlink there; a name the OS refuses (too long) is no file."""
    try:
        return path.is_file() or path.is_symlink()
    except OSError:
        return False


def path_or_name(workspace: Workspace, text: str) -> Path:
    """The worker file named by ``text``: a worker's name, or the path of its file as
    a user with the file open types it (``workers/x.yaml``, relative to the current
    folder or to the workspace). A path must lead to a file in the workspace's
    ``workers/`` folder; the file itself is then found as for its name."""
    if "/" not in text and not text.endswith((".yaml", ".yml")):
        return find_path(workspace, text)
    given = Path(text).expanduser()
    if given.is_absolute():
        tries = [given]
    else:  # as typed from here, from the workspace, and a bare file name in workers/
        tries = [Path.cwd() / given, workspace.root / given]
        if given.parent == Path("."):
            tries.append(workspace.workers_dir / given)
    found = next((p for p in tries if _is_file(p)), None)
    if found is None:
        workers = workspace.workers_dir.resolve()
        if len(given.name) <= 255 and any(p.parent.resolve() == workers for p in tries):
            names = [p.name for p in worker_paths(workspace)]
            close = similar(given.name, names)
            raise NotFoundError(
                f"{text}: no such worker file in {workspace.workers_dir}",
                hint=f"did you mean {', '.join(close)}?"
                if close
                else "'workerctl workers list' shows the workers",
            )
        return find_path(workspace, text)  # the name rule says what a name is
    folder = found.parent.resolve()
    if folder != workspace.workers_dir.resolve() or found.suffix not in (".yaml", ".yml"):
        raise UsageError(
            f"{text} is not a worker file of this workspace: worker files are "
            f"{workspace.workers_dir}/NAME.yaml",
            hint="move it there, or pass -w with the workspace that holds it",
        )
    return find_path(workspace, found.stem)


def get_worker(workspace: Workspace, registry: Registry, name: str) -> Worker:
    """The valid worker ``name``; a broken file is a ``ConfigError`` listing its problems."""
    path = find_path(workspace, name)
    wf = load_file(path, registry, display_path(workspace, path))
    if wf.worker is None:
        raise ConfigError(
            f"worker {name!r} is invalid:", wf.problems, hint=f"fix it with 'workerctl worker edit {name}'"
        )
    return wf.worker


def status_edit(text: str, new_status: str) -> str:
    """Change the top-level ``status:`` line in place, keeping comments and layout."""
    pattern = re.compile(r"^(status:[ \t]*)(['\"]?)([A-Za-z]+)\2([ \t]*(#.*)?)$", re.M)
    if not pattern.search(text):
        raise ConfigError(
            "cannot find a top-level 'status:' line to change", hint="add 'status: draft' to the worker file"
        )
    return pattern.sub(lambda m: f"{m.group(1)}{new_status}{m.group(4)}", text, count=1)


def render_new(name: str, template: Template | None = None, executor: str = "echo") -> str:
    """The YAML of a new worker, from a template or a commented skeleton."""
    import yaml

    if template is not None:
        description, instructions = template.description, template.instructions
        sources, categories = template.context_sources, template.tool_categories
        mode, iterations = template.output_mode, template.max_iterations
    else:
        description = "What this worker does, in one line"
        instructions = (
            "Role: ...\nRecords to review: ...\nOutput format: ...\n"
            "Do not: ...\nStop and ask for human review when: ...\n"
        )
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
    if template is not None and template.output_contract is not None:
        lines += template.output_contract.yaml_lines()
    lines += ["executor:", f"  name: {executor}", ""]
    return "\n".join(lines)
