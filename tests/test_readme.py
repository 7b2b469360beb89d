"""The README's first two commands are what CI and a newcomer run: keep them true."""

from __future__ import annotations

import re

from helpers import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert "run start" in commands[0] and "examples/sample-workspace" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    install_and_run, test = readme_commands()
    assert f"TEST_COMMAND='{test}'" in ci
    main_job = install_and_run.split(" && ")[-1]
    assert main_job in ci


def test_sample_workspace_main_job_works(tmp_path):
    import shutil

    from click.testing import CliRunner

    from workerctl.cli import cli

    copy = tmp_path / "sample"
    shutil.copytree(ROOT / "examples" / "sample-workspace", copy, ignore=shutil.ignore_patterns(".workerctl"))
    result = CliRunner().invoke(
        cli, ["-w", str(copy), "run", "start", "overdue-task-review", "--task", "T-1042"]
    )
    assert result.exit_code == 0, result.output
    assert "✓ completed" in result.output
    assert "Evidence: latest comment by Priya Shah" in result.output


def test_readme_stays_short_and_its_links_lead_somewhere():
    """A newcomer's page: under 250 lines; the rest lives in docs/, and every file the
    README names exists."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 250
    named = set(re.findall(r"`((?:docs|plugins|examples|benchmarks|src|tests)/[\w./-]+)`", text))
    assert "docs/benchmarks.md" in named
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert missing == []
