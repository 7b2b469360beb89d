"""``workerctl init`` makes a workspace where it is asked, whole or not at all, and never
inside, around or in the state of another workspace; a folder that is not a workspace
is named with the fix that works for it.

Found by a fresh-brief attack on "every command acts on the workspace it is given":
``init`` inside a workspace's ``workers/`` planted a settings file that broke the outer
workspace; a folder named ``x: y``, ``[b`` or with a newline got a ``workerctl.yaml``
that did not parse, and the half-made workspace stayed; ``-w ''`` fell back to
``$WORKERCTL_WORKSPACE``; the hint "run init DIR" was given for a file, for a folder
inside a workspace and for a workspace that had lost its settings file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpers import run_workerctl
from workerctl.cli import cli
from workerctl.storage.faults import FAULT_ENV
from workerctl.workspace import init_workspace, load_workspace


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def tree(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


names = st.text(
    st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1, max_size=40
).filter(lambda n: n not in (".", "..") and len(n.encode()) < 200)


@pytest.mark.slow
@example(name="=")  # YAML's value key: the safe loader refuses it unquoted
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names)
def test_any_folder_name_reads_back_as_the_workspace_name(tmp_path_factory, workerctl_registry, name):
    root = tmp_path_factory.mktemp("init") / name
    workspace = init_workspace(root, workerctl_registry)
    assert load_workspace(workspace.root).settings["name"] == name


def test_never_inside_around_or_in_the_state_of_a_workspace(tmp_path):
    outer = tmp_path / "outer"
    assert invoke("init", str(outer)).exit_code == 0
    before = tree(outer)
    for inside in (
        outer / "workers",
        outer / "sub" / "deeper",
        outer / ".workerctl",
        outer / ".workerctl" / "x",
    ):
        refused = invoke("init", str(inside))
        assert refused.exit_code == 2, (inside, refused.output)
        assert f"inside the workspace {outer}" in refused.output
    assert tree(outer) == before, "nothing written in the workspace"
    around = invoke("init", str(tmp_path))
    assert around.exit_code == 2 and f"holds the workspace {outer}" in around.output
    assert not (tmp_path / "workerctl.yaml").exists() and not (tmp_path / "workers").exists()


def test_a_failure_half_way_leaves_the_folder_as_it_was(tmp_path):
    """A full disk at each write point of init: exit 4, and neither the new folder nor
    an existing empty one keeps anything init wrote."""
    trace = tmp_path / "points"
    assert run_workerctl("init", str(tmp_path / "probe"), env={FAULT_ENV: f"trace:{trace}"}).returncode == 0
    points = len(trace.read_text().splitlines())
    assert points > 3
    for n in range(1, points + 1):
        new, existing = tmp_path / f"new{n}", tmp_path / f"old{n}"
        existing.mkdir()
        (existing / "notes.txt").write_text("mine")
        for target in (new, existing):
            before = tree(target)
            done = run_workerctl("init", str(target), env={FAULT_ENV: f"enospc:{n}"})
            assert done.returncode == 4, (n, done.stderr)
            assert "Traceback" not in done.stderr and "No space left" in done.stderr
            assert tree(target) == before, (n, target)
            assert (target.exists()) == (target == existing)


def test_an_empty_dash_w_is_a_usage_error_not_the_variable(tmp_path, monkeypatch):
    assert invoke("init", str(tmp_path / "ws")).exit_code == 0
    monkeypatch.setenv("WORKERCTL_WORKSPACE", str(tmp_path / "ws"))
    done = invoke("-w", "", "workers", "list")
    assert done.exit_code == 2 and "-w/--workspace is empty" in done.output


def test_each_kind_of_not_a_workspace_gets_the_fix_that_works(tmp_path):
    ws = tmp_path / "ws"
    assert invoke("init", str(ws)).exit_code == 0
    (tmp_path / "file").write_text("x")
    lost = tmp_path / "lost"
    assert invoke("init", str(lost)).exit_code == 0
    (lost / "workerctl.yaml").unlink()
    cases = {
        tmp_path / "file": "it is a file, not a folder",
        ws / "workers": f"it is inside the workspace {ws}",
        ws / ".workerctl": f"it is inside the workspace {ws}",
        tmp_path / "none": "no such folder",
        lost: "workerctl.yaml is missing or not a file",
    }
    for folder, why in cases.items():
        done = invoke("-w", str(folder), "runs", "list")
        assert done.exit_code == 2 and why in done.output, (folder, done.output)
    # the fix named for the lost settings file works, and keeps the runs
    put_back = invoke("-w", str(lost), "runs", "list")
    assert f"put back {lost / 'workerctl.yaml'}" in put_back.output
    (lost / "workerctl.yaml").write_text("name: lost\n")
    assert invoke("-w", str(lost), "workers", "list").exit_code == 0


def test_workers_that_is_a_file_is_said_and_records_no_deletion(tmp_path):
    ws = tmp_path / "ws"
    assert invoke("init", str(ws)).exit_code == 0
    versions = (ws / ".workerctl" / "versions.json").read_bytes()
    (ws / "workers").rename(tmp_path / "aside")
    (ws / "workers").write_text("oops")
    for args in (("workers", "list"), ("worker", "new", "foo"), ("workers", "list", "--json")):
        done = invoke("-w", str(ws), *args)
        assert done.exit_code == 2, (args, done.output)
        assert f"{ws / 'workers'} is not a folder" in done.output
    assert (ws / ".workerctl" / "versions.json").read_bytes() == versions


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_a_folder_init_may_not_write_is_one_line_with_the_fix(tmp_path):
    """Root ignores permission bits: setpriv drops the capabilities that let it."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    done = subprocess.run(
        [*drop, sys.executable, "-m", "workerctl", "init", str(locked)], capture_output=True, text=True
    )
    assert done.returncode == 4, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "Permission denied" in line and f"check the owner and permissions of {locked}" in line
    assert list(locked.iterdir()) == []


def test_an_empty_path_argument_is_refused_by_name(tmp_path):
    """Found by the same attack: ``records import ''`` said '.: cannot load records'."""
    ws = tmp_path / "ws"
    assert invoke("init", str(ws)).exit_code == 0
    for args in (
        ("records", "import", ""),
        ("run", "start", "overdue-task-review", "--records-from", ""),
        ("worker", "try", "overdue-task-review", "--file", ""),
    ):
        done = invoke("-w", str(ws), *args)
        assert done.exit_code == 2 and "is empty; give a path" in done.output, (args, done.output)
    assert invoke("init", "").exit_code == 2
    from pathlib import Path

    import workerctl.cli

    cli_dir = Path(workerctl.cli.__file__).parent
    plain = [p.name for p in cli_dir.glob("*.py") if "click.Path(" in p.read_text(encoding="utf-8")]
    assert plain == [], "every path argument is a cli.common.FilePath"


def test_the_copy_a_person_edits_stays_in_the_workspace(tmp_path):
    """Found by the same attack: ``worker edit`` handed the editor /tmp/editor-XXXX.yaml,
    a copy of the worker's instructions outside its workspace."""
    ws = tmp_path / "ws"
    assert invoke("init", str(ws)).exit_code == 0
    seen = tmp_path / "seen"
    editor = tmp_path / "editor"
    editor.write_text(
        f'#!/bin/sh\necho "$1" > {seen}\nls -l "$1" >> {seen}\n'
        'sed -i "s/max_iterations: 4/max_iterations: 5/" "$1"\n'
    )
    editor.chmod(0o755)
    done = run_workerctl("-w", str(ws), "worker", "edit", "overdue-task-review", env={"EDITOR": str(editor)})
    assert done.returncode == 0, done.stderr
    path, listing = seen.read_text().splitlines()[:2]
    assert path.startswith(str(ws / ".workerctl" / "edits" / "overdue-task-review.")), path
    assert listing.startswith("-rw-------"), listing
    assert "max_iterations: 5" in (ws / "workers" / "overdue-task-review.yaml").read_text()
    assert list((ws / ".workerctl" / "edits").iterdir()) == [], "the copy is removed"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_a_workspace_made_read_only_is_read_and_left_as_it_was(tmp_path):
    """Found by the same attack: on a workspace made read-only (chmod -R a-w), reading
    it turned its lock files from 0400 into 0600, and so did a refused start."""
    ws = tmp_path / "ws"
    assert invoke("init", str(ws)).exit_code == 0
    assert invoke("-w", str(ws), "runs", "list").exit_code == 0  # the locks exist
    subprocess.run(["chmod", "-R", "a-w", str(ws)], check=True)

    def modes() -> dict[str, int]:
        return {str(p): p.lstat().st_mode for p in ws.rglob("*")}

    before = modes()
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    wctl = [*drop, sys.executable, "-m", "workerctl", "-w", str(ws)]
    try:
        read = subprocess.run([*wctl, "runs", "list"], capture_output=True, text=True)
        assert read.returncode == 0, read.stderr
        start = subprocess.run([*wctl, "run", "start", "overdue-task-review", "--task", "T-1042"])
        assert start.returncode == 4
        assert modes() == before
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(ws)], check=True)


def test_the_workspace_fixture_is_what_init_makes(workspace, tmp_path, workerctl_registry):
    """The suite's ``workspace`` is a copy of one ``init`` made (tests/conftest.py): the
    same files, bytes and modes as a workspace ``init`` makes in its place now, but for
    the time the worker versions were recorded (when the copied one was made)."""
    import json
    import re

    made = init_workspace(tmp_path / "made" / "ws", workerctl_registry).root

    def tree(root):
        files = {}
        for p in sorted(root.rglob("*")):
            data = p.read_bytes() if p.is_file() else None
            if p.name == "versions.json":
                data = re.sub(rb'"time":"[^"]*"', b'"time":"T"', data or b"")
                assert json.loads(data)
            files[str(p.relative_to(root))] = (p.stat().st_mode, data)
        return files

    assert tree(workspace.root) == tree(made)
