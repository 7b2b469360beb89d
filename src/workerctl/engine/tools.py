"""Tools, tool categories and the tool gate.

Workers reach tools only through ``ToolGate.call``: a call whose category the
worker does not allow is refused and recorded, whatever the executor asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


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


class ToolError(Exception):
    """Raised by a tool for a problem the executor should see as the result."""


def check_arguments(schema: dict, arguments: Any) -> list[str]:
    """Problems with ``arguments`` against a tool's parameter schema (a small JSON-schema subset)."""
    if not isinstance(arguments, dict):
        return [f"arguments must be an object, got {type(arguments).__name__}"]
    props: dict = schema.get("properties", {})
    problems = [f"missing required argument {name!r}"
                for name in schema.get("required", []) if name not in arguments]
    for name, value in arguments.items():
        spec = props.get(name)
        if spec is None:
            if schema.get("additionalProperties", False) is False:
                known = ", ".join(sorted(props)) or "none"
                problems.append(f"unknown argument {name!r} (known: {known})")
            continue
        expected = spec.get("type")
        types = JSON_TYPES.get(expected)
        if types and (not isinstance(value, types) or (expected != "boolean" and isinstance(value, bool))):
            problems.append(f"argument {name!r} must be {expected}, got {type(value).__name__}")
        elif "enum" in spec and value not in spec["enum"]:
            problems.append(f"argument {name!r} must be one of {spec['enum']}")
    return problems


def summarize(value: Any, limit: int = 160) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class GateDecision:
    allowed: bool
    reason: str = ""


class ToolGate:
    """Decides every tool call of a run and executes the allowed ones."""

    def __init__(self, tools: dict[str, Tool], allowed_categories: list[str]) -> None:
        self.tools = tools
        self.allowed_categories = list(allowed_categories)

    def offered(self) -> list[Tool]:
        """The tools the worker may call: exactly those in its allowed categories."""
        return [t for t in self.tools.values() if t.category in self.allowed_categories]

    def decide(self, name: str) -> GateDecision:
        tool = self.tools.get(name)
        if tool is None:
            return GateDecision(True)  # unknown tools fail as a result, not a permission
        if tool.category not in self.allowed_categories:
            allowed = ", ".join(self.allowed_categories) or "none"
            return GateDecision(
                False,
                f"tool {name!r} is in category {tool.category!r}, which this worker may not "
                f"call (allowed: {allowed})",
            )
        return GateDecision(True)

    def execute(self, name: str, arguments: Any, ctx: ToolContext) -> tuple[bool, Any]:
        """Run an allowed call; returns (ok, result). Bad arguments come back as errors."""
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(t.name for t in self.offered()) or "none"
            return False, {"error": f"unknown tool {name!r}; tools you may call: {known}"}
        problems = check_arguments(tool.parameters, arguments)
        if problems:
            return False, {"error": "invalid arguments: " + "; ".join(problems)}
        try:
            return True, tool.function(ctx, **arguments)
        except ToolError as exc:
            return False, {"error": str(exc)}
