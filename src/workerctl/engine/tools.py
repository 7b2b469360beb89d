"""Tools and tool categories, as plugins register them.

Workers reach tools only through the tool gate (``engine.tool_gate``): a call
whose category the worker does not allow is refused and recorded, whatever
the executor asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Tool:
    """A callable action: ``function(ctx, **arguments)`` returns JSON-able data."""

    name: str
    category: str
    description: str
    function: Callable[..., Any]
    parameters: dict = field(default_factory=lambda: {"type": "object", "properties": {}})
    writes: bool = False

    def schema(self) -> dict:
        return {
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "writes": self.writes,
            "parameters": self.parameters,
        }


@dataclass
class ToolContext:
    """What a tool function may use: the records, the run, and its idempotency key."""

    run_id: str
    worker: str
    records: Any  # workerctl.records.builtin_store.RecordBook
    call_key: str
    side_effects: list[dict]

    def record_side_effect(self, kind: str, **details: Any) -> None:
        self.side_effects.append({"kind": kind, "key": self.call_key, **details})


@dataclass(frozen=True)
class ToolCategory:
    """A family of tools a worker may be allowed (``tool_categories``).

    ``needs_review``: output of a worker allowed this category can change what
    a customer, an invoice or a support decision sees, so a person reviews it
    before anyone acts on it (unless the worker says ``review_required: false``).
    """

    name: str
    description: str = ""
    needs_review: bool = False


class ToolError(Exception):
    """Raised by a tool for a problem the executor should see as the result."""


def summarize(value: Any, limit: int = 160) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
