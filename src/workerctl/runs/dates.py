"""Dates as people write them, for review: ISO, day first with dots, slashes either way
round, the month written out in English or German, or relative to the day a run ran.
Shared by the facts check (``runs.grounded``) and the sentence reader (``runs.claims``,
which must not end a sentence at the dot of "am 3. Dezember")."""

from __future__ import annotations

import datetime as dt
import re

MONTHS = {
    m: n
    for n, names in enumerate(
        (
            # English, German; then French, Spanish, Italian, Portuguese, Dutch (the
            # languages the form check reads: a date in any of them is compared)
            ("jan", "january", "januar", "jänner", "janvier", "enero", "gennaio", "janeiro", "januari"),
            (
                "feb",
                "february",
                "februar",
                "février",
                "fevrier",
                "febrero",
                "febbraio",
                "fevereiro",
                "februari",
            ),
            ("mar", "march", "märz", "maerz", "mär", "mars", "marzo", "março", "maart"),
            ("apr", "april", "avril", "abril", "aprile"),
            ("may", "mai", "mayo", "maggio", "maio", "mei"),
            ("jun", "june", "juni", "juin", "junio", "giugno", "junho"),
            ("jul", "july", "juli", "juillet", "julio", "luglio", "julho"),
            ("aug", "august", "août", "aout", "agosto", "augustus"),
            ("sep", "sept", "september", "septembre", "septiembre", "setiembre", "settembre", "setembro"),
            ("oct", "october", "okt", "oktober", "octobre", "octubre", "ottobre", "outubro"),
            ("nov", "november", "novembre", "noviembre", "novembro"),
            (
                "dec",
                "december",
                "dez",
                "dezember",
                "décembre",
                "decembre",
                "diciembre",
                "dicembre",
                "dezembro",
            ),
        ),
        start=1,
    )
    for m in names
}
MONTH_WORDS = "|".join(sorted(MONTHS, key=len, reverse=True))
#: a date as people write it: ISO (2026-12-03, 2026/12/03), day first with dots (3.12.2026),
#: with slashes either way round (12/03/2026: both readings are candidates), the month
#: written out in English or German either side of the day (3 December 2026, 3. Dezember,
#: December 3rd, 2026), or relative to the day the run ran (today, tomorrow, yesterday, in 3
#: days, 2 weeks ago)
_ORDINAL_UNITS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"]
#: the days of a month written as ordinal words ("the twenty-second of November")
ORDINALS = {w: n for n, w in enumerate(_ORDINAL_UNITS, 1)}
ORDINALS |= {"tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15}
ORDINALS |= {"sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20}
ORDINALS |= {f"twenty-{w}": 20 + n for n, w in enumerate(_ORDINAL_UNITS, 1)}
ORDINALS |= {f"twenty {w}": 20 + n for n, w in enumerate(_ORDINAL_UNITS, 1)}
ORDINALS |= {"thirtieth": 30, "thirty-first": 31, "thirty first": 31}
_ORDINAL = "|".join(sorted(ORDINALS, key=len, reverse=True))
#: weekdays in English, Monday first (``date.weekday()``)
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: a weekday before a date is part of it ("due Thu 2026-11-26", "Thursday, 26 November"):
#: the date stays next to the word it is the value of (``wrong_weekdays`` checks the pair)
_WEEKDAY_SHORT = "mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun"
_WEEKDAY_FIRST = (
    rf"(?:\b(?:{'|'.join(WEEKDAY_NAMES)}|{_WEEKDAY_SHORT})\.?,?\s+(?=\d|the\s|(?:{MONTH_WORDS})\b))?"
)
DATE = re.compile(
    _WEEKDAY_FIRST + "(?:"
    rf"\b(?:the\s+)?(?P<od>{_ORDINAL})\s+(?:of\s+)?(?P<om>{MONTH_WORDS})\.?,?(?:\s+(?P<oy>\d{{4}}))?\b|"
    # ISO, a time after it too ("2026-11-24T17:00Z")
    rf"\b(?P<iy>\d{{4}})[-/](?P<im>\d{{1,2}})[-/](?P<id>\d{{1,2}})(?:\b|(?=T\d))|"
    rf"\b(?P<dd>\d{{1,2}})\.(?P<dm>\d{{1,2}})\.(?P<dy>\d{{4}})\b|"
    rf"\b(?P<sa>\d{{1,2}})/(?P<sb>\d{{1,2}})/(?P<sy>\d{{4}}|\d{{2}})\b|"
    # "26 November 2026", "26th of November", "26-Nov-2026"
    # ("2 de diciembre de 2026", "2 décembre 2026", "2 dicembre 2026")
    rf"\b(?:the\s+)?(?P<wd>\d{{1,2}})(?:st|nd|rd|th|\.|er|º)?(?:\s+(?:of\s+|de\s+)?|-)(?P<wm>{MONTH_WORDS})\.?,?"
    rf"(?:(?:\s+(?:de\s+)?|-)(?P<wy>\d{{4}}))?\b|"
    rf"\b(?P<mm>{MONTH_WORDS})\.?\s+(?P<md>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<my>\d{{4}}))?\b|"
    r"\b(?P<rel>(?:the\s+)?day\s+after\s+tomorrow|(?:the\s+)?day\s+before\s+yesterday|übermorgen|vorgestern|"
    r"today|tomorrow|yesterday|heute|morgen|gestern)\b|"
    rf"\b(?P<near>last|next|this past|this coming)\s+(?P<nwd>{'|'.join(WEEKDAY_NAMES)})\b|"
    r"\b(?:in\s+(?P<ahead>\d{1,3}|a|one|two|three|four|five|six|seven|eight|nine|ten)\s+(?P<aunit>days?|weeks?|fortnights?)"
    r"|(?P<ago>\d{1,3}|a|one|two|three|four|five|six|seven|eight|nine|ten)\s+(?P<gunit>days?|weeks?|fortnights?)\s+ago)\b"
    ")",
    re.I,
)
_SMALL = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
_SMALL |= {"nine": 9, "ten": 10}
_RELATIVE = {"today": 0, "heute": 0, "tomorrow": 1, "morgen": 1, "yesterday": -1, "gestern": -1}
_RELATIVE |= {"day after tomorrow": 2, "übermorgen": 2, "day before yesterday": -2, "vorgestern": -2}
_UNIT_DAYS = {"day": 1, "week": 7, "fortnight": 14}


def parse_date(text: str, default_year: int | None = None, today: dt.date | None = None) -> dt.date | None:
    """The first date ``text`` writes (its first reading, where two are possible)."""
    found = parse_dates(text, default_year, today)
    return found[0] if found else None


def parse_dates(text: str, default_year: int | None = None, today: dt.date | None = None) -> list[dt.date]:
    """The readings of the first date ``text`` writes: one, or two for ``03/12/2026``
    (3 December or March 12th), none when it is not a date (or is relative and ``today``
    is not known)."""
    m = DATE.search(text)
    if not m:
        return []
    g = m.groupdict()

    def day(year: int | str | None, month: int | str, dom: int | str) -> dt.date | None:
        try:
            return dt.date(int(year), int(month), int(dom)) if year else None
        except (ValueError, TypeError, OverflowError):
            return None

    if g["iy"]:
        found = [day(g["iy"], g["im"], g["id"])]
    elif g["dd"]:
        found = [day(g["dy"], g["dm"], g["dd"])]
    elif g["sa"]:
        year = int(g["sy"]) + (2000 if len(g["sy"]) == 2 else 0)
        found = [day(year, g["sb"], g["sa"]), day(year, g["sa"], g["sb"])]
    elif g["wd"]:
        found = [day(int(g["wy"]) if g["wy"] else default_year, MONTHS[g["wm"].lower()], g["wd"])]
    elif g["od"]:
        found = [
            day(int(g["oy"]) if g["oy"] else default_year, MONTHS[g["om"].lower()], ORDINALS[g["od"].lower()])
        ]
    elif g["mm"]:
        found = [day(int(g["my"]) if g["my"] else default_year, MONTHS[g["mm"].lower()], g["md"])]
    elif today is None:
        return []
    elif g["rel"]:
        said = " ".join(g["rel"].lower().split()).removeprefix("the ")
        found = [today + dt.timedelta(days=_RELATIVE[said])]
    elif g["near"]:
        found = [*_near_weekday(today, g["near"].lower(), WEEKDAY_NAMES.index(g["nwd"].lower()))]
    else:
        count, unit, sign = (g["ahead"], g["aunit"], 1) if g["ahead"] else (g["ago"], g["gunit"], -1)
        n = int(count) if count.isdigit() else _SMALL[count.lower()]
        found = [today + dt.timedelta(days=sign * n * _UNIT_DAYS[unit.lower().rstrip("s")])]
    return list(dict.fromkeys(d for d in found if d is not None))


def _near_weekday(today: dt.date, which: str, weekday: int) -> list[dt.date]:
    """The two readings of "last Friday" (the Friday before today, or the one of the
    week before: people say both) and of "next Friday" (the first after today, or the
    one of the week after)."""
    if which in ("last", "this past"):
        first = today - dt.timedelta(days=(today.weekday() - weekday - 1) % 7 + 1)
        return [first, first - dt.timedelta(days=7)]
    first = today + dt.timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)
    return [first, first + dt.timedelta(days=7)]
