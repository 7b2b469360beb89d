"""The one sanitizer of text bound for a terminal.

Text workerctl did not write itself (a record's title, a worker's output, an error
from a plugin, a path) may hold escape sequences that move the cursor, retitle the
window, rewrite the screen or hide what follows. ``for_terminal`` removes the
sequences (CSI, OSC, DCS and the other string controls, in their 7-bit and 8-bit
forms) and replaces every other control character but newline and tab with U+FFFD,
so what is shown is what is there. JSON output does not pass through here: JSON
escapes control characters itself and keeps the data exact.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"

#: ESC or its 8-bit C1 form, then the rest of the sequence (compiled on first use: most
#: text has no control character, and every command imports this module)
_SEQUENCE = r"""
    (?: \x1b\[ | \x9b ) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?          # CSI ... final byte
  | (?: \x1b[\]PX^_] | [\x9d\x90\x98\x9e\x9f] ) .*? (?: \x07 | \x1b\\ | \x9c | $ )
                                                                       # OSC, DCS, SOS, PM, APC ... ST
  | \x1b [\x20-\x2f]* [\x30-\x7e]?                                     # any other escape sequence
    """
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"


def for_terminal(text: str) -> str:
    """``text`` without escape sequences, its other control characters (all but
    ``\\n`` and ``\\t``) replaced by U+FFFD."""
    if text.isprintable():  # the usual case: nothing to do, and cheap
        return text
    without = re.compile(_SEQUENCE, re.VERBOSE | re.DOTALL).sub("", text)  # re caches it
    return re.compile(_CONTROL).sub(REPLACEMENT, without)
