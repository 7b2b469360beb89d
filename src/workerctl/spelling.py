"""What a mistyped name probably meant, for every "no such …" message.

Commands (``cli.suggest``) and worker names (``workers.files``) both ask here, so a
slip of the finger is understood the same way wherever it is made.
"""

from __future__ import annotations


def close_spellings(typed: str, names: list[str], n: int = 3) -> list[str]:
    """The names ``typed`` is one slip away from, then difflib's close matches.

    One slip (a letter dropped, doubled, swapped with its neighbour or replaced) of a
    name of four letters or more always finds that name: difflib's ratio alone misses
    some (``itit`` scores 0.5 against ``init``, under its 0.6 cut-off).
    """
    import difflib  # only for a mistyped name

    one_slip = [name for name in names if len(name) >= 4 and one_edit_apart(typed, name)]
    close = difflib.get_close_matches(typed, names, n=n, cutoff=0.6)
    return list(dict.fromkeys(one_slip + close))[:n]


def one_edit_apart(a: str, b: str) -> bool:
    """Whether one insertion, deletion, substitution or swap of neighbours turns a into b."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diff) == 1:
            return True
        i = diff[0]
        return len(diff) == 2 and diff[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((i for i, (x, y) in enumerate(zip(short, long, strict=False)) if x != y), len(short))
    return short[i:] == long[i + 1 :]
