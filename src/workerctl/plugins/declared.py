"""The commands plugins declare in their package metadata, read without loading them.

A plugin's package lists its commands in the ``workerctl.commands`` entry-point group
(``rq = "workerctl_rq.cli:rq"``: the command's name and the click command). Reading
that list is how ``workerctl --help`` and completion show plugin commands at the cost
of a few directory listings: loading the plugins (pluggy, each plugin's imports) or
even ``importlib.metadata`` (about 20 ms cold, it parses every installed package's
metadata) would put ``--help`` over its start-up budget (``tests/test_startup.py``).

So this module reads the same standard files ``importlib.metadata`` reads, narrowly:
the ``entry_points.txt`` of each ``*.dist-info`` (or ``*.egg-info``) folder on
``sys.path``, first one of a name wins (as for imports), and the package's one-line
``Summary`` as the command's short help. Running a command still goes through the
plugin's ``register_commands`` hook (``plugins.manager.plugin_commands``); the
manager warns when a declared command is not added there.
"""

from __future__ import annotations

import os
import sys

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


def declared_commands(paths: list[str] | None = None) -> dict[str, DeclaredCommand]:
    """Command name → declaration, over the packages installed on ``paths``
    (default ``sys.path``). Never raises: an unreadable folder or file is skipped."""
    found: dict[str, DeclaredCommand] = {}
    seen_packages: set[str] = set()
    for entry in sys.path if paths is None else paths:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:  # a zip, a missing folder
            continue
        for folder in names:
            if not folder.endswith((".dist-info", ".egg-info")):
                continue
            package = _normalized(folder.rsplit(".", 1)[0].split("-", 1)[0])
            if package in seen_packages:
                continue
            seen_packages.add(package)
            meta = os.path.join(entry or ".", folder)
            commands = _group(os.path.join(meta, "entry_points.txt"), COMMANDS_GROUP)
            if not commands:
                continue
            summary = _summary(meta)
            for name, reference in commands:
                found.setdefault(name, DeclaredCommand(name, reference, package, summary))
    return found


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _group(path: str, group: str) -> list[tuple[str, str]]:
    """The ``name = reference`` lines of ``[group]`` in an entry_points.txt file."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    found: list[tuple[str, str]] = []
    inside = False
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
            continue
        if inside and "=" in line:
            name, _, reference = line.partition("=")
            if typeable(name.strip()):
                found.append((name.strip(), reference.strip()))
    return found


def _summary(meta: str) -> str:
    """The package's ``Summary:`` header (METADATA, or PKG-INFO of an egg-info)."""
    for file_name in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(meta, file_name), encoding="utf-8") as file:
                for line in file:
                    if not line.strip():
                        break  # the headers end at the first blank line
                    if line.lower().startswith("summary:"):
                        summary = " ".join(line.split(":", 1)[1].split())
                        cut = len(summary) > SUMMARY_LIMIT
                        return summary[: SUMMARY_LIMIT - 1] + "…" if cut else summary
        except (OSError, UnicodeDecodeError):
            continue
        return ""
    return ""
