"""Worker services: the overview, new/edit/pause/activate/restore, diffs, run stats.

Every change made through workerctl is validated before it reaches the worker
file and is kept as a version, so an edit can always be undone.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workerctl.errors import ConfigError, NotFoundError, UsageError
from workerctl.workers.files import (
    display_path,
    find_path,
    load_all,
    load_file,
    load_text,
    read_worker_text,
    render_new,
    status_edit,
)
from workerctl.workers.model import WorkerFile

if TYPE_CHECKING:
    from workerctl.history.store import History
    from workerctl.plugins.manager import Registry
    from workerctl.runs.model import Run
    from workerctl.workers.versions import Versions
    from workerctl.workspace import Workspace


@dataclass
class RunStats:
    last_status: str | None = None
    last_created: str | None = None
    last_id: str | None = None
    success_rate: float | None = None
    finished: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_run": self.last_id,
            "last_status": self.last_status,
            "last_run_at": self.last_created,
            "success_rate": self.success_rate,
            "runs_counted": self.finished,
        }


def run_stats(history: History, names: list[str]) -> dict[str, RunStats]:
    """Each worker's last run and success rate over its last 50 finished runs (refusals
    of a paused or draft worker not counted), from the workers index: one file."""
    found = history.indexes.worker_stats()
    stats = {}
    for name in names:
        item = found.get(name)
        last = (item or {}).get("last") or {}
        stats[name] = RunStats(
            last_status=last.get("status"),
            last_created=last.get("created"),
            last_id=last.get("id"),
            success_rate=item["success_rate"] if item else None,
            finished=item["runs_counted"] if item else 0,
        )
    return stats


#: ``workers list --json``: each row's fields (``worker_row``) and what they mean;
#: docs/json.md's table is these rows
WORKER_ROW_FIELDS: dict[str, str] = {
    "name, file, valid": "the worker file and whether it validates",
    "status": "`draft`, `active`, `paused`, or `broken` for an invalid file",
    "problems": "a broken file's problems, `[{file, line, column, field, message, fix}]`; `[]` when valid",
    "output_mode, template, executor, context_sources, tool_categories, description": (
        "the worker's fields (null for a broken file)"
    ),
    "last_run, last_status, last_run_at": "its newest run, or null",
    "success_rate": "completed / finished over its last 50 runs, or null",
    "runs_counted": "how many finished runs that rate counts",
}


def worker_row(wf: WorkerFile, stats: RunStats | None) -> dict[str, Any]:
    """One row of ``workers list``: every row has every field (``WORKER_ROW_FIELDS``), a
    broken file's worker fields null, a valid file's problems empty, so a script reads
    each row the same way whichever it is."""
    w = wf.worker
    row: dict[str, Any] = {
        "name": wf.name,
        "file": str(wf.path),
        "valid": w is not None,
        "status": w.status if w is not None else "broken",
        "problems": [p.to_dict() for p in wf.problems] if w is None else [],
    }
    for field in ("output_mode", "template", "executor", "context_sources", "tool_categories", "description"):
        row[field] = getattr(w, field) if w is not None else None
    row.update((stats or RunStats()).to_dict())
    return row


def worker_files(
    workspace: Workspace, registry: Registry, versions: Versions, deep: bool = False
) -> list[WorkerFile]:
    """All worker files, each change found on disk kept as a new version first.

    Every command that lists or changes workers calls this, so an edit made by
    hand is in the version history before anything else happens to the file.
    Reading never needs to write (``Versions.notice``): where the versions cannot
    be written now, the files are listed as they are and the next command that can
    write records them, as the crash sweep does; a command that changes a worker
    waits for the lock, or meets the same refusal, when it writes.
    """
    files = load_all(workspace, registry, deep)
    versions.notice({wf.name: wf.content for wf in files})
    return files


def new_worker(
    workspace: Workspace,
    registry: Registry,
    versions: Versions,
    name: str,
    template_key: str | None,
    executor: str = "echo",
) -> str:
    from workerctl.names import TEMPLATE_KEY

    path = workspace.worker_file(name)
    if template_key is not None:
        TEMPLATE_KEY.check(template_key)
    if path.exists() or path.is_symlink() or path.with_suffix(".yml").exists():
        raise UsageError(
            f"worker {name!r} already exists ({path})", hint=f"edit it with 'workerctl worker edit {name}'"
        )
    template = None
    if template_key is not None:
        template = registry.templates.get(template_key)
        if template is None:
            raise NotFoundError(
                f"unknown template {template_key!r}", hint="'workerctl templates list' shows the catalogue"
            )
    if executor not in registry.executors:
        raise UsageError(
            f"unknown executor {executor!r}", hint="'workerctl executors list' shows what is installed"
        )
    text = render_new(name, template, executor)
    checked = load_text(text, path, registry, display_path(workspace, path))
    if not checked.ok:
        raise ConfigError("the new worker would be invalid:", checked.problems)
    worker_files(workspace, registry, versions)  # changes found on disk come first
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    versions.record(name, text, "new" + (f" from template {template_key}" if template_key else ""))
    return str(path)


def check_edit(workspace: Workspace, registry: Registry, name: str, text: str) -> WorkerFile:
    path = find_path(workspace, name)
    return load_text(text, path, registry, display_path(workspace, path))


class EditConflict(UsageError):
    """The worker file changed after the edit began: the edit is refused, kept aside."""


def save_edit(
    workspace: Workspace,
    registry: Registry,
    versions: Versions,
    name: str,
    text: str,
    action: str = "edit",
    *,
    expected: str | None = None,
) -> bool:
    """Validate and write ``text`` as the worker file; False if nothing changed.

    ``expected``: the file's text when the edit began (the editor opened, the status
    was read). Under the workspace lock, the file is read again; if it is no longer
    that text (another edit saved meanwhile, a pause, a ``git pull``), nothing is
    written: ``EditConflict`` (exit 2) shows the difference and says where the edit
    is kept, so no save silently reverts another."""
    from workerctl.storage.atomic import write_text_atomic

    with versions.lock:
        path = find_path(workspace, name)
        current = read_worker_text(workspace, path)
        versions.record(name, current, "found on disk")
        if expected is not None and current != expected:
            kept = _keep_edit(workspace, name, text)
            diff = unified(current, text, f"{display_path(workspace, path)} (on disk now)", "your edit")
            raise EditConflict(
                f"{display_path(workspace, path)} changed since the edit began; your edit was not saved "
                f"and is kept in {kept}\n{diff.rstrip()}",
                hint=f"merge your edit into the file as it is now: 'workerctl worker edit {name}', "
                f"then copy from {kept}",
            )
        if text == current:
            return False
        checked = check_edit(workspace, registry, name, text)
        if not checked.ok:
            raise ConfigError(f"the edit of {name!r} is invalid; the file was not changed:", checked.problems)
        write_text_atomic(path, text, private=False)  # the user's own file: the umask decides
        versions.record(name, text, action)
        return True


def edit_in_editor(workspace: Workspace, name: str, text: str, launch: Callable[[str], None]) -> str:
    """``text`` as the person left it in their editor. The copy they edit is
    ``.workerctl/edits/NAME.PID.yaml`` (private, inside the workspace, removed after),
    not a file in /tmp: a worker's instructions never leave its workspace, and the
    editor shows the worker's name. ``launch(path)`` runs the editor on it."""
    import os

    from workerctl.storage import fs
    from workerctl.storage.atomic import write_text_atomic

    path = workspace.state_dir / "edits" / f"{name}.{os.getpid()}.yaml"
    write_text_atomic(path, text if text.endswith("\n") or not text else text + "\n", sync_data=False)
    try:
        launch(str(path))
        return fs.read_text(path)
    finally:
        fs.unlink(path, missing_ok=True)


def _keep_edit(workspace: Workspace, name: str, text: str) -> str:
    """Write a refused edit to ``.workerctl/edits/NAME-STAMP.yaml`` (private, kept until
    the person removes it); its path."""
    import datetime as dt

    from workerctl.storage.atomic import write_text_atomic

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = workspace.state_dir / "edits" / f"{name}-{stamp}.yaml"
    write_text_atomic(path, text)
    return display_path(workspace, path)


def set_status(workspace: Workspace, registry: Registry, versions: Versions, name: str, status: str) -> bool:
    path = find_path(workspace, name)
    wf = load_file(path, registry, display_path(workspace, path))
    if not wf.ok:
        raise ConfigError(f"worker {name!r} is invalid; fix it before changing its status:", wf.problems)
    if wf.worker is None or wf.worker.status == status:
        return False
    return save_edit(
        workspace,
        registry,
        versions,
        name,
        status_edit(wf.content, status),
        "pause" if status == "paused" else "activate",
        expected=wf.content,
    )


def restore(workspace: Workspace, registry: Registry, versions: Versions, name: str, number: int) -> bool:
    from workerctl.errors import NotFoundError
    from workerctl.workers.files import checked_name, similar, worker_paths

    try:
        version = versions.get(checked_name(workspace, name), number)
    except NotFoundError as missing:
        known = [p.stem for p in worker_paths(workspace)]
        close = [] if name in known else similar(name, known)
        if close:  # no such worker, rather than no such version: the worker meant
            raise NotFoundError(missing.message, hint=f"did you mean {', '.join(close)}?") from None
        raise
    if version.content is None:
        raise UsageError(f"version {number} of {name!r} records a deletion; pick another")
    path = workspace.worker_file(name)
    if not path.exists() and not path.is_symlink():
        checked = load_text(version.content, path, registry)
        if not checked.ok:
            raise ConfigError("that version is no longer valid:", checked.problems)
        path.write_text(version.content, encoding="utf-8")
        versions.record(name, version.content, f"restore version {number}")
        return True
    return save_edit(workspace, registry, versions, name, version.content, f"restore version {number}")


def unified(before: str, after: str, label_a: str, label_b: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), label_a, label_b
        )
    )


def config_yaml(config: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100)


def diff_versions(
    workspace: Workspace, versions: Versions, name: str, from_v: int | None, to_v: int | None
) -> str:
    path = find_path(workspace, name)
    current = read_worker_text(workspace, path)
    versions.notice({name: current}, every_file=False)
    history = versions.history(name)
    if to_v is None:
        after, label_b = current, f"{name} (now)"
    else:
        after, label_b = versions.get(name, to_v).content or "", f"{name} v{to_v}"
    if from_v is None:
        older = [v for v in history if v.content != after]
        if not older:
            return ""
        base = older[-1]
        before, label_a = base.content or "", f"{name} v{base.version}"
    else:
        before, label_a = versions.get(name, from_v).content or "", f"{name} v{from_v}"
    return unified(before, after, label_a, label_b)


def diff_run(workspace: Workspace, registry: Registry, name: str, run: Run) -> str:
    path = find_path(workspace, name)
    wf = load_file(path, registry)
    now = wf.worker.config if wf.worker else {}
    return unified(
        config_yaml(run.config),
        config_yaml(now),
        f"{name} as run {run.id} ran it ({run.config_hash})",
        f"{name} now" + (f" ({wf.worker.config_hash})" if wf.worker else " (invalid)"),
    )
