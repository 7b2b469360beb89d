"""Tools and tool categories, as plugins register them.

Workers reach tools only through the tool gate (``engine.tool_gate``): a call
whose category the worker does not allow is refused and recorded, whatever
the executor asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workerctl.engine.run_records import RunRecords


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
    """What a tool function may use: the run's records API, the run, and the call's key.

    ``records`` (``engine.run_records.RunRecords``) is the only way a tool reads or
    writes records: it gates, filters, logs and journals every access itself.
    """

    run_id: str
    worker: str
    records: RunRecords
    call_key: str


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
