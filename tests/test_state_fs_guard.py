"""Every touch of a state file goes through ``storage/``: a module elsewhere that opens,
writes, renames, removes, lists, stats or chmods a path directly fails this test.

Read from the syntax tree (not by eye): a new module, or a module moved into a new
package, is checked the day it lands. The few direct calls left outside
``storage/`` touch the user's own files (worker files, imports, the settings
file, ``prices.yaml``) or ``/proc``, never ``.workerctl/``; each is listed below
with the reason, by module and by the text of its call.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "workerctl"
PLUGINS = Path(__file__).resolve().parent.parent / "plugins"

#: os functions that touch a path (os.path.* is not listed: lexists/isabs are safe)
OS_CALLS = {
    "open", "replace", "rename", "renames", "unlink", "remove", "rmdir", "mkdir", "makedirs",
    "chmod", "lchmod", "chown", "listdir", "scandir", "walk", "utime", "stat", "truncate",
    "link", "symlink", "fdopen",
}  # fmt: skip
#: Path methods that touch the file system
PATH_METHODS = {
    "read_text", "read_bytes", "write_text", "write_bytes", "unlink", "mkdir", "rmdir",
    "touch", "chmod", "rename", "glob", "rglob", "iterdir", "exists", "is_dir", "is_file",
    "stat", "lstat", "open", "symlink_to", "hardlink_to",
}  # fmt: skip

#: (module, a piece of the call's source) -> why it is not state
ALLOWED = {
    ("records/builtin_store.py", "folder.is_dir()"): "records/ in the workspace: the user's seed files",
    ("records/builtin_store.py", "folder.iterdir()"): "records/ in the workspace: the user's seed files",
    ("workers/files.py", "folder.iterdir()"): "workers/: the user's worker files (may be links)",
    ("workers/yaml_positions.py", "os.open(path"): "a worker file, import or settings file (user's)",
    ("workers/operations.py", "path.parent.mkdir("): "workers/: a new worker file (user's)",
    ("workers/operations.py", "path.write_text("): "workers/: the user's worker file",
    ("workspace.py", "settings_file.stat()"): "workerctl.yaml: the user's settings",
    ("workspace.py", "(root / SETTINGS_FILE).exists()"): "init: the user's folder",
    ("workspace.py", '(root / "workers")'): "init: the user's workers folder",
    ("workspace.py", "(root / SETTINGS_FILE).write_text"): "init: the user's settings file",
    ("workspace.py", "workspace.worker_file(worker).write_text"): "init: sample worker files",
    ("workspace.py", "root.is_dir()"): "init: the user's folder",
    ("workspace.py", "os.walk(folder)"): "init: the user's folder, for a workspace inside (read only)",
    ("workspace.py", "workers.exists()"): "init: the user's workers folder",
    ("workspace.py", "workers.is_dir()"): "init: the user's workers folder",
    ("workspace.py", "workers.iterdir()"): "init: the user's workers folder",
    ("workspace.py", "p.exists()"): "init: which of the user's folders it makes",
    ("workspace.py", "root.exists()"): "init: the user's folder (a hint)",
    ("workspace.py", "(parent / STATE_DIR"): "finding the workspace a folder lies in (read only)",
    ("workspace.py", "(parent / SETTINGS_FILE).is_file()"): "finding the workspace a folder lies in",
    ("workspace.py", "(folder / SETTINGS_FILE).is_file()"): "finding the workspace: the user's folders",
    ("workers/files.py", "path.stat()"): "a worker file (user's)",
    ("workers/files.py", "folder.is_dir()"): "workers/: the user's folder",
    ("workers/files.py", "path.is_file()"): "a worker file (user's)",
    ("workers/files.py", "path.exists()"): "a worker file (user's)",
    ("workers/operations.py", "path.exists()"): "a worker file (user's)",
    ("workers/operations.py", '.with_suffix(".yml").exists()'): "a worker file (user's)",
    ("cli/root.py", "formatter.write_text("): "click's help formatter, not a file",
    ("plugins/declared.py", "os.listdir(entry"): "sys.path folders: the installed packages (read only)",
    ("plugins/declared.py", "open(path"): "an installed package's entry_points.txt (read only)",
    ("plugins/declared.py", "open(os.path.join(meta"): "an installed package's METADATA (read only)",
    ("plugins/builtin/command_executor.py", "(workspace / first).exists()"): "a step program (user's)",
    ("history/store.py", 'os.fdopen(fd, "rb")'): "a descriptor opened through storage.fs.open_file_at",
    ("history/reader.py", 'os.fdopen(fd, "rb")'): "a descriptor opened through storage.fs.open_file_at",
    ("history/search_index.py", 'os.fdopen(fd, "rb")'): "a descriptor opened through storage.fs.open_file_at",
    ("history/spill.py", 'os.fdopen(fd, "w"'): "a reindex's scratch file, opened through storage.fs",
    ("engine/review_process.py", 'os.fdopen(answers, "rb")'): "a pipe to the review helper, no path",
    ("engine/review_process.py", 'os.fdopen(answer_fd, "wb")'): "a pipe to the batch, no path",
    ("history/spill.py", 'os.fdopen(fd, "r"'): "a reindex's scratch file, opened through storage.fs",
    ("workspace.py", "settings_file.is_file()"): "the user's settings file",
    ("runs/usage.py", "path.stat()"): "prices.yaml: the user's price table",
    ("history/sweep.py", 'Path(f"/proc/'): "/proc",
    ("history/sweep.py", 'open("/proc/sys/kernel/random/boot_id"'): "/proc",
    ("plugins/builtin/step_processes.py", '"/proc"'): "/proc",
    ("plugins/builtin/step_processes.py", 'f"/proc/'): "/proc",
    ("handed.py", 'os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))'): "a file the user hands over",
    ("cli/init.py", "workspace.workers_dir.glob("): "workers/: the user's worker files",
    ("testing.py", "path.write_text("): "a test fixture's worker file",
    ("engine/launch.py", "os.fdopen(fd"): "the log's descriptor, opened through storage.fs",
}


def _calls(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    text = path.read_text(encoding="utf-8")
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        hit = False
        if isinstance(func, ast.Name) and func.id == "open":
            hit = True
        elif isinstance(func, ast.Attribute):
            owner = func.value
            if isinstance(owner, ast.Name) and owner.id == "os" and func.attr in OS_CALLS:
                hit = True
            elif isinstance(owner, ast.Name) and owner.id == "shutil":
                hit = func.attr not in {"get_terminal_size", "which"}
            elif func.attr in PATH_METHODS and not (isinstance(owner, ast.Name) and owner.id in {"fs", "os"}):
                hit = not (isinstance(owner, ast.Name) and owner.id in {"re", "yaml", "json"})
        if hit:
            found.append((node.lineno, ast.get_source_segment(text, node) or ""))
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if not rel.startswith("storage/"):
            out.append((rel, path))
    return out


def test_no_module_outside_storage_touches_a_path_directly():
    problems = []
    for rel, path in _modules():
        for line, source in _calls(path):
            if any(mod == rel and piece in source for (mod, piece) in ALLOWED):
                continue
            problems.append(f"src/workerctl/{rel}:{line}: {source.splitlines()[0][:100]}")
    assert not problems, (
        "state files are touched only through workerctl.storage (fs, atomic, lock, tables); "
        "route these calls through storage.fs, or, for a user's own file, add it to ALLOWED "
        "with the reason:\n" + "\n".join(problems)
    )


def test_the_guard_sees_a_direct_write(tmp_path):
    """The scan itself works: a module that writes a state path directly is found."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os, shutil\n"
        "def f(ws):\n"
        "    (ws.state_dir / 'x').write_text('y')\n"
        "    os.replace(a, b)\n"
        "    open(ws.lock_file, 'w')\n"
        "    shutil.rmtree(ws.state_dir)\n"
        "    ws.history_dir.exists()\n",
        encoding="utf-8",
    )
    assert [line for line, _ in _calls(bad)] == [3, 4, 5, 6, 7]


@pytest.mark.slow
def test_every_allowance_is_still_used():
    """An allowance whose call is gone is removed, so the list stays the truth."""
    used = set()
    for rel, path in _modules():
        for _, source in _calls(path):
            used.update((mod, piece) for (mod, piece) in ALLOWED if mod == rel and piece in source)
    assert set(ALLOWED) - used == set()
