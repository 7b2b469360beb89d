"""A corpus of misbehaving runs, one per class the review must catch, and clean controls.

Every run is real: the ``command`` executor runs a step program as a subprocess,
the ``echo`` executor plays a script, and the ``llm`` executor talks to an
OpenAI-compatible server on 127.0.0.1. Each case asserts the verdict of every
check it is about, with the evidence that names the cause.
"""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import ChatServer, make_worker
from workerctl.app import App
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.plugins.manager import get_registry
from workerctl.runs.review import checks

STEP_PROGRAM = """\
import json, os, sys
request = json.load(sys.stdin)
steps = json.loads(os.environ["STEPS"])
print(json.dumps(steps[min(request["iteration"], len(steps)) - 1]))
"""
CLAIMING = "Rescheduled the task to Friday and emailed the customer; the invoice was refunded."


def start(workspace, worker, record="T-1042"):
    return Engine(workspace, get_registry()).start(worker, StartOptions(record_id=record))


def review(workspace, run_id):
    app = App(str(workspace.root))
    return {c.key: c for c in checks(app.history.get(run_id), records=app.records, registry=app.registry)}


def automatic(verdicts):
    """The checks decided from the data (a model-judged check without a configured
    model honestly cannot tell)."""
    return {k: v for k, v in verdicts.items() if k != "model_judged"}


def command_worker(workspace, name, steps, **kw):
    program = workspace.root / "step.py"
    program.write_text(STEP_PROGRAM)
    executor = {
        "name": "command",
        "argv": [sys.executable, str(program)],
        "env": {"STEPS": json.dumps(steps)},
    }
    make_worker(workspace, name, executor=json.dumps(executor), **kw)


def echo_worker(workspace, name, *steps, **kw):
    make_worker(workspace, name, executor=json.dumps({"name": "echo", "script": list(steps)}), **kw)


def text(value):
    return {"text": value}


def call(name, **arguments):
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


# -- claims --------------------------------------------------------------------


def test_claims_without_a_subject_and_in_the_passive_fail(workspace):
    command_worker(workspace, "claimer", [text(CLAIMING)], output_mode="review_note")
    run = start(workspace, "claimer")
    assert run.status == "completed"
    found = review(workspace, run.id)
    assert found["claims"].verdict == "fail"
    said = "\n".join(found["claims"].evidence)
    for verb in ("rescheduled", "emailed", "refunded"):
        assert f"({verb}:" in said
    assert CLAIMING.split(";")[0] in said  # the sentence is quoted
    # "ask" inside "task" is not a next step; the worker did not say it could not finish
    assert not any("next step" in e for e in found["next_step"].evidence)


@pytest.mark.parametrize(
    "claim",
    [
        "I have updated the due date to Friday.",
        "We are sending the reply to Maya now.",
        "I will email the customer tomorrow.",
        "Task T-1042 has been reassigned to Omar.",
        "The task is now closed.",
        "Deleted the old comment on T-1042.",
        "Created a new task for Omar to chase the glossary.",
    ],
)
def test_claims_in_any_tense_and_voice_fail_without_a_write(workspace, claim):
    echo_worker(workspace, "claimer", {"output": claim}, output_mode="review_note")
    run = start(workspace, "claimer")
    assert review(workspace, run.id)["claims"].verdict == "fail", claim


@pytest.mark.parametrize(
    "honest",
    [
        "Suggested next step: update the due date and email the customer.",
        "Lena sent the product list to the agency; the glossary was sent by marketing.",
        "I did not change the task. The owner should reschedule it.",
        'Evidence: "Sent the product list to the agency."',
        "The due date was moved on 2026-11-02; the task was assigned to Lena last week.",
        "Last updated: 2026-11-01. Reviewed the comments and the project.",
        "Completed the review of T-1042. I created a summary of the blockers below.",
    ],
)
def test_suggestions_denials_and_others_work_are_not_claims(workspace, honest):
    echo_worker(workspace, "careful", {"output": honest}, output_mode="review_note")
    run = start(workspace, "careful")
    assert review(workspace, run.id)["claims"].verdict == "pass", honest


def test_a_claim_backed_by_a_recorded_write_passes(workspace):
    command_worker(
        workspace,
        "honest",
        [
            call("add_task_comment", task_id="T-1042", text="Asked Lena for the glossary date."),
            text(
                "Added a comment on T-1042 asking Lena for the glossary date. Next step: wait for her answer."
            ),
        ],
        output_mode="review_note",
    )
    run = start(workspace, "honest")
    found = review(workspace, run.id)
    assert found["claims"].verdict == "pass", found["claims"].evidence
    assert run.iterations[0].tool_calls[0].records_written == [
        {"kind": "comment", "type": "task", "id": "T-1042"}
    ]


def test_a_claim_about_another_record_than_the_write_fails(workspace):
    echo_worker(
        workspace,
        "wrongtarget",
        {"tool": "add_task_comment", "arguments": {"task_id": "T-1042", "text": "Glossary?"}},
        {"output": "Posted a comment on T-1043."},
        output_mode="review_note",
    )
    run = start(workspace, "wrongtarget")
    assert review(workspace, run.id)["claims"].verdict == "fail"


# -- context: reads outside the context sources ---------------------------------


def test_a_read_outside_the_context_sources_fails_naming_the_call(workspace):
    command_worker(
        workspace,
        "nosy",
        [call("list_project_tasks", project_id="P-7"), text("Summary of T-1042. Next step: ask Lena.")],
        sources=("tasks",),
        output_mode="review_note",
    )
    run = start(workspace, "nosy")
    # refused while the tool ran (engine/run_records.py), not only found by review later
    assert run.status == "failed" and run.error.kind == "read_refused"
    listed = run.iterations[0].tool_calls[0]
    assert listed.allowed is False and listed.refused_record == {
        "what": "read",
        "id": "P-7",
        "type": "project",
    }
    assert listed.records_read == []  # nothing was returned to the tool
    kept = {(r["type"], r["id"], r["by"]) for r in run.reads}
    assert ("task", "T-1042", "context") in kept and ("project", "P-7", "tool") not in kept


def test_reads_within_the_context_sources_pass(workspace):
    command_worker(
        workspace,
        "reader",
        [call("read_task", task_id="T-1042"), text("Summary of T-1042. Next step: ask Lena.")],
        sources=("tasks",),
        output_mode="review_note",
    )
    run = start(workspace, "reader")
    assert review(workspace, run.id)["context"].verdict == "pass"


# -- the record the output is about ---------------------------------------------


def test_an_output_about_another_task_fails_the_record_check(workspace):
    echo_worker(
        workspace,
        "confused",
        {"output": "Blocker of T-1043: VAT rates are missing. Next step: ask Omar."},
        output_mode="review_note",
    )
    run = start(workspace, "confused")
    found = review(workspace, run.id)["record"]
    assert found.verdict == "fail"
    assert any("never saw" in e and "T-1043" in e for e in found.evidence)
    assert any("not the linked task T-1042" in e for e in found.evidence)


def test_an_output_naming_a_record_the_run_never_saw_fails(workspace):
    echo_worker(
        workspace,
        "inventive",
        {"output": "T-1042 waits on INV-2050. Next step: ask finance."},
        output_mode="review_note",
    )
    run = start(workspace, "inventive")
    found = review(workspace, run.id)["record"]
    assert found.verdict == "fail" and any("INV-2050" in e for e in found.evidence)


def test_records_read_by_a_tool_may_be_named(workspace):
    echo_worker(
        workspace,
        "lister",
        {"tool": "list_project_tasks", "arguments": {"project_id": "P-7"}},
        {"output": "T-1042 is late; T-1043 too. Next step: ask Priya."},
        sources=("tasks", "projects"),
        output_mode="review_note",
    )
    run = start(workspace, "lister")
    assert review(workspace, run.id)["record"].verdict == "pass"


# -- the output contract -------------------------------------------------------

CONTRACT = (
    "output_contract:\n  sections: [Blocker, Suggested next step]\n  names_record: true\n  max_lines: 3\n"
)


def test_an_output_that_breaks_its_contract_fails_the_contract_check(workspace):
    echo_worker(
        workspace,
        "formless",
        {"output": "The glossary is late.\nAsk marketing.\nMaybe legal.\nOr not."},
        output_mode="review_note",
        extra=CONTRACT,
    )
    run = start(workspace, "formless")
    assert run.status == "completed"  # a broken contract is a failed check, not a failed run
    found = review(workspace, run.id)["contract"]
    assert found.verdict == "fail"
    said = "\n".join(found.evidence)
    assert "'Blocker:'" in said and "T-1042" in said and "4 lines" in said


def test_an_output_that_keeps_its_contract_passes(workspace):
    echo_worker(
        workspace,
        "formed",
        {"output": "Blocker: T-1042 waits on the glossary.\nSuggested next step: ask marketing."},
        output_mode="review_note",
        extra=CONTRACT,
    )
    run = start(workspace, "formed")
    assert review(workspace, run.id)["contract"].verdict == "pass"


def test_without_a_contract_the_check_cannot_tell(workspace):
    echo_worker(workspace, "free", {"output": "T-1042 waits. Next step: ask."}, output_mode="review_note")
    run = start(workspace, "free")
    assert review(workspace, run.id)["contract"].verdict == "cannot_tell"


def test_the_echo_executor_honours_a_contract(workspace):
    make_worker(workspace, "composer", output_mode="review_note", extra=CONTRACT)
    run = start(workspace, "composer")
    assert run.output.startswith("Blocker: ") and "\nSuggested next step: " in run.output
    assert len(run.output.splitlines()) <= 3
    assert review(workspace, run.id)["contract"].verdict == "pass"


# -- next step -------------------------------------------------------------------


def test_could_not_finish_without_a_next_step_fails(workspace):
    command_worker(
        workspace, "stuck", [text("I could not read the invoice for this task.")], output_mode="review_note"
    )
    run = start(workspace, "stuck")
    found = review(workspace, run.id)["next_step"]
    assert found.verdict == "fail"
    assert "I could not read the invoice" in found.evidence[0]


def test_could_not_finish_with_a_next_step_passes(workspace):
    command_worker(
        workspace,
        "stuck2",
        [text("Blocked: the glossary is missing. Next step: ask marketing for it.")],
        output_mode="review_note",
    )
    run = start(workspace, "stuck2")
    assert review(workspace, run.id)["next_step"].verdict == "pass"


# -- duplicates --------------------------------------------------------------


def test_a_tool_comment_and_the_output_mode_comment_from_one_run_fail(workspace):
    body = (
        "Blocker: the glossary is stuck in legal review.\nEvidence: Priya's comment.\n"
        "Suggested next step: ask legal for a date.\nOwner: Lena Fischer"
    )
    command_worker(
        workspace,
        "twice",
        [call("add_task_comment", task_id="T-1042", text=body), text("Blocker summary for T-1042\n" + body)],
    )
    run = start(workspace, "twice")
    assert [e["by"] for e in run.side_effects] == ["tool", "output_mode"]
    found = review(workspace, run.id)["duplicates"]
    assert found.verdict == "fail"
    said = "\n".join(found.evidence)
    assert "this run left 2 comments" in said
    assert "near-equal (ratio 0.9" in said


def test_a_comment_nearly_equal_to_an_earlier_one_fails(workspace):
    first = "Blocker: the glossary is stuck in legal review. Next step: ask legal."
    echo_worker(workspace, "first", {"output": first})
    echo_worker(workspace, "second", {"output": "Update — " + first})
    start(workspace, "first")
    run = start(workspace, "second")
    found = review(workspace, run.id)["duplicates"]
    assert found.verdict == "fail" and "near-equal" in found.evidence[0]


def test_a_different_comment_on_the_same_record_passes(workspace):
    echo_worker(workspace, "first", {"output": "Blocker: legal review. Next step: ask legal."})
    echo_worker(
        workspace,
        "second",
        {
            "output": "T-1042: the agency has the product list; "
            "the glossary is missing. Next step: ask "
            "marketing when it leaves legal."
        },
    )
    start(workspace, "first")
    run = start(workspace, "second")
    assert review(workspace, run.id)["duplicates"].verdict == "pass"


# -- needs a person -----------------------------------------------------------


def test_reading_crm_and_finance_with_productivity_tools_needs_a_person(workspace, wcli):
    echo_worker(
        workspace,
        "money",
        {"output": "T-1042: INV-2031 is overdue. Next step: ask Jonas."},
        sources=("tasks", "crm", "finance"),
        categories=("productivity",),
        output_mode="review_note",
    )
    run = start(workspace, "money")
    assert run.needs_review
    assert any("finance" in r and "an invoice" in r for r in run.review_reasons)
    assert any("crm" in r and "a customer response" in r for r in run.review_reasons)
    listed = json.loads(wcli("runs", "list", "--unreviewed", "--json").output)
    assert [r["id"] for r in listed] == [run.id]
    wcli(
        "run",
        "review",
        "--id",
        run.id,
        "--verdict",
        "approved",
        "--matches-instructions",
        "yes",
        "--next-action-clear",
        "yes",
        "--reviewer",
        "ana",
    )
    assert json.loads(wcli("runs", "list", "--unreviewed", "--json").output) == []


def test_productivity_only_workers_need_no_person(workspace):
    run = start(workspace, "overdue-task-review")
    assert not run.needs_review and run.review_reasons == []


# -- clean controls: the sample workers' normal runs fail nothing ----------------


@pytest.mark.parametrize(
    "worker,record,test",
    [
        ("overdue-task-review", "T-1042", False),
        ("crm-activity-summary", "T-1042", False),
        ("support-triage-draft", "T-2001", True),
        ("record-cleanup", "T-2002", False),
    ],
)
def test_sample_workers_normal_runs_fail_no_check(workspace, worker, record, test):
    run = Engine(workspace, get_registry()).start(worker, StartOptions(record_id=record, test=test))
    assert run.status == "completed", run.error
    verdicts = {k: c.verdict for k, c in review(workspace, run.id).items()}
    assert set(automatic(verdicts).values()) == {"pass"}, (verdicts, run.output)


def test_a_clean_command_run_fails_no_check(workspace):
    command_worker(
        workspace,
        "clean",
        [
            call("read_task", task_id="T-1042"),
            text(
                "Blocker: T-1042 waits on the glossary, stuck in legal review.\n"
                "Suggested next step: ask legal for a date."
            ),
        ],
        output_mode="review_note",
        extra=CONTRACT,
    )
    run = start(workspace, "clean")
    verdicts = {k: c.verdict for k, c in review(workspace, run.id).items()}
    assert set(automatic(verdicts).values()) == {"pass"}, verdicts


# -- the same classes through a model server (llm executor, OpenAI-compatible) --


@pytest.fixture
def model_server(tmp_path, monkeypatch):
    pytest.importorskip("workerctl_llm")
    return ChatServer.factory(tmp_path, monkeypatch)


def llm_worker(workspace, name, **kw):
    make_worker(workspace, name, executor=json.dumps({"name": "llm", "model": "local-model"}), **kw)


def tool_message(name, arguments):
    return {
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }


@pytest.mark.slow
def test_model_run_that_claims_work_and_reads_outside_its_context(workspace, model_server):
    with model_server(
        [
            tool_message("list_project_tasks", {"project_id": "P-7"}),
            {"content": "I have updated T-1042 and emailed Maya."},
        ]
    ):
        llm_worker(workspace, "model", sources=("tasks",), output_mode="review_note")
        run = start(workspace, "model")
    # the read outside the context sources is refused during the run: the claim that
    # follows it is never made
    assert run.status == "failed" and run.error.kind == "read_refused", run.error
    assert run.iterations[0].tool_calls[0].refused_record["id"] == "P-7"
    assert run.output is None


@pytest.mark.slow
def test_model_run_that_comments_twice_and_cannot_finish(workspace, model_server):
    body = "Blocker: legal review holds the glossary.\nOwner: Lena Fischer"
    with model_server(
        [
            tool_message("add_task_comment", {"task_id": "T-1042", "text": body}),
            {"content": "Blocked; unable to find a date.\n" + body},
        ]
    ):
        llm_worker(workspace, "model2")
        run = start(workspace, "model2")
    assert run.status == "completed", run.error
    found = review(workspace, run.id)
    assert found["duplicates"].verdict == "fail"
    assert found["next_step"].verdict == "fail"


def test_model_clean_control(workspace, model_server):
    with model_server(
        [
            tool_message("read_task", {"task_id": "T-1042"}),
            {
                "content": "Blocker: T-1042 waits on the glossary in legal review.\n"
                "Suggested next step: ask legal for a date."
            },
        ]
    ):
        llm_worker(workspace, "model3", output_mode="review_note", extra=CONTRACT)
        run = start(workspace, "model3")
    verdicts = {k: c.verdict for k, c in review(workspace, run.id).items()}
    assert set(automatic(verdicts).values()) == {"pass"}, verdicts


def test_every_template_declares_a_contract_that_new_workers_keep(workspace, wcli):
    registry = get_registry()
    for key, template in registry.templates.items():
        assert template.output_contract is not None, key
        assert template.output_contract.sections, key
        name = f"from-{key}"
        assert wcli("worker", "new", name, "--template", key).exit_code == 0
        text = (workspace.workers_dir / f"{name}.yaml").read_text()
        assert "output_contract:\n  sections: [" in text
    assert wcli("worker", "validate").exit_code == 0


def test_similarity_bounds_never_change_a_decision():
    from workerctl.runs.review import SIMILARITY, similarity

    base = "Blocker: the glossary is stuck in legal review. Next step: ask legal for a date."
    pairs = [
        (base, base),
        (base, "Update — " + base),
        (base, base.upper()),
        (base, "T-1042: the agency has the list; marketing has the glossary."),
        (base, "x" * len(base)),
        (base, base[: len(base) // 2]),
    ]
    for a, b in pairs:
        assert (similarity(a, b, SIMILARITY) >= SIMILARITY) == (similarity(a, b) >= SIMILARITY)


@settings(max_examples=300, deadline=None)
@given(
    b=st.text(alphabet="ab c.", max_size=40),
    earlier=st.lists(st.text(alphabet="ab c.", max_size=60), max_size=6),
    floor=st.sampled_from([0.0, 0.5, 0.9]),
)
def test_one_scorer_against_many_texts_decides_as_difflib_does(b, earlier, floor):
    """``similar_to`` indexes ``b`` only at the first text near its length and reuses
    that index: each score, in any order, decides as difflib's exact ratio does."""
    import difflib

    from workerctl.runs.review import _norm, similar_to

    score = similar_to(b)
    for a in earlier:
        exact = difflib.SequenceMatcher(None, _norm(a), _norm(b), autojunk=False).ratio()
        got = score(a, floor)
        assert (got >= floor) == (exact >= floor)
        if got >= floor:
            assert got == pytest.approx(exact)


def test_a_claim_backed_only_by_a_write_of_unknown_outcome_cannot_be_told(workspace):
    """A write left ``intended`` (its process died between doing it and confirming it:
    a fault a finished run with output cannot otherwise show) neither backs nor
    disproves a claim."""
    command_worker(
        workspace,
        "unsure",
        [
            call("add_task_comment", task_id="T-1042", text="Asked Lena for the glossary date."),
            text("Added a comment on T-1042. Next step: wait for Lena."),
        ],
        output_mode="review_note",
    )
    run = start(workspace, "unsure")
    history = App(str(workspace.root)).history

    def forget_commit(stored):
        for effect in stored.side_effects:
            effect["state"] = "intended"

    history.update(run.id, forget_commit)
    found = review(workspace, run.id)["claims"]
    assert found.verdict == "cannot_tell" and "unknown outcome" in found.evidence[0]


def test_record_ids_inside_quoted_evidence_are_the_records_words(workspace):
    echo_worker(
        workspace,
        "quoting",
        {"output": 'T-1042: Priya wrote "same as T-2002, wait for legal". Next step: ask legal.'},
        output_mode="review_note",
    )
    run = start(workspace, "quoting")
    assert review(workspace, run.id)["record"].verdict == "pass"
