"""The deterministic ``echo`` executor: no model, for safe tests, demos and CI.

Without a script it answers at once with a summary composed from the
instructions and the context. With ``script`` in its settings it plays one
scripted step per iteration, so gates and failures can be exercised::

    executor:
      name: echo
      script:
        - tool: read_task
          arguments: {task_id: T-1042}
        - output: "Blocker: waiting on the vendor"

A script step is one of ``tool`` (with ``arguments``), ``tool_calls`` (a list of
those), ``output`` (final text; ``{context}`` and ``{last_result}`` are
filled in), ``error`` (raise, giving ``executor_error``), ``sleep`` (seconds to
wait before the rest of the step, e.g. ``{sleep: 2, output: done}``),
or ``repeat`` (the previous step again, for ever). A step may add
``finish_reason`` (e.g. ``length``: the step plays a model cut at its token limit);
otherwise it is ``stop`` for text and ``tool_calls`` for tool calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from workerctl.api import ExecutorFailure, Step, StepRequest, StepTimeout, ToolCall, hookimpl
from workerctl.runs.model import preview_of

STEP_KEYS = {"tool", "arguments", "tool_calls", "output", "error", "sleep", "repeat", "finish_reason"}


def _one_line(text: object, limit: int = 140) -> str:
    return preview_of(str(text), limit)


def _facts(request: StepRequest) -> dict[str, str]:
    """The few facts the echo answer is made of, each one line, from the context only."""
    main = next((r for r in request.context if r["id"] == request.record_id), None)
    others = [r for r in request.context if r is not main]
    facts = {
        "summary": "",
        "evidence": "",
        "context": "",
        "owner": "",
        "money": "",
        "products": "",
        "priority": "",
    }
    if main is not None:
        fields = main.get("fields", {})
        bits = [f"{k} {fields[k]}" for k in ("status", "due", "assignee", "priority") if fields.get(k)]
        facts["summary"] = f'{main["type"]} {main["id"]} "{_one_line(main.get("title", ""), 80)}"' + (
            f" ({', '.join(bits)})" if bits else ""
        )
        human = [c for c in main.get("comments", []) if not c.get("run_id")]
        if human:
            last = human[-1]
            facts["evidence"] = f'latest comment by {last["author"]}: "{_one_line(last["text"], 110)}"'
        elif fields.get("description"):
            facts["evidence"] = f'description: "{_one_line(fields["description"], 110)}"'
        facts["owner"] = str(fields.get("assignee") or fields.get("owner") or "")
        facts["priority"] = str(fields.get("priority") or "")
    if others:
        facts["context"] = "; ".join(
            f'{r["type"]} {r["id"]} "{_one_line(r.get("title", ""), 40)}"' for r in others
        )
    invoices = [r for r in request.context if r["type"] == "invoice"]
    facts["money"] = "; ".join(
        f"{r['id']} {r.get('fields', {}).get('amount', '?')} "
        f"{r.get('fields', {}).get('currency', '')} {r.get('fields', {}).get('status', '')}".strip()
        for r in invoices
    )
    facts["products"] = "; ".join(
        f'{r["id"]} "{_one_line(r.get("title", ""), 40)}"' for r in request.context if r["type"] == "product"
    )
    return facts


NEXT_STEP_TEXT = "the owner confirms the points above against the linked record and decides what to change"
# contract section label (lower case, a word in it) -> which fact fills it
SECTION_FACTS = (
    (("next", "first step", "talking", "decision", "draft reply", "question"), "next"),
    (("evidence", "recent activity", "done so far", "likely cause"), "evidence"),
    (("owner",), "owner"),
    (("money", "invoice"), "money"),
    (("product",), "products"),
    (("severity", "priority"), "priority"),
    (("fix",), "fixes"),
)


def _section_value(label: str, facts: dict[str, str]) -> str:
    lowered = label.lower()
    what = next((fact for words, fact in SECTION_FACTS if any(w in lowered for w in words)), "summary")
    if what == "next":
        return NEXT_STEP_TEXT + "."
    if what == "fixes":
        return "none found from the records given; a person checks the records above."
    value = facts.get(what) or ""
    if what == "summary" and not value:
        value = "no record context was given to this run"
    return value or "not stated in the records given"


def compose_with_contract(request: StepRequest, contract: dict) -> str:
    """One ``Label: value`` line per section of the contract, then, while the limits
    allow, the context used and a note that no model was called."""
    facts = _facts(request)
    lines = [f"{label}: {_section_value(label, facts)}" for label in contract.get("sections") or []]
    if not lines:
        lines = [
            f"Summary: {facts['summary'] or 'no record context was given to this run'}",
            f"Suggested next step: {NEXT_STEP_TEXT}.",
        ]
    record_id = request.record_id
    if contract.get("names_record") and record_id and record_id not in "\n".join(lines):
        lines[0] = f"{lines[0]} (on {record_id})"
    optional = []
    if facts["context"]:
        optional.append(f"Context used: {facts['context']}")
    optional.append(f"(echo executor for worker {request.worker}: deterministic, no model was called)")
    max_lines, max_length = contract.get("max_lines"), contract.get("max_length")
    for line in optional:
        candidate = [*lines, line]
        if max_lines is not None and len(candidate) > max_lines:
            continue
        if max_length is not None and len("\n".join(candidate)) > max_length:
            continue
        lines = candidate
    text = "\n".join(lines)
    if max_length is not None and len(text) > max_length:
        text = text[: max_length - 1] + "…"
    return text


def compose(request: StepRequest) -> str:
    """A readable, bounded answer built only from what the run was given.

    Comments are quoted by their first line only, so that a worker commenting on
    a task it later reads again does not quote itself ever more deeply. With an
    output contract the answer keeps it (its sections, the record id, the limits).
    """
    contract = getattr(request, "output_contract", None)
    if contract:
        return compose_with_contract(request, contract)
    facts = _facts(request)
    lines = []
    if facts["summary"]:
        lines.append(f"Summary of {facts['summary']}")
        if facts["evidence"]:
            lines.append(facts["evidence"][0].upper() + facts["evidence"][1:])
    if facts["context"]:
        lines.append("Context used: " + facts["context"])
    if not request.context:
        lines.append("No record context was given to this run.")
    lines.append(f"Suggested next step: {NEXT_STEP_TEXT}.")
    lines.append(f"(echo executor for worker {request.worker}: a deterministic summary, no model was called)")
    return "\n".join(lines)


class EchoExecutor:
    name = "echo"
    description = (
        "Deterministic, no model: composes its output from the instructions and "
        "context, or plays a scripted list of steps"
    )
    calls_provider = False  # so a timeout is never put down to a provider
    #: its only wait, a scripted ``sleep``, ends at the run's deadline (``StepTimeout``)
    #: and at a cancel (``request.halted``), and nothing else it does can block: the
    #: engine calls it on the run's own thread (``engine.loop._bounded_step``), not on a
    #: thread of its own per step (which cost a --jobs 4 batch about 7 % of its CPU)
    bounds_itself = True

    def check_settings(self, settings: dict[str, Any]) -> list[tuple[str, ...]]:
        problems: list[tuple[str, ...]] = []
        for key in settings:
            if key != "script":
                problems.append((key, f"unknown echo setting {key!r}", "known: script"))
        script = settings.get("script")
        if script is None:
            return problems
        if not isinstance(script, list):
            return [*problems, ("script", "must be a list of steps", "e.g. script: [{output: done}]")]
        for index, step in enumerate(script):
            if not isinstance(step, dict) or not step:
                problems.append((f"script.{index}", "each step must be a mapping", "e.g. - output: text"))
                continue
            unknown = set(step) - STEP_KEYS
            if unknown:
                problems.append(
                    (
                        f"script.{index}",
                        f"unknown step key(s) {', '.join(sorted(unknown))}",
                        f"known: {', '.join(sorted(STEP_KEYS))}",
                    )
                )
        return problems

    def step(self, request: StepRequest) -> Step:
        script = request.settings.get("script")
        if not script:
            return Step(text=compose(request), usage={"model": "echo"}, finish_reason="stop")
        index = min(request.iteration - 1, len(script) - 1)
        step = script[index]
        while step.get("repeat") and index > 0:
            index -= 1
            step = script[index]
        if request.iteration > len(script) and not script[-1].get("repeat"):
            return Step(text=compose(request), usage={"model": "echo"}, finish_reason="stop")
        played = self._play(step, request)
        if step.get("finish_reason"):
            played.finish_reason = str(step["finish_reason"])
        return played

    def _play(self, step: dict, request: StepRequest) -> Step:
        if "sleep" in step:
            seconds = float(step["sleep"])
            if seconds >= request.time_left:
                if request.halted.wait(max(request.time_left, 0)):
                    return Step(text="", usage={"model": "echo"}, finish_reason="stop")
                raise StepTimeout(f"the scripted step slept past the run's timeout ({seconds:g}s scripted)")
            if request.halted.wait(seconds):  # the run was cancelled: the engine stops it
                return Step(text="", usage={"model": "echo"}, finish_reason="stop")
        if "error" in step:
            raise ExecutorFailure(str(step["error"]))
        if "tool" in step:
            return Step(
                tool_calls=[ToolCall(step["tool"], step.get("arguments", {}))],
                usage={"model": "echo"},
                finish_reason="tool_calls",
            )
        if "tool_calls" in step:
            return Step(
                tool_calls=[ToolCall(c["tool"], c.get("arguments", {})) for c in step["tool_calls"]],
                usage={"model": "echo"},
                finish_reason="tool_calls",
            )
        if "output" in step:
            last = next((m for m in reversed(request.messages) if m["role"] == "tool"), None)
            text = str(step["output"])
            text = text.replace("{context}", compose(request))
            text = text.replace("{last_result}", json.dumps(last["result"]) if last else "")
            return Step(text=text, usage={"model": "echo"}, finish_reason="stop")
        return Step(text=compose(request), usage={"model": "echo"}, finish_reason="stop")


@hookimpl
def register_executors(register: Callable[..., None]) -> None:
    register(EchoExecutor())
