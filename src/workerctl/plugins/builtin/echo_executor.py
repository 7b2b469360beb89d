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
or ``repeat`` (the previous step again, for ever).
"""

from __future__ import annotations

import json
import time
from typing import Any

from workerctl.api import ExecutorFailure, Step, StepTimeout, ToolCall, hookimpl
from workerctl.runs.model import preview_of

STEP_KEYS = {"tool", "arguments", "tool_calls", "output", "error", "sleep", "repeat"}


def _one_line(text, limit: int = 140) -> str:
    return preview_of(str(text), limit)


def compose(request) -> str:
    """A readable, bounded answer built only from what the run was given.

    Comments are quoted by their first line only, so that a worker commenting on
    a task it later reads again does not quote itself ever more deeply.
    """
    lines = []
    main = next((r for r in request.context if r["id"] == request.record_id), None)
    if main is not None:
        fields = main.get("fields", {})
        facts = [f"{k} {fields[k]}" for k in ("status", "due", "assignee", "priority")
                 if fields.get(k)]
        lines.append(f"Summary of {main['type']} {main['id']} \"{main.get('title', '')}\""
                     + (f" ({', '.join(facts)})" if facts else ""))
        human = [c for c in main.get("comments", []) if not c.get("run_id")]
        if human:
            last = human[-1]
            lines.append(f"Latest comment by {last['author']}: {_one_line(last['text'])}")
        elif fields.get("description"):
            lines.append(f"Description: {_one_line(fields['description'])}")
    others = [r for r in request.context if r is not main]
    if others:
        lines.append("Context used: " + "; ".join(
            f"{r['type']} {r['id']} \"{_one_line(r.get('title', ''), 60)}\"" for r in others))
    if not request.context:
        lines.append("No record context was given to this run.")
    lines.append("Suggested next step: the owner confirms the blocker above against the linked "
                 "record and updates the task.")
    lines.append(f"(echo executor for worker {request.worker}: a deterministic summary, "
                 "no model was called)")
    return "\n".join(lines)


class EchoExecutor:
    name = "echo"
    description = "Deterministic, no model: composes its output from the instructions and " \
                  "context, or plays a scripted list of steps"

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
                problems.append((f"script.{index}", "each step must be a mapping",
                                 "e.g. - output: text"))
                continue
            unknown = set(step) - STEP_KEYS
            if unknown:
                problems.append((f"script.{index}",
                                 f"unknown step key(s) {', '.join(sorted(unknown))}",
                                 f"known: {', '.join(sorted(STEP_KEYS))}"))
        return problems

    def step(self, request) -> Step:
        script = request.settings.get("script")
        if not script:
            return Step(text=compose(request), usage={"model": "echo"})
        index = min(request.iteration - 1, len(script) - 1)
        step = script[index]
        while step.get("repeat") and index > 0:
            index -= 1
            step = script[index]
        if request.iteration > len(script) and not script[-1].get("repeat"):
            return Step(text=compose(request), usage={"model": "echo"})
        return self._play(step, request)

    def _play(self, step: dict, request) -> Step:
        if "sleep" in step:
            seconds = float(step["sleep"])
            if seconds >= request.time_left:
                time.sleep(max(request.time_left, 0))
                raise StepTimeout(f"the scripted step slept past the run's timeout "
                                  f"({seconds:g}s scripted)")
            time.sleep(seconds)
        if "error" in step:
            raise ExecutorFailure(str(step["error"]))
        if "tool" in step:
            return Step(tool_calls=[ToolCall(step["tool"], step.get("arguments", {}))],
                        usage={"model": "echo"})
        if "tool_calls" in step:
            return Step(tool_calls=[ToolCall(c["tool"], c.get("arguments", {}))
                                    for c in step["tool_calls"]], usage={"model": "echo"})
        if "output" in step:
            last = next((m for m in reversed(request.messages) if m["role"] == "tool"), None)
            text = str(step["output"])
            text = text.replace("{context}", compose(request))
            text = text.replace("{last_result}", json.dumps(last["result"]) if last else "")
            return Step(text=text, usage={"model": "echo"})
        return Step(text=compose(request), usage={"model": "echo"})


@hookimpl
def register_executors(register):
    register(EchoExecutor())
