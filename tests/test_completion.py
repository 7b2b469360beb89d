"""Shell completion: the scripts, and worker names, run ids and record ids."""

from __future__ import annotations

import json

import pytest

from helpers import run_workerctl


@pytest.mark.parametrize(
    ("shell", "marker"), [("bash", "complete -o nosort -F"), ("zsh", "compdef"), ("fish", "complete")]
)
def test_completion_scripts(wcli, shell, marker):
    result = wcli("completion", shell)
    assert result.exit_code == 0 and marker in result.output
    assert "_WORKERCTL_COMPLETE" in result.output


def complete(workspace, words: str) -> list[str]:
    line = f"workerctl -w {workspace.root} {words}"
    result = run_workerctl(
        env={
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(line.split()) - 1),
            "_WORKERCTL_COMPLETE": "bash_complete",
        }
    )
    return [row.split(",", 1)[1] for row in result.stdout.splitlines() if row.startswith("plain,")]


@pytest.mark.slow
def test_worker_run_and_record_ids_complete(workspace, wcli):
    run_id = json.loads(wcli("run", "start", "overdue-task-review", "--task", "T-1042", "--json").output)[
        "id"
    ]
    assert complete(workspace, "run start over") == ["overdue-task-review"]
    assert complete(workspace, "worker show hand") == ["handoff-preparation"]
    assert complete(workspace, f"run inspect --id {run_id[:3]}") == [run_id]
    assert complete(workspace, "records show INV-20") == ["INV-2031", "INV-2044", "INV-2050"]
    assert "T-1042" in complete(workspace, "run start overdue-task-review --task T-10")
