"""The tool gate: the one door between a worker and its tools.

Every tool call an executor asks for is decided here: only a tool that was
offered to the worker (installed, and in one of its allowed tool categories)
may run. Anything else, an unknown name included, is refused: a model asking
for a tool nobody offered it is acting on text it should not have obeyed
(often a prompt injection in a record), not making a harmless typo. Then the
arguments are checked against the tool's schema, and only then is the tool
run. A refused call never reaches the tool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workerctl.engine.tools import Tool, ToolContext, ToolError


def check_arguments(schema: dict, arguments: Any) -> list[str]:
    """Problems with ``arguments`` against a tool's parameter schema (a small JSON-schema subset)."""
    if not isinstance(arguments, dict):
        return [f"arguments must be an object, got {type(arguments).__name__}"]
    props: dict = schema.get("properties", {})
    problems = [
        f"missing required argument {name!r}" for name in schema.get("required", []) if name not in arguments
    ]
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
        """Allowed only for a tool that was offered; the reason names what was offered."""
        tool = self.tools.get(name)
        offered = ", ".join(t.name for t in self.offered()) or "none"
        if tool is None:
            return GateDecision(
                False,
                f"tool {str(name)[:80]!r} was not offered to this worker: no tool of that name "
                f"is installed (offered: {offered})",
            )
        if tool.category not in self.allowed_categories:
            allowed = ", ".join(self.allowed_categories) or "none"
            return GateDecision(
                False,
                f"tool {name!r} was not offered to this worker: it is in category "
                f"{tool.category!r}, which this worker may not call (allowed: {allowed})",
            )
        return GateDecision(True)

    def execute(self, name: str, arguments: Any, ctx: ToolContext) -> tuple[bool, Any]:
        """Run an allowed call; returns (ok, result). Bad arguments come back as errors."""
        decision = self.decide(name)
        if not decision.allowed:
            return False, {"error": decision.reason}
        tool = self.tools[name]
        problems = check_arguments(tool.parameters, arguments)
        if problems:
            return False, {"error": "invalid arguments: " + "; ".join(problems)}
        try:
            return True, tool.function(ctx, **arguments)
        except ToolError as exc:
            return False, {"error": str(exc)}


JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
