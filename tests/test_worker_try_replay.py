"""``worker try --replay`` step by step, and ``--reads recorded``: a step gets the past
run's recorded answer iff its request is the same; a read tool call gets the recorded
result iff the past run made the same call (and the try asks for it)."""

from __future__ import annotations

import json
import shutil

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import run_workerctl

#: two steps: a read of T-1043 (not in T-1042's context), then the output. Step 1's
#: request is the instructions and T-1042's context; step 2's adds T-1043 as read.
WORKER = {
    "name": "two-step",
    "description": "reads another task, then comments",
    "status": "active",
    "instructions": "Summarise the task and what T-1043 says.",
    "context_sources": ["tasks", "projects", "docs"],
    "tool_categories": ["productivity"],
    "output_mode": "task_comment",
    "max_iterations": 4,
    "timeout": 120,
    "executor": {
        "name": "echo",
        "script": [
            {"tool": "read_task", "arguments": {"task_id": "T-1043"}},
            {"output": "Blocker: none for {context}"},
        ],
    },
}


def _write_worker(workspace, path, instructions: str | None = None) -> None:
    doc = dict(WORKER)
    if instructions is not None:
        doc["instructions"] = instructions
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _past_run(workspace, tmp_path) -> str:
    _write_worker(workspace, workspace.workers_dir / "two-step.yaml")
    done = run_workerctl("run", "start", "two-step", "--task", "T-1042", "--json", workspace=workspace)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"] == "completed", run
    return run["id"]


def _edit_record(workspace, record_id: str, edit: tuple[str, str] | None) -> None:
    """A person's change to a record: a field's value, or a comment."""
    if edit is None:
        return
    kind, text = edit
    if kind == "field":
        data = json.loads(workspace.records_file.read_text())
        for table in data.values():
            for doc in table.values():
                if doc.get("id") == record_id:
                    doc.setdefault("fields", {})["status"] = text
        workspace.records_file.write_text(json.dumps(data))
    else:
        from workerctl.plugins.manager import get_registry
        from workerctl.records.book import open_records

        open_records(workspace, get_registry()).add_comment(
            record_id, text, author="Pat Doe", run_id=None, key=None
        )


def _try(workspace, worker_file, reads: str) -> dict:
    from workerctl.history.store import History
    from workerctl.plugins.manager import get_registry
    from workerctl.records.book import open_records
    from workerctl.runs import trial
    from workerctl.workspace import load_workspace

    registry = get_registry()
    ws = load_workspace(workspace.root)
    history = History(ws)
    worker = trial.edited_worker(ws, registry, "two-step", str(worker_file))
    past = [row["id"] for row in history.list(None, limit=1)]
    items = trial.try_on(
        ws, registry, open_records(ws, registry), history, worker, past, replay=True, reads=reads
    )
    return json.loads(json.dumps(trial.asdict(items[0])))


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)
edits = st.none() | st.tuples(st.sampled_from(["field", "comment"]), texts)


def test_a_step_is_replayed_iff_its_request_is_the_same(workspace, tmp_path):
    """Generated: an edit of the instructions or none, a change to the run's record
    (in its context: step 1's request) or none, a change to the record step 1 reads
    (in step 2's request only) or none, reads now or recorded. Each step's answer is
    the recorded one exactly when nothing its request holds changed; each read is the
    recorded one exactly when asked for."""
    _past_run(workspace, tmp_path)
    state = workspace.state_dir
    kept = tmp_path / "kept"
    shutil.copytree(state, kept)
    edited = tmp_path / "edited.yaml"

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        instructions=st.none() | texts,
        main=edits,
        other=edits,
        reads=st.sampled_from(["now", "recorded"]),
    )
    def check(instructions, main, other, reads):
        shutil.rmtree(state)
        shutil.copytree(kept, state)
        new_text = None if instructions is None else WORKER["instructions"] + " " + instructions
        _write_worker(workspace, edited, new_text)
        _edit_record(workspace, "T-1042", main)
        _edit_record(workspace, "T-1043", other)
        item = _try(workspace, edited, reads)
        first = new_text is None and main is None
        second = first and (reads == "recorded" or other is None)
        expect = ["replayed" if same else "live" for same in (first, second)]
        assert [s["answer"] for s in item["steps"]] == expect, (instructions, main, other, reads)
        assert [r["read"] for r in item["reads"]] == ["now" if reads == "now" else "recorded"]
        if second:
            assert item["new_output"] == item["old_output"] and item["answer"] == "replayed"
        assert all(e["state"] == "not_written" for e in item["would_write"])

    check()


def test_a_try_reads_as_recorded_only_when_asked_and_says_which(workspace, tmp_path):
    """The CLI: --reads recorded gives the recorded result of T-1043 after T-1043
    changed (step 2 replayed); --reads now reads it anew (step 2 live); both say so."""
    _past_run(workspace, tmp_path)
    _edit_record(workspace, "T-1043", ("comment", "the vendor replied at last"))
    argv = ["worker", "try", "two-step", "--replay", "--json"]
    now = json.loads(run_workerctl(*argv, workspace=workspace).stdout)
    recorded = json.loads(run_workerctl(*argv, "--reads", "recorded", workspace=workspace).stdout)
    assert now["reads"] == "now" and recorded["reads"] == "recorded"
    assert [s["answer"] for s in now["items"][0]["steps"]] == ["replayed", "live"]
    assert now["items"][0]["answer"] == "partly replayed"
    assert now["items"][0]["reads"] == [{"call": "1.1", "tool": "read_task", "read": "now"}]
    assert [s["answer"] for s in recorded["items"][0]["steps"]] == ["replayed", "replayed"]
    assert recorded["items"][0]["reads"] == [{"call": "1.1", "tool": "read_task", "read": "recorded"}]
    assert recorded["summary"]["reads_recorded"] == 1 and recorded["summary"]["steps_replayed"] == 2
    text = run_workerctl("worker", "try", "two-step", "--replay", workspace=workspace).stdout
    assert "steps: 1 replayed, 2 live; tool reads: 1.1 read_task now" in text


def test_the_past_runs_own_comment_is_not_its_input(workspace, tmp_path):
    """Regression: the past run's comment (its output, written on its record) made
    every later request differ, so nothing was ever replayed for a commenting worker."""
    _past_run(workspace, tmp_path)
    done = json.loads(
        run_workerctl("worker", "try", "two-step", "--replay", "--json", workspace=workspace).stdout
    )
    assert done["items"][0]["answer"] == "replayed"
    # a person's comment since is input: step 1 is called live
    _edit_record(workspace, "T-1042", ("comment", "any news?"))
    done = json.loads(
        run_workerctl("worker", "try", "two-step", "--replay", "--json", workspace=workspace).stdout
    )
    assert [s["answer"] for s in done["items"][0]["steps"]] == ["live", "live"]


def test_a_run_recorded_before_fingerprints_keeps_the_whole_run_rule(workspace, tmp_path):
    """A run file without request fingerprints (an older run): replayed whole when the
    worker and its record are unchanged, else live; never step by step."""
    from workerctl.history.store import History

    run_id = _past_run(workspace, tmp_path)
    path = History(workspace).body_path(run_id)
    data = json.loads(path.read_text())
    for it in data["iterations"]:
        it.pop("request", None)
    path.write_text(json.dumps(data))
    done = json.loads(
        run_workerctl("worker", "try", "two-step", "--replay", "--json", workspace=workspace).stdout
    )
    assert done["items"][0]["answer"] == "replayed"
    assert [s["answer"] for s in done["items"][0]["steps"]] == ["replayed", "replayed"]
    _edit_record(workspace, "T-1043", ("comment", "changed, but the old rule cannot see it"))
    edited = tmp_path / "edited.yaml"
    _write_worker(workspace, edited, "Other instructions.")
    done = json.loads(
        run_workerctl(
            "worker", "try", "two-step", "--replay", "--file", str(edited), "--json", workspace=workspace
        ).stdout
    )
    assert [s["answer"] for s in done["items"][0]["steps"]] == ["live", "live"]


def _write_yaml(path, **changes) -> None:
    doc = {**WORKER, **changes}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_a_replayed_step_gives_the_recorded_call_ids_so_the_next_request_is_the_same(workspace, tmp_path):
    """Found by attack: an executor that names its tool calls with fresh ids (as model
    APIs do) and says something new each time; the replayed first step gives the ids it
    recorded, so the second step's request is the same and is replayed too."""
    script = tmp_path / "random_step.py"
    script.write_text(
        "import json, sys, uuid\n"
        "req = json.load(sys.stdin)\n"
        "if not req['messages']:\n"
        "    call = {'id': uuid.uuid4().hex, 'name': 'read_task', 'arguments': {'task_id': 'T-1043'}}\n"
        "    print(json.dumps({'tool_calls': [call]}))\n"
        "else:\n"
        "    print(json.dumps({'text': 'Blocker: ' + uuid.uuid4().hex}))\n"
    )
    _write_yaml(
        workspace.workers_dir / "two-step.yaml",
        executor={"name": "command", "argv": ["python3", str(script)]},
    )
    assert run_workerctl("run", "start", "two-step", "--task", "T-1042", workspace=workspace).returncode == 0
    replayed = json.loads(
        run_workerctl("worker", "try", "two-step", "--replay", "--json", workspace=workspace).stdout
    )
    item = replayed["items"][0]
    assert [s["answer"] for s in item["steps"]] == ["replayed", "replayed"] and not item["output_changed"]
    live = json.loads(run_workerctl("worker", "try", "two-step", "--json", workspace=workspace).stdout)
    assert live["items"][0]["output_changed"] and live["items"][0]["answer"] == "live"


def test_a_recorded_read_passes_the_gate_a_read_now_would(workspace, tmp_path):
    """Found by attack: an edited worker without the docs source, trying a run that read
    a doc: the recorded result is not given; the read is refused, as it would be live."""
    script = [{"tool": "read_doc", "arguments": {"doc_id": "D-2"}}, {"output": "Blocker: none"}]
    executor = {"name": "echo", "script": script}
    _write_yaml(
        workspace.workers_dir / "two-step.yaml", executor=executor, tool_categories=["productivity", "docs"]
    )
    assert run_workerctl("run", "start", "two-step", "--task", "T-1042", workspace=workspace).returncode == 0
    edited = tmp_path / "no-docs.yaml"
    _write_yaml(
        edited,
        executor=executor,
        tool_categories=["productivity", "docs"],
        context_sources=["tasks", "projects"],
    )
    done = run_workerctl(
        "worker",
        "try",
        "two-step",
        "--file",
        str(edited),
        "--replay",
        "--reads",
        "recorded",
        "--json",
        workspace=workspace,
    )
    assert done.returncode == 1, done.stderr
    item = json.loads(done.stdout)["items"][0]
    assert item["new_status"] == "failed" and item["new_error"].startswith("read_refused: read of doc D-2")


def test_a_damaged_recorded_read_is_named_not_trusted(workspace, tmp_path):
    """Found by attack: a run file whose call's records_read was edited to hold a number
    as a type made the recorded read refused with a made-up type. Run files are now held
    to the types their dataclasses declare (``runs.typed``): the file is named as damaged
    (exit 4), nothing of it given again."""
    from workerctl.history.store import History

    run_id = _past_run(workspace, tmp_path)
    path = History(workspace).body_path(run_id)
    data = json.loads(path.read_text())
    data["iterations"][0]["tool_calls"][0]["records_read"] = [{"type": 5, "id": None}]
    data["iterations"][0]["request"] = ["not", "a", "fingerprint"]
    path.write_text(json.dumps(data))
    done = run_workerctl(
        "worker", "try", "two-step", "--replay", "--reads", "recorded", "--json", workspace=workspace
    )
    assert done.returncode == 4, done.stderr
    assert path.name in done.stderr and "records_read[0].type" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_request_that_cannot_be_fingerprinted_is_called_live_and_the_run_goes_on():
    """A hostile case: a context the JSON encoder cannot write (nested deeper than it
    goes, or a value a plugin made circular) made the fingerprint raise, which would fail
    every step that has one; now that step gets no fingerprint and is never replayed."""
    from workerctl.engine.replay import Recorded, fingerprint
    from workerctl.engine.step import StepRequest
    from workerctl.runs.model import Run

    loop: dict = {}
    loop["self"] = loop
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    for context in ([{"id": "T-1", "fields": loop}], [{"id": "T-1", "fields": {"x": deep}}]):
        request = StepRequest("r", "w", "i", "review_note", {}, 1, 2, context, [], [], "T-1", 9.0, "/ws")
        assert fingerprint(request, "echo") is None
    past = Run(id="p", worker="w", config_hash="h", config={}, executor="echo", created="")
    given = Recorded(past, answers=True, reads=False)
    assert given.answer(None, 1) is None and given.steps == [{"iteration": 1, "answer": "live"}]
