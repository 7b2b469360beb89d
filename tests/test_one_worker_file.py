"""One name, one worker file: two files defining a worker are an error every command
reports; ``worker edit`` saves only over the file it opened, so no save silently
reverts another."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap

import pytest

from helpers import make_worker, run_workerctl


def _twins(workspace):
    active = make_worker(workspace, "twin", status="active")
    paused = workspace.workers_dir / "twin.yml"
    paused.write_text(
        active.read_text(encoding="utf-8").replace("status: active", "status: paused"), encoding="utf-8"
    )
    return active, paused


def test_x_yaml_beside_x_yml_is_reported_by_validate_list_and_start(workspace):
    _twins(workspace)
    validated = run_workerctl("worker", "validate", workspace=workspace)
    assert validated.returncode == 2
    assert "workers/twin.yaml" in validated.stdout + validated.stderr
    assert "workers/twin.yml" in validated.stdout + validated.stderr
    assert "more than one file" in validated.stdout + validated.stderr
    listed = json.loads(run_workerctl("workers", "list", "--json", workspace=workspace).stdout)
    twins = [w for w in listed if w["name"] == "twin"]
    assert twins and all(
        w.get("status") in ("broken", "invalid", None) or not w.get("valid", True) for w in twins
    )
    started = run_workerctl("run", "start", "twin", "--task", "T-1042", workspace=workspace)
    assert started.returncode == 2 and "more than one file" in started.stderr
    one = run_workerctl("worker", "validate", "twin", workspace=workspace)
    assert one.returncode == 2 and "more than one file" in one.stderr
    (workspace.workers_dir / "twin.yml").unlink()
    assert run_workerctl("worker", "validate", "twin", workspace=workspace).returncode == 0


def _editor(path, body: str) -> str:
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body), encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_the_slower_of_two_edits_is_refused_and_kept(workspace, tmp_path):
    """Two `worker edit` sessions at once: the second to save is refused (exit 2), shows
    the difference, and keeps its text; the first one's save stands."""
    make_worker(workspace, "shared", status="active")
    inner = _editor(
        tmp_path / "inner.py",
        """
        import sys
        p = sys.argv[1]
        t = open(p).read()
        open(p, "w").write(t.replace("Summarise the task", "FIRST EDIT: summarise the task"))
        """,
    )
    outer = _editor(
        tmp_path / "outer.py",
        f"""
        import os, subprocess, sys
        p = sys.argv[1]
        t = open(p).read()
        env = dict(os.environ, EDITOR={inner!r})
        ws = {str(workspace.root)!r}
        subprocess.run([sys.executable, "-m", "workerctl", "-w", ws, "worker", "edit", "shared"],
                       env=env, check=True, stdin=subprocess.DEVNULL)
        open(p, "w").write(t.replace("Summarise the task", "SECOND EDIT: summarise the task"))
        """,
    )
    result = run_workerctl(
        "worker", "edit", "shared", workspace=workspace, env={"EDITOR": outer}, stdin=subprocess_devnull()
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "changed since the edit began" in result.stderr
    assert result.stdout.count("Saved") == 1  # the inner session (its output is ours), not this one
    assert "-  Summarise" not in result.stderr and "SECOND EDIT" in result.stderr  # the difference
    text = (workspace.workers_dir / "shared.yaml").read_text(encoding="utf-8")
    assert "FIRST EDIT" in text and "SECOND EDIT" not in text
    kept = list((workspace.state_dir / "edits").iterdir())
    assert len(kept) == 1 and "SECOND EDIT" in kept[0].read_text(encoding="utf-8")
    assert str(kept[0].relative_to(workspace.root)) in result.stderr
    assert stat.S_IMODE(os.stat(kept[0]).st_mode) == 0o600


def test_a_pause_during_an_edit_is_not_reverted(workspace, tmp_path):
    make_worker(workspace, "held", status="active")
    editor = _editor(
        tmp_path / "pausing.py",
        f"""
        import subprocess, sys
        p = sys.argv[1]
        t = open(p).read()
        ws = {str(workspace.root)!r}
        subprocess.run([sys.executable, "-m", "workerctl", "-w", ws, "worker", "pause", "held"],
                       check=True)
        open(p, "w").write(t.replace("max_iterations: 5", "max_iterations: 4"))
        """,
    )
    result = run_workerctl(
        "worker", "edit", "held", workspace=workspace, env={"EDITOR": editor}, stdin=subprocess_devnull()
    )
    assert result.returncode == 2 and "changed since the edit began" in result.stderr
    text = (workspace.workers_dir / "held.yaml").read_text(encoding="utf-8")
    assert "status: paused" in text and "max_iterations: 5" in text


def test_an_edit_alone_still_saves(workspace, tmp_path):
    make_worker(workspace, "solo", status="active")
    editor = _editor(
        tmp_path / "plain.py",
        """
        import sys
        p = sys.argv[1]
        t = open(p).read()
        open(p, "w").write(t.replace("max_iterations: 5", "max_iterations: 4"))
        """,
    )
    result = run_workerctl(
        "worker", "edit", "solo", workspace=workspace, env={"EDITOR": editor}, stdin=subprocess_devnull()
    )
    assert result.returncode == 0 and "Saved solo" in result.stdout
    assert "max_iterations: 4" in (workspace.workers_dir / "solo.yaml").read_text(encoding="utf-8")


def subprocess_devnull() -> int:
    import subprocess

    return subprocess.DEVNULL


@pytest.mark.parametrize("editor", ["/nonexistent/editor", "/nonexistent/ed\x1b]0;t\x07"])
def test_an_editor_that_will_not_start_is_a_setting_exit_2(workspace, editor):
    """A missing $EDITOR exited 1, the code of a failed run; the worker file is untouched."""
    make_worker(workspace, "solo", status="active")
    before = (workspace.workers_dir / "solo.yaml").read_bytes()
    result = run_workerctl(
        "worker", "edit", "solo", workspace=workspace, env={"EDITOR": editor}, stdin=subprocess_devnull()
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "EDITOR" in result.stderr and "Traceback" not in result.stderr and "\x1b" not in result.stderr
    assert (workspace.workers_dir / "solo.yaml").read_bytes() == before
