"""The Worker model: a validated worker, a worker file and a located problem.

A problem reads ``FILE:LINE:COLUMN: field: what is wrong (what would fix it)``;
see ``workers.validation`` for the rules and ``workers.files`` for loading.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workerctl.workers.contract import OutputContract


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
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
            "fix": self.fix,
        }


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
    write_scope: str = "record"  # engine.write_scope.SCOPES
    output_contract: OutputContract | None = None
    path: Path | None = None
    content: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)


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


# -- validation ----------------------------------------------------------------


# -- files ---------------------------------------------------------------------
