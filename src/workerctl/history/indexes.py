"""Cross-run indexes: answers about many runs without reading every shard.

``runs list --limit 20`` reads the newest shard; questions across runs (a
worker's last run and success rate, the runs of one record, the failed runs,
counts for ``runs stats`` and ``runs prune --dry-run``) would otherwise walk
the whole history. These indexes are kept up to date by every write of the
history (``History._commit``, under the history lock, each file replaced
atomically) and rebuilt from the index shards by ``runs reindex``.

Layout under ``.workerctl/history/indexes/`` (TinyDB databases)::

    workers.json                  per worker: last run, counts by status and error kind,
                                  the outcomes of its last 50 finished runs
    by-worker/NAME/000001.json    refs {id, created, shard, doc} of its runs, oldest first
    by-record/HH/000001.json      the same for the records whose id hashes to HH
    by-status/STATUS/000001.json  finished runs by status (added when they finish)
    by-error/KIND/000001.json     failed runs by error kind
    hours/2026-11-27.json         per hour and worker: counts by status, tokens, a
                                  histogram of durations, the index shards it spans
    days/2026-11.json             the same per day and worker: a count over whole days
                                  (runs stats, prune --dry-run) reads these few files
    pending/RUNID                 a write in progress: left behind only by a crash, and
                                  then what that run's write touches is recounted from
                                  the shards (``recover``); a batch's staged chain
                                  (``History.write_shared``) leaves one per run
    pending/prune, pending/reindex  a prune's and a reindex's (see ``recover``)

A ref names the index shard and document of the run's summary, so a query
reads its refs and then only the shards they name. The files are derived data:
they are not fsynced (a power cut may leave one damaged: exit 4, and
``runs reindex`` rebuilds them).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from workerctl.history.layout import RUN_ID, numbered
from workerctl.history.tables import next_id, read_table, safe_name, write_table
from workerctl.memo import Memo
from workerctl.runs.states import FINISHED, OLD_REFUSAL_KIND, STATES, UNFINISHED, counted_as
from workerctl.storage import fs
from workerctl.storage.shapes import FieldSpec, list_of, map_of, object_with, row_of

if TYPE_CHECKING:
    from workerctl.history.change import Change
    from workerctl.history.store import History, RunFilter

_Spans = list[tuple[int, int]]  # (first, last) index shards
VERSION = 4  # 2: whole-day counts in days/MONTH.json beside the hourly ones; 3: storage.filenames;
# 4: an older history's refusals (runs.states.is_old_refusal) counted as "refused", not "failed"
REFS_PER_SHARD = 500
RECENT = 50  # success rate over each worker's latest finished runs
REFUSAL = OLD_REFUSAL_KIND  # a paused or draft worker's refusal: not a failure
BUCKETS = 64  # record ids hash into this many by-record folders
HIST_BASE = 1.05  # duration histogram: buckets 5 % wide

META_FIELDS: dict[str, FieldSpec] = {"version": int}
REF_FIELDS: dict[str, FieldSpec] = {"id": RUN_ID, "created": str, "shard": int, "doc": int}
_COUNTS = map_of(int, "an object of whole-number counts")
WORKER_FIELDS: dict[str, FieldSpec] = {
    "name": str,
    "counts": _COUNTS,
    "error_kinds": _COUNTS,
    "recent": list_of(
        row_of(RUN_ID, str, frozenset(STATES), wanted="[id, created, status]"),
        "a list of [id, created, status]",
    ),
    "last": object_with(
        {"id": RUN_ID, "created": str, "status": frozenset(STATES)},
        "the last run (id, created, status) or null",
        nullable=True,
    ),
}
HOUR_FIELDS: dict[str, FieldSpec] = {
    "hour": str,
    "worker": str,
    "model": (str, type(None)),
    "counts": _COUNTS,
    "tokens": int,
    "input_tokens": int,
    "output_tokens": int,
    "cost": map_of((int, float), "an object of amounts by currency"),
    "priced": int,
    "durations": map_of(
        int, "an object of counts by duration bucket (a whole number below 10,000)", numbered=4
    ),
    "shards": row_of(int, int, wanted="[first shard, last shard]"),
}


def _bucket(seconds: float) -> str:
    return str(int(math.log(max(seconds, 0.0) * 1000 + 1, HIST_BASE)))


def _bucket_seconds(bucket: str) -> float:
    return (HIST_BASE ** (int(bucket) + 0.5) - 1) / 1000


def percentile(histogram: dict[str, int], fraction: float) -> float | None:
    """The duration at ``fraction`` of a histogram (to within its 5 % buckets)."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = min(total - 1, max(0, round(fraction * (total - 1))))
    seen = 0
    for bucket in sorted(histogram, key=int):
        seen += histogram[bucket]
        if seen > rank:
            return round(_bucket_seconds(bucket), 3)
    return None


class RefLog:
    """Refs to runs in creation order, in shards of ``REFS_PER_SHARD``."""

    def __init__(self, folder: Path, hint: str, history: History | None = None) -> None:
        self.folder = folder
        self.hint = hint
        self.history = history  # read and written through its tables (staged in a batch)
        # joined once per shard (a commit asks three times)
        self._paths: Memo[int, Path] = Memo(lambda shard: self.folder / f"{shard:06d}.json")

    def shards(self) -> list[int]:
        try:
            names = fs.listdir(self.folder)
        except FileNotFoundError:
            names = []
        if self.history is not None:  # a shard staged in this process is not on disk yet
            names = [*names, *(p.name for p in self.history.staged_in(self.folder))]
        return numbered(names)

    def _path(self, shard: int) -> Path:
        return self._paths[shard]

    def read(self, shard: int) -> dict[str, dict]:
        return read_table(
            self._path(shard),
            "refs",
            REF_FIELDS,
            hint=self.hint,
            known=self.history.tables if self.history else None,
        )

    def append(self, refs: list[dict], *, stage: bool = True) -> None:
        shards = self.shards()
        shard = shards[-1] if shards else 1
        docs = self.read(shard) if shards else {}
        number = int(next_id(docs))  # counted on, not recomputed per ref
        for ref in refs:
            if len(docs) >= REFS_PER_SHARD:
                self._write(shard, docs, stage)
                shard, docs, number = shard + 1, {}, 1
            docs[str(number)] = ref
            number += 1
        self._write(shard, docs, stage)

    def _write(self, shard: int, docs: dict[str, dict], stage: bool) -> None:
        if self.history is not None:
            self.history.write_shared(self._path(shard), "refs", docs, durable=False, may_stage=stage)
        else:
            write_table(self._path(shard), "refs", docs, durable=False)

    def newest(self) -> Iterator[dict]:
        """Refs, newest first (one shard read at a time)."""
        for shard in reversed(self.shards()):
            docs = self.read(shard)
            yield from sorted(docs.values(), key=_seq, reverse=True)


class Indexes:
    def __init__(self, history: History) -> None:
        self.history = history
        self.root: Path = history.root / "indexes"
        self.meta_path = self.root / "meta.json"
        self.pending_dir = self.root / "pending"
        self.workers_path = self.root / "workers.json"
        self._kept: set[str] = set()  # runs whose crash note stays for a rebuild
        # paths and logs joined once per key: a run's three commits asked for about 40
        self._logs: Memo[tuple[str, str], RefLog] = Memo(self._new_log)
        self._counts_paths: Memo[tuple[str, str], Path] = Memo(
            lambda key: self.root / key[0] / f"{key[1]}.json"
        )

    # -- files --

    def _hint(self, path: Path | None = None) -> str:
        where = f"move {path} aside, then run" if path else "run"
        return f"{where} 'workerctl runs reindex' to rebuild the indexes from the index shards"

    def _log(self, kind: str, key: str) -> RefLog:
        return self._logs[kind, key]

    def _new_log(self, kind_key: tuple[str, str]) -> RefLog:
        folder = self.root / kind_key[0] / safe_name(kind_key[1])
        return RefLog(folder, self._hint(folder), self.history)

    def record_log(self, record_id: str) -> RefLog:
        import zlib

        return self._log(
            "by-record", f"{zlib.crc32(record_id.encode('utf-8', 'surrogatepass')) % BUCKETS:02d}"
        )

    def _workers(self) -> dict[str, dict]:
        return read_table(
            self.workers_path,
            "workers",
            WORKER_FIELDS,
            hint=self._hint(self.workers_path),
            known=self.history.tables,
        )

    def _counts_path(self, table: str, period: str) -> Path:
        return self._counts_paths[table, period]

    def _counts(self, table: str, period: str) -> dict[str, dict]:
        """The counts per hour (``hours``, one file a day) or per whole day (``days``,
        one file a month), by worker and model."""
        path = self._counts_path(table, period)
        return read_table(path, table, HOUR_FIELDS, hint=self._hint(path), known=self.history.tables)

    def _write(self, path: Path, table: str, docs: dict[str, dict], *, stage: bool = True) -> None:
        """Derived files (not fsynced), staged with the shards in a batch
        (``History.write_shared``); documents read here are shared with the
        process's tables, so a changed one is a new dict, never changed in place."""
        self.history.write_shared(path, table, docs, durable=False, may_stage=stage)

    def _months(self) -> list[str]:
        try:
            return sorted(n[:-5] for n in fs.listdir(self.root / "days") if n.endswith(".json"))
        except FileNotFoundError:
            return []

    # -- readiness --

    def ready(self) -> bool:
        """Whether the indexes can be trusted: built, in this version's layout, and no
        write was cut by a crash. A note of a write this process has staged and not yet
        written (a batch's chain of commits, ``History.after_flush``) is no crash's: this
        process reads the staged files, so for it the indexes are whole (the duplicate
        guard of a batch's next run asks them, not every run's summary)."""
        meta = self.meta_path
        built = read_table(meta, "meta", META_FIELDS, hint=self._hint(meta), known=self.history.tables)
        if built.get("1", {}).get("version") != VERSION:
            return False  # not built yet, or by an older workerctl: rebuilt on first use
        folder = self.pending_dir
        try:
            notes = fs.listdir(folder)
        except FileNotFoundError:
            return True
        return all(self.history.deferred(folder / name) for name in notes)

    def ensure(self) -> bool:
        """Whether the indexes can answer now: built (now, from the shards, on first
        use or after a crash cut a write) and holding no run the reader found dead
        but could not record as crashed. False when they cannot be built because
        the history cannot be written (a full disk, a read-only mount), or because
        the lock stays held (``FileLock.within``: a writer stopped in the middle of
        a batch leaves its notes, which only its own release or the lock can tell
        from a crash's): the caller then answers from the shards."""
        from workerctl.errors import LockTimeout, StorageError

        if self.history.unsettled:
            return False  # the indexes count those runs as running; a scan shows them crashed
        if self.ready():
            return True
        if self.history.unwritable is not None:
            return False
        try:
            with self.history.lock.within():
                if not self.ready():  # writers hold the lock: a pending file now is a crash's
                    self.recover()
        except LockTimeout:
            return False
        except StorageError as exc:
            self.history.cannot_write(exc)
            return False
        except OSError as exc:  # a rename refused as such (finishing a reindex's swap)
            self.history.cannot_write(StorageError(exc.filename or self.root, exc))
            return False
        return True

    def start_if_empty(self) -> None:
        """Under the lock, before a history's first run is stored: the indexes are built
        now, while that costs nothing (there is nothing to index), so every later commit
        keeps them and no question (the duplicate guard's "the newest finished run of
        this worker on this record", ``runs list --worker``) ever scans the history.
        Without this, a history grown by ``run start`` alone had none until a listing
        built them, and each start on a new record read every run's summary (130 ms at
        20,000 runs, growing with the history). A history that holds runs already is
        left to its first reader (``ensure``) or ``runs reindex``."""
        if fs.exists(self.meta_path) or self.history.shards():
            return
        if fs.is_dir(self.history.root / "runs") and fs.listdir(self.history.root / "runs"):
            return  # run files without index shards: only a reindex can tell what they hold
        write_table(self.meta_path, "meta", {"1": {"version": VERSION}}, durable=False)

    def recover(self) -> None:
        """Repair what writes cut by a crash left (under the lock): for each note naming
        one run (a batch's staged chain leaves one per run), only what that run's write
        touches (its refs, the counts of its hour, day and worker, recomputed from the
        shards); a prune's note, by finishing the prune from its journal, which
        recounts the hours, days and workers of the runs it names; a reindex's note
        (it died before its swap) needs nothing. Anything else (indexes never built or
        built by an older workerctl, a note it does not know): a rebuild from the shards."""
        if self._after_a_dead_reindex():
            return  # a reindex died between its two renames: its indexes are now in place
        built = self._built_here()
        try:
            notes = sorted(fs.listdir(self.pending_dir))
        except FileNotFoundError:
            notes = []
        if "prune" in notes and fs.exists(self.history.prune_journal):
            self.history.finish_prune()  # idempotent: recounts what the prune touched; the note goes
            notes = [n for n in notes if n != "prune" or fs.exists(self.pending_dir / n)]
        if not built or not all(_names_a_run(n) for n in notes):
            self.rebuild()
            return
        for note in notes:
            self._repair(note)
            fs.unlink(self.pending_dir / note, missing_ok=True)

    def repair_settled(self) -> None:
        """Under the lock, once the sweep has settled the runs it found dead: what their
        cut writes left is repaired run by run (``_repair``: a few files each, however
        large the history), and their notes go. First a reindex's swap left half done is
        finished (these writes must go into the indexes that stay), and the note of a
        reindex that died before its swap goes, as ``recover`` drops it. Only a note
        naming one run that no marker names any more is repaired here (its summary in
        the shards is final); one whose run is still marked (its owner lives on after a
        refused write), a prune's, or indexes not built in this layout are left to the
        next reader's ``recover``. Without it, a history only ever started (cron jobs,
        no reader) kept a crash's note for good, and every later start's duplicate
        guard, finding the indexes not ready, read the runs' summaries instead of the
        record's refs (a scan that grows with the history)."""
        self._after_a_dead_reindex()
        runs = [n for n in self.crash_notes() if _names_a_run(n) and not self.history.has_marker(n)]
        if not runs or not self._built_here():
            return
        for run_id in runs:
            self._repair(run_id)
            fs.unlink(self.pending_dir / run_id, missing_ok=True)

    def _after_a_dead_reindex(self) -> bool:
        """Under the lock, before a repair: a reindex's swap left half done is finished
        (True: its complete indexes are now in place), else the note of a reindex that
        died before its swap goes (this folder is still the one writers kept, whole; after
        a swap, the note went with the old folder)."""
        if self.history.settle_swap():
            return True
        note = self.pending_dir / "reindex"
        if fs.exists(note):  # looked for first: a read-only mount refuses even a missing one's removal
            fs.unlink(note, missing_ok=True)
        return False

    def _built_here(self) -> bool:
        """Whether the indexes were built, by this layout's version (else only a rebuild
        can make them right)."""
        meta = self.meta_path
        built = read_table(meta, "meta", META_FIELDS, hint=self._hint(meta), known=self.history.tables)
        return built.get("1", {}).get("version") == VERSION

    def crash_notes(self) -> list[str]:
        """The notes of writes in progress, other than this process's staged ones: under
        the lock, each is a crash's."""
        try:
            names = fs.listdir(self.pending_dir)
        except FileNotFoundError:
            return []
        return [n for n in names if not self.history.deferred(self.pending_dir / n)]

    def _repair(self, run_id: str) -> None:
        """Make the indexes right about ``run_id`` again, whichever of its index writes
        a crash cut (see ``recover``): a missing ref is added (a duplicate is harmless:
        readers take each run once), and the counts of its worker in its hour and day,
        and the worker's totals, are recomputed from the shards and the daily counts."""
        data = self.history.reader.run_file(run_id)
        if data is None:
            return  # never stored past its marker: no index write was made for it
        shard, number = data["_shard"], data["_doc"]
        summary = self.history.reader.shard(shard).get(str(number))
        if summary is None or summary["id"] != run_id:
            from workerctl.runs.model import Run

            summary = Run.from_dict(data).summary()
        ref = {"id": run_id, "created": summary["created"], "shard": shard, "doc": number}
        worker, status, kind = summary["worker"], summary["status"], summary.get("error_kind")
        logs = [(self._log("by-worker", worker), ref)]
        if summary.get("record_id"):
            logs.append((self.record_log(summary["record_id"]), {**ref, "record_id": summary["record_id"]}))
        if status in FINISHED:
            logs.append((self._log("by-status", status), ref))
            if kind:
                logs.append((self._log("by-error", kind), ref))
        for log, entry in logs:
            if not _holds_ref(log, ref):
                log.append([entry], stage=False)
        hour = summary["created"][:13]
        self._recount_hour(hour, worker, shard)
        self._recount_day(hour[:10], worker)
        self._recount_worker(worker, summary)

    def _recount_hour(
        self, hour: str, worker: str, shard: int, held: dict[Path, dict[str, dict]] | None = None
    ) -> None:
        """The docs of (hour, worker, any model) recomputed from the runs in the shards.
        ``held``: files changed but not written yet (written once by the caller)."""
        path = self._counts_path("hours", hour[:10])
        docs = held[path] if held is not None and path in held else self._counts("hours", hour[:10])
        mine = [d for d in docs.values() if d["hour"] == hour and d["worker"] == worker]
        first = min([shard, *(d["shards"][0] for d in mine)])
        last = max([shard, *(d["shards"][1] for d in mine)])
        kept = {k: d for k, d in docs.items() if not (d["hour"] == hour and d["worker"] == worker)}
        where = {(d["hour"], d["worker"], d["model"]): k for k, d in kept.items()}
        for number in range(max(first, 1), min(last, self.history.newest_shard()) + 1):
            for summary in self.history.reader.shard(number).values():
                if summary["created"][:13] == hour and summary["worker"] == worker:
                    _count(kept, where, hour, summary, None, number, 1)
        if held is not None:
            held[path] = kept
        else:
            self._write(path, "hours", kept, stage=False)

    def _recount_day(self, day: str, worker: str, held: dict[Path, dict[str, dict]] | None = None) -> None:
        """The docs of (day, worker, any model): the sums of that day's hourly docs."""
        hours_path, path = self._counts_path("hours", day), self._counts_path("days", day[:7])
        if held is not None and hours_path in held:
            hours = [d for d in held[hours_path].values() if d["worker"] == worker]
        else:
            hours = [d for d in self._counts("hours", day).values() if d["worker"] == worker]
        docs = held[path] if held is not None and path in held else self._counts("days", day[:7])
        kept = {k: d for k, d in docs.items() if not (d["hour"] == day and d["worker"] == worker)}
        sums: dict[str | None, dict] = {}
        for doc in hours:
            into = sums.setdefault(
                doc["model"],
                {
                    "hour": day,
                    "worker": worker,
                    "model": doc["model"],
                    "counts": {},
                    "durations": {},
                    "shards": list(doc["shards"]),
                    **_zero(),
                },
            )
            _add_doc(into, doc)
        for doc in sums.values():
            kept[next_id(kept)] = doc
        if held is not None:
            held[path] = kept
        else:
            self._write(path, "days", kept, stage=False)

    def _recount_worker(self, worker: str, summary: dict) -> None:
        """The worker's counts by status from every day's counts; its error kinds, last
        run and recent outcomes brought in line with ``summary`` (the run repaired)."""
        totals: dict[str, int] = {}
        for month in self._months():
            for doc in self._counts("days", month).values():
                if doc["worker"] == worker:
                    for status, n in doc["counts"].items():
                        totals[status] = totals.get(status, 0) + n
        docs = self._workers()
        key = next((k for k, d in docs.items() if d["name"] == worker), None)
        was = (
            docs[key]
            if key
            else {"name": worker, "counts": {}, "error_kinds": {}, "recent": [], "last": None}
        )
        status, kind = summary["status"], summary.get("error_kind")
        missed = totals.get(status, 0) - was["counts"].get(status, 0)
        kinds = dict(was["error_kinds"])
        if status in FINISHED and kind and missed > 0:  # its finish was never counted
            kinds[kind] = kinds.get(kind, 0) + missed
        recent = list(was["recent"])
        if status in FINISHED and kind != REFUSAL and summary["id"] not in {r[0] for r in recent}:
            recent = [[summary["id"], summary["created"], status], *recent][:RECENT]
        newest = next(iter(self._fetch(self._log("by-worker", worker).newest(), None)), None)
        last = newest and {"id": newest["id"], "created": newest["created"], "status": newest["status"]}
        docs[key or next_id(docs)] = {
            **was,
            "counts": {k: v for k, v in totals.items() if v},
            "error_kinds": kinds,
            "recent": recent,
            "last": last,
        }
        self._write(self.workers_path, "workers", docs, stage=False)

    def drop(self) -> None:
        """Remove the indexes (to free space on a full disk): ``meta.json`` first, so
        that what is left of them is never trusted; the next command that can write
        rebuilds them from the shards, and until then readers scan the shards."""
        from workerctl.storage.atomic import remove_file

        remove_file(self.meta_path)
        self.history.tables.forget(self.meta_path)
        fs.rmtree(self.root, ignore_errors=True)

    def begin(self, run_id: str) -> None:
        """Say a write of ``run_id`` is under way (``end`` says it is done): a crash in
        between leaves the file, and the next reader repairs what that run's write
        touches (``recover``). In a batch whose writes are staged
        (``History.write_shared``) each run's note goes once the staged files are
        written."""
        if not fs.exists(self.meta_path):
            return
        folder = self.pending_dir
        note = folder / run_id
        if fs.exists(note) and not self.history.deferred(note):
            # a crash cut an earlier write of this same run (the sweep is now marking
            # it crashed): the note stays (end() leaves it), so the next reader
            # rebuilds the indexes once the sweep has put every summary back in the
            # shards; a rebuild now would miss the runs it has not settled yet
            self._kept.add(run_id)
            return
        if self.history.staging():
            # a note per run, removed once the staged files it covers are written: a
            # crash before or during that write is repaired run by run (``recover``)
            if self.history.deferred(note):
                return  # this run's note is on disk already, for this chain
            self.history.after_flush(note)
        try:
            fs.touch(note, 0o600)
        except OSError as exc:  # a full disk, a read-only mount: one line, exit 4 (or read on)
            from workerctl.errors import StorageError

            raise StorageError(note, exc) from None

    def end(self, run_id: str, *, repaired: bool = False) -> None:
        """The write of ``run_id`` is done; ``repaired``: and it repaired whatever an
        earlier one a crash cut left, so a note kept from then goes too."""
        if run_id in self._kept:
            self._kept.discard(run_id)
            if not repaired:
                return
        note = self.pending_dir / run_id
        if self.history.staging():
            self.history.after_flush(note)  # the staged files it covers are not written yet
        else:
            fs.unlink(note, missing_ok=True)

    # -- writing (under the history lock) --

    def apply(self, change: Change) -> None:
        """A committed change of a run (``History._hand_over``, under the lock): a new
        run, or a run whose status changed, counted and referenced; anything else
        leaves the indexes as they are."""
        if not change.status_changed or not fs.exists(self.meta_path):
            return
        run, stored, shard, doc_id = change.run, change.stored, change.shard, change.doc
        old, summary = change.old_status, change.summary
        ref = {"id": run.id, "created": run.created, "shard": shard, "doc": doc_id}
        if stored is None:
            self._log("by-worker", run.worker).append([ref])
            if run.record_id:
                self.record_log(run.record_id).append([{**ref, "record_id": run.record_id}])
        if run.status in FINISHED:
            self._log("by-status", run.status).append([ref])
            if summary["error_kind"]:
                self._log("by-error", summary["error_kind"]).append([ref])
        self._count_worker([(summary, old)], stage=True)
        # the model is known once the run has used one: the old status is taken from
        # the count of the model the stored run named (#25 item 11)
        old_model = _stored_model(stored) if stored else summary.get("model")
        self._count_hours_and_days([(summary, old, shard, old_model)], stage=True)

    def _count_worker(
        self, changes: Iterable[tuple[dict, str | None]], sign: int = 1, *, stage: bool = False
    ) -> None:
        docs = self._workers()
        by_name = {d["name"]: k for k, d in docs.items()}
        for summary, old in changes:
            key = by_name.get(summary["worker"])
            if key is None:
                key = by_name[summary["worker"]] = next_id(docs)
                docs[key] = {
                    "name": summary["worker"],
                    "counts": {},
                    "error_kinds": {},
                    "recent": [],
                    "last": None,
                }
            was = docs[key]
            doc = docs[key] = {
                **was,
                "counts": dict(was["counts"]),
                "error_kinds": dict(was["error_kinds"]),
                "recent": list(was["recent"]),
            }
            counts = doc["counts"]
            if old:
                counts[old] = counts.get(old, 0) - 1
            counts[summary["status"]] = counts.get(summary["status"], 0) + sign
            kind = summary["error_kind"]
            if summary["status"] in FINISHED and kind and (old not in FINISHED or sign < 0):
                doc["error_kinds"][kind] = doc["error_kinds"].get(kind, 0) + sign
            if sign > 0:
                last = doc["last"]
                # changes come in sequence: a new run (no old status) is the newest
                if last is None or old is None or last["id"] == summary["id"]:
                    doc["last"] = {
                        "id": summary["id"],
                        "created": summary["created"],
                        "status": summary["status"],
                    }
                if summary["status"] in FINISHED and kind != REFUSAL:
                    recent = [r for r in doc["recent"] if r[0] != summary["id"]]
                    doc["recent"] = [[summary["id"], summary["created"], summary["status"]], *recent][:RECENT]
        self._write(self.workers_path, "workers", docs, stage=stage)

    def _count_hours_and_days(
        self,
        changes: Iterable[tuple[dict, str | None, int, str | None]],
        sign: int = 1,
        *,
        stage: bool = False,
    ) -> None:
        """Count each change (summary, old status, shard, the model the old status was
        counted under) into its hour and its day."""
        # each change counts in its hour (hours/DAY.json) and in its whole day
        # (days/MONTH.json): a count over whole days reads a few small month files,
        # not every day's hours
        changes = list(changes)
        for table, period, key in (("hours", 10, 13), ("days", 7, 10)):
            grouped: dict[str, list] = {}
            for change in changes:
                grouped.setdefault(change[0]["created"][:period], []).append(change)
            for name, items in grouped.items():
                docs = self._counts(table, name)
                where = {(d["hour"], d["worker"], d["model"]): k for k, d in docs.items()}
                for summary, old, shard, old_model in items:
                    period_key = summary["created"][:key]
                    if old and old_model != summary.get("model"):
                        _uncount(docs, where, period_key, summary["worker"], old_model, old)
                        old = None
                    _count(docs, where, period_key, summary, old, shard, sign)
                self._write(self._counts_path(table, name), table, docs, stage=stage)

    def on_prune(self, doomed: list[tuple[dict, int]]) -> None:
        """Runs removed by ``runs prune``: their counts go; refs to them are skipped
        when read; a worker whose last run went gets the newest one left."""
        if not doomed or not fs.exists(self.meta_path):
            return
        self._count_worker([(s, None) for s, _ in doomed], sign=-1)
        self._count_hours_and_days([(s, None, shard, None) for s, shard in doomed], sign=-1)
        gone = {s["id"] for s, _ in doomed}
        docs = self._workers()
        for key, was in list(docs.items()):
            doc = docs[key] = dict(was)
            self._forget_runs(doc, gone)
        self._write(self.workers_path, "workers", docs, stage=False)

    def recount_pruned(self, doomed: list[tuple[dict, int]], token: str) -> None:
        """Runs removed by ``runs prune`` (``History.finish_prune``, after the shards no
        longer hold them), idempotently: the counts of their hours and days recounted
        from the shards, each worker's counts summed again from its days, its error
        kinds lowered once for this prune (``token``, kept in its document), its recent
        outcomes and last run without them. Repeated after a crash at any point, it
        leaves what one uninterrupted call leaves."""
        if not doomed or not fs.exists(self.meta_path):
            return
        hours: dict[tuple[str, str], int] = {}
        for summary, shard in doomed:
            key = (summary["created"][:13], summary["worker"])
            hours[key] = min(hours.get(key, shard), shard)
        held: dict[Path, dict[str, dict]] = {}  # each day's and month's file written once
        for (hour, worker), shard in sorted(hours.items()):
            self._recount_hour(hour, worker, shard, held)
        for day, worker in sorted({(hour[:10], worker) for hour, worker in hours}):
            self._recount_day(day, worker, held)
        for path, docs in held.items():
            self._write(path, path.parent.name, docs, stage=False)
        mine: dict[str, list[dict]] = {}
        for summary, _ in doomed:
            mine.setdefault(summary["worker"], []).append(summary)
        totals = self._totals(set(mine))
        gone = {s["id"] for s, _ in doomed}
        docs = self._workers()
        for doc_id, was in list(docs.items()):
            doc = docs[doc_id] = dict(was)
            name = doc["name"]
            if name in mine:
                if doc.get("pruned") != token:
                    kinds = dict(doc["error_kinds"])
                    for summary in mine[name]:
                        kind = summary.get("error_kind")
                        if summary["status"] in FINISHED and kind:
                            kinds[kind] = kinds.get(kind, 0) - 1
                    doc["error_kinds"], doc["pruned"] = kinds, token
                doc["counts"] = totals.get(name, {})
            self._forget_runs(doc, gone)
        self._write(self.workers_path, "workers", docs, stage=False)

    def _forget_runs(self, doc: dict, gone: set[str]) -> None:
        """A worker's document without the pruned runs ``gone``: its last run found
        again in its log when that one went, its recent outcomes without them."""
        if doc["last"] and doc["last"]["id"] in gone:
            newest = next(iter(self._fetch(self._log("by-worker", doc["name"]).newest(), None)), None)
            doc["last"] = newest and {
                "id": newest["id"],
                "created": newest["created"],
                "status": newest["status"],
            }
        doc["recent"] = [r for r in doc["recent"] if r[0] not in gone]

    def _totals(self, workers: set[str]) -> dict[str, dict[str, int]]:
        """Each of ``workers``' counts by status, summed from every month's daily counts."""
        totals: dict[str, dict[str, int]] = {w: {} for w in workers}
        for month in self._months():
            for doc in self._counts("days", month).values():
                into = totals.get(doc["worker"])
                if into is not None:
                    for status, n in doc["counts"].items():
                        into[status] = into.get(status, 0) + n
        return {w: {k: v for k, v in t.items() if v} for w, t in totals.items()}

    def rebuild(self) -> str | None:
        """Every index from the index shards (``runs reindex``, or after a crash).

        Old index files are removed, unless one of them is damaged: then the old
        folder is kept aside for a person to look at, and its path returned."""
        import datetime as dt

        kept = None
        with self.history.lock:
            self.history.flush_staged()  # the shards are read from disk below
            if fs.is_dir(self.root) and _any_damaged(self.root):
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")
                kept = str(self.root.with_name(f"indexes.old-{stamp}"))
                fs.replace(self.root, kept)
            for name in (
                "by-worker",
                "by-record",
                "by-status",
                "by-error",
                "hours",
                "days",
                "workers.json",
                "meta.json",
            ):
                path = self.root / name
                if fs.is_dir(path):
                    fs.rmtree(path)
                else:
                    fs.unlink(path, missing_ok=True)
            self._rebuild_from_shards()
            write_table(self.meta_path, "meta", {"1": {"version": VERSION}}, durable=False)
            fs.rmtree(self.pending_dir, ignore_errors=True)
        return kept

    def _rebuild_from_shards(self, chunk: int = 5000) -> None:
        """Every ref log and count from the index shards, read in sequence order one shard
        at a time: refs are written a full ref shard at a time, counts every ``chunk``
        runs, so memory holds at most a ref shard per log and one chunk of summaries."""
        buffers: dict[tuple[str, str], list[dict]] = {}
        changes: list[tuple[dict, int]] = []

        def add(kind: str, key: str, ref: dict) -> None:
            refs = buffers.setdefault((kind, key), [])
            refs.append(ref)
            if len(refs) >= REFS_PER_SHARD:
                write(kind, key, refs)

        def write(kind: str, key: str, refs: list[dict]) -> None:
            folder = self.root / kind / (key if kind == "by-record" else safe_name(key))
            RefLog(folder, self._hint(folder)).append(refs)
            refs.clear()

        def count() -> None:
            self._count_worker([(s, None) for s, _ in changes])
            self._count_hours_and_days([(s, None, shard, None) for s, shard in changes])
            changes.clear()

        for shard in self.history.shards():
            docs = self.history.reader.shard(shard)
            for key in sorted(docs, key=int):  # by sequence: shard, then number
                summary = docs[key]
                ref = {"id": summary["id"], "created": summary["created"], "shard": shard, "doc": int(key)}
                add("by-worker", summary["worker"], ref)
                if summary.get("record_id"):
                    bucket = self.record_log(summary["record_id"]).folder.name
                    add("by-record", bucket, {**ref, "record_id": summary["record_id"]})
                if summary["status"] in FINISHED:
                    add("by-status", summary["status"], ref)
                    if summary.get("error_kind"):
                        add("by-error", summary["error_kind"], ref)
                changes.append((summary, shard))
            self.history.tables.forget(self.history.shard_path(shard))  # read once
            if len(changes) >= chunk:
                count()
        count()
        for (kind, key), refs in buffers.items():
            if refs:
                write(kind, key, refs)

    # -- reading --

    def worker_stats(self) -> dict[str, dict]:
        """Worker name → last run, counts, success rate over its latest finished runs."""
        out = {}
        for doc in (self._workers() if self.ensure() else self._workers_scanned()).values():
            recent = doc["recent"]
            done = sum(1 for r in recent if r[2] == "completed")
            out[doc["name"]] = {
                "last": doc["last"],
                "counts": {k: v for k, v in doc["counts"].items() if v},
                "error_kinds": {k: v for k, v in doc["error_kinds"].items() if v},
                "success_rate": done / len(recent) if recent else None,
                "runs_counted": len(recent),
            }
        return out

    def usable(self, flt: RunFilter | None) -> bool:
        return flt is not None and bool(flt.workers or flt.record_id or flt.statuses or flt.error_kinds)

    def list(self, flt: RunFilter, limit: int | None, *, repair: bool = True) -> list[dict]:
        """Summaries matching ``flt``, newest first, reading only the refs of the most
        selective filter and the shards they name (or, when they cannot answer, from
        a scan of the shards). ``repair`` False: the indexes answer only if they can
        as they are (``ready``), never after a repair or a rebuild (the duplicate
        guard, under a start's hold of the lock, which a rebuild would lengthen)."""
        usable = self.ensure() if repair else not self.history.unsettled and self.ready()
        found = self._fetch(self._candidates(flt), flt) if usable else self.history.iter_summaries(flt)
        out = []
        for summary in found:
            out.append(summary)
            if limit and len(out) >= limit:
                break
        return out

    def _candidates(self, flt: RunFilter) -> Iterator[dict]:
        if flt.record_id:
            record = flt.record_id
            return (r for r in self.record_log(record).newest() if r.get("record_id") == record)
        if flt.error_kinds:
            return _merge(self._log("by-error", k).newest() for k in flt.error_kinds)
        if flt.statuses and not flt.workers:
            streams = [self._log("by-status", s).newest() for s in flt.statuses if s in FINISHED]
            if any(s in UNFINISHED for s in flt.statuses):
                streams.append(self._unfinished_refs())
            return _merge(streams)
        return _merge(self._log("by-worker", w).newest() for w in flt.workers)

    def _unfinished_refs(self) -> Iterator[dict]:
        """Unfinished runs come from their markers (few), not from an index."""
        refs = []
        shards: dict[int, dict[str, dict]] = {}
        for run_id, marker in self.history.unfinished().items():
            shard, doc = marker.get("shard"), marker.get("doc")
            if not isinstance(shard, int) or not isinstance(doc, int):
                continue
            if shard not in shards:
                shards[shard] = self.history.reader.shard(shard)
            summary = shards[shard].get(str(doc))
            if summary is not None and summary["id"] == run_id:
                refs.append({"id": run_id, "created": summary["created"], "shard": shard, "doc": doc})
        return iter(sorted(refs, key=_seq, reverse=True))

    def _fetch(self, refs: Iterable[dict], flt: RunFilter | None) -> Iterator[dict]:
        """The summaries the refs name (one read per shard), those matching ``flt``."""
        cache: dict[int, dict[str, dict]] = {}
        windowed = flt is not None and (flt.since or flt.until)
        spans = self.shard_spans(flt.since, flt.until) if flt is not None and windowed else None
        lowest = min((a for a, _ in spans), default=0) if spans is not None else 0
        for ref in refs:
            if ref["shard"] < lowest:
                return  # refs come newest first: no older shard holds a run of the window
            if spans is not None and not any(a <= ref["shard"] <= b for a, b in spans):
                continue
            docs = cache.get(ref["shard"])
            if docs is None:
                if len(cache) > 64:
                    cache.clear()
                docs = cache[ref["shard"]] = self.history.reader.shard(ref["shard"])
            summary = docs.get(str(ref["doc"]))
            if summary is None or summary["id"] != ref["id"]:
                continue  # pruned, or moved by a repair (then its own ref is newer)
            if flt is None or flt.match(summary):
                yield dict(summary)

    def counts(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        workers: tuple[str, ...] = (),
        by: str = "worker",
    ) -> dict[str, dict]:
        """Per worker (or day, or model): counts by status, tokens, cost and a duration
        histogram of the runs created in [since, until), from the daily counts, the
        hourly ones of a day a bound cuts, and for the hour each bound cuts the runs
        themselves (read from the shards that hour spans). When the indexes cannot
        answer (``ensure``), every run is read from the shards."""
        per: dict[str, dict] = {}
        if not self.ensure():
            for summary in self.history.iter_summaries():
                created = summary["created"]
                if (since and created < since) or (until and created >= until):
                    continue
                if not workers or summary["worker"] in workers:
                    _add_summary(per, summary, by)
            return per
        cut_hours: set[str] = set()
        for bound in (since, until):
            if bound:
                cut_hours.add(bound[:13])
        # days no bound cuts: from their whole-day docs (days/MONTH.json)
        for month in self._months():
            if (since and month < since[:7]) or (until and month > until[:7]):
                continue
            for doc in self._counts("days", month).values():
                day = doc["hour"]
                if (
                    (since and day <= since[:10])
                    or (until and day >= until[:10])
                    or (workers and doc["worker"] not in workers)
                ):
                    continue
                _add(per, _group(doc, by), doc["counts"], doc, doc["durations"])
        # the days a bound cuts: by the hour, but for the hour it cuts (below)
        for day in sorted({bound[:10] for bound in (since, until) if bound}):
            if (since and day < since[:10]) or (until and day > until[:10]):
                continue
            for doc in self._counts("hours", day).values():
                hour = doc["hour"]
                if (
                    (workers and doc["worker"] not in workers)
                    or hour in cut_hours
                    or (since and hour < since[:13])
                    or (until and hour > until[:13])
                ):
                    continue
                _add(per, _group(doc, by), doc["counts"], doc, doc["durations"])
        for hour in sorted(cut_hours):
            for summary in self._hour_runs(hour, workers):
                created = summary["created"]
                if (since and created < since) or (until and created >= until):
                    continue
                _add_summary(per, summary, by)
        return per

    def shard_spans(self, since: str | None, until: str | None) -> _Spans | None:
        """The index shards that can hold runs created in [since, until], as spans
        (first, last), from the daily counts, which note the shards each day's runs
        went to: right whatever the clock did (a run stamped a year ahead is in the
        span of that day). None when the indexes cannot answer (read every shard)."""
        if not self.ensure():
            return None
        spans: _Spans = []
        for month in self._months():
            if (since and month < since[:7]) or (until and month > until[:7]):
                continue
            for doc in self._counts("days", month).values():
                day = doc["hour"]
                if (since and day < since[:10]) or (until and day > until[:10]):
                    continue
                cut = (since and day == since[:10]) or (until and day == until[:10])
                hours = self._hour_spans(day, since, until) if cut else None
                spans.extend(hours if hours is not None else [(doc["shards"][0], doc["shards"][1])])
        return _merged_spans(spans)

    def _hour_spans(self, day: str, since: str | None, until: str | None) -> _Spans | None:
        """The shards of the hours of ``day`` in [since, until], from its hourly counts:
        on the day a bound cuts, a listing reads the shards of the hours it keeps, not
        of the whole day (at a million runs a day fills about 130 shards; ``--until
        80d`` read all of them when the bound fell early in the day). None when the day
        has no hourly counts (then its daily span stands)."""
        docs = self._counts("hours", day).values()
        if not docs:
            return None
        return [
            (d["shards"][0], d["shards"][1])
            for d in docs
            if not ((since and d["hour"] < since[:13]) or (until and d["hour"] > until[:13]))
        ]

    def _workers_scanned(self) -> dict[str, dict]:
        """What ``workers.json`` holds, from a scan of the shards (when the indexes
        cannot answer: ``ensure``)."""
        per: dict[str, dict] = {}
        for summary in self.history.iter_summaries():  # newest first
            doc = per.setdefault(
                summary["worker"],
                {"name": summary["worker"], "counts": {}, "error_kinds": {}, "recent": [], "last": None},
            )
            status, kind = summary["status"], summary.get("error_kind")
            doc["counts"][status] = doc["counts"].get(status, 0) + 1
            if status in FINISHED and kind:
                doc["error_kinds"][kind] = doc["error_kinds"].get(kind, 0) + 1
            if doc["last"] is None:
                doc["last"] = {"id": summary["id"], "created": summary["created"], "status": status}
            if status in FINISHED and kind != REFUSAL and len(doc["recent"]) < RECENT:
                doc["recent"].append([summary["id"], summary["created"], status])
        return {str(n): doc for n, doc in enumerate(per.values(), 1)}

    def _hour_runs(self, hour: str, workers: tuple[str, ...]) -> Iterator[dict]:
        docs = [d for d in self._counts("hours", hour[:10]).values() if d["hour"] == hour]
        if not docs:
            return
        first = min(d["shards"][0] for d in docs)
        last = max(d["shards"][1] for d in docs)
        for shard in range(max(first, 1), min(last, self.history.newest_shard()) + 1):
            for summary in self.history.reader.shard(shard).values():
                if summary["created"][:13] == hour and (not workers or summary["worker"] in workers):
                    yield summary


def _any_damaged(root: Path) -> bool:
    from workerctl.errors import DamagedFile
    from workerctl.storage.atomic import read_json

    for path in fs.walk_files(root, "*.json"):
        try:
            data = read_json(path)
        except DamagedFile:
            return True
        if not isinstance(data, dict) or not all(isinstance(t, dict) for t in data.values()):
            return True
    return False


def _count(
    docs: dict[str, dict],
    where: dict[tuple, str],
    hour: str,
    summary: dict,
    old: str | None,
    shard: int,
    sign: int,
) -> None:
    """Count one change of a run into the doc of ``hour`` (or of a whole day)."""
    model = summary.get("model")
    key = where.get((hour, summary["worker"], model))
    if key is None:
        key = where[(hour, summary["worker"], model)] = next_id(docs)
        docs[key] = {
            "hour": hour,
            "worker": summary["worker"],
            "model": model,
            "counts": {},
            "tokens": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost": {},
            "priced": 0,
            "durations": {},
            "shards": [shard, shard],
        }
    was = docs[key]
    doc = docs[key] = {
        **was,
        "counts": dict(was["counts"]),
        "cost": dict(was["cost"]),
        "durations": dict(was["durations"]),
    }
    doc["shards"] = [min(doc["shards"][0], shard), max(doc["shards"][1], shard)]
    counts = doc["counts"]
    if old:
        counts[old] = counts.get(old, 0) - 1
    status = counted_as(summary)  # an old refusal under "refused": no status, no duration
    counts[status] = counts.get(status, 0) + sign
    if status in FINISHED and (old not in FINISHED or sign < 0):
        _money(doc, summary, sign)
        if summary.get("duration") is not None:
            bucket = _bucket(summary["duration"])
            doc["durations"][bucket] = doc["durations"].get(bucket, 0) + sign


def _holds_ref(log: RefLog, ref: dict) -> bool:
    """Whether ``log`` holds a ref to the run of ``ref``: read from its newest file back
    to the first whose refs all come before it in the sequence (a log is appended to
    in about that order), a few files, however long the log."""
    for shard in reversed(log.shards()):
        refs = list(log.read(shard).values())
        if any(r["id"] == ref["id"] for r in refs):
            return True
        if refs and max(_seq(r) for r in refs) < _seq(ref):
            return False
    return False


def _add_doc(into: dict, doc: dict) -> None:
    """Add an hourly counts doc into a daily one."""
    for status, n in doc["counts"].items():
        into["counts"][status] = into["counts"].get(status, 0) + n
    for key in ("tokens", "input_tokens", "output_tokens", "priced"):
        into[key] += doc[key]
    for currency, amount in doc["cost"].items():
        into["cost"][currency] = into["cost"].get(currency, 0.0) + amount
    for bucket, n in doc["durations"].items():
        into["durations"][bucket] = into["durations"].get(bucket, 0) + n
    into["shards"] = [min(into["shards"][0], doc["shards"][0]), max(into["shards"][1], doc["shards"][1])]


def _uncount(
    docs: dict[str, dict], where: dict[tuple, str], hour: str, worker: str, model: str | None, status: str
) -> None:
    """Take one run of ``status`` from the count of (hour, worker, model), where it was
    counted before its model was known (or changed)."""
    key = where.get((hour, worker, model))
    if key is None:
        return
    was = docs[key]
    counts = dict(was["counts"])
    counts[status] = counts.get(status, 0) - 1
    docs[key] = {**was, "counts": counts}


def _stored_model(stored: dict) -> str | None:
    """The model a stored run's summary names (the one that used the most tokens); a
    summary itself (a reindex catching up: ``history.reindex``) names it."""
    from workerctl.runs.usage import main_model

    if "usage" not in stored and "model" in stored:
        return stored["model"]
    usage = stored.get("usage")
    return main_model(usage) if isinstance(usage, dict) and usage.get("models") else None


def _zero() -> dict:
    return {"tokens": 0, "input_tokens": 0, "output_tokens": 0, "cost": {}, "priced": 0}


def _money(doc: dict, summary: dict, sign: int) -> None:
    """Tokens and estimated cost of a finished run, added to (or taken from) ``doc``."""
    for key in ("tokens", "input_tokens", "output_tokens"):
        doc[key] += sign * (summary.get(key) or 0)
    if summary.get("cost") is not None:
        currency = summary.get("currency") or "?"
        doc["cost"][currency] = doc["cost"].get(currency, 0.0) + sign * summary["cost"]
        doc["priced"] += sign


def _group(doc: dict, by: str) -> str:
    if by == "day":
        return (doc.get("created") or doc.get("hour") or "")[:10]
    if by == "model":
        return doc.get("model") or "(no model)"
    return doc["worker"]


def _add_summary(per: dict[str, dict], summary: dict, by: str) -> None:
    """Count one run, read from its summary, into its group."""
    status = counted_as(summary)
    finished = status in FINISHED
    durations = {_bucket(summary["duration"]): 1} if finished and summary.get("duration") is not None else {}
    money = _zero()
    if finished:
        _money(money, summary, 1)
    _add(per, _group(summary, by), {status: 1}, money, durations)


def _add(per: dict[str, dict], group: str, counts: dict, money: dict, durations: dict) -> None:
    item = per.setdefault(group, {"counts": dict.fromkeys(STATES, 0), "durations": {}, **_zero()})
    for status, n in counts.items():
        item["counts"][status] = item["counts"].get(status, 0) + n
    for key in ("tokens", "input_tokens", "output_tokens", "priced"):
        item[key] += money[key]
    for currency, amount in money["cost"].items():
        item["cost"][currency] = item["cost"].get(currency, 0.0) + amount
    for bucket, n in durations.items():
        item["durations"][bucket] = item["durations"].get(bucket, 0) + n


def _merged_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans joined, in order (a few, however many days)."""
    out: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def _seq(ref: dict) -> tuple[int, int]:
    """A ref's place in the sequence runs were created in (its shard and number, given
    out under the lock at creation): the order of every listing, never the clock."""
    return ref["shard"], ref["doc"]


def _merge(streams: Iterable[Iterator[dict]]) -> Iterator[dict]:
    """Several newest-first ref streams as one, newest first, each run once."""
    seen: set[str] = set()
    for ref in heapq.merge(*streams, key=_seq, reverse=True):
        if ref["id"] not in seen:
            seen.add(ref["id"])
            yield ref


def _names_a_run(note: str) -> bool:
    """Whether a note in ``pending/`` names one run (else a prune's, a reindex's, a stranger's)."""
    from workerctl.runs.states import ID_LENGTH

    return len(note) == ID_LENGTH and note.isalnum()
