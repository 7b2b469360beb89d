"""Run history on TinyDB that survives concurrent cron jobs and stays fast.

Layout under ``.workerctl/history/``::

    lock                  flock: every read-modify-write holds it
    index/000001.json     TinyDB shards of small run summaries, at most SHARD_BYTES each
    runs/ab/abcdefgh.json one file per run body (iterations, context, output)
    active/abcdefgh.json  one marker per unfinished run: who executes it (pid, host)
    heartbeats/abcdefgh   touched by the process executing a run

A status change rewrites one run file and one bounded shard (and adds or removes
a marker), whatever the size of the history; listing the newest runs reads the
newest shard or two; finding crashed runs lists only the markers. Every file is
replaced atomically (temp file, fsync, rename), and a file that does not parse
is reported (exit 4) and never written over.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workerctl.errors import DamagedFile, NotFoundError, UsageError
from workerctl.runs.liveness import current_owner, mark_crashed
from workerctl.runs.model import (
    FINISHED,
    ID_LENGTH,
    UNFINISHED,
    Run,
    new_run_id,
    now_iso,
)
from workerctl.storage.atomic import read_json, write_json
from workerctl.storage.lock import lock_for

SHARD_BYTES = 64 * 1024  # a new shard starts past this size: bounded rewrite cost
TABLE = "runs"


class RunFinishedElsewhere(Exception):
    """The stored run was finished by someone else (cancelled, marked crashed)."""

    def __init__(self, stored: Run) -> None:
        super().__init__(f"run {stored.id} is already {stored.status}")
        self.stored = stored


@dataclass
class RunFilter:
    workers: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    record_id: str | None = None
    since: str | None = None
    until: str | None = None
    unreviewed: bool = False
    ids: tuple[str, ...] = ()

    def match(self, doc: dict) -> bool:
        if self.workers and doc["worker"] not in self.workers:
            return False
        if self.statuses and doc["status"] not in self.statuses:
            return False
        if self.record_id and doc.get("record_id") != self.record_id:
            return False
        if self.since and doc["created"] < self.since:
            return False
        if self.until and doc["created"] > self.until:
            return False
        if self.unreviewed and not (doc.get("needs_review") and not doc.get("review")
                                    and doc["status"] == "completed"):
            return False
        return not (self.ids and doc["id"] not in self.ids)


class History:
    def __init__(self, workspace) -> None:
        self.workspace = workspace
        self.root: Path = workspace.history_dir
        self.lock = lock_for(self.root / "lock", float(workspace.setting("lock_timeout")))
        self.stale_after = float(workspace.setting("stale_after"))

    # -- paths --

    def shard_path(self, shard: int) -> Path:
        return self.root / "index" / f"{shard:06d}.json"

    def body_path(self, run_id: str) -> Path:
        return self.root / "runs" / run_id[:2] / f"{run_id}.json"

    def marker_path(self, run_id: str) -> Path:
        return self.root / "active" / f"{run_id}.json"

    def heartbeat_path(self, run_id: str) -> Path:
        return self.root / "heartbeats" / run_id

    def _hint_reindex(self, path: Path) -> str:
        return (f"move {path} aside, then run 'workerctl runs reindex' to rebuild the index "
                "from the run files")

    # -- low level --

    def _shard_read(self, shard: int) -> dict:
        path = self.shard_path(shard)
        data = read_json(path, hint=self._hint_reindex(path)) or {}
        if not isinstance(data, dict) or not isinstance(data.get(TABLE, {}), dict):
            raise DamagedFile(path, f"not a TinyDB database with a {TABLE!r} table",
                              hint=self._hint_reindex(path))
        return data

    def _shard_write(self, shard: int, docs: dict[str, dict]) -> None:
        write_json(self.shard_path(shard), {TABLE: docs})

    def _shard_docs(self, shard: int) -> dict[str, dict]:
        """The shard's TinyDB table as ``{doc_id: summary}`` (one parse)."""
        return self._shard_read(shard).get(TABLE, {})

    def _shard_put(self, shard: int, doc_id: int | None, summary: dict) -> int:
        """Insert (``doc_id`` None) or replace one summary with a single read and write.

        Shards are TinyDB databases (``TinyDB(path).table("runs")`` opens one), but
        the hot path reads and writes their layout directly: TinyDB's ``insert``
        parses the file twice, and importing TinyDB costs a cold command ~8 ms.
        """
        docs = self._shard_docs(shard)
        if doc_id is None:
            doc_id = max((int(k) for k in docs), default=0) + 1
        docs[str(doc_id)] = summary
        self._shard_write(shard, docs)
        return doc_id

    def _read_body(self, run_id: str) -> dict | None:
        path = self.body_path(run_id)
        return read_json(path, hint=f"move {path} aside (its summary stays in the index) "
                                    "or restore it from a backup")

    def _write_body(self, run: Run, shard: int, doc_id: int) -> None:
        data = run.to_dict()
        data["_shard"], data["_doc"] = shard, doc_id
        write_json(self.body_path(run.id), data)

    def _write_marker(self, run: Run, shard: int, doc_id: int) -> None:
        """A marker whose content was lost in a power cut reads as ownerless, and its
        run as crashed, which is what it is after a power cut; so its data is not
        fsynced."""
        owner = run.owner or current_owner()
        write_json(self.marker_path(run.id), sync_data=False, data={
            "id": run.id, "shard": shard, "doc": doc_id, "status": run.status,
            "pid": owner.get("pid"), "host": owner.get("host"),
            "proc_start": owner.get("proc_start"), "remote": owner.get("remote"),
            "since": now_iso()})

    def clear_marker(self, run_id: str) -> None:
        self.marker_path(run_id).unlink(missing_ok=True)
        self.heartbeat_path(run_id).unlink(missing_ok=True)

    def shards(self) -> list[int]:
        try:
            names = os.listdir(self.root / "index")
        except FileNotFoundError:
            return []
        return sorted(int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit())

    def _current_shard(self) -> int:
        shards = self.shards()
        if not shards:
            return 1
        last = shards[-1]
        return last + 1 if self.shard_path(last).stat().st_size >= SHARD_BYTES else last

    # -- writing --

    def create(self, run: Run) -> Run:
        """Store a new run; gives it a fresh unique id and its creation time."""
        with self.lock:
            while self.body_path(run.id).exists():
                run.id = new_run_id()
            run.created = now_iso()
            # transitions made before the run was stored happened "at creation"
            for transition in run.transitions:
                transition["at"] = run.created
            shard = self._current_shard()
            doc_id = self._shard_put(shard, None, run.summary())
            self._write_body(run, shard, doc_id)
            if run.status in UNFINISHED:
                self._write_marker(run, shard, doc_id)
        return run

    def save(self, run: Run, *, executing: bool = False) -> Run:
        """Write ``run`` back. The process executing a run passes ``executing``: if the
        stored copy was finished meanwhile by someone else (cancelled, marked crashed),
        ``RunFinishedElsewhere`` is raised, so that mark is never undone."""
        with self.lock:
            stored = self._read_body(run.id)
            if stored is None:
                raise NotFoundError(f"run {run.id} is not in the history (pruned?)")
            if stored["status"] in FINISHED and (executing or stored["status"] != run.status):
                raise RunFinishedElsewhere(Run.from_dict(stored))
            shard, doc_id = stored["_shard"], stored["_doc"]
            self._write_body(run, shard, doc_id)
            self._shard_put(shard, doc_id, run.summary())
            if run.status in UNFINISHED:
                if run.status != stored["status"] or run.owner != stored.get("owner"):
                    self._write_marker(run, shard, doc_id)
            else:
                self.clear_marker(run.id)
        return run

    def update(self, run_id: str, change: Callable[[Run], Any]) -> Run:
        """Read-modify-write one run under the lock."""
        with self.lock:
            run = self.get(run_id)
            change(run)
            return self.save(run)

    def heartbeat(self, run_id: str) -> None:
        path = self.heartbeat_path(run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    # -- reading --

    def get(self, run_id: str) -> Run:
        from workerctl.names import STORED_ID

        data = self._read_body(STORED_ID.check(run_id))
        if data is None:
            raise NotFoundError(f"no run with id {run_id!r}",
                                hint="'workerctl runs list' shows the ids")
        return Run.from_dict(data)

    def resolve(self, prefix: str) -> str:
        """The full id for a unique prefix (exit 2 if ambiguous, 3 if unknown)."""
        from workerctl.names import run_id_rule

        prefix = run_id_rule().check(prefix.strip().lower())
        base = self.root / "runs"
        if len(prefix) >= 2:
            folders = [base / prefix[:2]]
        else:
            folders = sorted(base.glob(f"{prefix}*")) if base.is_dir() else []
        found = sorted(p.stem for folder in folders if folder.is_dir()
                       for p in folder.glob(f"{prefix}*.json") if len(p.stem) == ID_LENGTH)
        if not found:
            raise NotFoundError(f"no run with id {prefix!r}",
                                hint="'workerctl runs list' shows the ids")
        if len(found) > 1:
            shown = ", ".join(found[:10]) + (" …" if len(found) > 10 else "")
            raise UsageError(f"run id prefix {prefix!r} is ambiguous: {shown}",
                             hint="type more characters of the id")
        return found[0]

    def iter_summaries(self, flt: RunFilter | None = None) -> Iterator[dict]:
        """Run summaries, newest first."""
        for shard in reversed(self.shards()):
            docs = list(self._shard_docs(shard).values())
            if flt and flt.since and docs and max(d["created"] for d in docs) < flt.since:
                return
            for doc in sorted(docs, key=lambda d: d["created"], reverse=True):
                if flt is None or flt.match(doc):
                    yield dict(doc)

    def list(self, flt: RunFilter | None = None, limit: int | None = 20) -> list[dict]:
        out = []
        for doc in self.iter_summaries(flt):
            out.append(doc)
            if limit and len(out) >= limit:
                break
        return out

    def remote_unfinished(self) -> dict[str, list[str]]:
        """Executor name → ids of unfinished runs handed to a remote executor."""
        out: dict[str, list[str]] = {}
        for run_id, info in self.unfinished().items():
            if info.get("remote"):
                out.setdefault(info["remote"], []).append(run_id)
        return out

    def unfinished(self) -> dict[str, dict]:
        """Run id → marker (owner pid and host) for every unfinished run."""
        folder = self.root / "active"
        if not folder.is_dir():
            return {}
        out = {}
        for path in folder.glob("*.json"):
            try:
                out[path.stem] = read_json(path) or {}
            except DamagedFile:
                out[path.stem] = {}  # a torn marker: treat the run as ownerless
        return out

    # -- crashed runs --

    def sweep(self) -> list[Run]:
        """Mark runs whose process is gone, or whose heartbeat is stale, as crashed."""
        return mark_crashed(self)

    # -- retention and recovery --

    def prune(self, cutoff: str, dry_run: bool = False) -> dict[str, int]:
        """Remove finished runs created before ``cutoff``; never unfinished ones."""
        removed = kept_unfinished = 0
        with self.lock:
            current = self._current_shard()
            for shard in self.shards():
                docs = self._shard_docs(shard)
                old = {k: d for k, d in docs.items() if d["created"] < cutoff}
                doomed = {k: d for k, d in old.items() if d["status"] in FINISHED}
                kept_unfinished += len(old) - len(doomed)
                removed += len(doomed)
                if dry_run or not doomed:
                    continue
                remaining = {k: d for k, d in docs.items() if k not in doomed}
                if remaining or shard == current:
                    self._shard_write(shard, remaining)
                else:
                    self.shard_path(shard).unlink()
                for doc in doomed.values():
                    self.body_path(doc["id"]).unlink(missing_ok=True)
        return {"removed": removed, "kept_unfinished": kept_unfinished}

    def reindex(self) -> dict[str, int]:
        """Rebuild the index shards and the unfinished markers from the run files.

        Damaged run files are moved aside (``*.damaged``), never deleted.
        """
        import shutil

        with self.lock:
            bodies, damaged = [], 0
            base = self.root / "runs"
            for path in sorted(base.glob("*/*.json")) if base.is_dir() else []:
                try:
                    data = read_json(path)
                except DamagedFile:
                    path.rename(path.with_suffix(".json.damaged"))
                    damaged += 1
                    continue
                bodies.append(Run.from_dict(data))
            bodies.sort(key=lambda r: r.created)
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
            for name in ("index", "active"):
                if (self.root / name).exists():
                    (self.root / name).rename(self.root / f"{name}.old-{stamp}")
            shard, size = 1, 0
            table: dict[str, dict] = {}
            for run in bodies:
                summary = run.summary()
                doc_id = len(table) + 1
                table[str(doc_id)] = summary
                self._write_body(run, shard, doc_id)
                if run.status in UNFINISHED:
                    self._write_marker(run, shard, doc_id)
                size += len(json.dumps(summary)) + 8
                if size >= SHARD_BYTES:
                    self._shard_write(shard, table)
                    shard, size, table = shard + 1, 0, {}
            if table:
                self._shard_write(shard, table)
            kept = []
            for name in ("index", "active"):
                old = self.root / f"{name}.old-{stamp}"
                if name == "index" and old.is_dir() and _any_damaged(old):
                    kept.append(str(old))  # a damaged shard stays for the person to look at
                    continue
                shutil.rmtree(old, ignore_errors=True)
        return {"runs": len(bodies), "damaged": damaged, "kept": kept}


def _any_damaged(folder: Path) -> bool:
    for path in folder.glob("*.json"):
        try:
            read_json(path)
        except DamagedFile:
            return True
    return False
