"""The one sanitizer of text bound for a terminal.

Text workerctl did not write itself (a record's title, a worker's output or stderr, an
error from a plugin, a tool's arguments, a path) may hold escape sequences that move
the cursor, retitle the window (OSC 0/2), write the clipboard (OSC 52), rewrite the
screen (``ESC [2J``) or hide what follows. ``for_terminal`` removes the sequences (CSI,
OSC, DCS and the other string controls, in their 7-bit and 8-bit forms) and replaces
every other control character but newline and tab with U+FFFD, and so every character a
terminal shows as nothing or lets reorder the line: lone surrogates, the format characters
(zero-width spaces and joiners, the bidirectional controls, the byte-order mark, the tag
characters), the line and paragraph separators and the other default-ignorable code
points (``_INVISIBLE``). What is shown is what is there.

Two ways text reaches it: the terminal object (``terminal.Terminal.show``) sanitizes a
data field before workerctl styles it; and ``guard_streams`` puts it in front of
``sys.stdout`` and ``sys.stderr`` for the whole command, so every write (``click.echo``,
``print``, a plugin's output, an error message, a card, a traceback) passes it, a case
nobody listed included. The guard lets through only the colour codes ``render.colour``
writes (marked with a secret of the process, ``own_sgr``), and only while colour is on: a
colour code in data is removed like any other sequence, so none can stay open past its
field. JSON output is exact: JSON escapes C0 itself, and
``json_safe`` (used by ``render.to_json``) escapes DEL, C1 and every invisible character
as ``\\uXXXX``, so the guard finds nothing to change in it.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable
from typing import Any

REPLACEMENT = "\ufffd"

#: ESC or its 8-bit C1 form, then the rest of the sequence (compiled on first use: most
#: text has no control character, and every command imports this module)
_SEQUENCE = r"""
    (?: \x1b\[ | \x9b ) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?          # CSI ... final byte
  | (?: \x1b[\]PX^_] | [\x9d\x90\x98\x9e\x9f] ) .*? (?: \x07 | \x1b\\ | \x9c | $ )
                                                                       # OSC, DCS, SOS, PM, APC ... ST
  | \x1b [\x20-\x2f]* [\x30-\x7e]?                                     # any other escape sequence
    """
#: what a terminal obeys or shows as nothing: the control characters but newline and tab
#: (Cc), the format characters (Cf: zero-width spaces and joiners, the bidirectional
#: controls, the byte-order mark, soft hyphen, the tag characters), the line and paragraph
#: separators (Zl, Zp), lone surrogates (Cs), and the other default-ignorable code points
#: that are letters only in name (the Hangul fillers, the combining grapheme joiner, the
#: Mongolian selectors, plane 14). Unicode 14 (Python 3.11); ``tests/test_terminal_sanitizer``
#: checks it against ``unicodedata`` of the Python that runs it.
_INVISIBLE = (
    "\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160"
    "\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u3164"
    "\ud800-\udfff\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
_CONTROL = f"[\x00-\x08\x0b-\x1f{_INVISIBLE}]"
#: the ones ``str.isprintable`` calls printable (letters and marks by category)
_PRINTABLE_IGNORABLE = "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u3164\uffa0\U000e0100-\U000e01ef]"
#: workerctl's own colour codes (``own_sgr``, written by ``render.colour`` alone) carry
#: this process's secret as their first parameter: a code from data cannot, whatever it
#: holds, so the guard tells them apart in one stream and passes only its own.
_SECRET = str(int.from_bytes(os.urandom(6), "big") | 1 << 47)  # 15 digits, fresh each process
_OWN_SGR = rf"\x1b\[{_SECRET};([0-9;]*)m"


def own_sgr(params: str) -> str:
    """A colour code (SGR ``params``) the guard will pass while colour is on; a code
    written any other way is removed, as data's are."""
    return f"\x1b[{_SECRET};{params}m"


def for_terminal(text: str, *, colour: bool = False) -> str:
    """``text`` without escape sequences, its other control characters (all but
    ``\\n`` and ``\\t``) replaced by U+FFFD. ``colour``: keep the colour codes
    ``render.colour`` writes (the stream guard, while colour is on)."""
    if colour and "\x1b[" in text:
        return _cleaned_around_own(text, lambda params: f"\x1b[{params}m")
    if text.isprintable() and not re.search(_PRINTABLE_IGNORABLE, text):  # the usual case: cheap
        return text
    return _clean(text)


def as_shown(text: str) -> str:
    """``text`` with every character the stream guard replaces already replaced, and
    workerctl's own colour codes left as written (the guard still knows them): what a
    width is measured on, since a zero-width joiner the guard shows as U+FFFD takes a
    column (a family emoji of 2 columns is shown in 8)."""
    return _cleaned_around_own(text, own_sgr)


def _cleaned_around_own(text: str, emit: Callable[[str], str]) -> str:
    """``text`` cleaned between workerctl's own colour codes, each code written by
    ``emit`` from its parameters (as the terminal gets it, or still marked as own)."""
    if text.isprintable() and not re.search(_PRINTABLE_IGNORABLE, text):  # the usual case: cheap
        return text
    parts = re.compile(_OWN_SGR).split(text)  # odd places hold an own code's parameters
    return "".join(emit(p) if i % 2 else _clean(p) for i, p in enumerate(parts))


def _clean(text: str) -> str:
    without = re.compile(_SEQUENCE, re.VERBOSE | re.DOTALL).sub("", text)  # re caches it
    return re.compile(_CONTROL).sub(REPLACEMENT, without)


def is_safe(text: str) -> bool:
    """Whether ``text`` holds nothing ``for_terminal`` would change."""
    return for_terminal(text) == text


_JSON_UNSAFE = f"[{_INVISIBLE}]"  # JSON escapes C0 itself


def json_safe(encoded: str) -> str:
    """JSON text (``json.dumps`` with ``ensure_ascii=False``) with DEL, C1 and every
    invisible character (``_INVISIBLE``) escaped as ``\\uXXXX`` too: the same data, and
    nothing a terminal obeys or hides (JSON escapes C0 itself)."""
    import json  # one code point as JSON escapes it (a surrogate pair beyond the BMP)

    return re.compile(_JSON_UNSAFE).sub(lambda m: json.dumps(m.group(0))[1:-1], encoded)


def for_jq(data: Any) -> Any:
    """``data`` as plain JSON values that libjq reads: each lone surrogate (stored escaped
    from text that was not valid Unicode, see docs/guarantees.md) becomes U+FFFD, as jq
    itself decodes invalid input. Every ``--jq`` and ``--where`` passes through here: jq
    refused a whole document for one ``\\ud800`` in it ("surrogate pair escape"), which read
    as the user's mistake (exit 2)."""
    import json

    from workerctl.jsonvalues import loads

    return _no_surrogates(loads(json.dumps(data, default=str)))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value if value.isascii() else _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_no_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in value.items()}
    return value


class TerminalGuard(io.TextIOBase):
    """A text stream in front of ``sys.stdout`` or ``sys.stderr`` that passes every
    write through ``for_terminal``. Its ``buffer`` is guarded too (``_GuardedBuffer``):
    what click writes as bytes (to a stream set to ASCII, say) passes the same way."""

    def __init__(self, stream: Any, err: bool = False, colour: Callable[[bool], bool] | None = None) -> None:
        self._stream, self._err, self._colour = stream, err, colour
        raw = getattr(stream, "buffer", None)
        self._buffer = _GuardedBuffer(raw, self) if raw is not None else None

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # as a text stream does: click tells text from binary so
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._stream.write(for_terminal(text, colour=self.colour()))
        return len(text)

    def colour(self) -> bool:
        """Colour codes pass while colour is on (the policy ``guard_streams`` was given)."""
        return bool(self._colour is not None and self._colour(self._err))

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
    becomes U+FFFD), sanitized, and written as UTF-8."""

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


def guard_streams(colour: Callable[[bool], bool] | None = None) -> None:
    """Put ``TerminalGuard`` in front of stdout and stderr (once; a missing stream is
    left as it is). ``colour(err)``: whether colour is on for stdout (stderr), the
    terminal object's policy; without it no escape code passes."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, TerminalGuard):
            setattr(sys, name, TerminalGuard(stream, err=name == "stderr", colour=colour))
