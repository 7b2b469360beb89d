"""The context-fit check every step passes (``engine.context_fit``), on generated
prompts: it refuses exactly the prompts over the window, and names the largest parts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workerctl.engine import context_fit
from workerctl.engine.step import Capabilities, ContextTooLong, StepRequest


class Counting:
    """An executor with a tokenizer: one token per word (so the test can count too)."""

    def count_tokens(self, settings: dict, text: str) -> int:
        return len(text.split())

    def own_parts(self, request: StepRequest) -> list[tuple[str, str]]:
        return [("the executor's user prompt", "do the job")]


class Plain:
    """An executor without a tokenizer: the engine estimates."""


def request(instructions: str, records: list[tuple[str, str, str]]) -> StepRequest:
    return StepRequest(
        run_id="r",
        worker="w",
        instructions=instructions,
        output_mode="review_note",
        settings={},
        iteration=1,
        max_iterations=2,
        context=[{"type": t, "id": i, "text": body} for t, i, body in records],
        tools=[],
        messages=[],
        record_id=None,
        time_left=10.0,
        workspace=".",
    )


records = st.lists(
    st.tuples(st.sampled_from(["task", "doc", "deal"]), st.from_regex(r"[A-Z]-[0-9]{1,4}", fullmatch=True),
              st.text(max_size=400)),
    max_size=6,
    unique_by=lambda r: r[1],
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(instructions=st.text(max_size=300), records=records, window=st.integers(64, 600))
def test_refused_exactly_when_over_the_window_and_the_largest_part_is_named(instructions, records, window):
    req = request(instructions, records)
    source_of = {"task": "tasks", "doc": "docs"}
    parts = context_fit.parts(Counting(), req, source_of)
    total = sum(len(text.split()) for _, text in parts) + context_fit.OVERHEAD_TOKENS
    caps = Capabilities(model="m", context_tokens=window)
    if total <= window:
        context_fit.check(Counting(), caps, req, source_of)
        return
    with pytest.raises(ContextTooLong) as raised:
        context_fit.check(Counting(), caps, req, source_of)
    message = raised.value.message
    assert f"needs about {total} tokens" in message and f"context window of {window}" in message
    largest = max(parts, key=lambda p: len(p[1].split()))
    assert f"{largest[0]} ({len(largest[1].split())})" in message
    assert raised.value.kind == "context_too_long"


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=2000))
def test_the_estimate_counts_bytes_never_more_than_a_token_a_byte(text):
    req = request(text, [])
    measured, exact = context_fit.measure(Plain(), req, {})
    assert not exact
    assert measured[0].tokens == math.ceil(len(text.encode("utf-8", "replace")) / context_fit.BYTES_PER_TOKEN)


def test_an_unknown_window_checks_nothing():
    context_fit.check(Plain(), Capabilities(model="m"), request("x " * 100000, []), {})
    context_fit.check(Plain(), None, request("x " * 100000, []), {})


def test_records_are_named_by_the_workers_context_source():
    req = request("short", [("task", "T-1", "word " * 500), ("deal", "D-9", "word")])
    with pytest.raises(ContextTooLong) as raised:
        context_fit.check(Counting(), Capabilities(model="m", context_tokens=100), req, {"task": "tasks"})
    assert "tasks record T-1 (" in raised.value.message
    assert "deal record D-9" in raised.value.detail  # no source given: named by its type
