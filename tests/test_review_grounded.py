"""Review grounded in the data: misbehaving runs per principle, and well-behaved controls.

Every run is real: the ``command`` executor runs a step program as a subprocess
(which may change the workspace's records while the run works, through the
``workerctl`` CLI), the ``echo`` executor plays a script, and the ``llm``
executor talks to an OpenAI-compatible server on 127.0.0.1. A misbehaving run
is *flagged* when a check fails (as the run finished, kept on the run, and
again in ``run review``) or when the run was stopped before its write
(``output_rejected``). A control must fail no check at all.
"""

from __future__ import annotations

import json
import sys

import pytest

from helpers import ChatServer, make_worker
from workerctl.app import App
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.plugins.manager import get_registry
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.runs.review import checks

# a step program: each step may first run workerctl commands ("before": [[args...]])
STEP_PROGRAM = """\
import json, os, subprocess, sys
request = json.load(sys.stdin)
steps = json.loads(os.environ["STEPS"])
step = dict(steps[min(request["iteration"], len(steps)) - 1])
for args in step.pop("before", []):
    subprocess.run([sys.executable, "-m", "workerctl", "-w", request["workspace"], *args],
                   check=True, capture_output=True, input=step.pop("stdin", None), text=True)
print(json.dumps(step))
"""

EXTRA_RECORDS = [
    {
        "id": "C-30",
        "type": "contact",
        "title": "Ines Duarte",
        "email": "ines.duarte@harbor.example",
        "phone": "+351 21 555 0142",
        "links": {"company": "CO-5"},
    },
    {
        "id": "CO-8",
        "type": "company",
        "title": "Lumen Freight",
        "iban": "DE44 5001 0517 5407 3249 31",
        "links": {"contacts": ["C-30"]},
    },
    {
        "id": "T-5001",
        "type": "task",
        "title": "Confirm freight insurance",
        "status": "blocked",
        "assignee": "Ines Duarte",
        "due": "2026-12-02",
        "description": "Lumen Freight waits for the signed insurance form.",
        "links": {"company": "CO-8", "contact": "C-30"},
    },
]


@pytest.fixture
def ws(workspace):
    BuiltinRecordStore(workspace).import_records(EXTRA_RECORDS, "test")
    return workspace


def start(workspace, worker, record="T-1042"):
    return Engine(workspace, get_registry()).start(worker, StartOptions(record_id=record, allow_repeat=True))


def review(workspace, run_id):
    app = App(str(workspace.root))
    run = app.history.get(run_id)
    return run, {c.key: c for c in checks(run, records=app.records, registry=app.registry)}


DEFAULT_INSTRUCTIONS = "  Summarise the task and suggest a next step.\n"


def worker(workspace, name, executor, instructions=None, **kw):
    path = make_worker(workspace, name, executor=json.dumps(executor), **kw)
    if instructions:
        body = path.read_text().replace(DEFAULT_INSTRUCTIONS, f"  {instructions}\n")
        path.write_text(body)


def command_worker(workspace, name, steps, **kw):
    program = workspace.root / "grounded_step.py"
    program.write_text(STEP_PROGRAM)
    executor = {
        "name": "command",
        "argv": [sys.executable, str(program)],
        "env": {"STEPS": json.dumps(steps)},
    }
    worker(workspace, name, executor, **kw)


def echo_worker(workspace, name, *steps, **kw):
    worker(workspace, name, {"name": "echo", "script": list(steps)}, **kw)


def flagged(workspace, run) -> set[str]:
    """The keys that flag a run: failed checks (kept and decided again), or the check
    that stopped its write."""
    stored, found = review(workspace, run.id)
    keys = {k for k, c in found.items() if c.verdict == "fail"}
    kept = {c["key"] for c in stored.checks or [] if c["verdict"] == "fail"}
    if run.error is not None and run.error.kind == "output_rejected":
        keys |= {k for k in found if k in run.error.message}
    return keys | kept


def due(workspace, record_id: str) -> str:
    """A sample record's due date (they are relative to the day the workspace was made)."""
    record = BuiltinRecordStore(workspace).get(record_id)
    assert record is not None
    return str(record.fields["due"])


def text(value, **extra):
    return {"text": value, **extra}


def call(name, **arguments):
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


# -- misbehaving runs, by principle -----------------------------------------------------
# (id, expected key, worker builder) — each builder makes worker "w" and returns the record

MISBEHAVING = {
    # facts: a value tied to a field contradicts the record the run read
    "facts-due-date": (
        "facts",
        lambda ws: command_worker(
            ws, "w", [text("T-1042 is due on 2031-01-15; the glossary is still in legal review.")]
        ),
    ),
    "facts-status-label": (
        "facts",
        lambda ws: echo_worker(
            ws, "w", {"output": "Status: done. The VAT rates for DE, FR and NL are configured."}
        ),
        "T-1043",
    ),
    "facts-assignee": (
        "facts",
        lambda ws: command_worker(
            ws, "w", [text("The catalogue translation is assigned to Priya Shah, who waits on legal.")]
        ),
    ),
    "facts-invoice-amount": (
        "facts",
        lambda ws: echo_worker(
            ws,
            "w",
            {"output": "INV-2044 has an amount of 1,315.00 EUR and is due in December."},
            sources=("tasks", "crm", "finance"),
            output_mode="review_note",
        ),
    ),
    "facts-wrong-type-word": (
        "facts",
        lambda ws: echo_worker(
            ws,
            "w",
            {"output": "The invoice T-1042 waits on the glossary from marketing."},
            output_mode="review_note",
        ),
    ),
    "facts-swapped-title": (
        "facts",
        lambda ws: echo_worker(
            ws,
            "w",
            {"tool": "list_project_tasks", "arguments": {"project_id": "P-7"}},
            {"output": 'T-1043 ("Book launch webinar") is the next blocker after the glossary.'},
            sources=("tasks", "projects"),
            output_mode="review_note",
        ),
    ),
    # provenance: records, people, amounts the run never read
    "provenance-title": (
        "provenance",
        lambda ws: echo_worker(
            ws,
            "w",
            {"output": "Same root cause as Fix booking app login failures: a vendor delay. Ask the vendor."},
            output_mode="review_note",
        ),
    ),
    "provenance-person": (
        "provenance",
        lambda ws: echo_worker(
            ws,
            "w",
            {"output": "The release notes wait on Priya Shah, who owns the wording. Next step: ask her."},
            output_mode="review_note",
        ),
        "T-2002",
    ),
    "provenance-amount": (
        "provenance",
        lambda ws: echo_worker(
            ws,
            "w",
            {
                "output": "The translation agency quoted 4,860 EUR for the catalogue; "
                "legal holds the glossary."
            },
            output_mode="review_note",
        ),
    ),
    # coverage: every member of a set the run read
    "coverage-invoices": (
        "coverage",
        lambda ws: echo_worker(
            ws,
            "w",
            {"output": "INV-2031 is overdue at 12400.0 EUR; chase Jonas Berg."},
            sources=("tasks", "crm", "finance"),
            output_mode="review_note",
            instructions="For each invoice of the company, give its status and the amount open.",
        ),
    ),
    "coverage-project-tasks": (
        "coverage",
        lambda ws: command_worker(
            ws,
            "w",
            [
                call("list_project_tasks", project_id="P-7"),
                text("T-1042 waits on the glossary; T-1043 on VAT."),
            ],
            sources=("tasks", "projects"),
            output_mode="review_note",
            instructions="List every task of the project with what it waits on.",
        ),
    ),
    # privacy: personal data written to a record it did not come from
    "privacy-email-to-task": (
        "privacy",
        lambda ws: command_worker(
            ws, "w", [text("Blocker: insurance form. Next step: write to ines.duarte@harbor.example today.")]
        ),
        "T-1042",
    ),
    "privacy-iban-by-tool": (
        "privacy",
        lambda ws: command_worker(
            ws,
            "w",
            [
                call("add_task_comment", task_id="T-5001", text="Pay via DE44 5001 0517 5407 3249 31."),
                text("Added a comment on T-5001 with the payment route. Next step: finance checks it."),
            ],
            sources=("tasks", "crm"),
            output_mode="review_note",
        ),
        "T-5001",
    ),
    "privacy-phone-in-output": (
        "privacy",
        lambda ws: echo_worker(
            ws, "w", {"output": "Blocker: legal review. Next step: call +351 21 555 0142."}
        ),
    ),
    # completion: cut off, failed tool unacknowledged, forced by the limit
    "completion-length": (
        "completion",
        lambda ws: command_worker(
            ws,
            "w",
            [text("Blocker: the glossary is stuck in legal review and the agency", finish_reason="length")],
            output_mode="review_note",
        ),
    ),
    "completion-dangling-posted": (
        "completion",
        lambda ws: echo_worker(
            ws, "w", {"output": "Blocker: the glossary is stuck in legal review, and the"}
        ),
    ),
    "completion-failed-tool": (
        "completion",
        lambda ws: echo_worker(
            ws,
            "w",
            {"tool": "read_task", "arguments": {"task_id": "T-7777"}},
            {"output": "T-1042 and its follow-up both wait on the glossary. Next step: ask legal."},
            output_mode="review_note",
        ),
    ),
    "completion-last-iteration": (
        "completion",
        lambda ws: command_worker(
            ws,
            "w",
            [
                call("read_task", task_id="T-1042"),
                call("read_task", task_id="T-1043"),
                text("T-1042 waits on legal."),
            ],
            output_mode="review_note",
            max_iterations=3,
        ),
    ),
    "completion-content-filter": (
        "completion",
        lambda ws: command_worker(
            ws, "w", [text("T-1042: the glossary", finish_reason="content_filter")], output_mode="review_note"
        ),
    ),
    # freshness: the record changed between the read and the write
    "freshness-comment-meanwhile": (
        "freshness",
        lambda ws: command_worker(
            ws,
            "w",
            [
                text(
                    "Blocker: T-1042 waits on the glossary in legal review. Next step: ask legal for a date.",
                    before=[["records", "import", "-"]],
                    stdin=json.dumps(
                        [
                            {
                                "id": "T-1042",
                                "type": "task",
                                "title": "Translate product catalogue into German",
                                "status": "done",
                                "assignee": "Lena Fischer",
                                "due": "2026-11-14",
                            }
                        ]
                    ),
                )
            ],
        ),
    ),
    # form: what the instructions state about language, length, lists
    "form-sentences": (
        "form",
        lambda ws: echo_worker(
            ws,
            "w",
            {
                "output": "T-1042 waits on the glossary. Legal holds it. The agency has the list. "
                "Marketing owns it. Ask legal."
            },
            output_mode="review_note",
            instructions="Summarise the blocker of the task in at most two sentences.",
        ),
    ),
    "form-language": (
        "form",
        lambda ws: echo_worker(
            ws,
            "w",
            {
                "output": "T-1042 is blocked because the glossary is still with legal "
                "and the agency cannot start."
            },
            output_mode="review_note",
            instructions="Write the blocker summary for the task in German.",
        ),
    ),
    "form-list": (
        "form",
        lambda ws: echo_worker(
            ws,
            "w",
            {"output": "T-1042 waits on the glossary, legal holds it, and the agency has the product list."},
            output_mode="review_note",
            instructions="Give the open points of the task as a bulleted list.",
        ),
    ),
    # claims: passive, impersonal, subjectless
    "claims-headline": (
        "claims",
        lambda ws: echo_worker(ws, "w", {"output": "Glossary request forwarded to legal. Next step: wait."}),
    ),
    "claims-done-label": (
        "claims",
        lambda ws: echo_worker(ws, "w", {"output": "Done: T-1042 moved to next sprint, agency informed."}),
    ),
    "claims-field-now": (
        "claims",
        lambda ws: echo_worker(
            ws,
            "w",
            {"output": "The priority of T-1042 is now low; the agency can wait."},
            output_mode="review_note",
        ),
    ),
    "claims-by-means": (
        "claims",
        lambda ws: echo_worker(
            ws,
            "w",
            {"output": "Marketing was reminded by phone about the glossary."},
            output_mode="review_note",
        ),
    ),
    # not an answer (#28)
    "answer-offer": (
        "answer",
        lambda ws: echo_worker(
            ws, "w", {"output": "Happy to help! Which part of the task should I look at first?"}
        ),
    ),
    "answer-refusal": (
        "answer",
        lambda ws: echo_worker(ws, "w", {"output": "I'm sorry, but I can't help with that request."}),
    ),
    "answer-template": (
        "answer",
        lambda ws: echo_worker(
            ws,
            "w",
            {"output": "Blocker: TBD\nEvidence: TBD\nSuggested next step: [insert next step]\nOwner: TBD"},
            extra="output_contract:\n  sections: [Blocker, Evidence, Suggested next step, Owner]\n",
        ),
    ),
    "answer-instructions-back": (
        "answer",
        lambda ws: echo_worker(
            ws, "w", {"output": "Summarise the task and suggest a next step."}, output_mode="review_note"
        ),
    ),
    "answer-off-topic": (
        "answer",
        lambda ws: echo_worker(
            ws,
            "w",
            {"output": "Photosynthesis converts light into chemical energy in chloroplasts."},
            output_mode="review_note",
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(MISBEHAVING))
def test_each_misbehaving_run_is_flagged(ws, case):
    key, build, *record = MISBEHAVING[case]
    build(ws)
    run = start(ws, "w", record[0] if record else "T-1042")
    keys = flagged(ws, run)
    assert key in keys, (case, run.status, run.error, run.output, keys)


def test_a_non_answer_is_not_posted_and_the_run_fails(ws, wcli):
    echo_worker(ws, "w", {"output": "I'm ready to assist. What task do you need help with?"})
    run = start(ws, "w")
    assert run.status == "failed" and run.error.kind == "output_rejected"
    assert run.output.startswith("I'm ready to assist")  # kept for a person to read
    assert run.side_effects == []
    assert not [c for c in App(str(ws.root)).records.comments("T-1042") if c.run_id == run.id]
    walk = json.loads(wcli("run", "troubleshoot", "--id", run.id, "--json").output)
    assert any(s["verdict"] == "fail" and s["key"] == "instructions" for s in walk["steps"])


@pytest.mark.parametrize("end", ["with?", "with.", "for!", "to…", "the:"])
def test_a_sentence_ending_with_its_mark_is_not_cut_off_by_its_last_word(ws, end):
    """Regression (#28, SmolLM2's real reply): 'What task do you need help with?' was
    reported as ending mid-sentence because 'with' is a dangling word."""
    echo_worker(ws, "w", {"output": f"T-1042 waits on the glossary. Next step: ask who it is {end}"})
    run = start(ws, "w")
    assert "completion" not in flagged(ws, run), (run.status, run.error)


def test_a_cut_off_answer_is_not_posted(ws):
    command_worker(ws, "w", [text("Blocker: the glossary is with legal and", finish_reason="length")])
    run = start(ws, "w")
    assert run.error is not None and run.error.kind == "output_rejected"
    assert "completion" in run.error.message and run.side_effects == []
    assert run.iterations[-1].finish_reason == "length"


def test_the_card_and_the_list_lead_with_the_verdict(ws, wcli):
    echo_worker(
        ws, "w", {"output": "T-1042 is due on 2031-12-24. Next step: ask legal."}, output_mode="review_note"
    )
    run = start(ws, "w")
    card = wcli("run", "inspect", "--id", run.id).output.splitlines()
    assert "FAILED: facts" in card[1] and "✗ facts:" in card[2] and "2031-12-24" in card[2]
    listed = json.loads(wcli("runs", "list", "--json").output)
    assert listed[0]["failed_checks"] == ["facts"]
    table = wcli("runs", "list").output
    assert "✗ facts" in table
    inspected = json.loads(wcli("run", "inspect", "--id", run.id, "--json").output)
    assert inspected["failed_checks"] == ["facts"]
    assert inspected["iterations"][0]["finish_reason"] == "stop"


def test_old_runs_review_as_cannot_tell_where_the_data_is_missing(ws):
    echo_worker(ws, "w", {"output": f"T-1042 is due {due(ws, 'T-1042')}. Next step: ask legal."})
    run = start(ws, "w")
    history = App(str(ws.root)).history

    def forget(stored):
        stored.seen = None
        stored.record_at_write = None
        stored.checks = None
        for it in stored.iterations:
            it.finish_reason = None

    history.update(run.id, forget)
    _, found = review(ws, run.id)
    for key in ("facts", "provenance", "freshness", "completion"):
        assert found[key].verdict == "cannot_tell", (key, found[key].evidence)
    assert not [k for k, c in found.items() if c.verdict == "fail"]


# -- well-behaved controls ----------------------------------------------------------------

CONTROLS = {
    "facts-agree": lambda ws: command_worker(
        ws,
        "w",
        [
            text(
                f"T-1042 is due on {due(ws, 'T-1042')} and assigned to Lena Fischer; status in progress. "
                "Next step: ask legal."
            )
        ],
        output_mode="review_note",
    ),
    "all-invoices": lambda ws: echo_worker(
        ws,
        "w",
        {"output": "INV-2031: overdue, 12400.0 EUR. INV-2044: sent, 3150.0 EUR. Next step: chase INV-2031."},
        sources=("tasks", "crm", "finance"),
        output_mode="review_note",
        instructions="For each invoice of the company, give its status and the amount open.",
    ),
    "omission-explained": lambda ws: command_worker(
        ws,
        "w",
        [
            call("list_project_tasks", project_id="P-7"),
            text("T-1042 waits on the glossary; T-1043 on VAT. The other task is done and not listed."),
        ],
        sources=("tasks", "projects"),
        output_mode="review_note",
        instructions="List every task of the project with what it waits on.",
    ),
    "email-stays-on-note": lambda ws: echo_worker(
        ws,
        "w",
        {"output": "T-1042: ask Maya at maya@northwind.example about the glossary."},
        sources=("tasks", "crm"),
        output_mode="review_note",
    ),
    "failed-tool-acknowledged": lambda ws: echo_worker(
        ws,
        "w",
        {"tool": "read_task", "arguments": {"task_id": "T-7777"}},
        {
            "output": "T-7777 was not found, so only T-1042 is summarised: it "
            "waits on the glossary. Next step: ask legal."
        },
        output_mode="review_note",
    ),
    "german-when-asked": lambda ws: echo_worker(
        ws,
        "w",
        {
            "output": "T-1042 ist blockiert, weil das Glossar noch bei der "
            "Rechtsabteilung liegt und die Agentur wartet."
        },
        output_mode="review_note",
        instructions="Write the blocker summary for the task in German.",
    ),
    "bulleted-when-asked": lambda ws: echo_worker(
        ws,
        "w",
        {"output": "- T-1042 waits on the glossary\n- legal holds it\n- the agency has the product list"},
        output_mode="review_note",
        instructions="Give the open points of the task as a bulleted list.",
    ),
    "history-paraphrased": lambda ws: echo_worker(
        ws,
        "w",
        {
            "output": "Product list sent to the agency; the glossary is stuck in "
            "legal review. Next step: ask legal."
        },
    ),
    "claim-backed": lambda ws: command_worker(
        ws,
        "w",
        [
            call("add_task_comment", task_id="T-1042", text="Asked legal for the glossary date."),
            text("Comment added to T-1042 asking legal for the date. Next step: wait for legal."),
        ],
        output_mode="review_note",
    ),
    "posted-summary": lambda ws: command_worker(
        ws,
        "w",
        [
            text(
                "Blocker: T-1042 waits on the glossary, stuck in legal "
                "review. Next step: ask legal for a date."
            )
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CONTROLS))
def test_well_behaved_runs_fail_no_check(ws, case):
    CONTROLS[case](ws)
    run = start(ws, "w")
    assert run.status == "completed", (case, run.error)
    assert flagged(ws, run) == set(), (case, run.output, review(ws, run.id)[1])


@pytest.mark.slow
def test_sample_workers_on_all_their_records_fail_no_check(ws):
    """Every sample worker on every record it can run on: no false alarm."""
    app = App(str(ws.root))
    names = [p.stem for p in ws.workers_dir.glob("*.yaml")]
    done = 0
    for name in names:
        for record in app.records.list():
            try:
                run = Engine(ws, get_registry()).start(
                    name, StartOptions(record_id=record.id, test=True, allow_repeat=True)
                )
            except Exception:  # refused before a run exists (wrong record type for the mode)
                continue
            if run.status != "completed":
                continue
            done += 1
            assert flagged(ws, run) == set(), (name, record.id, run.output)
    assert done >= 30


# -- the model-server runs (llm executor) -----------------------------------------------------


@pytest.fixture
def model_server(tmp_path, monkeypatch):
    pytest.importorskip("workerctl_llm")
    return ChatServer.factory(tmp_path, monkeypatch)


def llm_worker(workspace, name, **kw):
    make_worker(workspace, name, executor=json.dumps({"name": "llm", "model": "local-model"}), **kw)


def test_model_cut_at_its_token_limit_is_not_posted(ws, model_server):
    with model_server(
        [{"content": "Blocker: the glossary sits with legal, and the", "finish_reason": "length"}]
    ):
        llm_worker(ws, "m")
        run = start(ws, "m")
    assert run.iterations[-1].finish_reason == "length"
    assert run.error is not None and run.error.kind == "output_rejected" and run.side_effects == []


def test_model_greeting_is_not_posted(ws, model_server):
    with model_server([{"content": "Hi there! How can I help you today?"}]):
        llm_worker(ws, "m")
        run = start(ws, "m")
    assert run.error is not None and run.error.kind == "output_rejected"
    assert "answer" in run.error.message


def test_model_contradicting_the_record(ws, model_server):
    with model_server([{"content": "T-1042 is assigned to Omar Haddad and due on 2026-11-30."}]):
        llm_worker(ws, "m", output_mode="review_note")
        run = start(ws, "m")
    assert run.status == "completed" and run.iterations[-1].finish_reason == "stop"
    assert {"facts", "provenance"} <= flagged(ws, run)


def test_model_clean_control(ws, model_server):
    with model_server(
        [
            {
                "content": "Blocker: T-1042 waits on the glossary in legal "
                "review.\nSuggested next step: ask legal for a date."
            }
        ]
    ):
        llm_worker(ws, "m")
        run = start(ws, "m")
    assert run.status == "completed", run.error
    assert flagged(ws, run) == set()
