"""The llm plugin's model-judged review check, against a model server on 127.0.0.1.

A configured model (``review_model`` in workerctl.yaml) answers each checklist item
yes or no with a quote from the output; without a model, or with an answer that
does not quote the output, the check says ``cannot_tell``, never ``pass``. The model,
the prompt and the answer are kept with the verdict.
"""

from __future__ import annotations

import json

import pytest

from helpers import ChatServer, make_worker

pytest.importorskip("workerctl_llm")

OUTPUT = "Blocker: T-1042 waits on the glossary in legal review.\nSuggested next step: ask legal for a date."
ITEMS = ("addresses_task", "matches_instructions", "supported_by_records", "next_action_clear")


@pytest.fixture
def model_server(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKERCTL_REVIEW_MODEL", raising=False)
    return ChatServer.factory(tmp_path, monkeypatch)


def finished_run(workspace, wcli, *, configure: bool = True) -> str:
    make_worker(
        workspace,
        "judged",
        output_mode="review_note",
        executor=json.dumps({"name": "echo", "script": [{"output": OUTPUT}]}),
    )
    if configure:
        settings = workspace.root / "workerctl.yaml"
        settings.write_text(settings.read_text() + "review_model: local-model\n")
    return json.loads(wcli("run", "start", "judged", "--task", "T-1042", "--json").output)["id"]


def judged(wcli, run_id: str) -> dict:
    checklist = json.loads(wcli("run", "review", "--id", run_id, "--json").output)
    return next(c for c in checklist["checks"] if c["key"] == "model_judged")


def answer(*items: tuple[str, str, str]) -> dict:
    return {"content": json.dumps({"items": [{"key": k, "answer": a, "quote": q} for k, a, q in items]})}


def test_without_a_configured_model_it_cannot_tell(workspace, wcli, model_server):
    run_id = finished_run(workspace, wcli, configure=False)
    check = judged(wcli, run_id)
    assert check["verdict"] == "cannot_tell" and "review_model" in check["evidence"][0]


def test_a_model_quoting_the_output_for_every_item_passes_and_is_recorded(workspace, wcli, model_server):
    reply = answer(*[(k, "yes", "T-1042 waits on the glossary in legal review") for k in ITEMS])
    with model_server([reply]):
        run_id = finished_run(workspace, wcli)
        check = judged(wcli, run_id)
        assert check["verdict"] == "pass", check
        assert check["details"]["model"] == "local-model"
        assert OUTPUT in check["details"]["prompt"] and "glossary" in check["details"]["answer"]
        stored = json.loads(
            wcli(
                "run",
                "review",
                "--id",
                run_id,
                "--json",
                "--verdict",
                "approved",
                "--matches-instructions",
                "yes",
                "--next-action-clear",
                "yes",
                "--reviewer",
                "ana",
            ).output
        )["review"]
    kept = next(c for c in stored["checks"] if c["key"] == "model_judged")
    assert kept["verdict"] == "pass" and kept["details"]["model"] == "local-model"


def test_a_no_with_a_quote_fails(workspace, wcli, model_server):
    reply = answer(
        ("addresses_task", "yes", "waits on the glossary"),
        ("matches_instructions", "no", "ask legal for a date"),
        ("supported_by_records", "yes", "legal review"),
        ("next_action_clear", "yes", "ask legal for a date"),
    )
    with model_server([reply]):
        check = judged(wcli, finished_run(workspace, wcli))
    assert check["verdict"] == "fail"
    assert any(
        e.startswith("matches_instructions") and "ask legal for a date" in e for e in check["evidence"]
    )


@pytest.mark.parametrize(
    "reply",
    [
        answer(*[(k, "yes", "The customer is delighted with the new catalogue") for k in ITEMS]),
        {"content": "Looks fine to me!"},
        answer(("addresses_task", "yes", "waits on the glossary")),
        answer(*[(k, "maybe", "waits on the glossary") for k in ITEMS]),
    ],
    ids=["invented-quote", "not-json", "items-missing", "neither-yes-nor-no"],
)
def test_answers_that_do_not_quote_the_output_decide_nothing(workspace, wcli, model_server, reply):
    with model_server([reply]):
        check = judged(wcli, finished_run(workspace, wcli))
    assert check["verdict"] == "cannot_tell", check


@pytest.mark.slow
def test_an_unreachable_model_cannot_tell(workspace, wcli, model_server):
    server = model_server([{"content": "{}"}])  # configured, never started: the port refuses
    server.server.server_close()
    check = judged(wcli, finished_run(workspace, wcli))
    assert check["verdict"] == "cannot_tell" and "failed" in check["evidence"][0]


def test_the_judge_is_not_asked_when_a_run_finishes(workspace, wcli, model_server):
    run_id = finished_run(workspace, wcli)
    inspected = json.loads(wcli("run", "inspect", "--id", run_id, "--json").output)
    assert "model_judged" not in {c["key"] for c in inspected["checks"]}
