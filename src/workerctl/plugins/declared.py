"""What installed packages declare in their metadata, read without loading them.

Two entry-point groups are read here, and nowhere else:

- ``workerctl``: the plugins (``helpdesk = "workerctl_helpdesk"``), which the plugin
  manager imports and registers (``plugins.manager``);
- ``workerctl.commands``: a plugin's commands (``rq = "workerctl_rq.cli:rq"``: the
  command's name and the click command), which ``workerctl --help`` and completion
  list without loading any plugin.

``importlib.metadata`` would read the same files, but importing it costs about
15 ms of every process that loads plugins (it brings in ``email``, ``zipfile`` and
``csv`` to parse every installed package's metadata), more than 10 % of a
``run start``; ``--help`` could not afford it at all (``tests/test_startup.py``).
So this module reads those standard files narrowly: the ``entry_points.txt`` of
each ``*.dist-info`` (or ``*.egg-info``) folder on ``sys.path``, the first folder of
a package name winning (as for imports, and as ``importlib.metadata`` does), and the
package's ``Version`` and one-line ``Summary`` headers. One reader for both groups,
so ``--help`` and the plugin manager can never disagree about what is installed.
Packages installed as zip files or as ``.egg`` folders are not read (neither pip nor
``pip install -e`` makes them). Running a command still goes through the plugin's
``register_commands`` hook (``plugins.manager.plugin_commands``); the manager warns
when a declared command is not added there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

PLUGINS_GROUP = "workerctl"
COMMANDS_GROUP = "workerctl.commands"
SUMMARY_LIMIT = 100  # characters of a package's summary shown as the short help
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class DeclaredCommand:
    """One command a plugin package declares: its name, the click command's import
    reference, the package's name and its summary (the short help shown).

    A plain class, not a dataclass: this module is imported by ``--help``, where
    building a dataclass (about 0.3 ms) is a tenth of what the budget has left."""

    __slots__ = ("name", "package", "reference", "summary")

    def __init__(self, name: str, reference: str, package: str, summary: str) -> None:
        self.name, self.reference, self.package, self.summary = name, reference, package, summary

    def __repr__(self) -> str:
        return f"DeclaredCommand({self.name!r}, {self.reference!r}, {self.package!r}, {self.summary!r})"


def typeable(name: str) -> bool:
    """A name a person can type as a command: letters, digits, ``_.-``, not starting
    with ``-`` (an option) or a dot, at most 64 characters; others are not listed."""
    return 0 < len(name) <= 64 and name[0] not in "-._" and set(name) <= _NAME_CHARS


class DeclaredPlugin:
    """One plugin a package declares in the ``workerctl`` group: its name, the import
    reference of its module (or object), the package's name and version."""

    __slots__ = ("name", "package", "problem", "reference", "version")

    def __init__(self, name: str, reference: str, package: str, version: str, problem: str = "") -> None:
        self.name, self.reference, self.package, self.version = name, reference, package, version
        self.problem = problem  # a declaration that cannot be read: what is wrong, where

    def __repr__(self) -> str:
        return f"DeclaredPlugin({self.name!r}, {self.reference!r}, {self.package!r}, {self.version!r})"

    def load(self) -> Any:
        """Import what the reference names, as ``EntryPoint.load`` does: ``module``,
        or ``module:attribute.attribute``; a trailing ``[extras]`` is ignored."""
        import importlib

        module_name, _, attributes = self.reference.split("[", 1)[0].strip().partition(":")
        found: Any = importlib.import_module(module_name.strip())
        for attribute in filter(None, attributes.strip().split(".")):
            found = getattr(found, attribute)
        return found


def declared_plugins(paths: list[str] | None = None) -> list[DeclaredPlugin]:
    """Every plugin declared by the packages installed on ``paths`` (default
    ``sys.path``), sorted by name. Never raises: an unreadable folder is skipped, and a
    declaration that cannot be read (a file that is not UTF-8, a line without ``=``)
    is returned with its ``problem``, for ``workerctl plugins list`` to show, instead
    of the plugin vanishing without a word."""
    found = [
        DeclaredPlugin(name or package, reference, package, _header(meta, "version") or "?", problem)
        for meta, package, name, reference, problem in _declarations(PLUGINS_GROUP, paths)
        if name or problem
    ]
    return sorted(found, key=lambda plugin: plugin.name)


def declared_commands(paths: list[str] | None = None) -> dict[str, DeclaredCommand]:
    """Command name → declaration, over the packages installed on ``paths``
    (default ``sys.path``). Never raises: an unreadable folder or file is skipped."""
    found: dict[str, DeclaredCommand] = {}
    for meta, package, name, reference, problem in _declarations(COMMANDS_GROUP, paths):
        if not problem and typeable(name) and name not in found:
            found[name] = DeclaredCommand(name, reference, package, _summary(meta))
    return found


def _declarations(group: str, paths: list[str] | None) -> Iterator[tuple[str, str, str, str, str]]:
    """(metadata folder, package, name, reference, problem) for each line of
    ``[group]``, over the first folder of each package name on ``paths``."""
    seen_packages: set[str] = set()
    for entry in sys.path if paths is None else paths:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:  # a zip, a missing folder
            continue
        for folder in names:
            if not folder.lower().endswith((".dist-info", ".egg-info")):
                continue
            meta = os.path.join(entry or ".", folder)
            # the name before the first "-" of the folder's stem; a folder named only by
            # its version takes the Name header (as importlib.metadata does)
            package = _normalized(folder.rsplit(".", 1)[0].split("-", 1)[0] or _header(meta, "name"))
            if package in seen_packages:
                continue
            seen_packages.add(package)
            for name, reference, problem in _group(os.path.join(meta, "entry_points.txt"), group):
                yield meta, package, name, reference, problem


def _normalized(name: str) -> str:
    """A package name as PEP 503 compares them: lower case, each run of ``-_.`` one
    ``-`` (``Foo__Bar`` and ``foo.bar`` are one package)."""
    out: list[str] = []
    for char in name.lower():
        if char in "-_.":
            if out and out[-1] == "-":
                continue
            char = "-"
        out.append(char)
    return "".join(out)


def _group(path: str, group: str) -> list[tuple[str, str, str]]:
    """``(name, reference, "")`` for each ``name = reference`` line of ``[group]`` in an
    entry_points.txt file; ``("", "", problem)`` for what cannot be read there."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError:  # none (a package without entry points), or unreadable
        return []
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        if f"[{group}]".encode() not in raw:
            return []
        return [("", "", f"{path}: not UTF-8 text (byte {exc.start + 1}): save it as UTF-8")]
    found: list[tuple[str, str, str]] = []
    inside = False
    for number, text in enumerate(lines, 1):
        # the grammar importlib.metadata reads: "#" comments, "[group]" headers (the
        # brackets stripped, nothing else), "name = reference"
        line = text.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line.strip("[]") == group
            continue
        if not inside:
            continue
        if "=" in line:
            name, _, reference = line.partition("=")
            found.append((name.strip(), reference.strip(), ""))
        else:  # importlib.metadata fails on it, for every package installed
            found.append(("", "", f"{path}:{number}: no '=' in {line[:60]!r}: write it as 'name = module'"))
    return found


def _summary(meta: str) -> str:
    """The package's ``Summary:`` header, cut to ``SUMMARY_LIMIT`` characters."""
    summary = " ".join(_header(meta, "summary").split())
    return summary[: SUMMARY_LIMIT - 1] + "…" if len(summary) > SUMMARY_LIMIT else summary


def _header(meta: str, wanted: str) -> str:
    """One header of the package's METADATA (or, when that is missing or empty, an
    egg-info's PKG-INFO), "" if none. The headers end at the first line that is
    blank or not a header; a line starting with white space continues the one before
    (a folded Summary), so it is never read as a header of its own."""
    for file_name in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(meta, file_name), encoding="utf-8") as file:
                text = file.read()
        except (OSError, UnicodeDecodeError):
            continue
        if not text:
            continue
        for line in text.splitlines():
            if line[:1] in (" ", "\t"):
                continue
            key, colon, value = line.partition(":")
            if not colon or not key.strip():
                break
            if key.strip().lower() == wanted:
                return value.strip()
        return ""
    return ""
