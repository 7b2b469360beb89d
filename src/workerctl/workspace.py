"""Finding the workspace, its paths and its settings.

A workspace is a folder with ``workerctl.yaml``, ``workers/*.yaml`` and the state
folder ``.workerctl/``. Cron jobs pass ``-w`` or ``WORKERCTL_WORKSPACE``; people
usually just ``cd`` into it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from workerctl.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry

SETTINGS_FILE = "workerctl.yaml"
STATE_DIR = ".workerctl"
ENV_VAR = "WORKERCTL_WORKSPACE"

DEFAULT_SETTINGS: dict[str, Any] = {
    "stale_after": 120,  # seconds without a heartbeat before a remote run counts as crashed
    "lock_timeout": 10,
    "default_timeout": 300,
    # bytes kept of each step output, stderr, tool arguments and tool result
    "max_field_bytes": 1_000_000,
}
# text settings (no default): review_model, the llm model id a model-judged review
# check asks (the workerctl-llm plugin's ``model_judged``)
#: the shortest ``stale_after``: a run beats every ``stale_after / 4`` seconds but at most
#: twice a second (``engine.heartbeat.beat_interval``), so below this a live run would go
#: a whole ``stale_after`` without a beat and a reader that judges it by its beats (another
#: PID namespace) would mark it crashed
MIN_STALE_AFTER = 2.0
TEXT_SETTINGS = ("review_model",)
KNOWN_SETTINGS = {"name", "description", "record_sources", *TEXT_SETTINGS, *DEFAULT_SETTINGS}


@dataclass(frozen=True)
class Workspace:
    """A workspace folder and its settings (``workerctl.yaml``, merged over the defaults
    by ``setting``). Its paths are joined once per object (a run asks for them dozens
    of times, and a path join costs more than a look-up)."""

    root: Path
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @cached_property
    def settings_file(self) -> Path:
        return self.root / SETTINGS_FILE

    @cached_property
    def workers_dir(self) -> Path:
        return self.root / "workers"

    @cached_property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @cached_property
    def history_dir(self) -> Path:
        return self.state_dir / "history"

    @cached_property
    def records_file(self) -> Path:
        return self.state_dir / "records.json"

    @cached_property
    def versions_file(self) -> Path:
        return self.state_dir / "versions.json"

    @cached_property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @cached_property
    def lock_file(self) -> Path:
        return self.state_dir / "lock"

    def setting(self, key: str) -> Any:
        return self.settings.get(key, DEFAULT_SETTINGS.get(key))

    def worker_file(self, name: str) -> Path:
        """Where worker ``name`` is written: a valid name, inside the workspace."""
        from workerctl.names import WORKER_NAME, inside

        path = self.workers_dir / f"{WORKER_NAME.check(name)}.yaml"
        inside(self.root, path, "worker file")
        return path


def find_workspace(explicit: str | os.PathLike | None = None, cwd: Path | None = None) -> Workspace:
    """Resolve the workspace: ``-w``, then ``$WORKERCTL_WORKSPACE``, then parents of cwd."""
    if explicit is not None:
        if not str(explicit).strip():  # -w '' (an unset variable in a script): not the default
            raise UsageError(
                "-w/--workspace is empty",
                hint="give the workspace folder, or leave -w out to use $WORKERCTL_WORKSPACE "
                "or the folder you are in",
            )
        return load_workspace(Path(explicit), origin="--workspace")
    env = os.environ.get(ENV_VAR)
    if env:
        return load_workspace(Path(env), origin=f"${ENV_VAR}")
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / SETTINGS_FILE).is_file():
            return load_workspace(folder, origin="the current directory")
    raise UsageError(
        f"no workspace found: neither {here} nor any parent folder holds {SETTINGS_FILE}",
        hint="make one with 'workerctl init DIR', then pass '-w DIR' or set WORKERCTL_WORKSPACE",
    )


def load_workspace(root: Path, origin: str = "--workspace") -> Workspace:
    root = root.expanduser().resolve()
    settings_file = root / SETTINGS_FILE
    if not settings_file.is_file():
        why, hint = _not_a_workspace(root)
        raise UsageError(f"{root} (from {origin}) is not a workspace: {why}", hint=hint)
    from workerctl.storage import fs

    fs.renew(root)  # a long-lived process whose workspace was made again goes on in the new one
    return Workspace(root=root, settings=_cached_settings(root, settings_file))


def _not_a_workspace(root: Path) -> tuple[str, str]:
    """Why ``root`` is not a workspace, and the fix that works for that case: the one
    hint 'run init' was wrong for a file, a folder inside a workspace (init there would
    plant a workspace in it) and a workspace that lost its settings file."""
    outer = enclosing_workspace(root)
    if outer is not None:
        return (f"it is inside the workspace {outer}", f"use -w {outer}")
    if not root.exists():
        return ("no such folder", f"run 'workerctl init {root}' to make one there")
    if not root.is_dir():
        return ("it is a file, not a folder", "give the workspace folder")
    if os.path.lexists(root / STATE_DIR):
        return (
            f"it holds a workspace's state ({STATE_DIR}/) but {SETTINGS_FILE} is missing or not a file",
            f"put back {root / SETTINGS_FILE} (a 'name: ...' line is enough; the runs and records are kept)",
        )
    return (f"{SETTINGS_FILE} is missing", f"run 'workerctl init {root}' to make one")


def enclosing_workspace(folder: Path) -> Path | None:
    """The workspace a folder lies in (a parent holding the settings file, or a state
    folder with a history), if any: a workspace is never made inside another, nor in
    its state."""
    for parent in folder.parents:
        if (parent / SETTINGS_FILE).is_file() or (parent / STATE_DIR / "history").is_dir():
            return parent
    return None


def workspace_below(folder: Path) -> Path | None:
    """A workspace inside ``folder``, if any (hidden folders are not entered; links are
    not followed): a workspace is never made around another either."""
    for here, dirs, files in os.walk(folder):
        if SETTINGS_FILE in files or STATE_DIR in dirs:
            return Path(here)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
    return None


def _cached_settings(root: Path, settings_file: Path) -> dict[str, Any]:
    """Settings parsed once per change of the file: importing PyYAML costs every
    cold command ~8 ms, and most commands need only these few numbers."""

    from workerctl.errors import HistoryError
    from workerctl.storage import fs

    st = settings_file.stat()
    stamp = [st.st_mtime_ns, st.st_size]
    cache = root / STATE_DIR / "settings.cache.json"
    try:
        from workerctl.storage.atomic import loads_state

        cached = loads_state(fs.read_bytes(cache))  # a key twice: remade, never half-believed
        kept = cached["settings"]
        if cached["stamp"] == stamp and type(kept) is dict and settings_problem(kept) is None:
            return kept
    except (OSError, ValueError, KeyError, TypeError, HistoryError):
        pass  # a link planted there is reported by the write below; a damaged cache is remade
    settings = _read_settings(settings_file)
    if fs.is_dir(cache.parent):
        import contextlib

        from workerctl.errors import StorageError
        from workerctl.storage.atomic import write_json

        # a cache, safe to regenerate: a read-only workspace or a full disk still
        # works, it just parses the settings every time
        with contextlib.suppress(OSError, StorageError):
            write_json(cache, {"stamp": stamp, "settings": settings}, sync_data=False, cache=True)
    return settings


def _read_settings(path: Path) -> dict[str, Any]:
    from workerctl.workers.yaml_positions import SETTINGS_FILE, load_yaml_file

    data, _, problems = load_yaml_file(path, str(path), SETTINGS_FILE)
    empty = len(problems) == 1 and problems[0].message == "the file is empty"
    if problems and not empty:
        raise ConfigError(f"{path}: cannot read the settings:", problems)
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1:1: the settings file must be a mapping of keys to values")
    problem = settings_problem(data)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    return data


def settings_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with settings (as ``workerctl.yaml`` holds them, or as the settings
    cache kept them), or None: the one check for both, so that a cache edited by hand
    (``"lock_timeout": "x"``) is parsed again rather than believed (a traceback in every
    command, before)."""
    import math

    unknown = sorted(set(data) - KNOWN_SETTINGS)
    if unknown:
        return f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(KNOWN_SETTINGS))})"
    for key in DEFAULT_SETTINGS:
        value = data.get(key)
        if key not in data:
            continue
        if key == "max_field_bytes":
            if isinstance(value, bool) or not isinstance(value, int) or not 1000 <= value < 10**15:
                return f"{key}: must be a whole number of bytes, at least 1000 (default 1000000)"
        elif (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0 < value < 10**9
        ):
            return f"{key}: must be a positive number of seconds"
        elif key == "stale_after" and value < MIN_STALE_AFTER:
            return (
                f"stale_after: must be at least {MIN_STALE_AFTER:g} seconds (a run beats every "
                f"stale_after / 4 seconds, at most twice a second), not {value:g}"
            )
    for key in TEXT_SETTINGS:
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            return f"{key}: must be a non-empty text, e.g. {key}: gpt-4o-mini"
    return None


def make_private(workspace: Workspace) -> str | None:
    """Tighten a state folder made before it was private (or by hand) to 0700/0600.

    Run files hold outputs, record contents and the context of every run, so the
    state folder is private like ``~/.ssh``; one ``stat`` per command finds an
    old, open one. Returns a note for the user when something was done or could
    not be done, else None.
    """
    import stat

    from workerctl.errors import PlantedLink
    from workerctl.storage import fs

    state = workspace.state_dir
    try:
        mode = fs.lstat(state).st_mode
    except OSError:
        return None
    if not mode & 0o077:
        return None
    changed, failed, shared = 0, [], 0
    for name in (state, *fs.walk_files(state, dirs=True)):
        try:
            current = os.lstat(name).st_mode
            if stat.S_ISLNK(current) or not current & 0o077:
                continue  # a link is left alone (and refused by every read or write)
            fs.chmod(name, 0o700 if stat.S_ISDIR(current) else 0o600)
            changed += 1
        except PlantedLink:
            # a file with a second name (a ``cp -al`` backup): its mode is the backup's
            # too, so it is left as it is; workerctl replaces it at its next write
            shared += 1
        except OSError as exc:
            failed.append(f"{name}: {exc.strerror}")
    if failed:
        return (
            f"{state} is readable by other users (mode {stat.S_IMODE(mode):o}) and could "
            f"not be made private ({failed[0]}); run: chmod -R go= {state}"
        )
    return (
        f"made {state} private (it was mode {stat.S_IMODE(mode):o}, readable by other "
        f"users): {changed} folder(s) and file(s) are now 0700/0600"
        + (f"; {shared} file(s) with a second name (a backup's) left as they are" if shared else "")
    )


def init_workspace(root: Path, registry: Registry) -> Workspace:
    """Write a sample workspace: settings, example workers from templates, records.
    Never inside or around another workspace, and whole or not at all."""
    root = root.expanduser().resolve()
    _check_init_target(root)
    made = [p for p in (root, root / "workers", root / STATE_DIR) if not p.exists()]
    try:
        return _write_sample(root, registry)
    except BaseException:
        # a workspace is made whole or not at all: what this call made goes again
        _remove_made(root, made)
        raise


def _check_init_target(root: Path) -> None:
    if (root / SETTINGS_FILE).exists() or os.path.lexists(root / STATE_DIR):
        raise UsageError(
            f"{root} is already a workspace; nothing was written",
            hint="choose another folder, or use the existing workspace with -w",
        )
    outer = enclosing_workspace(root)
    if outer is not None:
        raise UsageError(
            f"{root} is inside the workspace {outer}; nothing was written",
            hint=f"choose a folder outside {outer}, or use that workspace with -w {outer}",
        )
    if root.is_dir():
        inner = workspace_below(root)
        if inner is not None:
            raise UsageError(
                f"{root} holds the workspace {inner}; nothing was written",
                hint="choose a folder that holds no workspace",
            )
    workers = root / "workers"
    if workers.exists() and (not workers.is_dir() or any(workers.iterdir())):
        raise UsageError(f"{workers} already holds files; nothing was written", hint="choose an empty folder")


def _write_sample(root: Path, registry: Registry) -> Workspace:
    from workerctl.plugins.builtin.samples import SAMPLE_WORKERS, SETTINGS_YAML, sample_records
    from workerctl.records.builtin_store import BuiltinRecordStore
    from workerctl.storage.atomic import private_dirs, write_text_atomic
    from workerctl.workers.files import render_new, status_edit
    from workerctl.workers.versions import Versions

    (root / "workers").mkdir(parents=True, exist_ok=True)
    (root / SETTINGS_FILE).write_text(SETTINGS_YAML.format(name=_yaml_name(root.name)), encoding="utf-8")
    workspace = load_workspace(root)
    private_dirs(workspace.state_dir)
    write_text_atomic(workspace.state_dir / ".gitignore", "*\n")
    versions = Versions(workspace)
    for worker, key, status, _extra in SAMPLE_WORKERS:
        text = render_new(worker, registry.templates[key])
        if status != "draft":
            text = status_edit(text, status)
        workspace.worker_file(worker).write_text(text, encoding="utf-8")
        versions.record(worker, text, "init")
    BuiltinRecordStore(workspace).import_records(sample_records(), "sample records")
    return workspace


def _yaml_name(name: str) -> str:
    """The folder's name as YAML reads it back: quoted where it must be ("a: b", "[x", a
    newline), escaped where YAML would read a character as another (NEL as a break)."""
    import yaml

    for readable in (True, False):
        text = yaml.safe_dump(name, allow_unicode=readable).removesuffix("\n...\n").strip()
        try:
            if yaml.safe_load(f"name: {text}\n") == {"name": name}:
                return text
        except yaml.YAMLError:  # "=" is YAML's value key, which a safe loader refuses
            continue
    return yaml.safe_dump(name, default_style='"').strip()


def _remove_made(root: Path, made: list[Path]) -> None:
    from workerctl.storage import fs

    fs.unlink(root / SETTINGS_FILE, missing_ok=True)  # it was not there: the target is checked first
    for folder in reversed(made):
        fs.rmtree(folder, ignore_errors=True)
