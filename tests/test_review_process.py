"""A batch's review decided in a helper process (``engine.review_process``): the same
verdicts as the batch's own threads decide, whatever the output; a helper that dies,
is refused or is not ready changes where a verdict is decided, never what it is; and
no helper outlives its batch, however the batch ends."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import make_worker, process_gone, start_workerctl, wait_for
from workerctl.app import App
from workerctl.engine import review_process
from workerctl.engine.batch import BatchRunner
from workerctl.engine.launcher import StartOptions
from workerctl.history.store import History
from workerctl.plugins.manager import get_registry
from workerctl.records.builtin_store import BuiltinRecordStore
from workerctl.runs.evidence import ReviewEvidence
from workerctl.runs.review_checks import checks
from workerctl.workspace import load_workspace

#: outputs that each make some check decide something other than pass
OUTPUTS = {
    "wrong-record": {"output": "Blocker: T-1042 is waiting on the vendor. Next step: chase Jonas by Friday."},
    "cut": {
        "output": "Blocker: the glossary for T-1042 is late. Suggested next s",
        "finish_reason": "length",
    },
    "private": {"output": "Blocker: glossary for T-1042. Next step: email jonas@northwind.example."},
    "refusal": {"output": "As an AI language model I have no view of your systems. I hope this helps!"},
    "wrong-date": {"output": "Blocker: this task was due 2025-12-31 and is 400 days late. Owner: Mallory."},
}


def _workspace_with_tasks(workspace, count: int = 24) -> list[str]:
    """``count`` more tasks, their fields varied (due dates past and future, owners,
    statuses), and a worker per entry of ``OUTPUTS`` besides the sample's composed one."""
    tasks = [
        {
            "id": f"T-{7000 + n}",
            "type": "task",
            "title": f"Vendor glossary part {n}",
            "status": ("todo", "blocked", "in_progress")[n % 3],
            "due": f"2026-{1 + n % 12:02d}-{1 + n % 27:02d}",
            "assignee": ("Jonas", "Mira", "")[n % 3],
            "links": {"project": "P-7"},
        }
        for n in range(count)
    ]
    BuiltinRecordStore(workspace).import_records(tasks, "test")
    for name, step in OUTPUTS.items():
        make_worker(workspace, name, executor=json.dumps({"name": "echo", "script": [step]}))
    make_worker(workspace, "noted", output_mode="review_note")  # no stage before a write
    return [t["id"] for t in tasks]


def _batch(root: Path, worker: str, ids: list[str], reviews=None) -> dict[str, dict]:
    """Each record's run as stored, without what differs between two copies of a workspace."""
    app = App(str(root))
    runner = BatchRunner(app.engine, 4, reviews=reviews)
    result = runner.run(worker, ids, StartOptions())
    history = History(load_workspace(root))
    out = {}
    for item in result.items:
        run = history.get(item.run_id)
        out[item.record_id] = {
            "status": run.status,
            "error": (run.error.kind, run.error.message.replace(run.id, "RUN")) if run.error else None,
            "checks": json.loads(json.dumps(run.checks).replace(run.id, "RUN")),
        }
    return out


@pytest.fixture(scope="module")
def helper_env():
    """The batches below decide in the helper only when given one (``reviews=``)."""
    saved = os.environ.get(review_process.ENV)
    os.environ[review_process.ENV] = "off"
    yield
    if saved is None:
        del os.environ[review_process.ENV]
    else:
        os.environ[review_process.ENV] = saved


def _ready_helper(root: Path) -> review_process.ReviewProcess:
    workspace = load_workspace(root)
    helper = review_process.ReviewProcess(workspace, get_registry())
    assert helper.wait_ready(60), "the helper did not start"
    return helper


def test_every_worker_gets_the_verdicts_its_threads_would_decide(workspace, tmp_path, helper_env):
    ids = [*_workspace_with_tasks(workspace), "T-1042", "T-1043"]
    copy = tmp_path / "copy"
    shutil.copytree(workspace.root, copy, symlinks=True)
    helper = _ready_helper(copy)
    try:
        for worker in ["overdue-task-review", *OUTPUTS, "noted"]:
            here = _batch(workspace.root, worker, ids)
            before = helper.decided
            there = _batch(copy, worker, ids, reviews=helper)
            assert there == here, worker
            stages = 1 if worker == "noted" else 2  # review_note has no write to stand before
            assert helper.decided - before == stages * len(ids), worker
    finally:
        helper.close()


def test_a_rejected_output_is_rejected_in_the_helper_with_the_same_words(workspace, tmp_path, helper_env):
    ids = _workspace_with_tasks(workspace, 4)
    copy = tmp_path / "copy"
    shutil.copytree(workspace.root, copy, symlinks=True)
    helper = _ready_helper(copy)
    try:
        for worker in ("cut", "private", "refusal"):
            there = _batch(copy, worker, ids, reviews=helper)
            here = _batch(workspace.root, worker, ids)
            assert {r["error"][0] for r in there.values()} == {"output_rejected"}, worker
            assert there == here
    finally:
        helper.close()


_FRAGMENTS = st.sampled_from(
    [
        "Blocker:",
        "T-1042",
        "T-1043",
        "T-9999",
        "due 2026-01-15",
        "due 2026-02-30",
        "Jonas",
        "jonas@northwind.example",
        "EUR 1,200",
        "twelve hundred euros",
        "Next step: chase the vendor.",
        "As an AI language model",
        "Should I chase them?",
        "I have emailed the customer.",
        "<script>alert(1)</script>",
        "\x1b[31mred\x1b[0m",
        "\n- ",
        " ",
        ". ",
        "overdue by 12 days",
        "status blocked",
        "🙂",
    ]
)
_OUTPUTS = st.one_of(
    st.lists(st.one_of(_FRAGMENTS, st.text(max_size=20)), min_size=1, max_size=12).map("".join),
    st.text(min_size=1, max_size=200),
)


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    """A workspace after one real run, and a ready helper on it."""
    from helpers import run_workerctl
    from workerctl.workspace import init_workspace

    root = tmp_path_factory.mktemp("desk") / "ws"
    ws = init_workspace(root, get_registry())
    done = run_workerctl("run", "start", "overdue-task-review", "--task", "T-1042", "--json", workspace=ws)
    assert done.returncode == 0, done.stderr
    helper = _ready_helper(root)
    app = App(str(root))
    yield app, History(ws).get(json.loads(done.stdout)["id"]), helper
    helper.close()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_OUTPUTS, rejected=st.booleans())
def test_any_output_gets_the_same_checks_from_the_helper(desk, text, rejected):
    """Both stages, as the step loop asks them: the helper's answer is the in-process one."""
    from workerctl.runs.model import RunError

    app, stored, helper = desk
    run = stored.__class__.from_dict(stored.to_dict())
    run.output = text
    run.error = RunError("output_rejected", "stopped") if rejected else None
    settings_now = dict(app.workspace.settings)
    evidence = ReviewEvidence(run, app.records, app.registry, "before_write", settings_now)
    here = [
        [c.to_dict() for c in checks(run, records=app.records, registry=app.registry, stage=stage,
                                     settings=settings_now, evidence=evidence)]
        for stage in review_process.STAGES
    ]  # fmt: skip
    there = [[c.to_dict() for c in helper.decide(run, stage) or []] for stage in review_process.STAGES]
    assert there == here


def _signalled_mid_batch(
    workspace, tmp_path, signum: int, after: int
) -> tuple[dict, dict, review_process.ReviewProcess, float]:
    """A batch on a copy of ``workspace`` whose ready helper gets ``signum`` once it has
    decided ``after`` stages; (its runs, the same batch's runs decided in process, the
    helper, the batch's seconds)."""
    ids = _workspace_with_tasks(workspace, 24)
    copy = tmp_path / "copy"
    shutil.copytree(workspace.root, copy, symlinks=True)
    helper = _ready_helper(copy)
    sender = threading.Thread(
        target=lambda: (wait_for(lambda: helper.decided >= after, 60), os.kill(helper.pid, signum))
    )
    sender.start()
    try:
        began = time.monotonic()
        there = _batch(copy, "overdue-task-review", ids, reviews=helper)
        took = time.monotonic() - began
    finally:
        sender.join()
        helper.close()  # a stopped helper is killed: it does not read its input's end
    return there, _batch(workspace.root, "overdue-task-review", ids), helper, took


def test_a_helper_killed_mid_batch_leaves_the_verdicts_as_they_would_be(workspace, tmp_path, helper_env):
    there, here, helper, _ = _signalled_mid_batch(workspace, tmp_path, signal.SIGKILL, after=6)
    assert 6 <= helper.decided < 2 * len(there)  # it decided some, and the batch the rest
    assert there == here


def test_a_stopped_helper_is_given_up_and_the_batch_decides_the_rest(
    workspace, tmp_path, helper_env, monkeypatch
):
    """SIGSTOP: the helper neither dies nor answers. The thread asking waits
    ``ANSWER_SECONDS`` and gives it up; the others decide their runs themselves
    meanwhile instead of queueing behind it."""
    monkeypatch.setattr(review_process, "ANSWER_SECONDS", 2.0)
    there, here, helper, took = _signalled_mid_batch(workspace, tmp_path, signal.SIGSTOP, after=4)
    assert 4 <= helper.decided < 2 * len(there)
    assert took < 30, took
    assert there == here


def test_a_batch_whose_checks_differ_from_the_helpers_decides_them_itself(workspace, helper_env):
    """A review check registered in this process only (a test's plugin): the helper,
    which loads the installed plugins, says it is not the batch's and is never asked."""
    from workerctl.api import hookimpl
    from workerctl.plugins.manager import build_registry, reset_registry
    from workerctl.runs.checks import Check
    from workerctl.runs.review_checks import ReviewCheck

    class Extra:
        @hookimpl
        def register_review_checks(self, register):
            register(ReviewCheck("extra", "Only here", lambda ev: Check("extra", "Only here", "fail")))

    registry = build_registry((Extra(),))
    reset_registry(registry)
    try:
        helper = review_process.ReviewProcess(workspace, registry)
        assert not helper.wait_ready(60)
        ids = _workspace_with_tasks(workspace, 3)
        stored = _batch(workspace.root, "overdue-task-review", ids, reviews=helper)
        helper.close()
    finally:
        reset_registry(None)
    assert helper.decided == 0
    assert all({"key": "extra", "title": "Only here", "verdict": "fail", "evidence": []} in r["checks"]
               for r in stored.values())  # fmt: skip


def _helpers_of(root: Path) -> list[int]:
    """The pids of helper processes serving the workspace at ``root``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            any(b"workerctl.engine.review_process" in a for a in argv)
            and str(root).encode() in argv
            and not process_gone(int(entry))
        ):
            found.append(int(entry))
    return found


def _has_written(pid: int) -> bool:
    """Whether the process has written anything (the helper's first write is its ready line)."""
    io = Path(f"/proc/{pid}/io").read_text()
    return int(next(line.split()[1] for line in io.splitlines() if line.startswith("wchar:"))) > 0


def _paced_batch(workspace, how_many: int = 40):
    make_worker(workspace, "paced", output_mode="review_note",
                executor="{name: echo, script: [{sleep: 0.3, output: 'Blocker: none found.'}]}")  # fmt: skip
    ids = _workspace_with_tasks(workspace, how_many)
    listed = workspace.root / "ids.txt"
    listed.write_text("\n".join(ids) + "\n")
    return start_workerctl(
        "run", "start", "paced", "--records-from", str(listed), "--jobs", "4", "--json=counts",
        workspace=workspace, env={review_process.ENV: "on"},
    )  # fmt: skip


def test_the_helper_ends_with_its_batch(workspace):
    batch = _paced_batch(workspace, 20)
    [pid] = wait_for(lambda: _helpers_of(workspace.root), 30)
    out, err = batch.communicate(120)
    assert batch.returncode == 0, err
    assert json.loads(out)["counts"] == {"completed": 20}
    wait_for(lambda: process_gone(pid), 10)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT"])
def test_the_helper_ends_when_its_batch_is_stopped(workspace, how):
    """Killed (its input closes with it), terminated or interrupted (the batch closes
    it; a Ctrl-C reaches the helper too, which leaves it to the batch)."""
    batch = _paced_batch(workspace)
    [pid] = wait_for(lambda: _helpers_of(workspace.root), 30)
    wait_for(lambda: History(load_workspace(workspace.root)).list(None, limit=4), 30)
    if how == "SIGINT":
        os.kill(pid, signal.SIGINT)  # as the terminal sends it to the whole group
    batch.send_signal(getattr(signal, how))
    batch.communicate(60)
    # a batch stops on SIGTERM as on Ctrl-C
    assert batch.returncode == {"SIGKILL": -9, "SIGTERM": 130, "SIGINT": 130}[how]
    wait_for(lambda: process_gone(pid), 10)


def test_a_stopped_helper_ends_with_its_killed_batch(workspace):
    """SIGKILL reaches only the batch, and a stopped (or busy) helper never reads that
    its input closed: the kernel ends it with its parent (it lived on under pid 1). (It
    asks for that first thing; one stopped before it has asked would miss it.)"""
    batch = _paced_batch(workspace)
    [pid] = wait_for(lambda: _helpers_of(workspace.root), 30)
    wait_for(lambda: _has_written(pid), 30)  # its ready line: it is past its first lines
    os.kill(pid, signal.SIGSTOP)
    batch.kill()
    batch.communicate(30)
    wait_for(lambda: process_gone(pid), 10)


def test_a_stopped_helper_does_not_hold_up_a_ctrl_c(workspace):
    """The batch gives the helper up as it stops: a Ctrl-C took a minute with the helper
    stopped, each run thread waiting for its answer."""
    batch = _paced_batch(workspace)
    [pid] = wait_for(lambda: _helpers_of(workspace.root), 30)
    wait_for(lambda: History(load_workspace(workspace.root)).list(None, limit=4), 30)
    os.kill(pid, signal.SIGSTOP)
    time.sleep(1)  # a run thread is now waiting for an answer that will not come
    began = time.monotonic()
    batch.send_signal(signal.SIGINT)
    batch.communicate(60)
    assert batch.returncode == 130
    assert time.monotonic() - began < 3
    wait_for(lambda: process_gone(pid), 10)


def test_the_helper_imports_nothing_from_the_current_folder(workspace, tmp_path):
    """The helper runs on the batch's own module path: a ``pluggy.py`` (or a ``workerctl``)
    in the folder the batch was started from was imported by the helper alone."""
    import subprocess
    import sys

    folder = tmp_path / "untrusted"
    folder.mkdir()
    marker = tmp_path / "imported"
    (folder / "pluggy.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise ImportError('planted')\n")
    script = Path(sys.executable).with_name("workerctl")
    make_worker(workspace, "paced", output_mode="review_note",
                executor="{name: echo, script: [{sleep: 0.2, output: 'Blocker: none found.'}]}")  # fmt: skip
    ids = _workspace_with_tasks(workspace, 20)
    listed = workspace.root / "ids.txt"
    listed.write_text("\n".join(ids) + "\n")
    batch = subprocess.Popen(
        [str(script), "-w", str(workspace.root), "run", "start", "paced", "--records-from", str(listed),
         "--jobs", "4", "--json=counts"],
        cwd=folder, env={**os.environ, review_process.ENV: "on", "NO_COLOR": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(lambda: _helpers_of(workspace.root) or batch.poll() is not None, 30)
    assert _helpers_of(workspace.root), "the helper started"
    out, err = batch.communicate(timeout=120)
    assert batch.returncode == 0, err
    assert json.loads(out)["counts"] == {"completed": 20}
    assert not marker.exists()


def test_a_batch_whose_every_record_is_skipped_starts_no_helper(workspace):
    """The helper starts with the batch's first stored run: a rerun that the duplicate
    guard refuses record by record (a cron job's, nothing changed) never starts one."""
    from helpers import run_workerctl

    ids = _workspace_with_tasks(workspace, 20)
    listed = workspace.root / "ids.txt"
    listed.write_text("\n".join(ids) + "\n")
    argv = (
        "run",
        "start",
        "overdue-task-review",
        "--records-from",
        str(listed),
        "--jobs",
        "4",
        "--json=counts",
    )
    first = run_workerctl(*argv, workspace=workspace, env={review_process.ENV: "on"}, timeout=120)
    assert json.loads(first.stdout)["counts"] == {"completed": 20}, first.stderr
    again = start_workerctl(*argv, workspace=workspace, env={review_process.ENV: "on"})
    seen: set[int] = set()
    while again.poll() is None:
        seen.update(_helpers_of(workspace.root))
        time.sleep(0.005)
    out, err = again.communicate(60)
    assert json.loads(out)["counts"] == {"skipped": 20}, err
    assert not seen


def test_the_helper_started_with_the_first_run_decides_the_batchs_reviews(workspace, monkeypatch):
    ids = _workspace_with_tasks(workspace, 24)
    make_worker(workspace, "paced", output_mode="review_note",
                executor="{name: echo, script: [{sleep: 0.3, output: 'Blocker: none found.'}]}")  # fmt: skip
    monkeypatch.setenv(review_process.ENV, "on")
    runner = BatchRunner(App(str(workspace.root)).engine, 4)
    result = runner.run("paced", ids, StartOptions())  # 1.8 s: the helper is ready well before
    assert result.counts == {"completed": 24}
    assert runner.reviews is not None and runner.reviews.decided > 0
