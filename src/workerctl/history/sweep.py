"""Liveness and crash detection: is the process executing a run still there?

A run records its owner: pid, host, the kernel's start time of that pid, the boot id
and the PID namespace it was counted in. The owner is **verified** only when this
process can see it: same host, same boot, same PID namespace, and the pid's start time
unchanged. Only then is its pid asked (``kill 0``, ``/proc``), and only then is it
ever signalled (``run cancel``): a marker written in another PID namespace names a pid
that means another process here (pid 1 is this host's init).

A process that cannot be verified (another machine, another PID namespace) is judged
by its heartbeats **as they arrive, on the reader's own clock**: each reader notes
when it last saw the heartbeat change (``history/hb/RUN.seen.HOST``), and the run is
stale when it has seen no change for ``stale_after`` seconds. The heartbeat's own
timestamp (another machine's clock) is never compared with this one. Worst case: a
run whose process died is marked crashed ``stale_after`` after the first look of a
reader that never saw it beat, so up to twice ``stale_after`` after its last beat.

A run whose owner is gone, or whose heartbeat went stale, is never left ``running``:
the next command that reads the history marks it ``crashed``. A marker from an earlier
boot of this host names a process that is gone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workerctl.runs.states import FAILED, now_iso
from workerctl.storage import fs
from workerctl.storage.lock import hostname

if TYPE_CHECKING:
    from workerctl.history.store import History
    from workerctl.runs.model import Run, RunError


def proc_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (to tell a live process from a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat.rsplit(")", 1)[-1].split()
    return rest[19] if len(rest) > 19 else None


#: a process id: from 1 up, below what a kernel gives out (Linux: at most 2**22)
PID_LIMIT = 2**31


def _pid_alive(pid: int, proc_start: str | None) -> bool:
    """Whether process ``pid`` (started at ``proc_start``, when known) lives. The one
    check every pid read from state passes (markers, a reindex journal's owner, folders
    of files written ahead): one that is no process id (0 and -1 would probe a whole
    process group or every process and say "alive"; 10**20 made ``os.kill`` raise
    OverflowError, a traceback in every command) names no live process."""
    if type(pid) is not int or not 0 < pid < PID_LIMIT:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: the kill probe is all we can know
    rest = stat.rsplit(")", 1)[-1].split()
    if rest and rest[0] in ("Z", "X"):
        return False
    return not (proc_start and len(rest) > 19 and rest[19] != proc_start)


def current_owner() -> dict[str, Any]:
    """This process as a run's owner (read from /proc once per process: every commit
    asks, and a forked child is a new pid, so asks again)."""
    pid = os.getpid()
    known = _OWNER.get(pid)
    if known is None:
        known = _OWNER[pid] = {
            "pid": pid,
            "host": hostname(),
            "proc_start": proc_start(pid),
            "boot_id": boot_id(),
            "pid_ns": pid_namespace(),
        }
    return dict(known)


def boot_id() -> str | None:
    """This boot of the kernel (Linux); None where there is no such file."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


def pid_namespace() -> str | None:
    """The PID namespace this process counts pids in, as ``pid:[INODE]`` (Linux)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def same_machine(info: dict[str, Any]) -> bool:
    """Whether an owner was a process of this machine: this host, this PID namespace (a
    container beside it, sharing the workspace, is another machine); whatever its boot."""
    me = current_owner()
    return info.get("host") == me["host"] and info.get("pid_ns") in (None, me["pid_ns"])


def visible(info: dict[str, Any]) -> bool:
    """Whether the owner's pid means the same process here: same host, boot and PID
    namespace (a marker without them, from an older workerctl, is taken as before)."""
    if not same_machine(info) or not info.get("pid"):
        return False
    return info.get("boot_id") in (None, current_owner()["boot_id"])


def verified(info: dict[str, Any]) -> bool:
    """Whether the owner is a live process that is the run's own: visible, alive, and
    its start time the one recorded (which a marker must hold to be signalled)."""
    return bool(visible(info) and info.get("proc_start") and _pid_alive(info["pid"], info["proc_start"]))


_OWNER: dict[int, dict[str, Any]] = {}


def owner_alive(history: History, run_id: str, info: dict[str, Any]) -> bool:
    """Whether the owner named in a run's marker still executes it.

    On this host the pid and its kernel start time decide (a reused pid is not
    the owner); elsewhere the heartbeat file's age does, and a run handed to a
    remote executor is judged by that executor's ``refresh``.
    """
    if info.get("remote"):
        return True  # its executor's refresh() judges it (see App.history)
    if not info.get("pid") and not info.get("host"):
        return False  # an ownerless marker (what a power cut leaves of one): settled at once
    me = current_owner()
    if info.get("host") == me["host"] and info.get("boot_id") not in (None, me["boot_id"]):
        return False  # this host has rebooted since: that process is gone
    pid = info.get("pid")
    if info.get("host") == me["host"] and not (type(pid) is int and 0 < pid < PID_LIMIT):
        # no process id (none, 0, -1: a marker edited or damaged): no process executes it,
        # here or in another namespace; its heartbeat would only keep it "running" a while
        return False
    if visible(info):
        return _pid_alive(info["pid"], info.get("proc_start"))
    return beats_arriving(history, run_id)


_FILE: Any = object()  # beats_arriving: the beat is the run's heartbeat file here


def seen_note(history: History, run_id: str) -> Path:
    """Where this host notes when it last saw ``run_id``'s heartbeat change."""
    from workerctl.storage.filenames import file_name

    path = history.heartbeat_path(run_id)
    return path.with_name(f"{path.name}.seen.{file_name(hostname())}")


def beats_arriving(history: History, run_id: str, beat: Any = _FILE) -> bool:
    """Whether the heartbeat of a process this reader cannot see has changed within
    ``stale_after`` seconds of this reader's own clock. The beat's value (its file's
    modification time, whoever's clock wrote it, or ``beat``: what a remote executor
    reports, such as a counter in a task queue's job, None when it has none) is only
    compared with the value this reader saw before; when it changed is noted here, on
    this host's clock. The one judge of liveness by heartbeat, local and remote."""
    if beat is _FILE:
        path = history.heartbeat_path(run_id)
        try:
            beat = fs.lstat(path).st_mtime_ns
        except FileNotFoundError:
            beat = 0  # no beat yet: its absence is judged like a beat that stopped
    note = seen_note(history, run_id)
    now = time.time()
    from workerctl.storage.atomic import read_json, write_json

    try:
        seen = read_json(note) or {}
    except Exception:  # a damaged note is only this reader's memory: start again
        seen = {}
    if seen.get("beat") != beat or not isinstance(seen.get("at"), int | float):
        # this reader's memory, safe to regenerate (and to race: the note is replaced whole)
        write_json(note, {"beat": beat, "at": now}, sync_data=False, cache=True)
        return True  # changed since this reader last looked (or first look): alive
    return now - float(seen["at"]) < history.stale_after


def mark_crashed(history: History, suspects: list[str] | None = None) -> list[Run]:
    """Settle every run whose marker names a process that is gone.

    Suspects are found without the lock (markers only), then each is checked
    again under it and settled from its run file, the truth (``History.settle``):
    a finished run gets its index entry repaired, a run never stored loses its
    marker (a remote one too, whose owner is otherwise judged by its executor), and
    an unfinished one is marked failed with kind ``crashed`` unless
    its run file names another owner that is alive (a crash between writing the
    marker and the run file of a hand-over).
    """
    if suspects is None:
        suspects = dead_runs(history)
    marked = []
    dead: set[int] = set()  # the pids of this machine's owners that died with runs in hand
    folders: set[Path] = set()  # and the folders of those runs' files
    for run_id in suspects:
        with history.lock:
            info = history.marker(run_id)
            if info is None:
                continue
            alive = owner_alive(history, run_id, info)
            if alive and not _never_stored(history, run_id, info):
                continue
            if not alive and same_machine(info) and isinstance(info.get("pid"), int):
                dead.add(info["pid"])
                folders.add(history.body_path(run_id).parent)
            run = history.settle(run_id)
            if run is None:
                continue
            if (
                run.owner
                and not _same_owner(run.owner, info)
                and owner_alive(history, run_id, {**run.owner, "since": info.get("since")})
            ):
                history.restore_marker(run)
                continue
            run.error = _why_stopped(run, info, f"found by pid {os.getpid()} at {now_iso()}")
            run.move(FAILED)
            history.save(run)
            marked.append(run)
    if dead:  # a process died with runs in hand: what it was writing goes too
        history.sweep_after_death(dead, folders)
    return marked


def dead_runs(history: History) -> list[str]:
    """The runs whose marker names a process that is gone (read without the lock:
    each is checked again under it before anything is written)."""
    return [
        rid
        for rid, info in history.unfinished().items()
        if not owner_alive(history, rid, info) or _never_stored(history, rid, info)
    ]


def crashed_view(history: History, run: Run, info: dict[str, Any]) -> Run:
    """``run`` as the sweep would record it (failed, kind ``crashed``) when its owner
    is gone, for a reader that cannot write: the same judgement as
    ``mark_crashed``, kept in memory until a command that can write records it."""
    if run.finished or (
        run.owner
        and not _same_owner(run.owner, info)
        and owner_alive(history, run.id, {**run.owner, "since": info.get("since")})
    ):
        return run
    found = f"found by pid {os.getpid()} at {now_iso()} (not recorded yet: this command could not write it)"
    run.error = _why_stopped(run, info, found)
    run.move(FAILED)
    return run


def _why_stopped(run: Run, info: dict[str, Any], found: str) -> RunError:
    """The error of a run whose owner is gone: the cause its process noted in the
    marker when it could not write the run file itself (``History._note_stop``: kind
    ``state_unusable``), else a death (kind ``crashed``)."""
    from workerctl.runs.model import RunError
    from workerctl.runs.states import STATE_UNUSABLE

    stopped = info.get("stopped")
    if isinstance(stopped, str) and stopped:
        return RunError(
            STATE_UNUSABLE,
            f"its end could not be recorded, so it is recorded failed: {stopped}",
            f"{found}; the run's own process noted the cause before it ended",
        )
    where = f"pid {info.get('pid')} on {info.get('host')}"
    return RunError(
        "crashed",
        f"the process executing this run ({where}) died while it was {run.status}",
        f"{found}; last state change {info.get('since')}",
    )


def _never_stored(history: History, run_id: str, info: dict[str, Any]) -> bool:
    """A remote run's marker without its run file: the start that wrote it died
    before the run file (a creation holds the lock across both writes, so under the
    lock nobody is still writing it). Its executor's ``refresh`` cannot judge a run
    that does not exist; ``settle`` removes the marker. (A local run's marker needs
    no such rule: its dead owner says it.)"""
    return bool(info.get("remote")) and not fs.exists(history.body_path(run_id))


def _same_owner(owner: dict[str, Any], marker: dict[str, Any]) -> bool:
    return all(owner.get(k) == marker.get(k) for k in ("pid", "host", "remote"))


def catch_up(history: History, warn: Callable[[str], None] | None = None) -> None:
    """Bring the history up to date before it is read: finish an interrupted prune and
    mark crashed runs. Remote runs (a task queue's) are brought up to date by their
    executors, a layer above the history: ``engine.remote.refresh_remote``.

    When the history cannot be written (a full disk, a read-only mount, no
    permission), or its lock stays held (a writer stopped with ``kill -STOP`` or
    stuck: the wait is ``REPAIR_WAIT``, not the lock timeout), reading goes on: the
    runs this reader found dead are shown as their run files say, crashed when
    unfinished (``History.unsettled``), ``warn`` says so, and the next command
    that can write records them (a start does, under its own hold of the lock:
    ``History.create``)."""
    from workerctl.errors import LockTimeout, StorageError

    dead: dict[str, dict] = {}
    try:
        with history.lock.bounded():
            history.finish_prune()
            dead = {rid: history.marker(rid) or {} for rid in dead_runs(history)}
            mark_crashed(history, list(dead))
    except StorageError as exc:
        if exc.doing == "read":
            # a state file that cannot even be read: reading on from disk cannot show it
            # either, so the command ends here on one line (exit 4), with no warning first
            raise
        history.cannot_write(exc)
        _read_on(history, dead, exc.message, warn)
    except LockTimeout as exc:
        _read_on(history, dead, exc.message, warn)
        return
    repair_cut_writes(history)


def repair_cut_writes(history: History) -> None:
    """The cross-run indexes made right again about the settled runs whose writes a
    crash cut (``Indexes.repair_settled``), by the command that settled them or the next
    one, reader or writer: a start too, not only a reader. The lock is taken only when
    a note names a run no marker names (the notes of another process's writes in
    flight name runs that are marked, but for a creation's first instant: under the
    lock, those are gone); what cannot be done now (the lock stays held, a full disk)
    is left to the next command, and readers answer from the shards meanwhile."""
    from workerctl.errors import DamagedFile, LockTimeout, StorageError

    if history.unwritable is not None or history.unsettled:
        return
    try:
        if all(history.has_marker(note) for note in history.indexes.crash_notes()):
            return
        with history.lock.bounded(), history.lock:
            history.indexes.repair_settled()
    except StorageError as exc:
        history.cannot_write(exc)
    except (LockTimeout, DamagedFile):
        # a damaged or planted file on the way: the commands that read it say so (exit 4)
        return
    except OSError as exc:  # a rename refused as such (finishing a reindex's swap, read-only)
        history.cannot_write(StorageError(exc.filename or history.root, exc))


def _read_on(history: History, dead: dict[str, dict], why: str, warn: Callable[[str], None] | None) -> None:
    """Reading goes on from disk, the runs this reader found dead shown as crashed."""
    # judged by this reader (a repair cut short may have re-pointed a marker at it)
    dead = dead or {rid: history.marker(rid) or {} for rid in dead_runs(history)}
    history.unsettled = dead
    if warn is not None:
        warn(
            f"showing the history as it is on disk, with {len(dead)} run(s) whose process is "
            f"gone as crashed (not recorded yet: the next command that can write does it): {why}"
        )
