"""``runs.visible``: review reads an output as a person sees it. Generated ids and texts:
an id disguised by a hidden character or look-alike letters reads as the id, and is
named as disguised; text written in any script, as it is usually written, is not."""

from __future__ import annotations

import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st

from workerctl.runs.visible import LOOKALIKE, disguised, visible

IDS = st.from_regex(r"[A-Z]{1,4}-[0-9]{1,6}", fullmatch=True)
HIDDEN = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2066"])
LATIN_OF = {v: k for k, v in ((chr(a), b) for a, b in LOOKALIKE.items())}


@given(IDS, HIDDEN, st.data())
def test_a_hidden_character_inside_an_id_reads_as_the_id_and_is_named(rid, hidden, data):
    at = data.draw(st.integers(1, len(rid) - 1))
    text = f"{rid[:at]}{hidden}{rid[at:]} is blocked on legal."
    assert visible(text) == f"{rid} is blocked on legal."
    found = [d for d in disguised(text) if "override" not in d.why]  # U+202E also turns what follows
    assert [d.reads_as for d in found] == [rid] and f"U+{ord(hidden):04X}" in found[0].why


@given(IDS, st.data())
def test_look_alike_letters_in_an_id_read_as_the_id_and_are_named(rid, data):
    swappable = [i for i, c in enumerate(rid) if c in LATIN_OF]
    if not swappable:
        return
    chosen = data.draw(st.sets(st.sampled_from(swappable), min_size=1))
    spoof = "".join(LATIN_OF[c] if i in chosen else c for i, c in enumerate(rid))
    assert spoof != rid
    assert visible(f"See {spoof}.") == f"See {rid}."
    assert [d.reads_as for d in disguised(f"See {spoof}.")] == [rid]


@example("e\u200b\u0301")  # a hidden character between a letter and its accent
@example("\u0422\u0301-1")  # a look-alike letter with an accent, beside a digit
@given(st.text())
def test_the_reading_is_stable_and_shows_nothing_invisible(text):
    once = visible(text)
    assert visible(once) == once
    assert not any(unicodedata.category(c) in ("Cf", "Cc") and c not in "\n\t" for c in once)


@given(st.text(st.characters(codec="ascii", exclude_categories=("Cc",))))
def test_plain_ascii_text_is_read_as_written_and_never_disguised(text):
    assert visible(text) == text and disguised(text) == []


@given(IDS, st.data())
def test_a_soft_hyphen_beside_a_digit_or_hyphen_of_an_id_is_a_hidden_character(rid, data):
    at = data.draw(st.integers(1, len(rid) - 1))
    text = f"{rid[:at]}\u00ad{rid[at:]} is blocked on legal."
    found = disguised(text)
    if rid[at - 1].isalpha() and rid[at].isalpha():
        assert found == []  # between two letters: where a word may be hyphenated
    else:
        assert [d.reads_as for d in found] == [rid] and "U+00AD" in found[0].why


@given(st.text(st.characters(categories=("Ll", "Lu")), min_size=2), st.integers(1, 30))
def test_a_soft_hyphen_between_letters_is_a_hyphenation_hint(word, at):
    at = min(at, len(word) - 1)
    found = disguised(f"The {word[:at]}\u00ad{word[at:]} is late.")
    assert not any("U+00AD" in d.why for d in found)  # (look-alike letters may be named)


@given(st.text(st.characters(codec="ascii", categories=("L", "Nd", "Pd", "Zs")), min_size=1))
def test_a_right_to_left_override_over_latin_text_shows_it_reversed_and_is_named(inner):
    text = f"Due \u202e{inner}\u202c. Ask legal."
    found = disguised(text)
    if any(c.isalnum() for c in inner):
        assert [d.reads_as for d in found] == [inner.strip()[::-1]] and "U+202E" in found[0].why
    else:
        assert found == []


def test_an_override_that_changes_no_order_is_not_a_disguise():
    hebrew = "\u05e9\u05dc\u05d5\u05dd"
    assert disguised(f"x \u202e{hebrew}\u202c y") == []  # right to left already
    assert disguised("x \u202dabc\u202c y") == []  # left to right already
    assert [d.reads_as for d in disguised(f"x \u202d{hebrew}\u202c y")] == [hebrew[::-1]]


def test_words_wholly_in_another_script_are_left_as_written():
    for text in ("Задача выполнена.", "Η εργασία ολοκληρώθηκε.", "می\u200cخواهم", "क्\u200dष"):
        assert disguised(text) == [] and visible(text) == unicodedata.normalize("NFKC", text).replace(
            "\u200c", ""
        ).replace("\u200d", "")


LOCAL = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,6})?", fullmatch=True)
LABEL = st.from_regex(r"[a-z][a-z0-9-]{0,8}[a-z0-9]", fullmatch=True)


@given(LOCAL, st.lists(LABEL, min_size=2, max_size=3), st.sampled_from(range(5)))
def test_an_address_written_out_is_the_address(local, labels, form):
    """How people hide an address from a pattern; each is the same address to a reader,
    and to the privacy check (``evidence.personal_data``)."""
    from workerctl.runs.evidence import personal_data

    at, dot = [("(at)", "(dot)"), ("[at]", "[dot]"), (" at ", " dot "), (" (at) ", " (dot) "), ("@", ".")][
        form
    ]
    written = f"Next step: write to {local}{at}{dot.join(labels)} today."
    assert [p.key for p in personal_data(written)] == [f"{local}@{'.'.join(labels)}"], written
