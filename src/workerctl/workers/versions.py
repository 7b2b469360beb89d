"""Every saved version of every worker file, kept in the workspace state.

A run stores the configuration it ran with; versions let a person see how a
worker changed between runs and undo an edit, even one made with another editor
(changes found on disk are recorded the next time workerctl looks).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from workerctl.errors import LockTimeout, NotFoundError, StorageError
from workerctl.storage.lock import lock_for
from workerctl.storage.shapes import tinydb_file
from workerctl.storage.tinydb_storage import open_db
from workerctl.workers.model import config_hash as hash_config
from workerctl.workers.model import content_hash

if TYPE_CHECKING:
    from collections.abc import Callable

    from tinydb.table import Table

    from workerctl.runs.model import Run
    from workerctl.workspace import Workspace


def config_hash_of(content: str | None) -> str | None:
    """The configuration hash of a version's text (None when it does not parse)."""
    if content is None:
        return None
    from workerctl.workers.yaml_positions import parse_yaml

    data, _, _ = parse_yaml(content, "(version)", positions=False)  # within the limits
    return hash_config(data) if isinstance(data, dict) else None


@dataclass
class Version:
    worker: str
    version: int
    hash: str
    content: str | None
    time: str
    action: str
    config_hash: str | None = None  # the hash runs store, so a run finds its version

    def to_dict(self) -> dict:
        return asdict(self)


VERSIONS_SHAPE = tinydb_file(
    "versions",
    {"worker": str, "version": int, "hash": str, "content": (str, type(None)), "time": str, "action": str},
    others=True,
)


class Versions:
    def __init__(self, workspace: Workspace, warn: Callable[[str], None] | None = None) -> None:
        self.workspace = workspace
        self.lock = lock_for(workspace.lock_file)
        self.warn = warn

    def _table(self) -> Table:
        db = open_db(
            self.workspace.versions_file,
            hint=f"restore {self.workspace.versions_file} from a backup, or move it "
            "aside (the saved versions are then lost; they start again from "
            "the files on disk)",
            shape=VERSIONS_SHAPE,
        )
        return db.table("versions")

    def history(self, worker: str) -> list[Version]:
        from tinydb import Query

        docs = self._table().search(Query().worker == worker)
        return sorted((Version(**{"config_hash": None, **d}) for d in docs), key=lambda v: v.version)

    def latest(self, worker: str) -> Version | None:
        versions = self.history(worker)
        return versions[-1] if versions else None

    def get(self, worker: str, number: int) -> Version:
        for version in self.history(worker):
            if version.version == number:
                return version
        raise NotFoundError(
            f"worker {worker!r} has no version {number}",
            hint=f"'workerctl worker history {worker}' lists them",
        )

    def record(
        self, worker: str, content: str | None, action: str, config_hash: str | None = None
    ) -> Version | None:
        """Keep ``content`` as a new version unless it equals the latest one."""
        with self.lock:
            latest = self.latest(worker)
            digest = content_hash(content) if content is not None else "-"
            if latest is not None and latest.hash == digest:
                return None
            version = Version(
                worker=worker,
                version=(latest.version + 1) if latest else 1,
                hash=digest,
                content=content,
                time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                action=action,
                config_hash=config_hash or config_hash_of(content),
            )
            self._table().insert(version.to_dict())
            return version

    def keep(self, worker: str, content: str, config_hash: str) -> Version:
        """The stored version holding ``content``, kept now if it is new (a run starts).

        A worker file created or edited by hand is thereby stored before anything
        runs with it, so the configuration a run used can always be restored.
        """
        with self.lock:
            return self.record(worker, content, "kept when a run started", config_hash) or self.latest(worker)  # type: ignore[return-value]

    def for_run(self, run: Run) -> Version:
        """The version a run started with: its ``worker_version``, else the newest one
        whose configuration hash equals the run's (runs stored before versions were kept)."""
        if run.worker_version:
            return self.get(run.worker, run.worker_version)
        for version in reversed(self.history(run.worker)):
            if (version.config_hash or config_hash_of(version.content)) == run.config_hash:
                return version
        raise NotFoundError(
            f"no stored version of {run.worker!r} matches run {run.id} (configuration {run.config_hash})",
            hint=f"'workerctl worker diff {run.worker} --run {run.id}' shows what the run ran with",
        )

    def notice(self, files: dict[str, str | None], *, every_file: bool = True) -> bool:
        """Keep the worker files changed on disk as versions, on the way to reading.

        Reading never needs to write, and a reader never waits out the lock timeout:
        the workspace lock is waited for at most ``REPAIR_WAIT`` (a run posting its
        comment may hold it, or a stopped one), and a read-only mount, a full disk or
        no permission refuse the write. Then nothing is kept now, the command goes on
        with the files as they are, ``warn`` says so, and the next command that can
        write keeps them. False then. ``every_file``: ``files`` holds every worker
        file, so a name missing from it was deleted on disk.
        """
        try:
            with self.lock.bounded():
                self.sync(files, every_file=every_file)
        except (LockTimeout, StorageError) as exc:
            if self.warn is not None:
                self.warn(
                    f"worker files changed on disk are not kept as versions yet: {exc.message}; "
                    "the next command that can write keeps them"
                )
            return False
        return True

    def sync(self, files: dict[str, str | None], *, every_file: bool = True) -> list[Version]:
        """Record what changed on disk since last seen: name -> content (None: deleted)."""
        known: dict[str, tuple[int, str]] = {}
        for doc in self._table().all():
            if doc["version"] > known.get(doc["worker"], (0, ""))[0]:
                known[doc["worker"]] = (doc["version"], doc["hash"])
        changed = []
        for name, content in files.items():
            digest = content_hash(content) if content is not None else "-"
            if known.get(name, (0, None))[1] != digest:
                changed.append((name, content))
        for name in set(known) - set(files) if every_file else ():
            if known[name][1] != "-":
                changed.append((name, None))
        out = []
        for name, content in changed:
            action = (
                "deleted on disk" if content is None else ("found on disk" if name in known else "first seen")
            )
            version = self.record(name, content, action)
            if version:
                out.append(version)
        return out
