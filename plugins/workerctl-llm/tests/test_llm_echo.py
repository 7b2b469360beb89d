"""The step loop with llm's offline ``echo`` model (the llm-echo plugin)."""

from __future__ import annotations

import json
import subprocess
import sys

TOOL_PROMPT = json.dumps(
    {"prompt": "go", "tool_calls": [{"name": "read_task", "arguments": {"task_id": "T-1042"}}]}
)


def test_tool_call_goes_through_the_gate_and_back(workerctl_write_worker, workerctl_run, workerctl_cli):
    workerctl_write_worker(
        "llm-loop",
        context_sources=["tasks"],
        tool_categories=["productivity"],
        output_mode="task_comment",
        executor={"name": "llm", "model": "echo", "prompt": TOOL_PROMPT},
    )
    run = workerctl_run("llm-loop", record="T-1042")
    assert run.status == "completed", run.error
    first, second = run.iterations
    call = first.tool_calls[0]
    assert (call.name, call.allowed, call.ok) == ("read_task", True, True)
    assert first.usage["model"] == "echo" and first.usage["input_tokens"] > 0
    final = json.loads(run.output)
    assert final["tool_results"][0]["name"] == "read_task"
    assert "Translate product catalogue" in final["tool_results"][0]["output"]
    assert second.usage["output_tokens"] > 0
    shown = json.loads(workerctl_cli("records", "show", "T-1042", "--json").output)
    assert [c["run_id"] for c in shown["comments"]].count(run.id) == 1
    card = workerctl_cli("run", "inspect", "--id", run.id).output
    assert "echo" in card and "tokens" in card
    stats = json.loads(workerctl_cli("runs", "stats", "--json").output)
    spent = sum((it.usage["input_tokens"] + it.usage["output_tokens"]) for it in run.iterations)
    assert stats["llm-loop"]["tokens"] == spent


def test_instructions_in_system_and_context_as_fragments(workerctl_write_worker, workerctl_run):
    workerctl_write_worker(
        "llm-plain",
        context_sources=["tasks", "projects"],
        instructions="Summarise the blocker in one line.",
        executor={"name": "llm", "model": "echo", "prompt": json.dumps({"prompt": "summarise"})},
    )
    run = workerctl_run("llm-plain", record="T-1042")
    assert run.status == "completed", run.error
    system = json.loads(run.output)["system"]
    blocks = system.split("\n\n")
    assert blocks[-1] == "Summarise the blocker in one line."
    records = [json.loads(b) for b in blocks[:-1]]
    assert [r["id"] for r in records] == ["T-1042", "P-7"]


def test_a_forbidden_tool_fails_the_run(workerctl_write_worker, workerctl_run):
    prompt = json.dumps(
        {"prompt": "x", "tool_calls": [{"name": "read_invoice", "arguments": {"invoice_id": "INV-2031"}}]}
    )
    workerctl_write_worker(
        "llm-sneaky",
        context_sources=["tasks"],
        tool_categories=["productivity"],
        executor={"name": "llm", "model": "echo", "prompt": prompt},
    )
    run = workerctl_run("llm-sneaky", record="T-1042")
    assert run.error.kind == "tool_not_allowed"
    assert len(run.iterations) == 1


def test_validate_reports_an_unknown_model_on_its_line(workerctl_workspace, workerctl_cli):
    path = workerctl_workspace.workers_dir / "llm-typo.yaml"
    path.write_text(
        "name: llm-typo\nstatus: active\ninstructions: x\n"
        "output_mode: review_note\nexecutor:\n  name: llm\n  model: gpt-99-turbo\n"
    )
    result = workerctl_cli("worker", "validate", "llm-typo")
    assert result.exit_code == 2
    assert (
        "workers/llm-typo.yaml:7:10: executor.model: llm does not know the model 'gpt-99-turbo'"
    ) in result.output
    path.write_text(path.read_text().replace("gpt-99-turbo", "echo"))
    assert workerctl_cli("worker", "validate", "llm-typo").exit_code == 0


def test_llm_is_not_imported_at_start_up(workerctl_workspace):
    probe = (
        "import sys\n"
        "from workerctl.cli import cli\n"
        "for args in (['--help'], ['-w', sys.argv[1], 'workers', 'list'],"
        " ['-w', sys.argv[1], 'executors', 'list']):\n"
        "    try:\n"
        "        cli(args, prog_name='workerctl')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('LLM-IMPORTED' if 'llm' in sys.modules else 'LLM-NOT-IMPORTED')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(workerctl_workspace.root)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "llm" in out  # executors list shows the plugin's executor
    assert out.strip().endswith("LLM-NOT-IMPORTED")


def test_the_llm_example_workspace_validates(tmp_path):
    """On a copy: validating records worker versions under .workerctl/, which must not
    appear in the checkout (another test checks that examples/ stays clean)."""
    import shutil
    from pathlib import Path

    from click.testing import CliRunner

    from workerctl.cli import cli

    example = tmp_path / "llm-workspace"
    shutil.copytree(Path(__file__).resolve().parents[3] / "examples" / "llm-workspace", example)
    result = CliRunner().invoke(cli, ["-w", str(example), "worker", "validate", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["valid"] == 1
