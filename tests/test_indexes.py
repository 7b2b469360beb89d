"""The cross-run indexes give the answers a full scan of the history gives."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil

import pytest

from helpers import make_worker, run_workerctl
from workerctl.history.store import History, RunFilter
from workerctl.runs.model import Run, RunError, new_run_id
from workerctl.runs.states import counted_as, is_old_refusal
from workerctl.runs.stats import compute, stats_from_counts
from workerctl.storage.atomic import write_json

WORKERS = ("busy", "rare", "other")
KINDS = ("tool_not_allowed", "crashed", "worker_not_runnable")


def iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seeded(workspace, count: int = 600, seed: int = 7) -> History:
    """A history of ``count`` runs over 30 days, written as run files and reindexed,
    the way the benchmarks build theirs."""
    history = History(workspace)
    rng = random.Random(seed)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    for n in range(count):
        created = start + dt.timedelta(days=30) * n / count
        worker = "rare" if n % 97 == 5 else rng.choice(("busy", "other"))
        status = rng.choice(("completed", "completed", "failed", "cancelled"))
        stamps = [iso(created + dt.timedelta(seconds=s)) for s in (0, 1, 2 + rng.random() * 9)]
        run = Run(
            id=new_run_id(),
            worker=worker,
            config_hash="h",
            config={},
            executor="echo",
            created=stamps[0],
            status=status,
            record_id=f"T-{rng.randint(1, 40)}",
            transitions=[{"status": "running", "at": stamps[1]}, {"status": status, "at": stamps[2]}],
            error=RunError(rng.choice(KINDS), "x") if status == "failed" else None,
        )
        # a slot no shard has yet: reindex gives each run its own
        write_json(history.body_path(run.id), {**run.to_dict(), "_shard": 0, "_doc": 0}, sync_data=False)
    assert history.reindex()["runs"] == count
    return history


def scan(history: History, flt: RunFilter, limit: int | None = None) -> list[dict]:
    out = [d for d in history.iter_summaries() if flt.match(d)]
    return out[:limit] if limit else out


@pytest.mark.parametrize(
    "flt",
    [
        RunFilter(workers=("rare",)),
        RunFilter(workers=("busy", "rare")),
        RunFilter(record_id="T-7"),
        RunFilter(statuses=("failed",)),
        RunFilter(statuses=("cancelled", "completed"), workers=("other",)),
        RunFilter(error_kinds=("crashed",)),
        RunFilter(workers=("busy",), record_id="T-3"),
    ],
)
@pytest.mark.slow
def test_filtered_lists_equal_a_full_scan(workspace, flt):
    history = seeded(workspace)
    assert len(scan(history, flt)) > 1
    for limit in (1, 20, None):
        assert [d["id"] for d in history.list(flt, limit=limit)] == [
            d["id"] for d in scan(history, flt, limit)
        ]


@pytest.mark.slow
def test_stats_and_prune_counts_equal_a_full_scan(workspace, wcli):
    history = seeded(workspace)
    assert stats_from_counts(history.indexes.counts()) == _exact(
        compute(history.iter_summaries()), history.indexes.counts()
    )
    cut = (dt.datetime.now(dt.UTC) - dt.timedelta(days=11, minutes=17)).isoformat()
    since = cut.replace("+00:00", "Z")
    figures = stats_from_counts(history.indexes.counts(since=since))
    want = compute(d for d in history.iter_summaries() if d["created"] >= since)
    assert {w: f["counts"] for w, f in figures.items()} == {w: f["counts"] for w, f in want.items()}
    assert {w: f["tokens"] for w, f in figures.items()} == {w: f["tokens"] for w, f in want.items()}
    dry = json.loads(wcli("runs", "prune", "--older-than", "11d", "--dry-run", "--json").stdout)
    done = json.loads(wcli("runs", "prune", "--older-than", "11d", "--json").stdout)
    assert dry["removed"] == done["removed"] > 0 and dry["dry_run"] and not done["dry_run"]
    after = stats_from_counts(history.indexes.counts())
    runs = [s for s in history.iter_summaries() if not is_old_refusal(s)]  # a refusal is not a run
    assert sum(f["runs"] for f in after.values()) == len(runs)


def _exact(figures: dict, per: dict) -> dict:
    """Full-scan figures with the percentiles the histogram gives (within 5 %)."""
    approx = stats_from_counts(per)
    for name, item in figures.items():
        for key in ("p50_seconds", "p95_seconds"):
            assert approx[name][key] == pytest.approx(item[key], rel=0.06)
            item[key] = approx[name][key]
    return figures


@pytest.mark.slow
def test_workers_list_and_show_agree_with_runs_list_at_any_age(workspace, wcli):
    history = seeded(workspace)
    for name in WORKERS:
        make_worker(workspace, name)
    rows = {r["name"]: r for r in json.loads(wcli("workers", "list", "--json").stdout)}
    for name in WORKERS:
        newest = json.loads(wcli("runs", "list", "--worker", name, "--limit", "1", "--json").stdout)[0]
        assert rows[name]["last_run"] == newest["id"]
        shown = json.loads(wcli("worker", "show", name, "--json").stdout)
        assert shown["recent_runs"][0]["id"] == newest["id"]
        finished = [
            d
            for d in scan(history, RunFilter(workers=(name,)))
            if d["status"] in ("completed", "failed", "cancelled")
            and d["error_kind"] != "worker_not_runnable"
        ][:50]
        rate = sum(d["status"] == "completed" for d in finished) / len(finished)
        assert rows[name]["success_rate"] == pytest.approx(rate)


def test_a_paused_workers_refusals_do_not_lower_its_success_rate(workspace, wcli):
    assert wcli("run", "start", "overdue-task-review", "--task", "T-1042").exit_code == 0
    wcli("worker", "pause", "overdue-task-review")
    for task in ("T-1043", "T-2001"):
        assert wcli("run", "start", "overdue-task-review", "--task", task).exit_code == 5
    row = next(
        r for r in json.loads(wcli("workers", "list", "--json").stdout) if r["name"] == "overdue-task-review"
    )
    assert row["success_rate"] == 1.0 and row["runs_counted"] == 1
    assert row["last_status"] == "completed"  # a refusal is not a run
    stats = json.loads(wcli("runs", "stats", "--json").stdout)
    assert stats["overdue-task-review"]["counts"]["failed"] == 0


def test_every_transition_keeps_them_current(workspace, wcli):
    make_worker(workspace, "flaky", executor='{name: echo, script: [{error: "down"}]}')
    for task in ("T-1042", "T-1043"):
        wcli("run", "start", "flaky", "--task", task)
        wcli("run", "start", "overdue-task-review", "--task", task)
    failed = json.loads(wcli("runs", "list", "--status", "failed", "--json").stdout)
    assert {r["worker"] for r in failed} == {"flaky"} and len(failed) == 2
    kinds = json.loads(wcli("runs", "list", "--error-kind", "executor_error", "--json").stdout)
    assert [r["id"] for r in kinds] == [r["id"] for r in failed]
    on_task = json.loads(wcli("runs", "list", "--record", "T-1043", "--json").stdout)
    assert len(on_task) == 2 and {r["record_id"] for r in on_task} == {"T-1043"}
    stats = json.loads(wcli("runs", "stats", "--json").stdout)
    assert stats["flaky"]["counts"]["failed"] == 2
    assert stats["overdue-task-review"]["counts"]["completed"] == 2


@pytest.mark.slow
def test_a_write_cut_by_a_kill_is_repaired_before_anyone_reads(workspace, tmp_path):
    from workerctl.storage.faults import FAULT_ENV

    History(workspace).indexes.ensure()  # built, as in any used workspace
    points = tmp_path / "points"
    run_workerctl(
        "run",
        "start",
        "overdue-task-review",
        "--task",
        "T-1042",
        workspace=workspace,
        env={FAULT_ENV: f"trace:{points}"},
    )
    index_points = [int(line.split()[0]) for line in points.read_text().splitlines() if "/indexes/" in line]
    assert index_points
    for point in index_points:
        killed = run_workerctl(
            "run",
            "start",
            "overdue-task-review",
            "--task",
            "T-1043",
            "--allow-repeat",
            workspace=workspace,
            env={FAULT_ENV: f"kill:{point}"},
        )
        assert killed.returncode == -9
        listed = json.loads(
            run_workerctl(
                "runs",
                "list",
                "--worker",
                "overdue-task-review",
                "--limit",
                "0",
                "--json",
                workspace=workspace,
            ).stdout
        )
        history = History(workspace)
        assert [r["id"] for r in listed] == [
            d["id"] for d in scan(history, RunFilter(workers=("overdue-task-review",)))
        ]
        rows = json.loads(run_workerctl("workers", "list", "--json", workspace=workspace).stdout)
        row = next(r for r in rows if r["name"] == "overdue-task-review")
        assert row["last_run"] == listed[0]["id"] and row["last_status"] == listed[0]["status"]


def test_a_damaged_index_file_is_reported_left_alone_and_rebuilt(workspace, wcli):
    assert wcli("run", "start", "overdue-task-review", "--task", "T-1042").exit_code == 0
    wcli("workers", "list")
    path = workspace.history_dir / "indexes" / "workers.json"
    for bad in ('{"workers": {"1": ', '{"workers": {"1": {"name": "x"}}}', "[]"):
        path.write_text(bad)
        result = wcli("workers", "list")
        assert result.exit_code == 4 and str(path) in result.output
        assert "runs reindex" in result.output and path.read_text() == bad
    rebuilt = wcli("runs", "reindex")
    assert rebuilt.exit_code == 0 and "indexes.old-" in rebuilt.output
    kept = next(workspace.history_dir.glob("indexes.old-*/workers.json"))
    assert kept.read_text() == "[]"
    row = next(
        r for r in json.loads(wcli("workers", "list", "--json").stdout) if r["name"] == "overdue-task-review"
    )
    assert row["last_status"] == "completed"


def test_a_run_killed_before_its_first_index_entry_is_listed_by_worker(workspace, tmp_path):
    """Killed after a new run's file, before its summary reached the shard: the sweep
    puts the summary back, and the cross-run indexes (rebuilt because the cut write
    left its note) list it; a rebuild made while the sweep was still settling it
    would not (the note is kept for the next reader, not acted on mid-sweep)."""
    from workerctl.storage.faults import FAULT_ENV

    History(workspace).indexes.ensure()
    points = tmp_path / "points"
    run_workerctl(
        "run",
        "start",
        "overdue-task-review",
        "--task",
        "T-1042",
        workspace=workspace,
        env={FAULT_ENV: f"trace:{points}"},
    )
    first_shard = next(
        int(line.split()[0]) for line in points.read_text().splitlines() if "/history/index/" in line
    )
    killed = run_workerctl(
        "run",
        "start",
        "overdue-task-review",
        "--task",
        "T-1043",
        workspace=workspace,
        env={FAULT_ENV: f"kill:{first_shard}"},
    )
    assert killed.returncode == -9
    listed = json.loads(run_workerctl("runs", "list", "--limit", "0", "--json", workspace=workspace).stdout)
    assert len(listed) == 2 and {r["status"] for r in listed} == {"completed", "failed"}
    by_worker = json.loads(
        run_workerctl(
            "runs", "list", "--worker", "overdue-task-review", "--limit", "0", "--json", workspace=workspace
        ).stdout
    )
    assert [(r["id"], r["status"]) for r in by_worker] == [(r["id"], r["status"]) for r in listed]


def _scan_counts(history: History, since, until, by: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for d in history.iter_summaries():
        if (since and d["created"] < since) or (until and d["created"] >= until):
            continue
        group = d["worker"] if by == "worker" else d["created"][:10]
        out.setdefault(group, {})
        key = counted_as(d)  # an old refusal (worker_not_runnable) under "refused", not "failed"
        out[group][key] = out[group].get(key, 0) + 1
    return out


def _index_counts(history: History, since, until, by: str) -> dict[str, dict[str, int]]:
    per = history.indexes.counts(since=since, until=until, by=by)
    return {
        g: {s: n for s, n in item["counts"].items() if n}
        for g, item in per.items()
        if any(item["counts"].values())
    }


@pytest.mark.slow
def test_counts_over_whole_and_cut_days_equal_a_full_scan(workspace):
    """Whole days are counted from their day docs, the days a bound cuts by the hour
    and the hour it cuts run by run: every combination gives the full scan's counts."""
    history = seeded(workspace)
    now = dt.datetime.now(dt.UTC)

    def ago(days):
        return None if days is None else iso(now - dt.timedelta(days=days))

    for since, until in ((None, None), (11.3, None), (None, 4.7), (20.2, 3.1), (2.05, 2.01), (6.5, 6.2)):
        for by in ("worker", "day"):
            want = _scan_counts(history, ago(since), ago(until), by)
            assert _index_counts(history, ago(since), ago(until), by) == want, (since, until)


def test_indexes_built_by_an_older_version_are_rebuilt_before_they_are_read(workspace):
    """Version 1 had no whole-day docs: counted from such files, whole days would
    count nothing. Its meta.json says so, and the first reader rebuilds."""
    from workerctl.history.tables import write_table

    history = seeded(workspace)
    want = _scan_counts(history, None, None, "worker")
    root = history.indexes.root
    shutil.rmtree(root / "days")  # as version 1 left them: hourly counts only
    write_table(root / "meta.json", "meta", {"1": {"version": 1}}, durable=False)
    fresh = History(workspace)  # a new process: nothing cached
    assert _index_counts(fresh, None, None, "worker") == want


MODEL_STEP = """
import json, sys
json.load(sys.stdin)
print(json.dumps({"text": "done", "usage": {"model": "fake-1", "input_tokens": 7, "output_tokens": 3}}))
"""


def test_stats_by_model_once_the_indexes_exist(workspace, wcli):
    """#25 item 11: a run counted as running under "no model" at its start finishes
    under the model its executor reported; the counts by model must move it there,
    not leave "(no model) 1 running" and "fake-1 -1 running"."""
    import sys

    script = workspace.root / "model_step.py"
    script.write_text(MODEL_STEP)
    argv = json.dumps([sys.executable, str(script)])
    make_worker(workspace, "modelled", output_mode="review_note", executor=f"{{name: command, argv: {argv}}}")
    assert wcli("workers", "list").exit_code == 0  # the cross-run indexes now exist
    assert (History(workspace).root / "indexes" / "meta.json").exists()
    assert wcli("run", "start", "modelled").exit_code == 0
    result = wcli("runs", "stats", "--by", "model", "--json")
    figures = json.loads(result.output)
    figures = figures.get("groups", figures) if isinstance(figures, dict) else figures
    scanned = compute(History(workspace).iter_summaries(), by="model")
    assert scanned["fake-1"]["counts"]["completed"] == 1
    assert figures["fake-1"]["counts"] == scanned["fake-1"]["counts"]
    assert "(no model)" not in figures or figures["(no model)"]["runs"] == scanned.get("(no model)", {}).get(
        "runs", 0
    )
    assert all(n >= 0 for group in figures.values() for n in group["counts"].values())


@pytest.mark.slow
def test_recovery_after_a_crash_repairs_only_what_the_crash_touched(workspace, tmp_path, monkeypatch):
    """#21: a run start killed at each of its index writes; the first reader after it
    repairs that run's refs and counts, reading a few shards, not every shard (a
    rebuild of every index, under the lock, took 11 s at 100,000 runs), and what the
    indexes then say equals a rebuild."""
    from workerctl.history.reader import Reader
    from workerctl.history.sweep import catch_up
    from workerctl.storage.faults import FAULT_ENV

    seeded(workspace, count=1200)
    shards = len(History(workspace).shards())
    assert shards >= 10
    points = tmp_path / "points"
    start = ("run", "start", "overdue-task-review", "--task", "T-1043", "--allow-repeat")
    run_workerctl(*start, workspace=workspace, env={FAULT_ENV: f"trace:{points}"})
    index_points = [int(line.split()[0]) for line in points.read_text().splitlines() if "/indexes/" in line]
    for point in index_points:
        assert run_workerctl(*start, workspace=workspace, env={FAULT_ENV: f"kill:{point}"}).returncode == -9
        history = History(workspace)
        assert not history.indexes.ready()
        catch_up(history)  # the sweep: the killed run marked crashed
        read: list[int] = []
        original = Reader.shard

        def counting(self, shard, read=read, original=original):
            read.append(shard)
            return original(self, shard)

        monkeypatch.setattr(Reader, "shard", counting)
        assert history.indexes.ensure()
        monkeypatch.setattr(Reader, "shard", original)
        assert len(set(read)) <= 3 < shards, (point, sorted(set(read)))

        def answers(h: History) -> list:
            return [
                h.indexes.worker_stats(),
                h.indexes.counts(),
                [r["id"] for r in h.list(RunFilter(workers=("overdue-task-review",)), None)],
                sorted(r["id"] for r in h.list(RunFilter(statuses=("failed", "completed")), None)),
                [r["id"] for r in h.list(RunFilter(record_id="T-1043"), None)],
            ]

        repaired = answers(History(workspace))
        History(workspace).indexes.rebuild()
        assert answers(History(workspace)) == repaired, point


def test_a_history_grown_by_starts_alone_has_its_indexes_from_the_first_run(workspace, monkeypatch):
    """The duplicate guard asks, at every start, for the newest finished run of the worker
    on the record. Without the cross-run indexes that question reads every run's summary
    (a start on a new record cost 130 ms more at 20,000 runs, and grew with the history);
    a history grown by ``run start`` alone never had them, since only a listing built
    them. They are now built with the first run, so no start ever scans."""
    from workerctl.engine.launcher import Engine, StartOptions
    from workerctl.plugins.manager import get_registry

    history = History(workspace)
    assert not history.indexes.ready()
    engine = Engine(workspace, get_registry())
    assert engine.start("overdue-task-review", StartOptions("T-1042")).status == "completed"
    assert history.indexes.ready()

    def no_scan(self, flt=None):
        raise AssertionError("a start read every summary")

    monkeypatch.setattr(History, "iter_summaries", no_scan)
    for record in ("T-1043", "T-1044", "T-1042"):
        engine.start("overdue-task-review", StartOptions(record, allow_repeat=True))
    listed = History(workspace).list(RunFilter(workers=("overdue-task-review",)), limit=None)
    assert len(listed) == 4


def test_run_files_without_index_shards_are_left_to_a_reindex(workspace):
    """A history holding run files but no index shards (copied in, or from before the
    shards) is not declared indexed by its next start: only a reindex can say what
    those files hold."""
    from workerctl.engine.launcher import Engine, StartOptions
    from workerctl.plugins.manager import get_registry

    engine = Engine(workspace, get_registry())
    first = engine.start("overdue-task-review", StartOptions("T-1042"))
    history = History(workspace)
    shutil.rmtree(history.root / "indexes", ignore_errors=True)
    shutil.rmtree(history.root / "index")
    engine.start("overdue-task-review", StartOptions("T-1043"))
    assert not History(workspace).indexes.ready()
    assert run_workerctl("runs", "reindex", workspace=workspace).returncode == 0
    listed = {s["id"] for s in History(workspace).list(None, limit=None)}
    assert first.id in listed and len(listed) == 2
