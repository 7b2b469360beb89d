"""The executor step protocol, shared by built-in and plugin executors.

An executor does one step: given the conversation so far and the tools the
worker may use, it returns either final text or tool calls. The engine owns the
loop, the gate and the limits, so no executor can bypass permissions.
"""

from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

from workerctl.runs.states import preview_of

PROTOCOL_VERSION = 1

#: the finish reasons every executor reports, and the words providers use for them
FINISH_REASONS = ("stop", "tool_calls", "length", "content_filter")
_SYNONYMS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "eos": "stop",
    "complete": "stop",
    "completed": "stop",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "tool_call": "tool_calls",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "token_limit": "length",
    "incomplete": "length",
    "safety": "content_filter",
    "refusal": "content_filter",
    "recitation": "content_filter",
}


def normal_finish_reason(value: Any) -> str | None:
    """A provider's finish reason in the protocol's words (``FINISH_REASONS``): lower
    case, synonyms mapped ("max_tokens" is "length", "end_turn" is "stop"); an unknown
    word is kept as it is (at most 40 characters), anything else is None."""
    if not isinstance(value, str) or not value.strip():
        return None
    word = value.strip().lower()
    return _SYNONYMS.get(word, word)[:40]


def shape_finish_reason(step: Step) -> str:
    """The finish reason a step's shape implies when its executor gave none."""
    return "tool_calls" if step.tool_calls else "stop"


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


# -- what a model provider said, as error kinds (the plugin's table maps its client
# library's exceptions onto these; ``runs.states.ERROR_KINDS`` explains each kind and
# the troubleshooting walk gives its fix) --


class ContextTooLong(ExecutorFailure):
    """The prompt does not fit the model's context window (found before sending it, or
    said by the provider)."""

    kind = "context_too_long"


class ModelNotInstalled(ExecutorFailure):
    """The model id is unknown to the executor's library: its plugin or file is missing."""

    kind = "model_not_installed"


class UnsupportedFeature(ExecutorFailure):
    """The model cannot do what the run asked of it (tools, schemas, attachments)."""

    kind = "unsupported_feature"


class ModelRefused(ExecutorFailure):
    """The model or the provider's content filter refused the job."""

    kind = "model_refused"


class RateLimited(ProviderUnavailable):
    """The provider asked to slow down (HTTP 429) after the client's own retries."""

    kind = "rate_limited"


class ProviderAuthFailed(ProviderUnavailable):
    """The provider refused the credentials (HTTP 401/403), or none were set."""

    kind = "provider_auth_failed"


@dataclass(frozen=True)
class Capabilities:
    """What a model can do, as its executor's library says (None: not known).

    An executor may define ``capabilities(settings) -> Capabilities``; validation
    compares it with what the worker needs (``workers.capabilities``) and the engine
    keeps each prompt within ``context_tokens``, counting with ``count_tokens``."""

    model: str
    tools: bool | None = None
    schema: bool | None = None
    streaming: bool | None = None
    # the context window in tokens (prompt and answer together), when known
    context_tokens: int | None = None
    # how to find a model that has a capability, by capability ("tools": "'llm models
    # list --tools' lists them"): the fix names it
    hints: dict[str, str] = field(default_factory=dict)


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
    # why the step ended, in the provider's words normalised (``FINISH_REASONS``):
    # "stop", "tool_calls", "length" (cut at a token limit), "content_filter", or the
    # provider's own word; review reads it to tell a finished answer from a cut one.
    # None: the executor did not say (then the engine infers it from the step's shape)
    finish_reason: str | None = None


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
    # set when the run is cancelled from inside this process (a batch's Ctrl-C, 'run
    # cancel' of one of its runs), where no signal reaches the thread doing the step:
    # an executor that waits long waits on it (``request.halted.wait(seconds)``) and
    # ends the step when it is set; the engine ignores what the step returns then
    halted: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The request as the ``command`` protocol sends it (``halted`` stays here)."""
        data = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "halted"}
        data["protocol"] = PROTOCOL_VERSION
        return data


#: the token counts of a step's usage: whole numbers the history adds up
USAGE_COUNTS = ("input_tokens", "output_tokens")
#: a count above this is no count of tokens (a billion in one step, beyond any model's
#: context), and below it every sum the history keeps stays within what a state file may
#: hold (``digits.MAX_NUMBER``): a run's (two counts, at most 50 iterations: 10**11) and a
#: day's in the cross-run counts (10**6 runs). A count near 10**18 made the run's own
#: summary, and a day of such runs the daily counts, files their checks refuse
MAX_TOKENS = 10**9


def checked_usage(usage: Any) -> dict[str, Any]:
    """The usage an executor reported, as the history may keep and add it up.

    The one door for what an executor says it used (every step passes through
    ``StepLoop._step``, whatever the executor: in process, a step program, a remote
    worker). A token count must be a whole number (not true/false, not 1.5, not
    "lots"), the model text; anything else is left out and named under ``ignored``,
    so the card says what the executor got wrong instead of a traceback at the sum
    (before: ``run start`` ended with one and every later ``runs list`` and ``runs
    stats`` too). Other keys are kept when they are plain values."""
    if usage is None:
        return {}
    if not isinstance(usage, dict):
        return {"ignored": [f"usage: {preview_of(repr(usage), 80)} is not an object"]}
    kept: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in usage.items():
        if value is None:
            continue  # not reported
        if key in USAGE_COUNTS:
            fits = type(value) is int and 0 <= value <= MAX_TOKENS
        elif key == "model":
            fits = isinstance(value, str)
        elif key == "latency_ms":  # an executor's own measure of its step (a program's run time)
            fits = type(value) in (int, float) and math.isfinite(value) and value >= 0
        elif not isinstance(key, str) or key == "ignored":
            fits = False  # the engine's own key
        else:
            fits = isinstance(value, str | int | bool) or (isinstance(value, float) and math.isfinite(value))
        if fits:
            kept[key] = preview_of(value, 200) if isinstance(value, str) else value
        else:
            ignored.append(f"{preview_of(str(key), 40)}: {preview_of(repr(value), 80)}")
    if ignored:
        kept["ignored"] = ignored
    return kept


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
    return Step(
        text=text,
        tool_calls=parsed,
        usage=usage,
        finish_reason=normal_finish_reason(data.get("finish_reason")),
    )


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
