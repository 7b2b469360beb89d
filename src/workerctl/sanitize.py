"""The one sanitizer of text bound for a terminal.

Records, outputs, errors, tool arguments and results, and plugins' text may hold
control characters and escape sequences that a terminal obeys: OSC 52 writes the
clipboard, OSC 0/2 the window title, ``ESC [2J`` clears the screen, ``ESC [nA``
moves the cursor over earlier lines, DCS and APC reach the terminal's own
handlers. ``for_terminal`` makes every one of them visible as text (``\\x1b``,
``\\x9b``, ``\\r``): C0 but newline and tab, DEL, C1 (``U+0080``-``U+009F``: a
terminal may read ``U+009B`` as CSI), and the bidirectional overrides that reorder
what is shown (``U+202A``-``U+202E``, ``U+2066``-``U+2069``). A sequence is not
removed but shown, so nothing hides what a field holds.

``guard_streams`` puts it in front of ``sys.stdout`` and ``sys.stderr`` for the
whole command: every write (``click.echo``, ``print``, a plugin's output, an error
message, a traceback) passes through it, so text from a case nobody listed is
covered too. The only escape sequences let through are the colour codes
``render.colour`` writes, and only while colour is on (a terminal, no
``NO_COLOR``). ``--json`` output is unchanged by it: ``render.to_json`` escapes
every control character (C1 included) the way JSON does, so the data is exact.
"""

from __future__ import annotations

import io
import re
import sys
from typing import Any

#: the colour codes render.colour writes (SGR: foreground, bold, normal, reset)
_OWN_SGR = r"\x1b\[(?:3[1-6]|1|22|0)m"
_UNSAFE = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
_PLAIN_RE = re.compile(_UNSAFE)
_COLOUR_RE = re.compile(f"({_OWN_SGR})|{_UNSAFE}")


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def for_terminal(text: str, *, colour: bool = False) -> str:
    """``text`` with every control character and escape sequence made visible;
    ``colour``: keep the colour codes ``render.colour`` writes."""
    if colour:
        return _COLOUR_RE.sub(lambda m: m.group(1) or _visible(m.group(0)), text)
    return _PLAIN_RE.sub(lambda m: _visible(m.group(0)), text)


def is_safe(text: str) -> bool:
    """Whether ``text`` holds nothing ``for_terminal`` would change."""
    return _PLAIN_RE.search(text) is None


_JSON_C1 = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def json_safe(encoded: str) -> str:
    """JSON text (``json.dumps`` with ``ensure_ascii=False``) with DEL, C1 and the
    bidirectional overrides escaped as ``\\uXXXX`` too: the same data, and nothing a
    terminal obeys (JSON escapes C0 itself)."""
    return _JSON_C1.sub(lambda m: f"\\u{ord(m.group(0)):04x}", encoded)


class TerminalGuard(io.TextIOBase):
    """A text stream in front of ``sys.stdout`` or ``sys.stderr`` that passes every
    write through ``for_terminal``. Its ``buffer`` is guarded too (``_GuardedBuffer``):
    what click writes as bytes (to a stream set to ASCII, say) passes the same way."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        raw = getattr(stream, "buffer", None)
        self._buffer = _GuardedBuffer(raw, self) if raw is not None else None

    def write(self, text: str) -> int:
        if isinstance(text, bytes | bytearray):
            return self.buffer.write(text) if self._buffer is not None else 0
        self._stream.write(for_terminal(text, colour=self.colour()))
        return len(text)

    def colour(self) -> bool:
        from workerctl import render

        return render.use_colour(self._stream)

    @property
    def buffer(self) -> Any:
        if self._buffer is None:
            raise AttributeError("buffer")
        return self._buffer

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(self._stream.isatty())

    def fileno(self) -> int:
        return int(self._stream.fileno())

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self._stream, "encoding", "utf-8"))

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)

    @property
    def closed(self) -> bool:
        return bool(self._stream.closed)

    def close(self) -> None:
        self._stream.close()

    @property
    def wrapped(self) -> Any:
        return self._stream


class _GuardedBuffer(io.RawIOBase):
    """The binary side of ``TerminalGuard``: bytes are read as UTF-8 (a byte that is not
    becomes visible too), sanitized, and written as UTF-8."""

    def __init__(self, raw: Any, guard: TerminalGuard) -> None:
        self._raw, self._guard = raw, guard

    def write(self, data: Any) -> int:
        text = bytes(data).decode("utf-8", "surrogateescape")
        self._raw.write(for_terminal(text, colour=self._guard.colour()).encode("utf-8", "backslashreplace"))
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._raw.flush()

    def fileno(self) -> int:
        return int(self._raw.fileno())

    def isatty(self) -> bool:
        return bool(self._raw.isatty())


def guard_streams() -> None:
    """Put ``TerminalGuard`` in front of stdout and stderr (once; a closed or missing
    stream is left as it is)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, TerminalGuard):
            setattr(sys, name, TerminalGuard(stream))
