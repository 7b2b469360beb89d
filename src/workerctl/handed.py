"""Reading what a user hands over on the command line: a file, a pipe or standard input.

One rule for each of them (``--records-from FILE``, ``--records-from -``, ``records import
-``): at most ``limit`` bytes are read, then the input is refused as too large (exit 2),
whatever it is. ``--records-from /dev/zero`` read until the kernel killed the process (24
GB), and ``records import - < /dev/zero`` the same; a pipe or process substitution
(``--records-from <(jq ...)``) still works, since only the bytes are bounded, not the kind
of file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from workerctl.errors import NotFoundError, UsageError

#: an ids file: a million ids of 60 characters each
IDS_LIMIT = 64 * 1024 * 1024


def read_handed(path: str, limit: int, what: str) -> bytes:
    """The bytes of ``path`` ("-": standard input), at most ``limit`` of them; a
    ``UsageError`` naming the input when there are more, ``NotFoundError`` when there is
    no such file."""
    shown = "<stdin>" if path == "-" else path
    if path == "-":
        return _bounded(lambda n: sys.stdin.buffer.read(n), limit, shown, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror}") from None
    try:
        return _bounded(lambda n: os.read(fd, n), limit, shown, what)
    finally:
        os.close(fd)


def _bounded(read: Callable[[int], bytes], limit: int, shown: str, what: str) -> bytes:
    chunks, left = [], limit + 1
    while left > 0:
        try:
            chunk = read(min(left, 1 << 20))
        except OSError as exc:  # a folder (EISDIR), a device that refuses
            raise UsageError(f"{shown}: cannot read it: {exc.strerror}") from None
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    if len(data) > limit:
        raise UsageError(
            f"{shown}: more than {limit // (1024 * 1024)} MB of {what}; workerctl reads at most that much",
            hint="split it into smaller files (a device such as /dev/zero never ends)",
        )
    return data
