"""What an executor says a step used is checked where every step passes
(``engine.step.checked_usage``, called by ``StepLoop._step``): a token count that is not
a whole number (``"lots"``, 1.5, true, -5, a list) is left out and named on the card.
Before, a step program reporting ``"input_tokens": "lots"`` ended ``run start`` with a
traceback, and every later ``runs list`` and ``runs stats`` with another: the history
held a run its summaries could not be made from."""

from __future__ import annotations

import json
import sys

from hypothesis import given
from hypothesis import strategies as st

from helpers import make_worker, run_workerctl
from workerctl.digits import MAX_NUMBER
from workerctl.engine.step import USAGE_COUNTS, checked_usage
from workerctl.history.layout import SHARD_SHAPE, TABLE
from workerctl.runs.model import Iteration, Run, new_run_id, now_iso
from workerctl.runs.usage import usage_totals
from workerctl.storage.atomic import encode_json

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["12", "lots", "²"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)
USAGES = st.one_of(
    VALUES,
    st.dictionaries(
        st.one_of(st.sampled_from([*USAGE_COUNTS, "model", "latency_ms", "ignored"]), st.text(max_size=6)),
        VALUES,
        max_size=5,
    ),
)


@given(usages=st.lists(USAGES, min_size=1, max_size=3))
def test_whatever_usage_a_step_reports_the_run_summarises_and_stores(usages):
    run = Run(id=new_run_id(), worker="w", config_hash="h", config={}, executor="x", created=now_iso())
    for number, usage in enumerate(usages, 1):
        kept = checked_usage(usage)
        for key in USAGE_COUNTS:
            assert key not in kept or (type(kept[key]) is int and kept[key] >= 0)
        run.iterations.append(Iteration(number=number, started=now_iso(), usage={"latency_ms": 1.0, **kept}))
    run.usage = usage_totals(run.iterations)
    summary = run.summary()
    assert SHARD_SHAPE({TABLE: {"1": summary}}) is None
    json.loads(encode_json(run.to_stored()))  # a run file, written and read back


def test_the_largest_counts_a_step_may_report_sum_to_a_summary_the_shard_keeps():
    """50 iterations (the most a worker may have) each reporting the largest counts kept:
    the run's token sums, and a day's of a million such runs, stay within what a state
    file may hold."""
    from workerctl.engine.step import MAX_TOKENS

    run = Run(id=new_run_id(), worker="w", config_hash="h", config={}, executor="x", created=now_iso())
    for number in range(1, 51):
        kept = checked_usage({"input_tokens": MAX_TOKENS, "output_tokens": MAX_TOKENS, "model": "m"})
        run.iterations.append(Iteration(number=number, started=now_iso(), usage=kept))
    assert checked_usage({"input_tokens": MAX_TOKENS + 1})["ignored"]
    run.usage = usage_totals(run.iterations)
    assert SHARD_SHAPE({TABLE: {"1": run.summary()}}) is None
    assert run.summary()["tokens"] * 10**6 < MAX_NUMBER  # a day of a million such runs, counted


def test_a_step_program_reporting_tokens_as_text_finishes_its_run_and_the_history_reads(workspace):
    program = workspace.root / "step.py"
    program.write_text(
        "import json, sys\n"
        "sys.stdin.read()\n"
        'print(json.dumps({"text": "Blocker: task T-1042 waits on marketing.", '
        '"usage": {"input_tokens": "lots", "output_tokens": 3, "model": "m"}}))\n'
    )
    argv = json.dumps([sys.executable, str(program)])
    make_worker(workspace, "counting", output_mode="review_note", executor=f"{{name: command, argv: {argv}}}")
    started = run_workerctl("run", "start", "counting", "--json", workspace=workspace)
    assert started.returncode == 0, started.stderr
    run = json.loads(started.stdout)
    assert run["status"] == "completed"
    assert run["iterations"][0]["usage"]["ignored"] == ["input_tokens: 'lots'"]
    assert run["iterations"][0]["usage"]["output_tokens"] == 3
    card = run_workerctl("run", "inspect", "--id", run["id"], workspace=workspace)
    assert "left out: input_tokens: 'lots'" in card.stdout, card.stdout
    for argv_ in (("runs", "list"), ("runs", "stats"), ("workers", "list")):
        result = run_workerctl(*argv_, workspace=workspace)
        assert result.returncode == 0, result.stderr
