"""Durable JSON files: atomic replacement and damage detection.

Every state file workerctl writes (history shards, run files, records, worker
versions) goes through here, so a crash mid-write can never leave a half-written
file and a damaged file is reported instead of silently overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from workerctl.errors import DamagedFile


def read_json(path: Path, *, hint: str | None = None) -> Any:
    """Load a JSON file, raising ``DamagedFile`` (exit 4) if it does not parse.

    An empty file counts as damaged: workerctl never writes one, so it means a
    truncation by something else.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if not data.strip():
        raise DamagedFile(path, "the file is empty", hint=hint)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedFile(path, f"not valid JSON: {exc}", hint=hint) from None


def write_json(path: Path, data: Any, *, sync_data: bool = True) -> None:
    """Replace ``path`` atomically: temp file, fsync, rename, fsync the folder."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    write_text_atomic(path, text, sync_data=sync_data)


def write_text_atomic(path: Path, text: str, *, sync_data: bool = True) -> None:
    """Write a temp file beside ``path``, fsync it, rename it over ``path``.

    A reader or a crash sees the old file or the new one, never half of one. The
    folder is not fsynced: a power cut may lose the newest writes (``runs
    reindex`` rebuilds the index from whatever run files survived), and skipping
    it halves the fsyncs on the hot path of every run.
    """
    # unique per process and thread; cheaper than mkstemp on this hot path
    tmp = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = os.open(tmp, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o644)
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data):]
        if sync_data:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


