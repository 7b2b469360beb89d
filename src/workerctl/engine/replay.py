"""What a past run recorded, given again to a ``worker try`` of it: per step, per read.

Every step a run makes records, beside its answer, the **fingerprint of its request**
(``fingerprint``: a digest of everything the executor is shown that can decide its
answer: the executor, the worker's name, instructions, output mode and output
contract, the executor settings, the iteration and the limit, the context, the tools
offered and the messages so far; not the run's id, the time left or the workspace's
path, which differ on every run). Every read tool call records its result.

``Recorded`` holds a past run's answers by request fingerprint and its read results by
tool name and arguments. The step loop (``engine.loop.StepLoop._step``, the one place
an executor is asked for a step) asks it first: a request seen in the past run gets
the recorded answer and the executor is not called; any other is called live.
``_call_tool`` asks it for a read tool's result when the try reads the records as
recorded. Both are logged per step and per read, for the try to show.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workerctl.engine.step import Step, ToolCall

if TYPE_CHECKING:
    from workerctl.engine.step import StepRequest
    from workerctl.runs.model import Iteration, Run

#: the StepRequest fields that differ on every run and decide nothing about the answer
_PER_RUN = ("run_id", "time_left", "workspace", "max_field_bytes", "halted")

LIVE, REPLAYED = "live", "replayed"
NOW, RECORDED = "now", "recorded"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def fingerprint(request: StepRequest, executor: str) -> str | None:
    """The digest of what decides a step's answer (see the module); None when the
    request cannot be written as JSON (a record nested deeper than the encoder goes, a
    circular value a plugin built): that step is never replayed, and the run goes on."""
    shown = {k: v for k, v in request.__dict__.items() if k not in _PER_RUN}
    shown["executor"] = executor
    try:
        text = _canonical(shown)
    except (ValueError, TypeError, RecursionError):
        return None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def call_key(name: str, arguments: Any) -> str:
    """A tool call's identity for ``--reads recorded``: its name and its arguments."""
    return f"{name}\0{_canonical(arguments)}"


def plain_json(value: Any) -> Any:
    """``value`` as the run file can hold it (``workerctl.jsonvalues``): JSON values as
    they are; any other value as its text, a NaN or an infinity as null."""
    from workerctl.jsonvalues import finite_or_null, loads, not_json

    if not_json(value) is None:
        return value
    try:
        return finite_or_null(loads(json.dumps(value, ensure_ascii=False, default=str)))
    except (TypeError, ValueError, RecursionError):  # a key JSON cannot name: the whole as text
        return str(value)


def answered(run: Run) -> bool:
    """Whether the run recorded its steps' requests (runs before this did not)."""
    return any(it.request for it in run.iterations)


def _answer_shaped(it: Iteration) -> bool:
    """Whether a recorded iteration holds an answer as the engine records one."""
    return (
        (it.text is None or isinstance(it.text, str))
        and isinstance(it.tool_calls, list)
        and all(isinstance(c.name, str) and isinstance(c.id, str) for c in it.tool_calls)
        and isinstance(it.usage, dict)
        and isinstance(it.stderr, str)
        and isinstance(it.finish_reason, str)
    )


def _step_of(iteration: Iteration) -> Step:
    """A recorded step's answer as the executor gave it."""
    return Step(
        text=iteration.text,
        tool_calls=[ToolCall(c.name, c.arguments, c.id) for c in iteration.tool_calls],
        usage={k: v for k, v in iteration.usage.items() if k != "latency_ms"},
        stderr=iteration.stderr,
        finish_reason=iteration.finish_reason,
    )


@dataclass
class RecordedRead:
    ok: bool
    result: Any
    records_read: list[dict[str, str]]


@dataclass
class Recorded:
    """A past run's recorded answers and reads, and the log of what a try took from them.

    ``answers``: give a recorded answer where the request is the same; ``reads``: give
    a read tool's recorded result where its name and arguments are the same."""

    past: Run
    answers: bool
    reads: bool
    steps: list[dict[str, Any]] = field(default_factory=list)  # [{iteration, answer}]
    read_log: list[dict[str, Any]] = field(default_factory=list)  # [{call, tool, read}]
    _by_request: dict[str, list[Iteration]] = field(default_factory=dict, repr=False)
    _by_call: dict[str, list[RecordedRead]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # a run file is read as it is: what does not have the shape the engine writes
        # (an edited or damaged file) is not given again, and the step is called live
        for it in self.past.iterations:
            if isinstance(it.request, str) and it.finish_reason is not None and _answer_shaped(it):
                self._by_request.setdefault(it.request, []).append(it)
            for call in it.tool_calls:
                kept = call.read_result
                if (
                    isinstance(call.name, str)
                    and isinstance(kept, dict)
                    and isinstance(kept.get("ok"), bool)
                    and isinstance(call.records_read, list)
                    and all(
                        isinstance(r, dict)
                        and isinstance(r.get("type"), str)
                        and isinstance(r.get("id"), str)
                        for r in call.records_read
                    )
                ):
                    self._by_call.setdefault(call_key(call.name, call.arguments), []).append(
                        RecordedRead(kept["ok"], kept.get("result"), call.records_read)
                    )

    def answer(self, request: str | None, iteration: int) -> Step | None:
        """The recorded answer to this request (the executor is not asked), or None."""
        found = self._by_request.get(request) if self.answers and request else None
        self.steps.append({"iteration": iteration, "answer": REPLAYED if found else LIVE})
        return _step_of(found[0]) if found else None

    def read(self, name: str, arguments: Any, where: str) -> RecordedRead | None:
        """The recorded result of this read (None: read the records as they are now)."""
        found = self._by_call.get(call_key(name, arguments)) if self.reads else None
        self.read_log.append({"call": where, "tool": name, "read": RECORDED if found else NOW})
        return found[0] if found else None
