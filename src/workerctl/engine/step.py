"""The executor step protocol, shared by built-in and plugin executors.

An executor does one step: given the conversation so far and the tools the
worker may use, it returns either final text or tool calls. The engine owns the
loop, the gate and the limits, so no executor can bypass permissions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

PROTOCOL_VERSION = 1


class ExecutorFailure(Exception):
    """Base of the failures an executor may raise on purpose, each with its kind."""

    kind = "executor_error"

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ProviderUnavailable(ExecutorFailure):
    kind = "provider_unavailable"


class InvalidOutput(ExecutorFailure):
    kind = "invalid_output"


class StepTimeout(ExecutorFailure):
    kind = "timeout"


@dataclass
class ToolCall:
    name: str
    arguments: Any = field(default_factory=dict)
    id: str = ""


@dataclass
class Step:
    """One executor step: final ``text``, or ``tool_calls`` to run through the gate."""

    text: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)  # model, input_tokens, output_tokens
    stderr: str = ""


@dataclass
class StepRequest:
    """Everything an executor may use for one step (also its JSON for ``command``)."""

    run_id: str
    worker: str
    instructions: str
    output_mode: str
    settings: dict[str, Any]
    iteration: int
    max_iterations: int
    context: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    record_id: str | None
    time_left: float
    workspace: str
    # what the output must contain ({sections, names_record, max_length, max_lines}),
    # or None: executors that build the final text should honour it
    output_contract: dict[str, Any] | None = None
    # bytes the engine keeps of the step's text and stderr (workerctl.yaml
    # max_field_bytes); an executor reading a stream may stop holding more
    max_field_bytes: int = 1_000_000

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["protocol"] = PROTOCOL_VERSION
        return data


def step_from_json(data: Any) -> Step:
    """Parse a step as the ``command`` protocol (and plugins) return it."""
    if not isinstance(data, dict):
        raise InvalidOutput(f"a step must be a JSON object, got {type(data).__name__}")
    text, calls = data.get("text"), data.get("tool_calls") or []
    if text is not None and not isinstance(text, str):
        raise InvalidOutput("'text' must be a string")
    if not isinstance(calls, list):
        raise InvalidOutput("'tool_calls' must be a list")
    parsed = []
    for index, call in enumerate(calls):
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise InvalidOutput(f"tool_calls[{index}] needs a 'name'")
        parsed.append(ToolCall(call["name"], call.get("arguments", {}), str(call.get("id", ""))))
    if text is None and not parsed:
        raise InvalidOutput("a step needs 'text' or 'tool_calls'")
    usage = data["usage"] if isinstance(data.get("usage"), dict) else {}
    return Step(text=text, tool_calls=parsed, usage=usage)


@runtime_checkable
class Executor(Protocol):
    """What an executor plugin registers: a name, a description and one step.

    It may also define ``check_settings(settings) -> list[tuple]`` returning
    ``(field, problem[, fix])`` tuples, so ``worker validate`` reports bad
    executor settings on the right line.
    """

    name: str
    description: str

    def step(self, request: StepRequest) -> Step:
        """Answer one step: final text, or tool calls for the engine's gate."""
        ...
