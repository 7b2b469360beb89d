"""Dates and amounts as people write them (``dates.parse_dates``,
``grounded.spelled_amounts``): a due date stated in US or European order, with the month
written out in English or German, or relative to the day the run ran, is compared with
the record's (each form right is not flagged, each form wrong is: real runs, the echo
executor through the engine); an amount written in words is read as its figure."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_review_grounded import due, echo_worker, flagged, start
from workerctl.runs.dates import parse_dates

GERMAN = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September"]
GERMAN += ["Oktober", "November", "Dezember"]


def forms(day: dt.date, today: dt.date) -> dict[str, str]:
    out = {
        "us": day.strftime("%m/%d/%Y"),
        "slashes, year first": day.strftime("%Y/%m/%d"),
        "european dots": f"{day.day}.{day.month}.{day.year}",
        "written out": f"{day.day} {day.strftime('%B')} {day.year}",
        "month first": f"{day.strftime('%B')} {day.day}, {day.year}",
        "german": f"{day.day}. {GERMAN[day.month - 1]} {day.year}",
    }
    delta = (day - today).days
    if delta == 0:
        out["relative"] = "today"
    elif delta > 0:
        out["relative"] = f"in {delta} days"
    else:
        out["relative"] = f"{-delta} days ago"
    return out


@pytest.mark.parametrize("form", ["us", "european dots", "written out", "german", "relative"])
def test_a_due_date_in_any_usual_form_is_compared(workspace, form):
    right = dt.date.fromisoformat(due(workspace, "T-1042"))
    wrong = right + dt.timedelta(days=9)
    today = dt.date.today()
    for day, bad in ((right, False), (wrong, True)):
        said = forms(day, today)[form]
        if form == "relative" and day < today:
            continue  # "due 3 days ago" is no sentence anyone writes; past is told with "was"
        echo_worker(
            workspace,
            "w",
            {"output": f"T-1042 has due date {said}. Next step: ask legal for the glossary."},
            output_mode="review_note",
        )
        run = start(workspace, "w")
        assert ("facts" in flagged(workspace, run)) is bad, (form, said, run.checks)


@given(st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)), st.integers(-900, 900))
def test_every_form_reads_back_as_its_day(day, offset):
    today = day + dt.timedelta(days=offset)
    for form, written in forms(day, today).items():
        readings = parse_dates(written, day.year, today)
        assert day in readings, (form, written, readings)
        assert len(readings) <= 2 and (len(readings) == 1 or form == "us"), (form, readings)


ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
ONES_LIST = [*ONES.split(), "sixteen", "seventeen", "eighteen", "nineteen"]
TENS_LIST = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def in_words(n: int, hyphen: str = "-", joiner: str = " ") -> str:
    """English words for 0 <= n < 1,000,000 (the test's own spelling, the oracle)."""
    if n < 20:
        return ONES_LIST[n]
    if n < 100:
        return TENS_LIST[n // 10] + (hyphen + ONES_LIST[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        return f"{ONES_LIST[n // 100]} hundred" + (
            f"{joiner}{in_words(rest, hyphen, joiner)}" if rest else ""
        )
    rest = n % 1000
    return f"{in_words(n // 1000, hyphen, joiner)} thousand" + (
        f" {in_words(rest, hyphen, joiner)}" if rest else ""
    )


@given(st.integers(0, 999_999), st.sampled_from(["-", " "]), st.sampled_from([" ", " and "]))
@pytest.mark.parametrize("currency", ["euros", "EUR", "dollars"])
def test_an_amount_in_words_is_read_as_its_figure(currency, n, hyphen, joiner):
    from workerctl.runs.grounded import MONEY, money_parts, parse_number, spelled_amounts

    text = f"The agency charges {in_words(n, hyphen, joiner)} {currency} for it."
    stated = [parse_number(money_parts(m)[0]) for m in MONEY.finditer(spelled_amounts(text))]
    assert stated == [float(n)], (text, spelled_amounts(text))


_PIECES = [
    "twelve", "Thousand", "FOUR", "hundred", "and", "ninety", "nine", "zero", "Million",
    "euros", "EUR", "dollars", "$", "€", " ", "  ", "-", ",", ".", "\n", "7", "12 ", "x",
    "ſix", "\u212aelvin", "İ", "é", "ten", "on", "e", "tw", "o",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14))
def test_the_quick_look_for_number_words_never_changes_what_spelled_amounts_gives(pieces):
    """``spelled_amounts`` gives an ASCII text holding no number word back without its
    pattern; whatever the text (number words in any case, split across pieces, beside
    currencies, and characters that ``re.I`` folds, such as the long s and the Kelvin
    sign), its answer is the pattern's own."""
    from workerctl.runs.grounded import SPELLED_AMOUNT, _in_digits, spelled_amounts

    text = "".join(pieces)
    by_pattern = SPELLED_AMOUNT.sub(_in_digits, text) if SPELLED_AMOUNT.search(text) else text
    assert spelled_amounts(text) == by_pattern
