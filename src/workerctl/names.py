"""The one name rule for everything that becomes a path, and the workspace fence.

Worker names, template keys, record ids and run ids all end up in file names
(``workers/NAME.yaml``, ``.workerctl/comments/ID.json``, ``runs/ab/ID.json``) or
are looked up by them. Each is checked here against a pattern and a length
limit before any file is touched, so ``../../elsewhere/w`` or a 5,000-character
name is a usage error (exit 2) that says what a valid name is, never a file
outside the workspace or an ``ENAMETOOLONG`` traceback. And every path that is
about to be read or written as a workspace file is resolved, symlinks included,
and refused unless it stays inside the workspace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from workerctl.errors import UsageError


@dataclass(frozen=True)
class NameRule:
    what: str
    pattern: re.Pattern[str]
    max_length: int
    explain: str

    def ok(self, value: object) -> bool:
        return (
            isinstance(value, str)
            and 0 < len(value) <= self.max_length
            and self.pattern.fullmatch(value) is not None
        )

    def check(self, value: object) -> str:
        """``value`` if it follows the rule; otherwise a UsageError saying what would."""
        if self.ok(value):
            return value  # type: ignore[return-value]
        shown = repr(value) if len(str(value)) <= 60 else repr(str(value)[:57] + "...")
        why = (
            f"it is {len(str(value)):,} characters long"
            if isinstance(value, str) and len(value) > self.max_length
            else "it does not follow the rule"
        )
        raise UsageError(
            f"{shown} is not a valid {self.what}: {why}", hint=f"a {self.what} is {self.explain}"
        )


SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

WORKER_NAME = NameRule(
    "worker name", SLUG, 64, "1 to 64 lower-case letters, digits and single hyphens, e.g. overdue-task-review"
)
TEMPLATE_KEY = NameRule(
    "template key",
    SLUG,
    64,
    "1 to 64 lower-case letters, digits and single hyphens, e.g. task-triage; "
    "'workerctl templates list' shows them",
)
RECORD_ID = NameRule(
    "record id",
    re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_:-]|\.(?!\.))*"),
    128,
    "1 to 128 letters, digits, '-', '_', ':' and single dots, starting with a letter or digit, e.g. T-1042",
)


# what any id stored as a file name must be, whoever made it (a plugin, an older version)
STORED_ID = NameRule("stored id", re.compile(r"[A-Za-z0-9_-]+"), 64, "1 to 64 letters, digits, '-' and '_'")


def run_id_rule() -> NameRule:
    from workerctl.runs.model import ID_ALPHABET, ID_LENGTH

    return NameRule(
        "run id",
        re.compile(f"[{ID_ALPHABET}]+"),
        ID_LENGTH,
        f"up to {ID_LENGTH} of the characters {ID_ALPHABET} (a unique prefix "
        "of the id is enough), e.g. 7k2m9q4x",
    )


def inside(root: Path, path: Path, what: str = "file") -> Path:
    """``path`` resolved (symlinks followed, even dangling ones) if it stays inside the
    workspace ``root``; a UsageError naming where it leads otherwise."""
    real_root = root.resolve()
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        raise UsageError(
            f"{path}: cannot resolve this {what}: {exc}", hint="replace the symlink with the file itself"
        ) from None
    if real != real_root and real_root not in real.parents:
        raise UsageError(
            f"{path} leads to {real}, outside the workspace {real_root}; "
            f"workerctl does not read or write a {what} there",
            hint="keep the file itself inside the workspace (replace the symlink with a copy)",
        )
    return real


def is_inside(root: Path, path: Path) -> bool:
    try:
        inside(root, path)
    except UsageError:
        return False
    return True
