"""A run whose output a check stopped before the write (``output_rejected``) shows that
check as failed wherever its review is read: the card, ``runs list``, ``run review``.
Decided after the fact, privacy saw no text written and completion no answer, and the
card said "no automatic check failed" beside the error naming the check."""

from __future__ import annotations

import json

import pytest

from helpers import make_worker, run_workerctl
from workerctl.app import App
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.plugins.manager import get_registry
from workerctl.runs.review_checks import checks


def _start(workspace, name, step, **kw):
    make_worker(workspace, name, executor=json.dumps({"name": "echo", "script": [step]}), **kw)
    return Engine(workspace, get_registry()).start(name, StartOptions(record_id="T-1042", allow_repeat=True))


CUT = {"output": "Blocker: the glossary for T-1042 is late. Suggested next s", "finish_reason": "length"}
PRIVATE = {"output": "Blocker: glossary for T-1042. Next step: email jonas@northwind.example."}


@pytest.mark.parametrize(
    ("step", "key", "extra"),
    [(CUT, "completion", {}), (PRIVATE, "privacy", {"sources": ("tasks", "crm")})],
)
def test_the_check_that_stopped_a_write_is_failed_in_every_review(workspace, step, key, extra):
    run = _start(workspace, "stopped", step, output_mode="task_comment", **extra)
    assert run.status == "failed" and run.error is not None and run.error.kind == "output_rejected"
    assert key in run.error.message
    kept = {c["key"]: c["verdict"] for c in run.checks or []}
    assert kept.get(key) == "fail"  # the verdict kept on the run: the card and runs list
    app = App(str(workspace.root))
    decided = {
        c.key: c.verdict for c in checks(app.history.get(run.id), records=app.records, registry=app.registry)
    }
    assert decided[key] == "fail"  # run review decides again, and says the same
    card = run_workerctl("run", "inspect", run.id, workspace=workspace)
    assert f"FAILED: {key}" in card.stdout and "no automatic check failed" not in card.stdout
    listed = run_workerctl("runs", "list", "--json", "id,failed_checks", workspace=workspace)
    assert key in json.loads(listed.stdout)[0]["failed_checks"]


def test_a_refusal_with_filler_is_not_posted_and_a_grounded_question_is(workspace):
    """A sentence that refuses, greets, offers or asks back makes the output's other
    sentences filler when they share nothing with the records: not posted. With a
    statement about the task beside the question, it is posted."""
    refused = _start(
        workspace,
        "refusal",
        {
            "output": "As an AI language model I have no view of your systems. "
            "Please check with your colleagues."
        },
        output_mode="task_comment",
    )
    assert refused.status == "failed" and refused.error is not None
    assert refused.error.kind == "output_rejected" and "answer" in refused.error.message
    assert refused.side_effects == []
    posted = _start(
        workspace,
        "asks",
        {"output": "Blocker: the German glossary for T-1042 is still missing. Should I chase the vendor?"},
        output_mode="task_comment",
    )
    assert posted.status == "completed", posted.error
    assert [e["kind"] for e in posted.side_effects] == ["comment"]
