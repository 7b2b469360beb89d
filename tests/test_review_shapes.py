"""Review by the shape of the text: an output whose last line is left unfinished (a
table row without its closing bar, a list item with nothing after its mark) is cut
off; a checked box or a check mark
("- [x] …", "✅ …") says its item was done, as "Done: …" does. Each with a control
that must not be flagged."""

from __future__ import annotations

import json

import pytest

from helpers import make_worker
from workerctl.app import App
from workerctl.engine.launcher import Engine, StartOptions
from workerctl.plugins.manager import get_registry
from workerctl.runs.review_checks import checks

TABLE = "| Task | Status |\n| --- | --- |\n| T-1042 | blocked |\n"


def _verdicts(workspace, output: str) -> dict[str, str]:
    make_worker(
        workspace,
        "shape",
        output_mode="review_note",
        executor=json.dumps({"name": "echo", "script": [{"output": output}]}),
    )
    run = Engine(workspace, get_registry()).start(
        "shape", StartOptions(record_id="T-1042", allow_repeat=True)
    )
    app = App(str(workspace.root))
    return {
        c.key: c.verdict for c in checks(app.history.get(run.id), records=app.records, registry=app.registry)
    }


@pytest.mark.parametrize(
    ("output", "key"),
    [
        (TABLE + "| T-1043 | wai", "completion"),
        ("Blocker: the glossary for T-1042.\nNext steps:\n1. Ask the vendor for a date.\n2.", "completion"),
        ("Blocker: the glossary for T-1042.\n- [x] Reminder e-mailed to the vendor", "claims"),
        ("Blocker: the glossary for T-1042.\n✔️ Vendor notified about the delay", "claims"),
    ],
)
def test_a_shape_that_says_cut_or_done_is_flagged(workspace, output, key):
    assert _verdicts(workspace, output)[key] == "fail"


@pytest.mark.parametrize(
    "output",
    [
        "Blocker: the German glossary for T-1042 is late.\n" + TABLE,
        "Blocker: the glossary for T-1042.\nNext steps:\n1. Ask the vendor for a date.\n2. Tell the lead.",
        "Blocker: the German glossary for T-1042\nSuggested next step: ask the vendor for a date",
        "Blocker: the glossary for T-1042.\n- [ ] Ask the vendor for a date",
        "Blocker: the German glossary for T-1042 is late\nThe vendor has not sent it and we wait for legal",
    ],
)
def test_a_whole_output_of_the_same_shapes_is_not(workspace, output):
    verdicts = _verdicts(workspace, output)
    assert verdicts["completion"] != "fail" and verdicts["claims"] != "fail", verdicts
