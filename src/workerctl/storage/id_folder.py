"""A folder of files named by ``filenames.file_name``, and whether it can hold the
names an earlier version gave (``filenames.legacy_names``).

The rule: a folder made by this version holds a stamp (``STAMP``) from before its
first file, and this version writes no name but ``file_name``'s, so a folder with the
stamp holds no legacy name: a reader looks for legacy files only in a folder without
it (one made by an earlier version, or whose maker was cut off between the folder and
the stamp, which only costs the look-ups). Without the stamp, a run looked twice per
read for a file that is never there: a record's comments and its ledger file are read
about ten times a run, and the first write of each happens late in it.
"""

from __future__ import annotations

from pathlib import Path

from workerctl.errors import StorageError
from workerctl.storage import fs
from workerctl.storage.filenames import legacy_names

#: the stamp's name: not ``*.json``, so nothing that lists the folder's files sees it
STAMP = ".injective-names"


class IdFolder:
    """One such folder (comments, the ledger's record files), as one process sees it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamped: bool | None = None  # read once: a stamp is never taken away
        self._made = False

    def legacy_names(self, key: str) -> tuple[str, ...]:
        """The legacy names worth looking for: none in a stamped folder."""
        if self._stamped is None:
            self._stamped = fs.exists(self.path / STAMP)
        return () if self._stamped else legacy_names(key)

    def make(self) -> None:
        """Before a write into the folder (checked once a process): a folder made here
        gets its stamp before anything else is written into it."""
        if self._made:
            return
        try:
            fs.mkdir(self.path, 0o700, parents=True)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StorageError(self.path, exc, "create the folder") from None
        else:
            try:
                fs.touch(self.path / STAMP)
            except OSError:
                pass  # a full disk: the folder is read as an old one's, and the write goes on
            else:
                self._stamped = True
        self._made = True
