"""Comparing two runs: what differed in configuration, steps, output, time and tokens.

People used to open two run cards side by side; this puts the differences in one
document: the configuration fields that changed (instructions as a unified diff),
each iteration of A beside the same iteration of B (tool calls and refusals), the
output as a unified diff, and the duration and token differences.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from workerctl.runs.model import Run

CONFIG_ORDER = (
    "instructions",
    "context_sources",
    "tool_categories",
    "executor",
    "output_mode",
    "max_iterations",
    "timeout",
    "status",
)


def _unified(a: str | None, b: str | None, name_a: str, name_b: str) -> str:
    lines = difflib.unified_diff(
        (a or "").splitlines(keepends=True),
        (b or "").splitlines(keepends=True),
        fromfile=name_a,
        tofile=name_b,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _config_changes(a: Run, b: Run) -> dict[str, Any]:
    keys = [k for k in CONFIG_ORDER if k in a.config or k in b.config]
    keys += sorted((set(a.config) | set(b.config)) - set(keys))
    fields = {
        k: {"a": a.config.get(k), "b": b.config.get(k)} for k in keys if a.config.get(k) != b.config.get(k)
    }
    instructions = ""
    if "instructions" in fields:
        instructions = _unified(
            str(a.config.get("instructions") or ""),
            str(b.config.get("instructions") or ""),
            f"{a.id} instructions",
            f"{b.id} instructions",
        )
    return {
        "same": a.config_hash == b.config_hash,
        "changed": list(fields),
        "fields": fields,
        "instructions_diff": instructions,
        "config_hash": {"a": a.config_hash, "b": b.config_hash},
    }


def _step(run: Run, index: int) -> dict[str, Any] | None:
    if index >= len(run.iterations):
        return None
    it = run.iterations[index]
    return {
        "tool_calls": [
            {"name": c.name, "arguments": c.arguments, "allowed": c.allowed, "ok": c.ok, "reason": c.reason}
            for c in it.tool_calls
        ],
        "text": it.text if not it.tool_calls else None,
        "input_tokens": (it.usage or {}).get("input_tokens"),
        "output_tokens": (it.usage or {}).get("output_tokens"),
        "latency_ms": (it.usage or {}).get("latency_ms"),
    }


def _signature(step: dict[str, Any] | None) -> Any:
    if step is None:
        return None
    return (
        [
            (c["name"], json.dumps(c["arguments"], sort_keys=True, default=str), c["allowed"])
            for c in step["tool_calls"]
        ],
        step["text"],
    )


def _delta(a: float | int | None, b: float | int | None) -> dict[str, Any]:
    if a is None or b is None:
        return {"a": a, "b": b, "delta": None}
    delta = b - a
    return {"a": a, "b": b, "delta": round(delta, 6) if isinstance(delta, float) else delta}


#: ``run diff A B --json``: the document's fields (``diff_runs``), and those of its parts
JSON_FIELDS = (
    "a",
    "b",
    "config",
    "record",
    "iterations",
    "output",
    "duration",
    "tokens",
    "cost",
    "same",
    "changed",
    "fields",
    "instructions_diff",
    "config_hash",
    "number",
    "diff",
    "delta",
    "input",
)


def diff_runs(a: Run, b: Run) -> dict[str, Any]:
    """Every difference between run ``a`` and run ``b`` (A is the earlier one, usually)."""
    count = max(len(a.iterations), len(b.iterations))
    iterations = []
    for index in range(count):
        left, right = _step(a, index), _step(b, index)
        iterations.append(
            {"number": index + 1, "same": _signature(left) == _signature(right), "a": left, "b": right}
        )
    usage_a, usage_b = a.usage or {}, b.usage or {}
    cost_a = (a.cost or {}).get("amount")
    cost_b = (b.cost or {}).get("amount")
    return {
        "a": {
            "id": a.id,
            "worker": a.worker,
            "record_id": a.record_id,
            "status": a.status,
            "error_kind": a.error.kind if a.error else None,
            "created": a.created,
        },
        "b": {
            "id": b.id,
            "worker": b.worker,
            "record_id": b.record_id,
            "status": b.status,
            "error_kind": b.error.kind if b.error else None,
            "created": b.created,
        },
        "config": _config_changes(a, b),
        "record": {
            "a": a.record_fingerprint,
            "b": b.record_fingerprint,
            "same": a.record_id == b.record_id and a.record_fingerprint == b.record_fingerprint,
        },
        "iterations": iterations,
        "output": {
            "same": (a.output or "") == (b.output or ""),
            "diff": _unified(a.output, b.output, f"{a.id} output", f"{b.id} output"),
        },
        "duration": _delta(a.duration, b.duration),
        "tokens": {
            "input": _delta(usage_a.get("input_tokens"), usage_b.get("input_tokens")),
            "output": _delta(usage_a.get("output_tokens"), usage_b.get("output_tokens")),
        },
        "cost": _delta(cost_a, cost_b),
    }
