"""Every saved version of every worker file, kept in the workspace state.

A run stores the configuration it ran with; versions let a person see how a
worker changed between runs and undo an edit, even one made with another editor
(changes found on disk are recorded the next time workerctl looks).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from workerctl.errors import NotFoundError
from workerctl.storage.lock import lock_for
from workerctl.storage.shapes import tinydb_file
from workerctl.storage.tinydb_storage import open_db
from workerctl.workers.model import content_hash


@dataclass
class Version:
    worker: str
    version: int
    hash: str
    content: str | None
    time: str
    action: str

    def to_dict(self) -> dict:
        return asdict(self)


VERSIONS_SHAPE = tinydb_file("versions", {
    "worker": str, "version": int, "hash": str, "content": (str, type(None)), "time": str,
    "action": str}, others=True)


class Versions:
    def __init__(self, workspace) -> None:
        self.workspace = workspace
        self.lock = lock_for(workspace.lock_file)

    def _table(self):
        db = open_db(self.workspace.versions_file,
                     hint=f"restore {self.workspace.versions_file} from a backup, or move it "
                          "aside (the saved versions are then lost; they start again from "
                          "the files on disk)", shape=VERSIONS_SHAPE)
        return db.table("versions")

    def history(self, worker: str) -> list[Version]:
        from tinydb import Query

        docs = self._table().search(Query().worker == worker)
        return sorted((Version(**d) for d in docs), key=lambda v: v.version)

    def latest(self, worker: str) -> Version | None:
        versions = self.history(worker)
        return versions[-1] if versions else None

    def get(self, worker: str, number: int) -> Version:
        for version in self.history(worker):
            if version.version == number:
                return version
        raise NotFoundError(f"worker {worker!r} has no version {number}",
                            hint=f"'workerctl worker history {worker}' lists them")

    def record(self, worker: str, content: str | None, action: str) -> Version | None:
        """Keep ``content`` as a new version unless it equals the latest one."""
        with self.lock:
            latest = self.latest(worker)
            digest = content_hash(content) if content is not None else "-"
            if latest is not None and latest.hash == digest:
                return None
            version = Version(
                worker=worker, version=(latest.version + 1) if latest else 1, hash=digest,
                content=content, time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                action=action,
            )
            self._table().insert(version.to_dict())
            return version

    def sync(self, files: dict[str, str | None]) -> list[Version]:
        """Record what changed on disk since last seen: name -> content (None: deleted)."""
        known = {}
        for doc in self._table().all():
            if doc["version"] > known.get(doc["worker"], (0, ""))[0]:
                known[doc["worker"]] = (doc["version"], doc["hash"])
        changed = []
        for name, content in files.items():
            digest = content_hash(content) if content is not None else "-"
            if known.get(name, (0, None))[1] != digest:
                changed.append((name, content))
        for name in set(known) - set(files):
            if known[name][1] != "-":
                changed.append((name, None))
        out = []
        for name, content in changed:
            action = "deleted on disk" if content is None else (
                "found on disk" if name in known else "first seen")
            version = self.record(name, content, action)
            if version:
                out.append(version)
        return out
