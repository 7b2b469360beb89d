"""Generated cases for review: hypothesis writes the outputs and the personal data.

- every check decides any output (text, ids, dates, amounts, names, labels, quotes,
  unicode) without raising: a check that raised would read ``cannot_tell`` and hide a bug;
- personal data written in any usual way is found, and its spellings compare equal;
- a claim in the first person, in the passive or as a headline, with any action verb,
  is read as a claim; the same verb in a suggestion is not.
"""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import make_worker
from workerctl.app import App
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.plugins.manager import get_registry
from workerctl.runs.checks import VERDICTS
from workerctl.runs.claims import FORMS, PARTICLE, SENT_NOUNS, VERBS, claims_in
from workerctl.runs.evidence import personal_data
from workerctl.runs.review import checks

TOKENS = st.sampled_from(
    [
        "T-1042", "T-1043", "INV-2031", "P-7", "2026-11-14", "14 Nov", "November 3, 2026", "12,400.00 EUR",
        "€ 3.150,00", "Lena Fischer", "Omar", "Priya Shah", "status", "due", "assigned to", "priority",
        "Done:", "Blocker:", "Owner:", "TBD", "N/A", "[insert name]", "was sent", "is now", "by email",
        "maya@northwind.example", "+49 30 1234567", "DE44 5001 0517 5407 3249 31", '"quoted words"',
        "?", ".", ",", "\n", "- ", "1. ", "and", "the", "every", "could not", "failed", "Hello!", "```",
        "…", "ß", "日本", "\u202e", "",
    ]
)  # fmt: skip
OUTPUTS = st.lists(st.one_of(TOKENS, st.text(max_size=12)), max_size=40).map(" ".join)


@pytest.fixture
def finished(workspace):
    make_worker(
        workspace,
        "gen",
        executor=json.dumps(
            {
                "name": "echo",
                "script": [{"tool": "read_task", "arguments": {"task_id": "T-1043"}}, {"output": "x"}],
            }
        ),
    )
    run = Engine(workspace, get_registry()).start("gen", StartOptions(record_id="T-1042"))
    app = App(str(workspace.root))
    return app, app.history.get(run.id)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(output=OUTPUTS)
def test_every_check_decides_any_output_without_raising(finished, output):
    app, run = finished
    variant = copy.deepcopy(run)
    variant.output = output
    for stage in ("review", "finish", "before_write"):
        for check in checks(variant, records=app.records, registry=app.registry, stage=stage):
            assert check.verdict in VERDICTS
            assert not any(e.startswith("the check failed to decide") for e in check.evidence), (
                check.key,
                check.evidence,
            )


LOCAL = st.from_regex(r"[a-z][a-z0-9._-]{0,15}[a-z0-9]", fullmatch=True)
DOMAIN = st.from_regex(r"[a-z][a-z0-9-]{0,10}\.(example|org|de|com)", fullmatch=True)
FILLER = st.text(alphabet="abcdefghij klmnop,;:", max_size=40)


@settings(max_examples=80, deadline=None)
@given(local=LOCAL, domain=DOMAIN, before=FILLER, after=FILLER)
def test_an_email_address_is_found_wherever_it_stands(local, domain, before, after):
    address = f"{local}@{domain}"
    found = personal_data(f"{before} {address} {after}")
    assert any(p.kind == "e-mail address" and p.key == address.lower() for p in found)


@settings(max_examples=80, deadline=None)
@given(
    digits=st.lists(st.integers(0, 9), min_size=9, max_size=11).map(lambda d: "".join(map(str, d))),
    sep=st.sampled_from([" ", "-", ".", ""]),
    before=FILLER,
)
def test_a_phone_number_compares_equal_in_its_usual_spellings(digits, sep, before):
    international = f"+49 {digits[:3]}{sep}{digits[3:]}"
    national = f"0049-{digits[:3]}-{digits[3:]}"
    one = [p for p in personal_data(f"{before} call {international} today") if p.kind == "phone number"]
    two = [p for p in personal_data(f"call {national}") if p.kind == "phone number"]
    assert one and two and one[0].digest == two[0].digest


VERB_BASES = sorted(b for b in VERBS if " " not in b and b not in PARTICLE)


def _past(base: str) -> str:
    return next(w for w, (b, form) in FORMS.items() if b == base and form == "past")


@settings(max_examples=120, deadline=None)
@given(base=st.sampled_from(VERB_BASES), thing=st.sampled_from(["the invoice", "the customer", "T-1042"]))
def test_any_action_verb_reads_as_a_claim_and_a_suggestion_does_not(base, thing):
    past = _past(base)
    assert claims_in(f"I {past} {thing}."), f"I {past} {thing}."
    assert claims_in(f"{thing[0].upper()}{thing[1:]} was {past} today."), past
    assert not claims_in(f"You should {base} {thing}."), base


@settings(max_examples=60, deadline=None)
@given(
    base=st.sampled_from(sorted(PARTICLE)),
    who=st.sampled_from(["I", "We", "We've", "I have"]),
    thing=st.sampled_from(["the agency", "Lena Fischer", "marketing"]),
)
def test_a_send_told_with_its_particle_is_a_claim_and_the_verb_alone_is_not(base, who, thing):
    """ "We reached out to the agency", "I followed up with Lena": a send; "we reached the
    deadline", "I followed the plan": no write."""
    past, particle = _past(base), PARTICLE[base]
    assert claims_in(f"{who} {past} {particle} to {thing}."), (who, past)
    assert not claims_in(f"{who} {past} {thing}."), (who, past)
    assert not claims_in(f"{thing} {past} {particle} to us.".capitalize()), past  # their act


@settings(max_examples=60, deadline=None)
@given(noun=st.sampled_from(sorted(SENT_NOUNS)), tail=st.sampled_from(["", " to marketing", " today"]))
def test_a_message_that_went_out_is_a_send_claim(noun, tail):
    assert [c.kinds for c in claims_in(f"A {noun} went out{tail}.")] == [("send",)]
    assert not claims_in(f"The lights went out{tail}.")


@settings(max_examples=120, deadline=None)
@given(
    base=st.sampled_from(VERB_BASES),
    thing=st.sampled_from(["the invoice", "the customer", "T-1042"]),
    tail=st.sampled_from(["to let her know", "until legal replies", "so she can ask legal", "if needed"]),
    hedge=st.sampled_from(["would", "could", "might", "please", "need to", "want to"]),
)
def test_a_hedge_after_the_verb_leaves_the_claim_and_one_before_it_takes_it(base, thing, tail, hedge):
    """A word that hedges or asks hedges what follows it ("I would send …"), not the act
    before it ("I emailed Maya to let her know", "reassigned T-1042 until legal replies")."""
    past = _past(base)
    assert claims_in(f"I {past} {thing} {tail}."), f"I {past} {thing} {tail}."
    assert not claims_in(f"I {hedge} {base} {thing} {tail}."), f"I {hedge} {base} {thing} {tail}."
