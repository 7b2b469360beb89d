"""Does the prompt fit the model's context window? Decided before each step is sent.

The step loop calls ``check`` for every step (``StepLoop._step``), so no executor
sends a prompt the engine knows is too long. The window is the executor's
``capabilities(settings).context_tokens`` (None: not known, nothing is checked); the
size is counted part by part (the instructions, each context record by its source
and id, the tool schemas, each tool result so far) with the executor's
``count_tokens(settings, text)`` when it has the model's tokenizer, else estimated
at one token per ``BYTES_PER_TOKEN`` bytes of UTF-8 (an estimate that undercounts
rather than refusing a prompt that would fit: what it misses, the provider's own
"context length exceeded" still reports as the same kind). An executor's
``own_parts(request) -> [(name, text)]`` adds what it writes itself (its user prompt);
``OVERHEAD_TOKENS`` stands for the chat template around the parts (SmolLM2's: the
engine counted 704 where llama.cpp counted 707). Too long: ``ContextTooLong`` (kind
``context_too_long``) naming the parts that take the most room.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workerctl.engine.step import ContextTooLong

if TYPE_CHECKING:
    from workerctl.engine.step import Capabilities, StepRequest

BYTES_PER_TOKEN = 4
OVERHEAD_TOKENS = 16
NAMED_PARTS = 4


@dataclass(frozen=True)
class Part:
    name: str  # "the instructions", "tasks record T-1042", "tool result read_task"
    tokens: int


def parts(executor: Any, request: StepRequest, source_of: dict[str, str]) -> list[tuple[str, str]]:
    """(name, text) of everything the step sends, as the executor will send it."""
    out = [("the instructions", request.instructions)]
    for record in request.context:
        kind, rid = str(record.get("type", "record")), str(record.get("id", "?"))
        source = source_of.get(kind, kind)
        out.append((f"{source} record {rid}", json.dumps(record, ensure_ascii=False, default=str)))
    own = getattr(executor, "own_parts", None)
    if callable(own):  # what the executor adds itself (its user prompt, the contract in words)
        out.extend((str(name), str(text)) for name, text in own(request))
    if request.tools:
        out.append((f"the tool schemas ({len(request.tools)} tools)", json.dumps(request.tools, default=str)))
    for message in request.messages:
        if message.get("role") == "assistant":
            text = (message.get("text") or "") + json.dumps(message.get("tool_calls") or [], default=str)
            out.append((f"the model's reply before iteration {request.iteration}", text))
        else:
            name = f"tool result {message.get('name', '?')}"
            out.append((name, json.dumps(message.get("result"), ensure_ascii=False, default=str)))
    return out


def measure(executor: Any, request: StepRequest, source_of: dict[str, str]) -> tuple[list[Part], bool]:
    """Each part's tokens, and whether the model's tokenizer counted them."""
    counter = getattr(executor, "count_tokens", None)
    measured: list[Part] = []
    exact = callable(counter)
    for name, text in parts(executor, request, source_of):
        tokens = counter(request.settings, text) if callable(counter) else None
        if not isinstance(tokens, int) or isinstance(tokens, bool):
            exact = False
            tokens = math.ceil(len(text.encode("utf-8", "replace")) / BYTES_PER_TOKEN)
        measured.append(Part(name, tokens))
    return measured, exact


def check(executor: Any, caps: Capabilities | None, request: StepRequest, source_of: dict[str, str]) -> None:
    """Raise ``ContextTooLong`` when the step's prompt cannot fit ``caps.context_tokens``."""
    if caps is None or not caps.context_tokens:
        return
    measured, exact = measure(executor, request, source_of)
    total = sum(p.tokens for p in measured) + OVERHEAD_TOKENS
    if total <= caps.context_tokens:
        return
    largest = sorted(measured, key=lambda p: -p.tokens)[:NAMED_PARTS]
    how = "by the model's tokenizer" if exact else f"estimated at {BYTES_PER_TOKEN} bytes a token"
    named = ", ".join(f"{p.name} ({p.tokens})" for p in largest)
    raise ContextTooLong(
        f"the prompt of step {request.iteration} needs about {total} tokens ({how}) and model "
        f"{caps.model} has a context window of {caps.context_tokens}; the largest parts: {named}",
        "every part in tokens: "
        + "; ".join(f"{p.name} {p.tokens}" for p in measured)
        + f"; the executor's own wrapping about {OVERHEAD_TOKENS}",
    )
