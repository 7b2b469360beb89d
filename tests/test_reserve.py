"""Space set aside for each run's end (``storage.atomic._Reserve``): every run counted
has a file of its own to write its end into, whatever order runs are counted, end as
usual, end into their file, or are counted again by the process executing them.

A hypothesis state machine drives one reserve over real files on a small tmpfs of its
own (root only), which it fills and frees between steps; batches meet the full disk on
a real tmpfs in ``test_read_only.py`` and by fault injection in
``test_batch_full_disk.py``.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from workerctl.storage.atomic import _Reserve

RUNS = st.sampled_from([f"run{n}" for n in range(6)])


needs_root = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0, reason="mounting a tmpfs needs root on Linux"
)


class ReserveMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", self.tmp.name])
        assert mounted.returncode == 0
        self.filler = Path(self.tmp.name) / "filler"
        self.full = False
        self.folder = Path(self.tmp.name) / "ahead" / "me"
        self.folder.mkdir(parents=True)
        self.runs = Path(self.tmp.name) / "runs"
        self.runs.mkdir()
        self.reserve = _Reserve()
        self.counted: set[str] = set()
        self.ended: dict[str, dict] = {}
        self.kept_any = False

    @rule()
    def disk_fills(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        self.full = True

    @rule()
    def space_comes_back(self) -> None:
        self.filler.unlink(missing_ok=True)
        self.full = False

    @rule(run=RUNS)
    def keep(self, run: str) -> None:
        refused = self.reserve.keep(self.folder, run)
        if refused is None:
            self.counted.add(run)
            self.kept_any = True
        else:  # no space for its file: a run counted before keeps the one it has
            assert self.full and refused.errno == errno.ENOSPC

    @rule(run=RUNS)
    def ends_as_usual(self, run: str) -> None:
        self.reserve.release(run)
        self.counted.discard(run)

    @rule(run=RUNS, size=st.integers(0, 40_000))
    def ends_on_a_full_disk(self, run: str, size: int) -> None:
        data = {"id": run, "text": "x" * size}
        done = self.reserve.write(run, self.runs / f"{run}.json", data_text(data))
        fits = len(data_text(data).encode()) <= _Reserve.BYTES
        # a counted run always has its file; one not counted never takes another's
        assert done == (run in self.counted and fits), (run, self.counted, size)
        self.counted.discard(run)
        if done:
            self.ended[run] = data

    @invariant()
    def every_counted_run_has_a_file(self) -> None:
        files = [p for p in self.folder.iterdir() if p.name.startswith(".reserve.")]
        assert len(files) >= len(self.counted)
        assert all(p.stat().st_size in (_Reserve.BYTES,) for p in files)

    @invariant()
    def each_end_written_is_whole(self) -> None:
        for run, data in self.ended.items():
            assert json.loads((self.runs / f"{run}.json").read_text()) == data

    def teardown(self) -> None:
        try:
            self.reserve.clear()
            # its files gone, and the folder it made them in with them
            assert not self.folder.exists() if self.kept_any else os.listdir(self.folder) == []
        finally:
            subprocess.run(["umount", "-l", self.tmp.name])
            self.tmp.cleanup()


def data_text(data: dict) -> str:
    return json.dumps(data)


TestReserve = needs_root(ReserveMachine.TestCase)
TestReserve.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_the_files_go_when_the_process_ends(tmp_path):
    """A process that set space aside and ends leaves nothing behind (atexit)."""
    import subprocess
    import sys

    folder = tmp_path / "ahead" / "me"
    folder.mkdir(parents=True)
    code = (
        "import sys; from pathlib import Path;"
        "from workerctl.storage.atomic import reserve_space;"
        "reserve_space(Path(sys.argv[1]), 'a'); reserve_space(Path(sys.argv[1]), 'b');"
        "print(len(list(Path(sys.argv[1]).iterdir())))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"  # two runs, two files, while it ran
    assert not folder.exists() and os.listdir(tmp_path / "ahead") == []
