"""The one mapping from an id (record id, worker name, status) to a file name.

Injective, also on a case-insensitive or normalising file system (macOS, Windows):
lower-case ASCII letters, digits and ``-`` stand for themselves, and so does a ``.``
that does not begin the name; every other character becomes ``_`` and the two hex
digits of each of its UTF-8 bytes (``_`` itself is ``_5f``), an upper-case ASCII
letter ``+`` and the letter in lower case. So a name holds only
``[a-z0-9._+-]``, which no file system folds or normalises, and it can be read back
(``id_of``): two different ids never share a file. ``T-1042`` is ``+t-1042``,
``T:500`` is ``+t_3a500``, ``T_500`` is ``+t_5f500``.

A name longer than ``MAX_NAME`` characters (a 128-character id of odd characters)
keeps its first part and ends in ``~`` and the id's SHA-256: ``~`` never appears in
a name made the plain way, and two ids sharing a long name would take a SHA-256
collision.

Earlier versions made names that two ids could share (``T:500`` and ``T_500`` shared
one comments file; ``t-1`` and ``T-1`` one ledger file on macOS). ``legacy_names``
lists them, so a reader falls back to the old file (taking only what belongs to its
id) until the first write puts the data under the new name. An old name can also be
another id's name now (``t_3a500``'s old file is the name of ``t:500``): so every read
of a file keeps only the entries of the id it reads for, the other id's entries stay in
the file for that id, and a file holding none of the id's entries is not its file yet
(its old one is merged in). ``BuiltinRecordStore.comments`` and ``Ledger.effects``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

MAX_NAME = 200
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@lru_cache(maxsize=8192)
def file_name(key: str) -> str:
    """The file name (without extension) that stands for ``key`` (kept per key: a run
    asks for the same few names a dozen times)."""
    if key and len(key) <= MAX_NAME and all(c in _PLAIN for c in key):
        return key  # the common case: slugs, lower-case ids, statuses
    out = []
    for i, c in enumerate(key):
        if c in _PLAIN or (c == "." and i > 0):
            out.append(c)
        elif "A" <= c <= "Z":
            out.append("+" + c.lower())
        else:
            out.extend(f"_{b:02x}" for b in c.encode("utf-8", "surrogatepass"))
    name = "".join(out) or "_"
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        name = f"{name[: MAX_NAME - 65]}~{digest}"
    return name


def id_of(name: str) -> str | None:
    """The id ``file_name`` made ``name`` from (None for a hashed long name, or a name
    it never makes)."""
    if "~" in name:
        return None
    if name == "_":
        return ""
    raw = bytearray()
    i = 0
    while i < len(name):
        c = name[i]
        if c == "+" and i + 1 < len(name) and "a" <= name[i + 1] <= "z":
            raw += name[i + 1].upper().encode()
            i += 2
        elif c == "_" and i + 3 <= len(name):
            try:
                raw.append(int(name[i + 1 : i + 3], 16))
            except ValueError:
                return None
            i += 3
        elif c in _PLAIN or c == ".":
            raw += c.encode()
            i += 1
        else:
            return None
    return raw.decode("utf-8", "surrogatepass")


@lru_cache(maxsize=8192)
def legacy_names(key: str) -> tuple[str, ...]:
    """The names earlier versions gave ``key``'s file, other than its name now."""
    clean = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    if clean[:80] == key and not key.startswith("."):
        table = key
    else:
        digest = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        table = f"{clean[:80].lstrip('.')}~{digest}"
    names = []
    for old in (table, clean):  # ledger and indexes; comments
        # a name too long for any file system was never written (asking for it would
        # fail with ENAMETOOLONG: a 300-character record id ended a run in a traceback)
        if len(f"{old}.json".encode("utf-8", "surrogatepass")) > 255:
            continue
        if old != file_name(key) and old not in names:
            names.append(old)
    return tuple(names)


class LegacyFiles:
    """Where ``key``'s file lies under a name an earlier version gave it, in one folder.

    No version since writes a file under an old name: such files are only read (and
    left for the other id that may share one). So an old name found absent stays
    absent for this object's life, which spares a batch about a dozen ``lstat`` calls
    a run. A file that appears there later can only be another id's under its new
    name (``t:500``'s name now is ``t_3a500``, the old name of the id ``t_3a500``), and
    its readers keep only their own id's entries from an old file, so they would find
    none of theirs in it anyway. At most ``LIMIT`` names are kept, then all forgotten."""

    LIMIT = 8192

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._absent: set[str] = set()

    def first(self, key: str) -> Path | None:
        """The first of ``key``'s old files that exists, or None."""
        from workerctl.storage import fs

        for name in legacy_names(key):
            if name in self._absent:
                continue
            path = self.folder / f"{name}.json"
            if fs.exists(path):
                return path
            if len(self._absent) >= self.LIMIT:
                self._absent.clear()
            self._absent.add(name)
        return None
