"""The one reading of an output that every review check compares: the text as a person
sees it, not as it is encoded.

An output can show a person one thing and a pattern another: a zero-width space inside
``T-10​42``, a Cyrillic ``Т`` in ``Т-1042``, fullwidth digits, a non-breaking hyphen.
A check that matched the encoding would not see the id, so it would compare nothing and
pass. ``visible`` gives the reading every check uses (``ReviewEvidence.output``):

- compatibility forms folded (NFKC: fullwidth letters and digits, ligatures);
- the characters shown as nothing removed (format characters: zero-width spaces and
  joiners, bidirectional controls, the byte-order mark, the soft hyphen; the other
  controls but newline and tab);
- every dash and hyphen between two letters or digits written ``-``;
- a word that mixes Latin letters or digits with letters of another script that look
  like Latin ones written in Latin (``Т-1042`` is ``T-1042``); a word wholly in that
  script (a Russian or Greek word) is left as it is.

``disguised`` lists the words the last two rules changed, the hidden characters
inside a word, and the text a bidirectional override shows in another order than it is
stored (``\u202e92-11-6202`` shows ``2026-11-29``): shown to a reader, they are the id,
word or date they look like; to a search, a link, a filter or a check they are another
string. The answer check stops such an output before a write.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Cyrillic and Greek letters drawn like a Latin letter (Unicode's confusables, the
#: unambiguous ones)
LOOKALIKE = str.maketrans(
    {
        **dict(zip("АВЕКМНОРСТХаеорсухіјѕІЈЅԁԛԜ", "ABEKMHOPCTXaeopcyxijsIJSdqW", strict=True)),
        **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧοινκ", "ABEZHIKMNOPTYXoivk", strict=True)),
    }
)
_LOOKALIKE_CHARS = frozenset(chr(c) for c in LOOKALIKE)
#: dashes and hyphens drawn like "-" (hyphen, non-breaking hyphen, figure dash, en and
#: em dash, minus, small and fullwidth hyphen-minus)
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d"
_DASH_IN_WORD = re.compile(rf"(?<=\w)[{_DASHES}](?=\w)")
_WORD = re.compile(r"[\w-]+")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
#: a left-to-right or right-to-left override, up to its end (the pop, a paragraph's end):
#: the text inside is shown in the order the override forces, not as it is stored
_OVERRIDE = re.compile("([\u202d\u202e])([^\u202c\n\u2029]*)")


@dataclass(frozen=True)
class Disguised:
    shown: str  # the word as written
    reads_as: str  # the word as a reader sees it
    why: str  # "look-alike letters (Cyrillic Т)", "a hidden character (U+200B)"


def _invisible(ch: str) -> bool:
    if ch in "\n\t":
        return False
    category = unicodedata.category(ch)
    return category in ("Cf", "Cc", "Zl", "Zp") or ch in "\u115f\u1160\u3164\uffa0\u034f"


def visible(text: str) -> str:
    """``text`` as a reader sees it (see the module docstring)."""
    if text.isascii():
        return _ASCII_CONTROL.sub("", text) if _ASCII_CONTROL.search(text) else text
    # removed before folding: a hidden character between a letter and its accent would
    # otherwise keep them apart until a second reading joined them
    out = unicodedata.normalize("NFKC", "".join(c for c in text if not _invisible(c)))
    out = _DASH_IN_WORD.sub("-", out)
    latin = _WORD.sub(_latin_if_mixed, out)
    return latin if latin == out else unicodedata.normalize("NFKC", latin)


def _latin_if_mixed(m: re.Match[str]) -> str:
    word = m.group(0)
    if not _mixed(word):
        return word
    return word.translate(LOOKALIKE)


def _mixed(word: str) -> bool:
    """A word holding look-alike letters beside ASCII letters or digits."""
    return any(c in _LOOKALIKE_CHARS for c in word) and any(c.isascii() and c.isalnum() for c in word)


def disguised(text: str) -> list[Disguised]:
    """The words of ``text`` written so that they read as another string (look-alike
    letters mixed into a Latin word, a hidden character or a lookalike dash between two
    of its letters), each once."""
    if text.isascii() and not _ASCII_CONTROL.search(text):
        return []
    found: dict[str, Disguised] = {}
    for m in _OVERRIDE.finditer(text):
        inside = visible(m.group(2)).strip()
        # a right-to-left override reverses letters and digits written left to right; a
        # left-to-right one, letters written right to left: anything else shows as stored
        turned = ("L", "EN") if m.group(1) == "\u202e" else ("R", "AL")
        if any(unicodedata.bidirectional(c) in turned for c in inside):
            why = f"a bidirectional override (U+{ord(m.group(1)):04X}) that shows it in reverse"
            found[m.group(0)] = Disguised(m.group(0), inside[::-1], why)
    for m in re.finditer(r"[^\s]+", text):
        raw = m.group(0).strip(".,;:!?()[]{}\"'«»“”‘’")
        if not raw:
            continue
        reasons = []
        hidden = _hidden_inside(raw)
        if hidden:
            names = ", ".join(dict.fromkeys(f"U+{ord(c):04X}" for c in hidden))
            reasons.append(f"a hidden character ({names})")
        shown = visible(raw)
        letters = "".join(dict.fromkeys(c for c in raw if c in _LOOKALIKE_CHARS))
        if letters and _mixed(unicodedata.normalize("NFKC", raw)):
            scripts = sorted({unicodedata.name(c, "?").split()[0].title() for c in letters})
            reasons.append(f"look-alike letters ({'/'.join(scripts)} {letters})")
        if reasons and shown and raw not in found:
            found[raw] = Disguised(raw, shown, "; ".join(reasons))
    return list(found.values())


def _hidden_inside(word: str) -> list[str]:
    """The characters shown as nothing that stand between two ASCII letters, digits or
    hyphens of ``word`` (a soft hyphen between two letters is a hyphenation hint, and a
    joiner between letters of another script or between emoji is how they are written;
    a word is hyphenated between letters only, so a soft hyphen beside a digit or a
    hyphen, as in ``T-10\u00ad42``, hides itself in an id)."""
    out = []
    for i, c in enumerate(word):
        if not _invisible(c):
            continue
        before = next((b for b in reversed(word[:i]) if not _invisible(b)), "")
        after = next((a for a in word[i + 1 :] if not _invisible(a)), "")
        if c == "\u00ad" and before.isalpha() and after.isalpha():
            continue
        if _latin(before) and _latin(after):
            out.append(c)
    return out


def _latin(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "-")
