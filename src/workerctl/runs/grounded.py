"""Review checks grounded in what the run saw: each compares the output's statements
with the records the run read (their snapshots, ``runs.evidence``) and quotes the
sentence and the data compared.

- *facts*: a value the output ties to a field (a date, an amount, a status, a
  person, a title, a record's type) contradicts that field on the record the
  sentence is about;
- *provenance*: the output names records, people or amounts the run never read;
- *coverage*: the instructions ask about each/every/all of a set of records, the
  run read the set, and the output leaves members out without saying so;
- *privacy*: personal data written to a record it did not come from.

Suggestions, questions, negations and quoted text are not statements of fact;
a check with no data to compare says ``cannot_tell``, never ``pass``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
from typing import TYPE_CHECKING, Any

from workerctl.runs.checks import FAIL, PASS, UNKNOWN, Check
from workerctl.runs.dates import DATE, MONTH_WORDS, MONTHS, WEEKDAY_NAMES, parse_date, parse_dates
from workerctl.runs.evidence import ReviewEvidence, content_words, personal_data
from workerctl.runs.states import preview_of
from workerctl.runs.structured import OPENING_QUOTE, as_statements

if TYPE_CHECKING:
    from workerctl.records.model import Record

OLD_RUN = "the run was recorded before review snapshots were kept: what it saw is not known"
QUOTED = re.compile(OPENING_QUOTE + r"[^\"\n]*\"|“[^”\n]*”|'[^'\n]{3,}'")  # 24" is inches: no quotation
# a sentence with one of these suggests, asks, denies, supposes or reports a change:
# not a statement of what the record says
HEDGES = re.compile(
    r"\b(?:should|could|would|may|might|must|shall|suggest\w*|recommend\w*|propos\w*|consider|"
    r"please|if|unless|whether|ask|asks|need|needs|not|no longer|never|now|instead|new|move|"
    r"change\w*|set|update\w*|reschedule\w*|moved|postponed|will|plan\w*|expected|earlier|previously|"
    r"originally|nothing|none|nobody)\b|\?",
    re.I,
)
CURRENCY = r"(?:EUR|USD|GBP|CHF|SEK|NOK|DKK|PLN|JPY|€|\$|£|(?i:euros?|dollars?|pounds?|francs?))"
#: what a currency is called, by its code (a stated one is compared with the record's)
CURRENCY_CODES = {"€": "EUR", "$": "USD", "£": "GBP", "euro": "EUR", "euros": "EUR", "dollar": "USD"}
CURRENCY_CODES |= {"dollars": "USD", "pound": "GBP", "pounds": "GBP", "franc": "CHF", "francs": "CHF"}
NUMBER = r"(?<![\w.,-])(?:\d{1,3}(?:[,.'’\u202f\u00a0 ]\d{3})+(?:[.,]\d+)?(?![\d])|\d+(?:[.,]\d+)?)"
#: thousands and millions written short ("21.4k EUR", "EUR 1.2m")
_SCALE = r"(?:\s?(?:k|m|mn|million|thousand)\b)?"
#: an amount with its currency: groups 1 and 2 the figure (before or after it), "cur" and
#: "cur2" the currency
MONEY = re.compile(
    rf"(?:(?P<cur>{CURRENCY})\s?({NUMBER}{_SCALE})|({NUMBER}{_SCALE})\s?(?P<cur2>{CURRENCY}))(?![\w])"
)


def money_parts(m: re.Match[str]) -> tuple[str, str]:
    """(the figure, the currency) of a ``MONEY`` match."""
    return (m.group(2), m.group("cur")) if m.group("cur") else (m.group(3), m.group("cur2"))


NAME = re.compile(r"\b([A-Z][a-zà-ÿ'’-]+(?:\s+[A-Z][a-zà-ÿ'’-]+){0,2})")
# the words a level takes wherever it is kept (priority, severity, tier): a stated level
# outside the values the records hold still contradicts the record
LEVELS = {
    "low",
    "medium",
    "high",
    "urgent",
    "critical",
    "normal",
    "minor",
    "major",
    "gold",
    "silver",
    "bronze",
}
PERSON_FIELDS = ("assignee", "owner", "lead", "manager", "reporter", "author", "contact_name", "agent")
FIELD_ALIASES = {
    "due": (
        "due date",
        "deadline",
        "due on",
        "due by",
        "due",
        # the languages the form check reads
        "fällig",
        "frist",
        "échéance",
        "date limite",
        "vence",
        "vencimiento",
        "fecha límite",
        "scadenza",
        "scade",
        "prazo",
        "vervaldatum",
        "uiterlijk",
    ),
    "assignee": ("assigned to", "assignee", "owner", "owned by", "belongs to"),
    "owner": ("owner", "owned by", "lead", "led by", "belongs to"),
    "amount": ("amount", "total", "amounting to", "for"),
    "status": ("status",),
}
OMISSION = re.compile(
    r"\b(?:other|others|remaining|rest|omitted|skipped|excluded|left out|not covered|not included|"
    r"not listed|out of scope|ignored|only\s+\w+\s+of|none of the)\b",
    re.I,
)


FACTS_TITLE = "Dates, amounts, statuses, people, ids and titles agree with the records the run read"
PROVENANCE_TITLE = "The output states facts only about records the run read"
COVERAGE_TITLE = "Every member of a set the instructions ask about is addressed, or its omission explained"
PRIVACY_TITLE = "No personal data is written to a record it did not come from"


# -- shared reading -----------------------------------------------------------------


def statements(text: str) -> list[str]:
    """The output's sentences with quoted text blanked (quotes are the records' words),
    its JSON and tables read as ``key: value.`` lines, its amounts in words in figures."""
    from workerctl.runs.claims import sentences, uncontracted

    read = spelled_amounts(as_statements(text))
    return [s for s in (QUOTED.sub(" ", uncontracted(x)).strip() for x in sentences(read)) if s]


_UNITS = {
    w: n
    for n, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {
    w: 10 * n
    for n, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 2)
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_NUMBER_WORD = "|".join([*_UNITS, *_TENS, *_SCALES])
#: an amount written in words before its currency ("twelve thousand four hundred euros")
SPELLED_AMOUNT = re.compile(  # not a scale after figures ("12.4 thousand euro": NUMBER reads it)
    rf"(?<!\d\s)\b((?:(?:{_NUMBER_WORD})(?:[\s-]+(?:and[\s-]+)?)?)+)(?=\s*{CURRENCY}(?!\w))", re.I
)


#: the words an amount written in words is made of, for a quick look before the pattern
_NUMBER_WORDS = (*_UNITS, *_TENS, *_SCALES)


@functools.lru_cache(maxsize=64)  # asked of one run's output by several checks
def spelled_amounts(text: str) -> str:
    """``text`` with every amount written in words before its currency written in digits
    ("twelve thousand four hundred euros" is "12400 euros"), so the checks that compare
    amounts see it. An ASCII text that holds none of the number words is given back as
    it is, without the pattern (whose look-behind makes it try every position: about
    0.1 ms for a short output); for ASCII, lower case is exactly what the pattern's
    ``re.I`` compares."""
    if text.isascii():
        lowered = text.lower()
        if not any(word in lowered for word in _NUMBER_WORDS):
            return text
    if not SPELLED_AMOUNT.search(text):
        return text
    return SPELLED_AMOUNT.sub(_in_digits, text)


def _in_digits(m: re.Match[str]) -> str:
    total, part = 0, 0
    for word in re.split(r"[\s-]+", m.group(1).lower().strip()):
        if word in _UNITS:
            part += _UNITS[word]
        elif word in _TENS:
            part += _TENS[word]
        elif word == "hundred":
            part = max(part, 1) * 100
        elif word in _SCALES:
            total += max(part, 1) * _SCALES[word]
            part = 0
    trailing = " " if m.group(1)[-1:].isspace() else ""
    return f"{total + part}{trailing}"


def parse_number(text: str) -> float | None:
    raw = text.replace("'", "").replace("’", "").replace("\u202f", "").replace("\u00a0", "").replace(" ", "")
    scaled = re.fullmatch(r"(.+?)(k|m|mn|million|thousand)", raw, re.I)
    if scaled:
        number = parse_number(scaled.group(1))
        factor = 1000 if scaled.group(2).lower() in ("k", "thousand") else 1_000_000
        return None if number is None else round(number * factor, 2)
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw):
        raw = raw.replace(",", "")
    elif re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?", raw):
        raw = raw.replace(".", "").replace(",", ".")
    else:
        raw = raw.replace(",", ".")
    try:
        return float(raw)
    except ValueError:
        return None


def _counts_else(after: str) -> bool:
    """A number followed by a word that is no currency counts something else ("for 34
    days", "for 3 posts"): not an amount, whatever the word before it."""
    return re.match(rf"\s?(?!(?i:{CURRENCY})(?![\w]))[^\W\d_]{{2,}}", after) is not None


def _number_of(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and re.fullmatch(rf"\s*(?:{NUMBER})\s*", value):
        return parse_number(value.strip())
    return None


def _targets(sentence: str, ev: ReviewEvidence, last: list[str]) -> list[str]:
    """The seen records a sentence is about: the ids it names, else the titles it
    names, else the record the previous sentence was about, else the linked one."""
    named = [rid for rid in (ev.id_pattern.findall(sentence) if ev.id_pattern else []) if rid in ev.seen]
    base = last or ([ev.run.record_id] if ev.run.record_id and ev.run.record_id in ev.seen else [])
    if not named and not _field_of(sentence, base, ev):
        lowered = sentence.lower()
        named = [rid for rid, s in ev.seen.items() if len(s.title) >= 8 and s.title.lower() in lowered]
    if len(named) == 1:
        # "T-1043's project is owned by …": the link named after the id is the subject
        through = (
            _linked_named(f"its {m.group(1)}", named, ev)
            if (m := _POSSESSED_LINK.search(sentence[sentence.find(named[0]) + len(named[0]) :]))
            else None
        )
        if through is not None:
            return through
    if named:
        return named
    if ev.id_pattern and ev.id_pattern.search(sentence):
        return []  # it names records the run never read: not the one before (provenance's)
    first = _ANOTHER_FIRST.match(sentence)
    other = _another(first, base[0], ev) if first is not None and len(base) == 1 else None
    if other is not None:  # "The other one, 3,150 EUR, was sent": not the record before
        return [other] if other in ev.seen else []
    typed = _THE_TYPE.match(sentence)
    rtype = _type_named(typed.group(1).lower(), ev.types) if typed else None
    if rtype is not None and not any(ev.seen[r].type == rtype for r in base if r in ev.seen):
        # "The task has two comments." after a sentence about a doc: the task meant is
        # the run's own, else the one task the run read; never the doc
        own = ev.run.record_id
        if own in ev.seen and ev.seen[own].type == rtype:
            return [own]
        same = [r for r, snap in ev.seen.items() if snap.type == rtype]
        return same if len(same) == 1 else []
    linked = _linked_named(sentence, base, ev)
    return linked if linked is not None else base


#: a sentence that opens with a record named by its type ("The task …", "This invoice …")
_THE_TYPE = re.compile(r"^\W*(?:the|this)\s+([a-z]+)\b(?!\s*['’]s\b)", re.I)


#: a statement written as "label: value" (a JSON key, a table cell, a form line)
_LABELLED = re.compile(r"^\W*([a-z][a-z ]{1,30}?)\s*:\s*\S")


def _field_of(sentence: str, base: list[str], ev: ReviewEvidence) -> bool:
    """Whether ``sentence`` is "label: value" whose label is a field of the one record
    before it ("assignee: Jonas Berg." after "task: T-1042."): the value is that
    record's, so a record whose title the value is (the contact Jonas Berg) is not what
    the sentence is about."""
    m = _LABELLED.match(sentence.lower())
    if m is None or len(base) != 1 or base[0] not in ev.seen:
        return False
    label = m.group(1).strip()
    fields = ev.seen[base[0]].fields
    if label in ("title", "name"):  # every record has one
        return True
    return any(label == key.replace("_", " ") or label in FIELD_ALIASES.get(key, ()) for key in fields)


#: a sentence whose subject is a link of the record before ("Its project is …")
#: right after an id, a link of it ("'s project"): the linked record is what is spoken of
_POSSESSED_LINK = re.compile(r"^['’]s\s+([a-z]+)\b", re.I)
_ITS_LINK = re.compile(r"^\W*(?:its|their|the task's|this task's)\s+([a-z]+)\b", re.I)


def _linked_named(sentence: str, base: list[str], ev: ReviewEvidence) -> list[str] | None:
    """The records a sentence names, as its subject, by a link of the record it continues
    ("its project is owned by Priya Shah": the task's project, not the task): those the
    run read ([] when it read none: the sentence is about no record it read); None when
    it names no link."""
    if len(base) != 1:
        return None
    record = ev.by_id.get(base[0])
    if record is None or not record.links:
        return None
    m = _ITS_LINK.match(sentence)
    if m is None:
        return None
    word = m.group(1).lower()
    for key in (word, word + "s", word.rstrip("s")):
        if key in record.links:
            return [rid for rid in record.linked_ids(key) if rid in ev.seen]
    return None


def _mentions(sentence: str, ev: ReviewEvidence) -> int:
    return len(ev.id_pattern.findall(sentence)) if ev.id_pattern else 0


def _status_words(ev: ReviewEvidence, rtype: str) -> set[str]:
    """The status values records of this type hold (what a status can be called)."""
    cache: dict[str, set[str]] = ev.__dict__.setdefault("_status_words", {})
    if rtype not in cache:
        cache[rtype] = _statuses(ev, rtype)
    return cache[rtype]


def _enum_values(ev: ReviewEvidence, rtype: str, key: str) -> frozenset[str]:
    """The values a field takes across records of a type, when it reads like a short
    list of choices (priority, tier, stage): at most eight, each a word or two. Shared
    by a batch's runs (``RecordsView``): frozen, so no caller can change it for the next."""

    def build(records: list[Record]) -> frozenset[str]:
        values = {
            str(r.fields[key]).lower()
            for r in records
            if r.type == rtype and isinstance(r.fields.get(key), str)
        }
        short = all(len(v) <= 20 and len(v.split()) <= 2 and not any(c.isdigit() for c in v) for v in values)
        return frozenset(values | LEVELS) if 2 <= len(values) <= 8 and short else frozenset()

    return ev.view.derived(("grounded.enum_values", rtype, key), build)


def _statuses(ev: ReviewEvidence, rtype: str) -> set[str]:
    found = set(
        ev.view.derived(
            ("grounded.statuses", rtype),
            lambda records: {
                str(r.fields.get("status")).lower()
                for r in records
                if r.type == rtype and r.fields.get("status")
            },
        )
    )
    for s in ev.seen.values():
        if s.type == rtype and s.fields.get("status"):
            found.add(str(s.fields["status"]).lower())
    return {w for w in found if w and len(w) <= 30}


def people(ev: ReviewEvidence) -> dict[str, str]:
    """Known people, full name -> where: person fields of every record, contacts'
    names, and the authors of comments the run saw."""
    cached: dict[str, str] | None = ev.__dict__.get("_people")
    if cached is not None:
        return cached
    out = dict(ev.view.derived("grounded.people", _people_in_fields))
    ev.__dict__["_people"] = out
    for rid, s in ev.seen.items():
        for c in s.comments:
            if len(c.author.split()) >= 2:
                out.setdefault(c.author, f"a comment on {rid}")
    return out


def _people_in_fields(records: list[Record]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in records:
        if r.type == "contact" and len(r.title.split()) >= 2:
            out.setdefault(r.title, f"{r.id} (contact)")
        for key in PERSON_FIELDS:
            value = r.fields.get(key)
            if isinstance(value, str) and len(value.split()) >= 2 and value[:1].isupper():
                out.setdefault(value, f"{r.id} {key}")
    return out


#: a person's handle ("@chen.wei") or e-mail address ("chen.wei@cafe.example"): its words
HANDLE = re.compile(
    r"(?<![\w.+@-])(@)?([A-Za-z][A-Za-z'’]*(?:[._-][A-Za-z][A-Za-z'’]*)+)(@[\w-]+(?:\.[\w-]+)+)?"
)


def with_names(text: str, known: dict[str, str]) -> str:
    """``text`` with each handle or e-mail address whose words are the words of one known
    person's name written as that name: "assigned to @chen.wei" says who "assigned to
    Chen Wei" does, and is compared the same way (facts, provenance)."""
    if "@" not in text:
        return text
    names: dict[frozenset[str], str | None] = {}
    for name in known:
        key = frozenset(w.lower() for w in name.split())
        names[key] = None if key in names and names[key] != name else name  # two people: neither

    def named(m: re.Match[str]) -> str:
        if not (m.group(1) or m.group(3)):
            return m.group(0)  # "chen.wei" alone may be a file's name
        parts = re.split(r"[._-]", m.group(2))
        name = names.get(frozenset(p.lower() for p in parts))
        if name is None and m.group(1) and not m.group(3) and 2 <= len(parts) <= 3:
            # a handle of someone no record names is a person all the same: read as the
            # name its words make, so that a person named where one is meant is checked
            name = " ".join(p.capitalize() for p in parts)
        return name or m.group(0)

    return HANDLE.sub(named, text)


def _unread_personal_data(ev: ReviewEvidence, instructions: str) -> list[str]:
    """An e-mail address, phone number, IBAN or card number in the output that no record
    the run read holds (nor the instructions): a contact taken from a record it never
    read, or made up."""
    stated = personal_data(ev.output)
    if not stated:
        return []
    read = {d for snap in (ev.snapshots or {}).values() for d in snap.get("personal", [])}
    read |= {p.digest for p in personal_data(instructions)}
    out = []
    for item in stated:
        if item.digest in read:
            continue
        holders = ev.view.derived("grounded.personal_holders", _personal_holders).get(item.digest, [])
        where = (
            f"only {', '.join(holders[:3])} hold{'s' if len(holders) == 1 else ''} it"
            if holders
            else "no record holds it"
        )
        out.append(f"states {item.kind} {item.text}, which no record the run read holds ({where})")
    return out


def _personal_holders(records: list[Record]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in records:
        for p in personal_data("\n".join([r.title, *(str(v) for v in r.fields.values())])):
            out.setdefault(p.digest, []).append(r.id)
    return out


def _same_person(said: str, value: str) -> bool:
    a = {w.lower().strip(".") for w in said.split()}
    b = {w.lower().strip(".") for w in value.split()}
    return bool(a & b) and (a <= b or b <= a)


# -- facts -------------------------------------------------------------------------


_DAY_NAMES = (
    " ".join(WEEKDAY_NAMES),
    "montag dienstag mittwoch donnerstag freitag samstag sonntag",
)
WEEKDAYS = {day: n for names in _DAY_NAMES for n, day in enumerate(names.split())}
WEEKDAY_BEFORE = re.compile(rf"\b({'|'.join(sorted(WEEKDAYS, key=len, reverse=True))})\b\.?,?\s+(?=\S)", re.I)


def wrong_weekdays(text: str, today: dt.date | None) -> list[str]:
    """A weekday written before a date that falls on another day ("Monday, 29 November
    2026", a Sunday): one of the two is wrong, whatever the records say. ``today``: the
    year of a date written without one."""
    out = []
    for m in WEEKDAY_BEFORE.finditer(text):
        after = text[m.end() : m.end() + 40]
        date = DATE.match(after)
        if date is None or any(date.group(g) for g in ("rel", "ahead", "ago", "near")):
            continue  # "Friday in two weeks" is no day counted from today
        days = parse_dates(after, today.year if today else None, today)
        named = WEEKDAYS[m.group(1).lower()]
        if days and all(d.weekday() != named for d in days):
            said = text[m.start() : m.end() + date.end()]
            out.append(f'"{said}": {days[0].isoformat()} is a {days[0].strftime("%A")}')
    return out


def facts_check(ev: ReviewEvidence) -> Check:
    """Values the output ties to a field of a record it read, against that field."""
    if ev.snapshots is None:
        return Check("facts", FACTS_TITLE, UNKNOWN, [OLD_RUN])
    if not ev.output.strip():
        return Check("facts", FACTS_TITLE, PASS, ["no output: nothing is stated"])
    problems: list[str] = []
    compared = 0
    last: list[str] = []
    known = people(ev)
    text = with_names(ev.output, known)
    problems += _titles(text, ev)
    problems += _attributions(ev, known)
    problems += wrong_weekdays(text, _run_day(ev))
    for sentence in statements(text):
        problems += _linked_count(sentence, ev, last)
        about = _targets(sentence, ev, last)
        last = about if _mentions(sentence, ev) else last
        problems += _types(sentence, ev)
        if len(about) == 1:
            # a clause about another record named by its type and no id is not this one's:
            # it is compared with that record when the run read just one that fits
            sentence, other, clause = _until_another(sentence, about[0], ev)
            if other in ev.seen:
                n, found = _facts_of(clause, other, ev, known)
                compared += n
                problems += found
        if len(about) == 1 and about[0] in ev.seen:
            problems += _title_label(sentence, about[0], ev)
            n, denied = _negated(sentence, about[0], ev.seen[about[0]].fields, _run_day(ev))
            compared += n
            problems += denied + _no_comment_since(sentence, about[0], ev)
        whole = sentence
        # a hedge rules out its own clause, not the sentence ("is due tomorrow, so it is
        # not overdue yet": the first clause still states the due date)
        sentence = _unhedged(whole, ev)
        if len(about) == 1 and about[0] in ev.seen and about[0] not in sentence:
            # what stands in brackets right after the id is said of the record, whatever
            # the clause around it suggests ("INV-2031 (£12,400) should be discussed first")
            rid, snap = about[0], ev.seen[about[0]]
            for m in re.finditer(rf"{re.escape(rid)}\s*\(([^()]{{1,80}})\)", whole):
                n, found = _compare_fields(m.group(1), rid, snap.type, snap.fields, ev, known, near=True)
                found += _amount_currency(m.group(1), rid, snap.fields)
                compared += n
                problems += [f'"{preview_of(whole, 160)}": {p}' for p in found]
        if not sentence or not about:
            continue
        for rid in about[:3] if len(about) == 1 else []:
            snap = ev.seen[rid]
            n, found = _compare_fields(sentence, rid, snap.type, snap.fields, ev, known)
            n2, counted = _compare_count(sentence, rid, ev)
            compared += n + n2
            problems += found + counted + _amount_currency(sentence, rid, snap.fields)
            problems += _amount_after_id(sentence, rid, snap.fields)
        if len(about) > 1:
            # a sentence about several records: only values placed right after an id
            for rid in about:
                snap = ev.seen[rid]
                for m in re.finditer(rf"{re.escape(rid)}\b([^;.\n]{{0,60}})", sentence):
                    # up to the next record the sentence names: what follows it is that one's
                    after = m.group(1)
                    cut = min([after.find(o) for o in about if o != rid and o in after], default=len(after))
                    if TOTAL.match(after[:cut]):
                        continue  # "INV-2031 and INV-2044 total 15,550 EUR": a sum of them
                    n, found = _compare_fields(after[:cut], rid, snap.type, snap.fields, ev, known, near=True)
                    found += _amount_currency(after[:cut], rid, snap.fields)
                    compared += n
                    problems += [f'"{preview_of(sentence, 160)}": {p}' for p in found]
    problems = list(dict.fromkeys(problems))
    if problems:
        return Check("facts", FACTS_TITLE, FAIL, problems)
    return Check(
        "facts",
        FACTS_TITLE,
        PASS,
        [f"{compared} value(s) the output ties to a field agree with the records the run read"]
        if compared
        else ["the output ties no date, amount, status or person to a field of a record it read"],
    )


#: a record named by its type and no id, as a clause's subject ("…, while the licences
#: invoice is due on …", "…; the other one, 3,150 EUR, was sent"): the words before the
#: type word, or "other"
_BY_TYPE = r"the\s+other\s+one\b|(?:the|its|their)\s+(?P<w>(?:[\w-]+\s+){1,2}?)(?P<t>[a-z]+?)s?\b"
_VERB_AHEAD = r"(?=[^;.]{0,50}?\b(?:is|was|are|were|has|had|remains)\b)"
_JOINED = r"(?:and|but|while|whereas|whilst)"
_ANOTHER = re.compile(
    rf"(?:(?:[;,:]|\s[—–])\s*(?:{_JOINED}\s+)?|\s+{_JOINED}\s+)(?:{_BY_TYPE}){_VERB_AHEAD}", re.I
)
_ANOTHER_FIRST = re.compile(rf"^\W*(?:{_BY_TYPE}){_VERB_AHEAD}", re.I)


#: words that name a record as not the one before ("the other invoice", "the second one")
_ANOTHER_WORDS = {"other", "second", "remaining"}


def _another(m: re.Match[str], rid: str, ev: ReviewEvidence) -> str | None:
    """The record other than ``rid`` that the phrase ``m`` found names: "the other one",
    "the other invoice", or "the licences invoice" where "licences" is in the title of
    another record of that type the run read and not in ``rid``'s. Its id when one record
    the run read fits, "" when another record is meant but not which one, None when the
    phrase may well be ``rid`` itself ("the onboarding invoice" of INV-2031)."""
    own = ev.seen.get(rid)
    rtype = m.group("t").lower() if m.group("t") else (own.type if own else "")
    if rtype not in ev.types:
        return None
    words = set(m.group("w").lower().split()) - _ANOTHER_WORDS if m.group("w") else set()
    own_title = set(re.findall(r"[\w-]+", own.title.lower())) if own else set()
    others = [r for r, s in ev.seen.items() if s.type == rtype and r != rid]
    if not words:  # "the other one", "the other invoice"
        return others[0] if len(others) == 1 else ""
    fits = [r for r in others if words & set(re.findall(r"[\w-]+", ev.seen[r].title.lower())) - own_title]
    if not fits:
        return None
    return fits[0] if len(fits) == 1 else ""


def _facts_of(clause: str, rid: str, ev: ReviewEvidence, known: dict[str, str]) -> tuple[int, list[str]]:
    """A clause about ``rid`` that names it by its type and no id, against its fields."""
    snap = ev.seen[rid]
    n, found = _negated(clause, rid, snap.fields, _run_day(ev))
    n2, more = _compare_fields(_unhedged(clause, ev), rid, snap.type, snap.fields, ev, known)
    return n + n2, found + more


def _until_another(sentence: str, rid: str, ev: ReviewEvidence) -> tuple[str, str, str]:
    """``sentence`` up to a clause about another record named by its type and no id
    (``_another``): what that clause says is not ``rid``'s. Returns (the part about
    ``rid``, the other record's id or "", the clause about it)."""
    for m in _ANOTHER.finditer(sentence):
        other = _another(m, rid, ev)
        if other is not None:
            return sentence[: m.start()], other, sentence[m.start() :]
    return sentence, "", ""


#: a count of a record's comments ("3 comments", "two comments", "no comments"); not of
#: some of them ("the last 2 comments", "3 new comments")
#: small numbers in the other languages the form check reads (fr, es, it, pt, de, nl)
_FOREIGN_UNITS = {
    w: n
    for n, words in enumerate(
        (
            "",
            "un une uno una um uma ein eine einen een",
            "deux dos due dois duas zwei twee",
            "trois tres tre três drei drie",
            "quatre cuatro quattro quatro vier",
            "cinq cinco cinque fünf funf vijf",
            "six seis sei sechs zes",
            "sept siete sette sete sieben zeven",
            "huit ocho otto oito acht",
            "neuf nueve nove neun negen",
            "dix diez dieci dez zehn tien",
        )
    )
    for w in words.split()
}
#: "3 comments", "five comments", "cinque commenti": a count of comments (the word before the
#: noun is a count when ``_count_of`` reads it as one; the words are looked up, not compiled in)
COUNTED = re.compile(
    r"(?<![\w.,])(\d{1,4}|a single|[^\W\d_]+)\s+(?:comments?|commentaires?|comentarios?|commenti|commento|"
    r"comentários?|kommentare?n?|opmerkingen|opmerking|reacties|reactie)\b",
    re.I,
)
_SUBSET = re.compile(
    r"\b(?:last|latest|first|recent|other|new|older|earlier|previous|more|fewer|top|of|"
    r"about|around|over|under|nearly|almost|least|most)\s*$",
    re.I,
)


#: what follows the last of several ids when the value is theirs together
TOTAL = re.compile(
    r"\W*(?:\w+\W+){0,2}?(?:total|together|combined|in total|in sum|add up|sum|between them)\b", re.I
)
_RELATIVE = re.compile(r"(?:which|who)\b", re.I)


#: a negation that is itself a status ("not done yet", "has not been started"): read by
#: ``_said_done_or_open``, no hedge of the clause it stands in
_OPEN_NEGATION = re.compile(
    r"\bnot\s+(?:yet\s+)?(?:been\s+)?(?:done|finished|completed|closed|paid|started)\b", re.I
)


def _titles_blanked(sentence: str, ev: ReviewEvidence) -> str:
    """``sentence`` with the title of each record the run read blanked out: a title is the
    record's words, not the writer's ("T-1043 (Set up EU VAT rates in the shop) was due …":
    its "set" hedged the sentence, and nothing in it was compared)."""
    for snap in ev.seen.values():
        if len(snap.title) >= 4:
            sentence = blanked(sentence, snap.title)
    return sentence


def blanked(text: str, words: str) -> str:
    """``text`` with every occurrence of ``words`` (any case) blanked out, its length
    kept. ASCII text is searched as lowered text (each run's title was compiled into a
    pattern of its own: a compile a run, in a batch); anything else by the case-blind
    pattern, whose notion of case (the Kelvin sign, the long s) lowering does not share."""
    if not (text.isascii() and words.isascii()):
        return re.sub(re.escape(words), lambda m: " " * len(m.group(0)), text, flags=re.I)
    low, want = text.lower(), words.lower()
    at = low.find(want)
    if at < 0:
        return text
    parts, done = [], 0
    while at >= 0:
        parts += [text[done:at], " " * len(want)]
        done = at + len(want)
        at = low.find(want, done)
    parts.append(text[done:])
    return "".join(parts)


def _unhedged(whole: str, ev: ReviewEvidence | None = None) -> str:
    """``whole`` without its hedged clauses, the others joined by "; " (a clause is a
    statement of its own), but a relative clause kept after the clause it describes by
    ", " ("P-7, which is due on 26 December": the date is P-7's). ``ev``: the titles of
    the records the run read hedge nothing (``_titles_blanked``)."""
    out, kept = "", False
    for part in CLAUSE_BREAK.split(whole):
        said = _titles_blanked(part, ev) if ev is not None else part
        said = _OPEN_NEGATION.sub(" ", said)  # "is not done yet" states, it hedges nothing
        # a heading before a colon hedges nothing ("Status update: T-1042 is finished")
        if HEDGES.search(said[len(m.group(0)) - 1 :] if (m := _LABELLED.match(said.lower())) else said):
            kept = False
            continue
        if out:
            out += ", " if kept and _RELATIVE.match(part) else "; "
        out += part
        kept = True
    return out


#: where one clause of a sentence ends and another begins ("…, so it is not overdue")
CLAUSE_BREAK = re.compile(
    r",\s+(?=(?:so|but|and|which|while|because|although|though|yet)\b)|\s+[—–]\s+", re.I
)
#: a field said to be absent ("no due date", "due date not set"), nobody said to hold a
#: person's field, a record past its due date said not to be overdue
_NONE_SAID = (
    r"(?:no|without(?:\s+an?)?|missing(?:\s+an?)?|lacks(?:\s+an?)?|(?:does|do|did)\s+not\s+have(?:\s+an?)?)"
)
_UNSET = r"(?:is\s+)?(?:missing|not set|unset|empty)"
#: a field's name used as a modifier ("no due date change"): not the field said absent
_MODIFIED = r"(?:changes?|updates?|extensions?|shifts?|moves?|history|discussions?|info|information|notes?|"
_MODIFIED += r"comments?|questions?|reasons?|conflicts?|problems?|issues?|requests?)\b"
_NOBODY = re.compile(
    r"\b(?:nobody|no one|no-one|noone)\s+(?:is\s+|has been\s+)?(?:assigned|responsible|owns)\b"
    # "not unassigned" is a double negation: someone holds it
    r"|(?<!\bnot )(?<!n't )(?<!never )\bunassigned\b|\bnot assigned\b"
)
_NOT_OVERDUE = re.compile(
    r"\bnot\s+(?:yet\s+)?overdue\b|\bnot\s+yet\s+due\b"
    r"|\b(?:is|are|remains?|stays?|looks?|seems?)\s+(?:still\s+)?(?:on\s+(?:schedule|track|time)|ahead\s+of\s+schedule)\b"
    # (read from ``statements``, where "hasn't" is written out: ``claims.uncontracted``)
    r"|\b(?:deadline|due\s+date)\s+(?:has\s+|have\s+)?not\s+(?:yet\s+)?(?:passed|been\s+reached)\b"
)
#: how late a record is said to be: "12 days overdue", "overdue by two weeks", "a month late"
_AMOUNT = r"\d{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_OVERDUE_BY = re.compile(
    rf"\b(?P<n>{_AMOUNT})\s+(?:full\s+)?(?P<unit>days?|weeks?|months?)\s+"
    r"(?:overdue|late|past\s+due|past\s+(?:its|the)\s+(?:due\s+date|deadline)|behind\s+schedule)\b"
    rf"|\b(?:overdue|late)\s+(?:by|for)\s+(?P<n2>{_AMOUNT})\s+(?:full\s+)?(?P<unit2>days?|weeks?|months?)\b",
    re.I,
)
#: a word before the amount that makes it a bound or a guess: no statement of the amount
_ROUGHLY = re.compile(
    r"\b(?:about|around|nearly|almost|over|more\s+than|at\s+least|some|roughly|approximately|less\s+than|under|"
    r"up\s+to|close\s+to|well\s+over)\s*$",
    re.I,
)
#: a part of a unit ("half a month", "a quarter of a year"): no count of whole units
_PART_OF = re.compile(r"\b(?:half|quarter|third)(?:\s+of)?\s*$", re.I)
#: the larger part of an amount of two units before it ("2 weeks and 1 day late")
_AND_BEFORE = re.compile(rf"\b(?P<n>{_AMOUNT})\s+(?P<unit>weeks?|months?)\s*(?:,|and)\s*$", re.I)
#: days a unit of lateness may stand for, and how far off its count may be: "a month" is
#: said of 20 to 40 days
_UNIT_DAYS = {"day": (1, 1), "week": (7, 3), "month": (30, 10)}
#: a record said to be overdue as a fact ("is overdue", "overdue since"), not a risk
#: ("could be overdue", "will be overdue")
_OVERDUE = re.compile(
    r"\b(?:is|are|was|were|became|has been|have been|now|already)\s+(?:already\s+|now\s+|still\s+)?overdue\b"
    r"|\boverdue\s+(?:since|by|for)\b|^\W*overdue\b"
)
#: when a record became overdue: "overdue since 20 November", "became overdue 2 days ago"
_OVERDUE_SINCE = re.compile(
    r"\b(?:overdue\s+since|(?:became|went|fell)\s+overdue(?:\s+on)?)\s+(.{4,40})", re.I
)
#: how far a day counted back from the run's day may be off: "2 days ago" a day, "three
#: weeks ago" three days either way
_AGO_SLACK = re.compile(
    r"\b(?P<weeks>weeks?|fortnights?)\s+ago\b|\bdays?\s+ago\b|\byesterday\b|\btoday\b", re.I
)
_OVERDUE_DENIED = re.compile(r"\b(?:not|nothing|none|no|never|neither|nor|\w+n't)\b[^,;:.]*\boverdue\b")
_CLOSED = frozenset({"done", "closed", "completed", "paid", "resolved", "cancelled"})


def _nobody(value: Any) -> bool:
    """A field value that itself says nobody holds it ("nobody", "unassigned", "-")."""
    return str(value).strip().lower() in {"nobody", "none", "no one", "unassigned", "-", "n/a", "tbd", "null"}


@functools.lru_cache(maxsize=512)
def _said_absent(alias: str) -> re.Pattern[str]:
    """ "no due date", "due date missing": ``alias`` said to be absent. Compiled once per
    alias (a run's sentences each asked about every field's aliases: about 70 patterns
    built and looked up in ``re``'s cache a run)."""
    name = re.escape(alias)
    return re.compile(rf"\b{_NONE_SAID}\s+{name}\b(?!\s+{_MODIFIED})|\b{name}\s+{_UNSET}\b")


def _negated(sentence: str, rid: str, fields: dict[str, Any], today: dt.date | None) -> tuple[int, list[str]]:
    """A field the record holds, said to be absent or untrue of it: "has no due date"
    (it has one), "nobody is assigned" (someone is), "is not overdue" (its due date has
    passed and it is not done). Negations are otherwise no statements of fact."""
    lowered = sentence.lower()
    said = f'"{preview_of(sentence, 160)}"'
    out: list[str] = []
    nobody_said = False
    for key, value in fields.items():
        if value in (None, "", [], {}):
            continue
        aliases = [
            a for a in dict.fromkeys((*FIELD_ALIASES.get(key, ()), key.replace("_", " "))) if len(a) > 3
        ]
        for alias in aliases:
            # the pattern is compiled (once per process) only for a word the sentence holds
            if alias in lowered and _said_absent(alias).search(lowered):
                out.append(f"{said} says {rid} has no {alias}; {rid} says {key} {value}")
                break
        if (
            key in ("assignee", "owner")
            and _NOBODY.search(lowered)
            and not nobody_said
            and not _nobody(value)
        ):
            nobody_said = True
            out.append(f"{said} says {rid} has no {key}; {rid} says {key} {value}")
    due = parse_date(str(fields.get("due") or ""))
    status = str(fields.get("status", "")).lower()
    if due and today and due < today and status not in _CLOSED and _NOT_OVERDUE.search(lowered):
        out.append(f"{said} says {rid} is not overdue; {rid} was due {fields['due']} and is {status}")
    if due and today and due >= today and _OVERDUE.search(lowered) and not _OVERDUE_DENIED.search(lowered):
        out.append(f"{said} says {rid} is overdue; {rid} is due {fields['due']}, which has not passed")
    if due and today and status not in _CLOSED:
        out.extend(_late_by(sentence, said, rid, fields["due"], (today - due).days))
    since = _OVERDUE_SINCE.search(sentence)
    if due and since and DATE.match(since.group(1)):
        days = parse_dates(since.group(1), due.year, today)
        # overdue since the due day, or the day after it: either is how people say it; a
        # day counted back from today ("2 days ago") a day either way, weeks three days
        ago = _AGO_SLACK.search(since.group(1)[:30])
        slack = (3 if ago.group("weeks") else 1) if ago else 0
        if days and not any(-slack <= (d - due).days <= 1 + slack for d in days):
            out.append(
                f"{said} says {rid} is overdue since {days[0].isoformat()}; {rid} was due {fields['due']}"
            )
    return len(out), out


def _late_by(sentence: str, said: str, rid: str, due: Any, late: int) -> list[str]:
    """ "12 days overdue", "overdue by two weeks", "a month late" of a record ``late``
    days past its due date (negative: not due yet): the amount against the days, by the
    unit's reach (``_UNIT_DAYS``); an amount of two units ("2 weeks and 1 day") added
    up; a bound or a guess ("over two weeks", "about a month") held to half its size
    either way; a part of a unit ("half a month") left alone."""
    for m in _OVERDUE_BY.finditer(sentence):
        before = sentence[max(0, m.start() - 30) : m.start()]
        if _PART_OF.search(before):
            continue
        word, unit = (m.group("n"), m.group("unit")) if m.group("n") else (m.group("n2"), m.group("unit2"))
        per, slack = _UNIT_DAYS[unit.lower().rstrip("s")]
        days = _count_word(word) * per
        larger = _AND_BEFORE.search(before)
        if larger:  # "2 weeks and 1 day": the larger unit's days added, the smaller's slack
            days += _count_word(larger.group("n")) * _UNIT_DAYS[larger.group("unit").lower().rstrip("s")][0]
        if _ROUGHLY.search(before):
            # a bound or a guess ("about a month") is held only to half its size either way
            slack = max(slack, days // 2)
        if abs(late - days) > slack:
            when = f"{late} day(s) past it" if late > 0 else "not past it"
            told = f"{larger.group(0)} {m.group(0)}" if larger else m.group(0)
            return [f"{said} says {rid} is {' '.join(told.split())}; {rid} was due {due}, {when}"]
    return []


#: a count of comments someone made ("I left one comment", "posted two comments"), not
#: of those the record holds
_ACTED = re.compile(
    r"\b(?:left|posted|wrote|written|added|made|sent|created|leaves|posts|adds)\s+(?:only\s+|just\s+|exactly\s+)?$",
    re.I,
)


def _compare_count(sentence: str, rid: str, ev: ReviewEvidence) -> tuple[int, list[str]]:
    """A count of the record's comments, against the comments the run saw on it (its
    own left out): "T-1042 has 3 comments" when it held 5."""
    held = ((ev.snapshots or {}).get(rid) or {}).get("comments")
    if not isinstance(held, int):
        return 0, []
    for m in COUNTED.finditer(sentence):
        if _SUBSET.search(sentence[: m.start()]) or _ACTED.search(sentence[: m.start()]):
            continue
        word = m.group(1).lower()
        if not _count_of(word):
            continue  # "several comments", "new comments": no count
        said = _count_word(word)
        if said == held:
            return 1, []
        return 1, [f'"{preview_of(sentence, 160)}" counts {said} comment(s) on {rid}; the run saw {held}']
    return 0, []


#: "has three open invoices", "with 2 contacts": a count of records of a type tied to one
_HAS_COUNT = re.compile(
    r"\b(?:has|have|had|holds|with)\s+(?:only\s+|exactly\s+|just\s+)?(?P<n>\d{1,3}|a\s+single|one|two|three|four|five|six|seven|"
    r"eight|nine|ten|eleven|twelve)\s+(?:(?P<q>open|unpaid|outstanding|pending|active|closed|paid|settled|done)\s+)?"
    r"(?:(?:linked|related|attached|associated)\s+)?(?P<t>[a-z]+)\b",
    re.I,
)
_OPEN_WORDS = {"open", "unpaid", "outstanding", "pending", "active"}


def _linked_count(sentence: str, ev: ReviewEvidence, last: list[str]) -> list[str]:
    """ "Northwind Traders has three open invoices" where two invoices are tied to it (it
    links to them, or they to it), of the state the word gives: open ones are not done,
    closed, paid, resolved or cancelled. The record that has them is the subject right
    before the verb, by its id or its title, or the record the sentence before was about
    ("It has …"). Only a record type the workspace holds is counted."""
    out = []
    for m in _HAS_COUNT.finditer(sentence):
        rtype = _type_named(m.group("t").lower(), ev.types)
        rid = _subject_before(sentence[: m.start()], ev, last)
        if rid is None or rtype is None or _SUBSET.search(sentence[: m.start("n")]):
            continue
        said = _count_word(m.group("n"))
        tied = _tied(rid, rtype, ev)
        if m.group("q"):
            want_open = m.group("q").lower() in _OPEN_WORDS
            tied = [r for r in tied if (str(r.fields.get("status", "")).lower() not in _CLOSED) == want_open]
        if said != len(tied):
            out.append(
                f'"{preview_of(sentence, 160)}" counts {said} {m.group(0).split()[-1]} of {rid}; '
                f"the records tie {len(tied)} to it ({', '.join(r.id for r in tied) or 'none'})"
            )
    return out


def _type_named(word: str, types: frozenset[str]) -> str | None:
    """The record type a word names: the type, its plural ("invoices", "companies"), or a
    word the type shortens ("documents" for doc)."""
    for form in (
        word,
        word[:-1] if word.endswith("s") else "",
        word[:-3] + "y" if word.endswith("ies") else "",
    ):
        if form in types:
            return form
    return next((t for t in sorted(types) if len(t) >= 3 and word.startswith(t)), None)


def _subject_before(before: str, ev: ReviewEvidence, last: list[str]) -> str | None:
    """The record ``before`` ends with (the subject of the verb after it): its id, its
    title, or "it" / "the <its type>" for the one record the sentence before was about."""
    tail = before.rstrip().lower()
    bracketed = re.search(r"\(([^()]{1,40})\)$", tail)  # "Northwind Traders (CO-3) has …"
    if bracketed:
        tail = bracketed.group(1).strip()
    ids = ev.id_pattern.findall(tail.upper()) if ev.id_pattern else []
    if ids and tail.endswith(ids[-1].lower()):
        return ids[-1]
    for rid, seen in ev.seen.items():
        if len(seen.title) >= 4 and tail.endswith(seen.title.lower()):
            return rid
    pronoun = re.fullmatch(r"(?:.*[;:,.]\s*)?(?:it|the\s+(\w+))", tail)
    # "It has …", or the record's own type word ("The company has …"): not "the project"
    own = len(last) == 1 and last[0] in ev.seen
    if pronoun and own and pronoun.group(1) in (None, ev.seen[last[0]].type):
        return last[0]
    return None


def _linked_to(records: list[Record]) -> dict[str, frozenset[str]]:
    """id -> the ids of the records that link to it (built once per records version)."""
    out: dict[str, set[str]] = {}
    for r in records:
        for key in r.links:
            for target in r.linked_ids(key):
                out.setdefault(target, set()).add(r.id)
    return {k: frozenset(v) for k, v in out.items()}


def _tied(rid: str, rtype: str, ev: ReviewEvidence) -> list[Record]:
    """The records of ``rtype`` that ``rid`` links to or that link to ``rid``."""
    record = ev.by_id.get(rid)
    found = (
        {x for key in (record.links if record else {}) for x in record.linked_ids(key)} if record else set()
    )
    found |= ev.view.derived(("grounded.linked_to",), _linked_to).get(rid, frozenset())
    return sorted(
        (ev.by_id[x] for x in found if x in ev.by_id and ev.by_id[x].type == rtype), key=lambda r: r.id
    )


def _count_of(word: str) -> bool:
    """Whether ``word`` is a count ``_count_word`` reads (figures, a number word in any of
    the languages, "no", "a single")."""
    word = " ".join(word.lower().split())
    return word.isdigit() or word in ("no", "a single") or word in _UNITS or word in _FOREIGN_UNITS


def _count_word(word: str) -> int:
    """A count as written: figures, a number word, "a" / "an" / "a single", "no"."""
    word = " ".join(word.lower().split())
    if word.isdigit():
        return int(word)
    return {"a": 1, "an": 1, "a single": 1, "no": 0}.get(word, _UNITS.get(word, _FOREIGN_UNITS.get(word, 0)))


NO_COMMENT_SINCE = re.compile(
    r"\b(?:(?:nobody|no one|no-one|none)\s+(?:else\s+)?(?:has\s+|have\s+)?"
    r"(?:commented|written|replied|posted)|no\s+(?:new\s+|further\s+|other\s+)?(?:comments?|replies|updates)\b)[^.;]*?\bsince\b(?P<since>[^.;]{0,60})",
    re.I,
)


def _no_comment_since(sentence: str, rid: str, ev: ReviewEvidence) -> list[str]:
    """ "Nobody has commented on T-1042 since Lena on 27 November" where a comment the
    run saw on it is newer than that day (or than that person's last comment)."""
    m = NO_COMMENT_SINCE.search(sentence)
    snap = ev.seen.get(rid)
    if m is None or snap is None or not snap.comments:
        return []
    since = m.group("since")
    today = _run_day(ev)
    day = parse_date(since, today.year if today else None, today) if DATE.search(since) else None
    if day is None:
        named = [c for c in snap.comments if c.author and c.author.lower() in since.lower()]
        day = max((d for d in (_day_of(c.created) for c in named) if d is not None), default=None)
    if day is None:
        return []
    newer = [c for c in snap.comments if (_day_of(c.created) or day) > day]
    if not newer:
        return []
    c = newer[-1]
    return [
        f'"{preview_of(sentence, 160)}" says nobody commented since {day.isoformat()}; '
        f"{c.author} commented on {rid} on {str(c.created)[:10]}"
    ]


def _day_of(stamp: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(stamp)[:10])
    except ValueError:
        return None


_MONEY_KEYS = ("amount", "total", "price", "balance", "value", "cost", "fee", "sum", "net", "gross")


def _held_amounts(fields: dict[str, Any]) -> list[float]:
    """The amounts a record holds, in whatever money field ("amount", "total", ...)."""
    return [
        n
        for n in (_number_of(v) for k, v in fields.items() if any(w in k.lower() for w in _MONEY_KEYS))
        if n is not None
    ]


def _same_amount(said: float, held: float) -> bool:
    """Whether an amount stated is the one held, give or take rounding (half a percent)."""
    return abs(said - held) <= 0.005 * max(1.0, abs(held))


def _amount_currency(sentence: str, rid: str, fields: dict[str, Any]) -> list[str]:
    """A record's own amount given in another currency wherever the sentence about it
    states it ("INV-2044 (licences, $3,150)" for 3,150 EUR), not only after the field's
    name."""
    if not isinstance(fields.get("currency"), str) or not any(c.isdigit() for c in sentence):
        return []
    held = _held_amounts(fields)
    out = []
    for m in MONEY.finditer(sentence):
        figure, stated = money_parts(m)
        number = parse_number(figure)
        if number is not None and any(_same_amount(number, h) for h in held):
            out += _other_currency(f'"{preview_of(sentence, 160)}"', stated, rid, fields)
    return out


#: an amount said of a record right after its id ("INV-2044 is 12,400 EUR", "INV-2044 (licences)
#: amounts to …"): the record's amount, whatever field holds it
_AMOUNT_AFTER_ID = (
    r"\s*(?:\([^()]{0,60}\)\s*)?(?:is|was|amounts?\s+to|comes?\s+to|totals?|totalling|of|for|:)\s+"
)


def _amount_after_id(sentence: str, rid: str, fields: dict[str, Any]) -> list[str]:
    held = _held_amounts(fields)
    if not held:
        return []
    out = []
    for m in re.finditer(rf"{re.escape(rid)}{_AMOUNT_AFTER_ID}", sentence):
        money = MONEY.match(sentence, m.end())
        if money is None:
            continue
        number = parse_number(money_parts(money)[0])
        if number is not None and not any(_same_amount(number, h) for h in held):
            shown = ", ".join(f"{h:,.2f}".rstrip("0").rstrip(".") for h in held)
            said = money.group(0).strip()
            out.append(f'"{preview_of(sentence, 160)}" gives {rid} the amount {said}; {rid} says {shown}')
    return out


def _other_currency(said: str, stated: str | None, rid: str, fields: dict[str, Any]) -> list[str]:
    """The right figure in another currency ("12,400 USD" for 12400 EUR)."""
    held = fields.get("currency")
    if not stated or not isinstance(held, str):
        return []
    code = CURRENCY_CODES.get(stated.lower(), stated.upper())
    if code == held.upper():
        return []
    return [f"{said} gives the currency {stated}; {rid} says currency {held}"]


def _sections(ev: ReviewEvidence) -> frozenset[str]:
    """The labels the instructions give the output's lines ("'Owner:'"): a line under
    such a label says what the instructions mean by it, not the field of that name."""
    instructions = str((ev.run.config or {}).get("instructions", "")).lower()
    return frozenset(
        m.group(1).strip() for m in re.finditer(r"['\"“]([a-z][a-z ]{1,30}):['\"”]", instructions)
    )


def _run_day(ev: ReviewEvidence) -> dt.date | None:
    """The day the run ran, what "today" and "in 3 days" count from."""
    try:
        return dt.date.fromisoformat(str(ev.run.created)[:10])
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def whole_word(word: str) -> re.Pattern[str]:
    """``word`` as a whole word, compiled once per word: patterns built around each
    record's id or each name at every run overflowed ``re``'s own cache (512), so a batch
    compiled them again at every run (a fifth of a run's CPU)."""
    return re.compile(rf"\b{re.escape(word)}\b")


_DATE_WORD = re.compile(r"\s*(?:date\s*)?")
_FOR_OF = re.compile(r"(?:for|of)\s+")
_SPACES = re.compile(r"\s*")
#: a linking word, and a word that only stresses the value ("due exactly three weeks ago",
#: "due on precisely 14 November", "amount exactly 12,400"): the value follows
#: the words that name one person field alone (not "owner", which a task's assignee is too)
_ONE_FIELD = {"assignee": ("assigned to", "assignee"), "reporter": ("reported by", "reporter")}
#: a due date said as a weekday alone ("due Wednesday") or as a range ("due between 14 and 18
#: December", "from 3 to 5 Dec"): the days it allows
_BARE_WEEKDAY = re.compile(rf"^(?:on\s+|this\s+)?({'|'.join(WEEKDAY_NAMES)})\b(?!\s*,?\s*\d)", re.I)
_RANGE = re.compile(r"^(?:between|from)\s+(.{1,25}?)\s+(?:and|to|until|-|–)\s+(.{3,30})", re.I)


def _weekday_or_range(rest: str, year: int, today: dt.date | None) -> list[dt.date]:
    """The days "Wednesday" (the one before the run's day or the one after: a reader may
    mean either) or "between 14 and 18 December" (each day of it) stand for."""
    weekday = _BARE_WEEKDAY.match(rest)
    if weekday is not None and today is not None:
        n = WEEKDAY_NAMES.index(weekday.group(1).lower())
        ahead = today + dt.timedelta(days=(n - today.weekday()) % 7)
        return [ahead, ahead - dt.timedelta(days=7)] if ahead != today else [today]
    span = _RANGE.match(rest)
    if span is None:
        return []
    end = parse_dates(span.group(2), year, today)
    if not end:
        return []
    start = parse_dates(span.group(1), end[0].year, today)
    if not start and span.group(1).strip().isdigit():  # "between 14 and 18 December"
        with contextlib.suppress(ValueError):
            start = [end[0].replace(day=int(span.group(1).strip()))]
    if not start or not start[0] <= end[0] or (end[0] - start[0]).days > 62:
        return []
    return [start[0] + dt.timedelta(days=k) for k in range((end[0] - start[0]).days + 1)]


#: field words a date comes before ("am 02.12.2026 fällig"; "due to the holiday" is no due date)
DATE_BEFORE = frozenset({"fällig"})
_LINKING = re.compile(
    r"(?:(?:(?:is|was|of|on|by|at|ist|war|am|bis|zum|est|était|le|au|es|era|el|il|è|é|em|op|per)\b|[:=])\s*){0,2}"
    r"(?:(?:exactly|precisely)\s+(?:on\s+)?)?"
)  # "due on", "Frist: am", "échéance : le" (the languages the form check reads)


def _skip(pattern: re.Pattern[str], text: str, at: int) -> int:
    m = pattern.match(text, at)
    return m.end() if m else at


def _field_named(lowered: str, alias: str, rid: str) -> tuple[int, int] | None:
    """Where the first mention of a field (``alias``) starts, and where what is said of
    it starts: after "date", "for/of <rid>" and a linking word ("due date for T-1 is")."""
    if alias not in lowered:
        return None  # no pattern compiled for a word the sentence does not hold
    m = whole_word(alias).search(lowered)
    if m is None:
        return None
    end = _skip(_DATE_WORD, lowered, m.end())
    named = _FOR_OF.match(lowered, end)
    if named and lowered.startswith(rid, named.end()):
        end = _skip(_SPACES, lowered, named.end() + len(rid))
    return m.start(), _skip(_LINKING, lowered, end)


def _compare_fields(
    sentence: str,
    rid: str,
    rtype: str,
    fields: dict[str, Any],
    ev: ReviewEvidence,
    known: dict[str, str],
    near: bool = False,
) -> tuple[int, list[str]]:
    said = f'"{preview_of(sentence, 160)}"'
    lowered = sentence.lower()
    problems, compared = [], 0
    # a value stated well before the record is named is about something else ("the task
    # was due on 3 December and the launch it feeds is P-7")
    named_at = lowered.find(rid.lower())
    sections = _sections(ev)
    for key, value in fields.items():
        if value is None or isinstance(value, dict | list):
            continue
        aliases = (*FIELD_ALIASES.get(key, ()), key.replace("_", " "))
        day = parse_date(str(value)) if isinstance(value, str) else None
        for alias in dict.fromkeys(aliases):
            at = _field_named(lowered, alias, rid.lower())
            if at is None or (named_at > 0 and at[0] < named_at - 30):
                continue
            if (alias in sections or (alias == "owner" and key != "owner")) and not lowered[: at[0]].strip():
                # "Owner: …" as a line's label: the instructions' own section (who acts
                # next, in the built-in template), not a task's assignee; a record whose
                # own field is "owner" (a project's) is held to it
                continue
            rest = sentence[at[1] : at[1] + 40]
            if day is not None:
                stated = parse_dates(rest, day.year, _run_day(ev)) if DATE.match(rest) else []
                if not stated:
                    stated = _weekday_or_range(rest, day.year, _run_day(ev))
                if not stated and alias in DATE_BEFORE:  # "war am 02.12.2026 fällig"
                    before = [m for m in DATE.finditer(sentence[max(0, at[0] - 40) : at[0]])]
                    if before and not sentence[max(0, at[0] - 40) : at[0]][before[-1].end() :].strip():
                        stated = parse_dates(before[-1].group(0), day.year, _run_day(ev))
                if stated:
                    compared += 1
                    if day not in stated:
                        given = stated[0].isoformat()
                        problems.append(f"{said} gives {key} {given}; {rid} says {key} {value}")
                break
            number = _number_of(value)
            if number is not None and key not in ("id",):
                m = re.match(rf"(?:({CURRENCY})\s?)?({NUMBER})(?:\s?({CURRENCY})(?!\w))?", rest)
                if m and not DATE.match(rest) and not _counts_else(rest[m.end(2) :]):
                    stated_n = parse_number(m.group(2))
                    compared += 1
                    if stated_n is not None and not _same_amount(stated_n, number):
                        problems.append(f"{said} gives {key} {m.group(2)}; {rid} says {key} {value}")
                    problems += _other_currency(said, m.group(1) or m.group(3), rid, fields)
                break
            if key in PERSON_FIELDS or key == "assignee":
                m = NAME.match(rest)
                if (m and m.group(1) in known) or (m and any(_same_person(m.group(1), p) for p in known)):
                    compared += 1
                    # a word that names this field alone ("assigned to") is held to it; one
                    # that several fields share ("owner", "belongs to") to any of them
                    others = () if alias in _ONE_FIELD.get(key, ()) else PERSON_FIELDS
                    if not _same_person(m.group(1), str(value)) and not any(
                        _same_person(m.group(1), str(fields.get(k, ""))) for k in others
                    ):
                        problems.append(f"{said} gives {key} {m.group(1)}; {rid} says {key} {value}")
                break
        if key != "status" and isinstance(value, str) and key not in PERSON_FIELDS:
            values = _enum_values(ev, rtype, key)
            label = re.escape(key.replace("_", " "))
            for word in sorted(values, key=len, reverse=True):
                said_value = re.escape(word)
                if re.search(
                    rf"\b{label}\b\s*(?:is|:|=|of)?\s*{said_value}\b|\b{said_value}[\s-]+{label}\b", lowered
                ):
                    compared += 1
                    if word != value.lower():
                        problems.append(f"{said} gives {key} {word!r}; {rid} says {key} {value!r}")
                    break
        if key in PERSON_FIELDS and isinstance(value, str):
            role = "|".join(re.escape(a) for a in ("assignee", "owner", "lead", "responsible person"))
            for m in re.finditer(rf"{NAME.pattern}\s+(?:is|remains)\s+(?:the\s+)?(?:{role})\b", sentence):
                said_name = m.group(1)
                if said_name in known or any(_same_person(said_name, p) for p in known):
                    compared += 1
                    if not any(_same_person(said_name, str(fields.get(k, ""))) for k in PERSON_FIELDS):
                        problems.append(f"{said} gives {key} {said_name}; {rid} says {key} {value}")
        if key == "status" and isinstance(value, str):
            told = _said_done_or_open(lowered, named_at, rid, rtype, value.lower() in _CLOSED)
            if told:
                compared += 1
                problems.append(f"{said} says {rid} is {told}; {rid} says status {value!r}")
                continue
        if key == "status" and isinstance(value, str):
            words = _status_words(ev, rtype)
            # "T-1042's product list is done": the list is, not the record
            owned = named_at >= 0 and bool(_POSSESSED.match(lowered, named_at + len(rid)))
            for word in sorted(words, key=len, reverse=True):
                pattern = rf"\bstatus\b(?:\s+of\s+\S+)?\s*(?:is|:|=|of)?\s*['\"]?{re.escape(word)}\b"
                if not owned:
                    marked = rf"{_ADVERBS}(?:marked\s+(?:as\s+)?)?"
                    pattern += rf"|\b(?:is|are|remains|stays|still)\s+{marked}{re.escape(word)}\b"
                if near:
                    pattern += rf"|^\W*\(?{re.escape(word)}\b"
                if re.search(pattern, lowered):
                    compared += 1
                    if word != value.lower():
                        problems.append(f"{said} gives status {word!r}; {rid} says status {value!r}")
                    break
            else:
                n, other = _other_status(lowered, said, rid, value)
                compared += n
                problems += other
    return compared, problems


#: an id followed by something it has ("T-1042's product list"), other than its status
_POSSESSED = re.compile(r"['’]s\s+(?!status\b|state\b)\w")
#: a record said to be done right after its id ("T-1042 (Lena Fischer, due …) is completed"),
#: whatever the type calls done: not a condition ("is complete once legal agrees")
_DONE_WORDS = r"completed|complete|done|finished|closed|resolved|cancell?ed|settled|paid|wrapped\s+up"
_OPEN_SAID = r"open|still\s+open|in\s+progress|ongoing|unresolved|outstanding"
_OPEN_SAID += r"|not\s+(?:yet\s+)?(?:been\s+)?(?:done|finished|completed|closed|paid|started)"
#: "done by Friday", "by the end of the week", "by 3 Dec": a deadline; "done by Tom Reyes" is
#: who did it, and says done all the same
_BY_WHEN = (
    r"by\s+(?:the\s+)?(?:end|start|middle|close|time|deadline|next|this|then|now|tomorrow|today|"
    rf"tonight|noon|midnight|eod|eow|cob|\d|{'|'.join(WEEKDAY_NAMES)}|{MONTH_WORDS})"
)
_NOT_A_CONDITION = rf"(?!\s+(?:once|when|after|until|if|as\s+soon|{_BY_WHEN}|in\s+full\s+once)\b)"
_VERB_OF = r"(?:is|was|has\s+been|have\s+been|has|have|are|were|remains|stays)\s+"
#: words that leave what a verb states as it is ("is currently in progress", "is now
#: officially done"); a hedge ("nearly", "almost", "probably") is not one of them
_ADVERBS = (
    r"(?:(?:still|now|already|currently|presently|actually|officially|really|indeed|also|fully|"
    r"definitely|clearly|right\s+now|at\s+the\s+moment|as\s+of\s+today)\s+){0,2}"
)
_VERB_OF += _ADVERBS
#: after the id: a verb and the word, or a dash or colon and the word alone ("T-1043 — done.",
#: whose dash the clause reading writes "; ", not "T-1042: done with the product list")
_AFTER_ID = r"^\W*?(?:\([^)]{0,80}\)\W*|,[^,]{0,60},\s*)?"
_ALONE = r"(?=\s*(?:[.;!)]|$))"
#: or the word alone in brackets right after the id (or its quoted title): "T-2001 (closed)"
_SAID_DONE = re.compile(
    rf"{_AFTER_ID}(?:{_VERB_OF}(?:marked\s+(?:as\s+)?)?(?P<w>{_DONE_WORDS})\b{_NOT_A_CONDITION}"
    rf"|[—–:;-]+\s*(?P<w2>{_DONE_WORDS}){_ALONE})"
    rf"|^\s*\(\s*(?P<w3>{_DONE_WORDS})\s*\)"
)
_SAID_OPEN = re.compile(
    rf"{_AFTER_ID}(?:{_VERB_OF}(?P<w>{_OPEN_SAID})\b|[—–:;-]+\s*(?P<w2>{_OPEN_SAID}){_ALONE})"
    rf"|^\s*\(\s*(?P<w3>{_OPEN_SAID})\s*\)"
)


def _said_done_or_open(lowered: str, named_at: int, rid: str, rtype: str, closed: bool) -> str | None:
    """What a sentence says right after the record's id ("T-1042 (…) is completed",
    "T-1043 — done", "INV-2031 was settled"), or of "the <its type>" ("the task is
    closed"): done of an open record, or open of a closed one; None when it says neither."""
    said = _SAID_OPEN if closed else _SAID_DONE
    if named_at >= 0:
        m = said.match(lowered[named_at + len(rid) :])
        if m:
            return " ".join((m.group("w") or m.group("w2") or m.group("w3")).split()).replace(
                "not been ", "not "
            )
    for m in re.finditer(rf"\b(?:the|this)\s+{re.escape(rtype)}\b", lowered):
        found = said.match(lowered[m.end() :])
        if found and found.group("w"):  # a verb after "the task" ("the task — done" is a label)
            return " ".join(found.group("w").split())
    return None


#: "the status is X" / "status of T-1042: X", whatever X is
_STATUS_SAID = re.compile(
    r"\bstatus\b(?:\s+of\s+\S+)?\s*(?:is|:|=)\s*['\"]?([a-z][a-z _-]{1,30}?)['\"]?\s*(?:[.;,)]|$)"
)
_NO_VALUE = frozenset({"unchanged", "unknown", "unclear", "the same", "same", "as before", "as is"})


def _other_status(lowered: str, said: str, rid: str, value: str) -> tuple[int, list[str]]:
    """A status stated outright that no record of the type holds ("the status is
    blocked" of a task in progress): it is not the record's."""
    m = _STATUS_SAID.search(lowered)
    if m is None:
        return 0, []
    word = m.group(1).strip()
    if word in _NO_VALUE or word.startswith(("still ", "not ", "now ")):
        return 0, []
    if _status_key(word) == _status_key(value):
        return 1, []
    return 1, [f"{said} gives status {word!r}; {rid} says status {value!r}"]


def _status_key(value: str) -> str:
    return re.sub(r"[\s_-]+", " ", value.lower()).strip()


def _types(sentence: str, ev: ReviewEvidence) -> list[str]:
    """A record named with another type's word ("invoice T-1042")."""
    if ev.id_pattern is None:
        return []
    problems = []
    types = ev.types
    for m in ev.id_pattern.finditer(sentence):
        rid = m.group(0)
        record = ev.by_id.get(rid)
        before = re.search(r"(\w+)\s*$", sentence[: m.start()])
        word = before.group(1).lower() if before else ""
        if record is not None and word in types and word != record.type:
            problems.append(f'"{preview_of(sentence, 160)}" calls {rid} a {word}; it is a {record.type}')
    return problems


def _titles(text: str, ev: ReviewEvidence) -> list[str]:
    """A record named with another record's title (``T-1043 "Book launch webinar"``)."""
    problems = []
    for rid, title, quoted in _named_titles(text):
        record = ev.by_id.get(rid)
        if record is None or not title:
            continue
        other = next((r for r in _titled(ev).get(title.lower(), []) if r.id != rid), None)
        if other is not None and not record.title.lower().startswith(title.lower()):
            problems.append(
                f'names {rid} "{title}": that is the title of {other.id}; {rid} is "{record.title}"'
            )
        elif other is None and quoted and _misquoted(title, record.title):
            problems.append(f'quotes the title of {rid} as "{title}"; its title is "{record.title}"')
        elif other is None and not quoted and _one_word_swapped(title, record.title):
            problems.append(f'names {rid} "{title}"; its title is "{record.title}"')
    # an apposition ("project P-7, Northwind US launch, which …"): held to the title only
    # when it is the title with one word swapped (a list of ids and names is no apposition)
    for m in APPOSITION.finditer(text):
        record = ev.by_id.get(m.group(1))
        if record is not None and _one_word_swapped(m.group(2), record.title):
            problems.append(f'names {record.id} "{m.group(2)}"; its title is "{record.title}"')
    return problems


APPOSITION = re.compile(r"(?<![\w-])([A-Z]+-\d+),\s+([^,;:.\n()\"“”„]{4,80}),")


def _one_word_swapped(said: str, title: str) -> bool:
    """Unquoted, a title is held to the record's only when it is that title with one word
    swapped ("Translate product catalogue into French" for "… into German", "Northwind US
    launch" for "Northwind EU launch"): three words or more, the others in their places.
    Any other words after an id ("in progress, Lena Fischer") are no title."""
    a = [w.strip(".,:;!?\"'„“”«»") for w in said.lower().split()]
    b = [w.strip(".,:;!?\"'„“”«»") for w in title.lower().split()]
    if len(a) != len(b) or len(b) < 3:
        return False
    swapped = [x for x, y in zip(a, b, strict=True) if x != y]
    # "the launch webinar" for "Book launch webinar": an article is a description's, no name
    return len(swapped) == 1 and swapped[0] not in _DETERMINERS


_DETERMINERS = frozenset({"the", "a", "an", "its", "their", "our", "this", "that", "his", "her", "your"})


#: words put in someone's mouth: "Lena Fischer wrote that …", "On 2026-11-20 Priya Shah
#: commented: …"
ATTRIBUTED = re.compile(
    r"(?P<who>\b[A-Z][a-z\u00e0-\u00ff'’-]+(?:\s+[A-Z][a-z\u00e0-\u00ff'’-]+){1,2})\s+"
    r"(?:wrote|writes|said|says|commented|comments|reported|reports|noted|notes|mentioned|mentions|"
    r"confirmed|confirms|added|adds)\b(?:(?P<when>\s+on\s+[^,:;]{4,30}?|\s+(?:the\s+day\s+before\s+"
    r"yesterday|yesterday|today|this\s+morning|\d{1,2}\s+days?\s+ago|(?:a|one|two|three)\s+days?\s+ago))"
    r"(?=[,:]|\s+that\b))?[,:]?\s*(?:that\s+)?"
    r"(?P<said>[^.;\n]{8,240})"
)


def _attributions(ev: ReviewEvidence, known: dict[str, str]) -> list[str]:
    """What the output says someone wrote, against the comments the run saw: words one
    person wrote put in another's mouth, or a comment given another day than the one it
    was written on. Only where a comment the run saw says it (most of its words): a
    paraphrase of nothing is for ``provenance`` to find."""
    text = ev.output
    if not any(s.comments for s in ev.seen.values()):
        return []
    comments = [(rid, c) for rid, s in ev.seen.items() for c in s.comments]
    words: list[set[str]] = []  # each comment's content words, made at the first attribution
    out = []
    for m in ATTRIBUTED.finditer(text):
        who = m.group("who")
        if who not in known and not any(_same_person(who, p) for p in known):
            continue
        claimed = content_words(m.group("said"))
        if len(claimed) < 3:
            continue
        words = words or [content_words(c.text) for _rid, c in comments]
        matching = [
            rc for rc, w in zip(comments, words, strict=True) if len(claimed & w) >= 0.6 * len(claimed)
        ]
        if not matching:
            continue
        theirs = [(rid, c) for rid, c in matching if _same_person(who, c.author)]
        if not theirs:
            rid, c = matching[0]
            out.append(f'attributes to {who} what {c.author} wrote on {rid}: "{preview_of(c.text, 100)}"')
            continue
        when = _said_when(m, text)
        dates = list(DATE.finditer(when))
        # a day counted from the run's ("yesterday", "2 days ago") is that day
        year = _year_of(theirs[0][1].created)
        days = parse_dates(when[dates[-1].start() :], year, _run_day(ev)) if dates else []
        if days and not any(d.isoformat() == str(c.created)[:10] for d in days for _rid, c in theirs):
            rid, c = theirs[0]
            out.append(
                f"dates {who}'s comment on {rid} {days[0].isoformat()}; it was written {str(c.created)[:10]}"
            )
    return out


def _said_when(m: re.Match[str], text: str) -> str:
    """The words that date what someone wrote: "wrote on 3 December (that) …", "wrote on
    3 December the glossary …" (the date opens what was said), or the words before the
    name ("On 3 December Priya wrote …")."""
    if m.group("when"):
        return str(m.group("when"))
    opening = re.match(r"on\s+", m.group("said"))
    if opening:
        date = DATE.match(m.group("said"), opening.end())
        if date:
            return date.group(0)
    before = re.split(r"[;.!?]", text[max(0, m.start() - 30) : m.start()])[-1]
    # only a date that opens the clause of the name dates what was said ("On 3 December
    # Priya wrote"): "due since 2026-11-14 and Lena says …" dates the task, not Lena's words
    dates = list(DATE.finditer(before))
    if not dates:
        return ""
    date = dates[-1]
    if before[date.end() :].strip(" ,") or not re.search(r"\bon\s*$", before[: date.start()], re.I):
        return ""
    return date.group(0)


def _year_of(stamp: str) -> int | None:
    return int(stamp[:4]) if stamp[:4].isdigit() else None


#: a quotation in double quotes of any kind (an apostrophe is no quotation mark: "don't …
#: can't" is no quote)
DOUBLE_QUOTED = re.compile(OPENING_QUOTE + r"[^\"\n]{8,}\"|“[^”\n]{8,}”|„[^“”\n]{8,}[“”]|«[^»\n]{8,}»")


#: what introduces the worker's own words in quotes, offered for a person to use
OWN_WORDS = re.compile(
    r"\b(?:draft(?:ed)?|suggested|proposed|possible|sample|template)\s+(?:reply|replies|answer|message|"
    r"e-?mail|text|wording|comment|note|response)\b|"
    r"\b(?:you|we) (?:could|might|can) (?:say|write|reply|answer)\b",
    re.I,
)


def _invented_quotes(ev: ReviewEvidence, instructions: str) -> list[str]:
    """A quotation of five words or more found nowhere in what the run read (nor in its
    instructions), nor close to any sentence of it: words invented and given as the
    records' own ("Evidence: Lena wrote \"The agency has not started …\"")."""
    import difflib

    seen = " ".join(ev.seen_lower.split())
    out = []
    # JSON's strings are values, not quotations: read as its key: value lines
    shown = as_statements(ev.output)
    for m in list(DOUBLE_QUOTED.finditer(shown))[:10]:
        quote = " ".join(m.group(0).strip('"“”„«»').lower().split()).strip(" .…")
        if len(quote.split()) < 5 or quote in seen or quote in instructions:
            continue
        if OWN_WORDS.search(shown[max(0, m.start() - 80) : m.start()]):
            continue  # "Draft reply for Aisha: "…"": the worker's own words, offered
        words = content_words(quote)
        rarest = max(words, key=len, default="")
        close = False
        # only the lines holding its longest word can be close to it (a record with
        # hundreds of long comments is not tokenised once per quotation)
        for line in (x for x in ev.seen_lower.splitlines() if rarest in x):
            if len(words & content_words(line)) >= 0.5 * len(words):
                line = " ".join(line.split())
                if difflib.SequenceMatcher(None, quote, line).find_longest_match().size >= 0.8 * len(quote):
                    close = True
                    break
        if not close:
            out.append(
                f'quotes "{preview_of(m.group(0).strip(chr(34)), 100)}", words no record the run read holds'
            )
    return out


_SINGLE = r"['‘]((?:[^'‘’\n]|['’](?=\w)){4,120})['’](?!\w)"
_SINGLE_AFTER = re.compile(rf"(?<![\w-])([A-Z]+-\d+)\s*\(?\s*{_SINGLE}")
_SINGLE_BEFORE = re.compile(rf"(?<!\w){_SINGLE}\s*\(\s*([A-Z]+-\d+)\s*\)")


_TITLE_LABEL = re.compile(r"^\W*(?:title|name)\s*:\s*(.{4,120}?)[\s.]*$", re.I)


def _title_label(sentence: str, rid: str, ev: ReviewEvidence) -> list[str]:
    """ "title: Invoice 2031 — onboarding" under "invoice: INV-2044" (a JSON key, a form
    line): the title given to the record before it, held to its title as a quoted one is."""
    m = _TITLE_LABEL.match(sentence)
    record = ev.by_id.get(rid)
    if m is None or record is None:
        return []
    said = m.group(1).strip()
    other = next((r for r in _titled(ev).get(said.lower(), []) if r.id != rid), None)
    if other is not None and not record.title.lower().startswith(said.lower()):
        return [f'gives {rid} the title "{said}": that is the title of {other.id}; {rid} is "{record.title}"']
    if other is None and _misquoted(said, record.title):
        return [f'gives {rid} the title "{said}"; its title is "{record.title}"']
    return []


def _named_titles(text: str) -> list[tuple[str, str, bool]]:
    """(id, title, quoted) where the output names a record by id and title together: the
    title quoted or in brackets after the id (``T-1042 "…"``), or quoted before it
    (``"…" (P-7)``). Text in brackets may be anything ("980 EUR, support plan"): only a
    quoted one is held to the record's title."""
    after = r"(?<![\w-])([A-Z]+-\d+)\s*(\(\s*[\"“„«»‹›]?|[\"“„«»‹›])([^\"”“«»‹›)\n]{4,120})[\"”“«»‹›)]"
    before = r"[\"“„«»‹›]([^\"”“«»‹›\n]{4,120})[\"”“«»‹›]\s*\(\s*([A-Z]+-\d+)\s*\)"
    found = [
        (m.group(1), m.group(3), any(q in m.group(2) for q in '"“„«»‹›')) for m in re.finditer(after, text)
    ]
    found += [(m.group(2), m.group(1), True) for m in re.finditer(before, text)]
    # in single quotes: an apostrophe inside ("Lena's desk") is no closing quote
    found += [(m.group(1), m.group(2), True) for m in _SINGLE_AFTER.finditer(text)]
    found += [(m.group(2), m.group(1), True) for m in _SINGLE_BEFORE.finditer(text)]
    return [(rid, title.strip().rstrip("…").strip(), quoted) for rid, title, quoted in found]


def _misquoted(said: str, title: str) -> bool:
    """A quoted title close to the record's but not it ("… into French" for "… into
    German"); a shortened one, or text that is no title at all, is not."""
    import difflib

    a, b = (" ".join(t.lower().replace("’", "'").split()).strip(" .…\"'„“”«»‹›") for t in (said, title))
    if not a or a in b:  # the title, or a part of it ("support plan" of "Invoice 2050 — support plan")
        return False
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.6


def _titled(ev: ReviewEvidence) -> dict[str, list[Record]]:
    """Records by their title in lower case (titles of eight characters or more)."""

    def build(records: list[Record]) -> dict[str, list[Record]]:
        out: dict[str, list[Record]] = {}
        for r in records:
            if len(r.title) >= 8:
                out.setdefault(r.title.lower(), []).append(r)
        return out

    return ev.view.derived("grounded.titled", build)


def _distinct_titles(records: list[Record]) -> list[tuple[str, Record]]:
    """(title in lower case, record) for titles specific enough to tell a record by:
    twelve characters or more, two words or more."""
    return [(r.title.lower(), r) for r in records if len(r.title) >= 12 and len(r.title.split()) >= 2]


#: the length of the head by which ``_titles_in`` finds a title in a text
HEAD = 12


def _title_heads(records: list[Record]) -> dict[str, list[tuple[int, str, Record]]]:
    """The distinct titles (``_distinct_titles``: twelve characters or more, and lower
    case never shortens one) by their first ``HEAD`` characters, each with its place in
    that list."""
    heads: dict[str, list[tuple[int, str, Record]]] = {}
    for at, (title, record) in enumerate(_distinct_titles(records)):
        heads.setdefault(title[:HEAD], []).append((at, title, record))
    return heads


def _titles_in(lowered: str, heads: dict[str, list[tuple[int, str, Record]]]) -> list[tuple[str, Record]]:
    """The distinct titles that ``lowered`` holds, in the order ``_distinct_titles``
    gives them: what ``title in lowered`` for each of them finds, at a cost that grows
    with the text, not with the workspace (a run's review once asked every record's
    title: 31 % of a run's time among 20,000 records). ``heads``: ``_title_heads``."""
    found: dict[int, tuple[str, Record]] = {}
    for start in range(len(lowered) - HEAD + 1):
        for at, title, record in heads.get(lowered[start : start + HEAD], ()):
            if at not in found and lowered.startswith(title, start):
                found[at] = (title, record)
    return [found[at] for at in sorted(found)]


# -- provenance ----------------------------------------------------------------------


def provenance_check(ev: ReviewEvidence) -> Check:
    """Facts about records the run never read: named by id, by title, by a person
    only those records mention, or an amount none of the records it read holds."""
    if ev.snapshots is None:
        return Check("provenance", PROVENANCE_TITLE, UNKNOWN, [OLD_RUN])
    known = people(ev)
    text = spelled_amounts(QUOTED.sub(" ", as_statements(with_names(ev.output, known))))
    if not text.strip():
        return Check("provenance", PROVENANCE_TITLE, PASS, ["no output: nothing is stated"])
    lowered = text.lower()
    seen = ev.seen_lower
    instructions = str((ev.run.config or {}).get("instructions", "")).lower()
    problems = []
    for rid in dict.fromkeys(ev.id_pattern.findall(text) if ev.id_pattern else []):
        if rid not in ev.seen_ids and rid not in ev.linked_ids:  # a link's id was on a record read
            problems.append(f"names {rid}, a record the run never read")
    for title, record in _titles_in(lowered, ev.view.derived("grounded.title_heads", _title_heads)):
        if record.id in ev.seen_ids:
            continue
        if title not in seen and title not in instructions:
            problems.append(f'names "{record.title}", the title of {record.id}, a record the run never read')
    firsts: dict[str, list[str]] = {}
    for name in known:
        firsts.setdefault(name.split()[0], []).append(name)
    for name, where in known.items():
        first = name.split()[0]
        named = name.lower() in lowered or (
            len(first) >= 3 and len(firsts[first]) == 1 and whole_word(first).search(text) is not None
        )
        if not named:
            continue
        if name.lower() in seen or whole_word(first.lower()).search(seen) or name.lower() in instructions:
            continue
        problems.append(f"names {name} ({where}), who appears in no record the run read")
    problems += _invented_people(text, ev, known, instructions)
    problems += _unread_personal_data(ev, instructions)
    problems += _invented_quotes(ev, instructions)
    stated = list(MONEY.finditer(text))
    amounts = _field_amounts(ev) if stated else set()
    for m in stated:
        written = money_parts(m)[0]
        value = parse_number(written)
        if value is None or value in amounts or _is_sum(value, amounts) or _in_text(value, ev.seen_lower):
            continue
        if _rounded_from(written, value, amounts):
            continue
        problems.append(f'states "{m.group(0).strip()}", an amount no record the run read holds')
    problems = list(dict.fromkeys(problems))
    if problems:
        return Check("provenance", PROVENANCE_TITLE, FAIL, problems)
    return Check(
        "provenance",
        PROVENANCE_TITLE,
        PASS,
        [f"every record, person and amount it names is in what the run read ({len(ev.seen)} record(s))"],
    )


#: a person named where a person is meant: after a verb of contact or a role ("ask Markus
#: Weber", "assigned to Jana Novak", "per Tom Reyes")
PERSON_CUE = re.compile(
    r"\b(?i:ask|asked|contact|contacted|call|called|email|emailed|e-mail|ping|pinged|tell|told|remind|"
    r"reminded|notify|notified|escalate to|escalated to|assigned to|assign to|reassigned to|owned by|"
    r"handled by|approved by|confirmed by|reported by|according to|per|cc|owner is|lead is|"
    r"(?:owner|assignee|contact|approver|reviewer|responsible)\s*:)(?:\s*:)?\s+"
    r"(?P<name>[A-Z][a-z\u00e0-\u00ff'’-]+(?:[ \t]+[A-Z][a-z\u00e0-\u00ff'’-]+){1,2})\b"  # one line's words
)
_NOT_NAMES = frozenset(
    {*MONTHS, "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "team", "next"}
)


def _invented_people(text: str, ev: ReviewEvidence, known: dict[str, str], instructions: str) -> list[str]:
    """A person named where a person is meant whom no record holds and no word of whose
    name the run read anywhere: an invented contact, owner or approver ("ask Markus
    Weber from legal"). A name one of whose words the records use ("Legal Review",
    "Lena") is left to the checks that know people."""
    out = []
    seen = ev.seen_lower
    for m in PERSON_CUE.finditer(text):
        name = m.group("name")
        words = [w.lower().strip("'’-") for w in name.split()]
        if name in known or any(_same_person(name, p) for p in known):
            continue
        if any(w in _NOT_NAMES or whole_word(w).search(seen) for w in words):
            continue
        if name.lower() in instructions or any(w in instructions for w in words if len(w) > 3):
            continue
        out.append(f"names {name}, a person who appears in no record the run read")
    return out


def _field_amounts(ev: ReviewEvidence) -> set[float]:
    return {n for s in ev.seen.values() for v in s.fields.values() if (n := _number_of(v)) is not None}


def _in_text(value: float, lowered: str) -> bool:
    """Does the seen text write this amount, in any usual way (12400, 12,400.00, 12.400,00 ...)?"""
    whole = int(value)
    cents = f"{value:.2f}".split(".")[1]
    grouped = f"{whole:,}"
    spellings = {
        f"{value:g}",
        f"{value:.2f}",
        f"{value:.1f}",
        f"{grouped}.{cents}",
        grouped.replace(",", ".") + f",{cents}",
        grouped.replace(",", "'"),
        grouped.replace(",", " "),
    }
    if value == whole:
        spellings |= {str(whole), grouped, grouped.replace(",", ".")}
    return any(_standalone(s, lowered) for s in spellings)


def _standalone(number: str, text: str) -> bool:
    """``number`` written in ``text`` as a whole number (not inside a longer one)."""
    start = text.find(number)
    while start >= 0:
        end = start + len(number)
        before = text[start - 1] if start else " "
        after = text[end : end + 2]
        if not (before.isdigit() or before in ".,") and not (
            after[:1].isdigit() or (after[:1] in ".," and after[1:2].isdigit())
        ):
            return True
        start = text.find(number, start + 1)
    return False


def _rounded_from(written: str, value: float, amounts: set[float]) -> bool:
    """An amount written short ("15.6k EUR") that an amount the run read, or a sum of
    two, rounds to: within half a unit of its last digit."""
    scaled = re.fullmatch(r"\s*([\d.,]+)\s?(k|m|mn|million|thousand)\s*", written, re.I)
    if scaled is None:
        return False
    figure = parse_number(scaled.group(1))
    if not figure:  # "3.150.00k" is no number; 0k rounds nothing
        return False
    # the digits after a decimal mark ("15.6k": one); three after a separator group thousands
    decimals = re.search(r"[.,](\d+)$", scaled.group(1))
    places = len(decimals.group(1)) if decimals and len(decimals.group(1)) != 3 else 0
    tolerance = 0.5 * 10**-places * (value / figure)
    money = sorted(a for a in amounts if a >= 1)[:40]
    candidates = [*money, sum(money), *(a + b for i, a in enumerate(money) for b in money[i + 1 :])]
    return any(abs(c - value) <= tolerance + 1e-9 for c in candidates)


def _is_sum(value: float, amounts: set[float]) -> bool:
    """A total of two or more amounts the run read, or the difference of two (the output
    may add them up, or say by how much one is larger)."""
    money = sorted(a for a in amounts if a >= 1)[:40]
    if abs(sum(money) - value) < 0.01:
        return True
    return any(
        abs(a + b - value) < 0.01 or abs(b - a - value) < 0.01
        for i, a in enumerate(money)
        for b in money[i + 1 :]
    )


# -- coverage -------------------------------------------------------------------------

#: verbs that ask about what follows "the" as a set ("list the open tasks")
_ASKING = ("list", "name", "compare", "cover", "review")
#: "each", "every", "all" and the same words in the other languages the form check reads
#: ("für jede Aufgabe", "toutes les tâches", "cada tarea"), then up to three words to the noun
EACH = re.compile(
    r"\b(each|every|all(?: of)?(?: the)?|for every|for each|both(?: of)?(?: the)?|"
    rf"(?:{'|'.join(_ASKING)})(?: all)?(?: of)? the|jede[nmrs]?|alle[nrs]?|chaque|"
    r"tou(?:s|tes)(?: les)?|cada|tod[oa]s(?: l[oa]s)?|ogni|tutt[ei](?: i| le| gli)?|elke)"
    r"((?:\s+[^\W\d_][\w-]*){1,4})",
    re.I,
)
#: record-type nouns in those languages, singular and plural, by the type's English name
TYPE_WORDS = {
    "task": "aufgabe aufgaben tâche tâches tache taches tarea tareas compito compiti taak taken",
    "project": "projekt projekte projet projets proyecto proyectos progetto progetti project projecten",
    "invoice": "rechnung rechnungen facture factures factura facturas fattura fatture factuur facturen",
    "contact": "kontakt kontakte contact contacts contacto contactos contatto contatti",
    "doc": "dokument dokumente document documents documento documentos documenti documenten",
    "company": "firma firmen unternehmen entreprise entreprises société sociétés empresa empresas "
    "azienda aziende",
    "ticket": "ticket tickets tique tiques",
}
#: a status qualifier that names a state, not a value ("all open tasks": any status not closed)
_OPEN_QUALIFIERS = _OPEN_WORDS | {
    "unfinished", "offene", "offenen", "ouvertes", "ouverts", "abiertas", "abiertos", "aperte", "aperti",
    "abertas", "abertos", "openstaande", "impayées", "pendientes", "en cours",
}  # fmt: skip
_DONE_QUALIFIERS = frozenset({"closed", "finished", "completed", "done", "erledigten", "abgeschlossenen"})


def coverage_check(ev: ReviewEvidence) -> Check:
    """When the instructions ask about each/every/all of a kind of record, each record
    of that kind the run read is addressed (by id or title), or the output says
    what it left out."""
    instructions = str((ev.run.config or {}).get("instructions", ""))
    asked = _sets_asked(instructions, ev)
    if not asked:
        return Check("coverage", COVERAGE_TITLE, PASS, ["the instructions ask about no set of records"])
    if ev.snapshots is None:
        return Check("coverage", COVERAGE_TITLE, UNKNOWN, [OLD_RUN])
    text = ev.output
    lowered = text.lower()
    problems, evidence = [], []
    for phrase, rtype, qualifier in asked:
        members = [
            (rid, s)
            for rid, s in ev.seen.items()
            if s.type == rtype and _qualified(qualifier, s.fields.get("status"))
        ]
        if len(members) < 2:
            evidence.append(f'"{phrase}": the run read {len(members)} {rtype}(s); nothing to cover')
            continue
        missing = [
            (rid, s)
            for rid, s in members
            if rid not in text and (len(s.title) < 8 or s.title.lower() not in lowered)
        ]
        if not missing:
            evidence.append(f'"{phrase}": each of the {len(members)} {rtype}s the run read is addressed')
        elif OMISSION.search(QUOTED.sub(" ", text)):
            evidence.append(
                f'"{phrase}": {len(members) - len(missing)} of {len(members)} addressed; '
                "the output says what it left out"
            )
        else:
            problems.append(
                f'the instructions ask "{phrase}"; the run read {len(members)} {rtype}s; '
                "the output leaves out "
                + ", ".join(f'{rid} "{preview_of(s.title, 40)}"' for rid, s in missing)
                + " without saying so"
            )
    if problems:
        return Check("coverage", COVERAGE_TITLE, FAIL, [*problems, *evidence])
    return Check("coverage", COVERAGE_TITLE, PASS, evidence)


def _sets_asked(instructions: str, ev: ReviewEvidence) -> list[tuple[str, str, str | None]]:
    """(phrase, record type, status qualifier) for each "each/every/all X" (in any of the
    languages ``EACH`` knows) whose X, one of the next words, names a record type
    (singular or plural); a status word between them qualifies it ("all open tasks")."""
    types = ev.types | {s.type for s in ev.seen.values()}
    nouns = {t: t for t in types} | {t + "s": t for t in types} | {t + "es": t for t in types}
    nouns |= {t[:-1] + "ies": t for t in types if t.endswith("y")}
    nouns |= {"documents": "doc", "document": "doc", "companies": "company"} if "doc" in types else {}
    nouns |= {w: t for t, words in TYPE_WORDS.items() if t in types for w in words.split()}
    out = []
    for m in EACH.finditer(instructions):
        words = m.group(2).lower().split()
        at = next((n for n, w in enumerate(words[:3]) if w in nouns), None)
        after = words[at + 1] if at is not None and at + 1 < len(words) else None
        state_after = after in _OPEN_QUALIFIERS or after in _DONE_QUALIFIERS  # "factures ouvertes"
        if at is None or (after is not None and not state_after and not _ends_noun_phrase(after)):
            continue  # none, or a modifier: "each task comment" asks about comments
        if m.group(1).split()[0].lower() in _ASKING and words[at] in types:
            continue  # "list the tasks" asks for a set; "list the task" names one
        rtype = nouns[words[at]]
        statuses = _status_words(ev, rtype)
        before = words[:at] + ([after] if state_after and after else [])
        qualifier = next(
            (
                w
                for w in before
                if w in _OPEN_QUALIFIERS or w in _DONE_QUALIFIERS or any(w in s for s in statuses)
            ),
            None,
        )
        phrase = f"{m.group(1)} {' '.join(m.group(2).split()[: at + 1])}"
        out.append((phrase, rtype, qualifier))
    return out


#: words that may follow the noun of "each/every/all <type>" (the phrase ends there): a
#: preposition, a conjunction, a relative or a verb ("every task in P-7", "all invoices
#: that are overdue", "each task is ..."); another noun makes the type word its modifier
_AFTER_SET_WORDS = (
    "of in on for from with within at by to into under and or but that which who whose where "
    "is are was were has have had should must can will would may need needs it its their "
    "des der die das im in von mit und oder du de la le les dans avec et ou del en y o con "
    "di del della nel e che van voor met en of"
)
_AFTER_SET = frozenset(_AFTER_SET_WORDS.split())


def _ends_noun_phrase(word: str) -> bool:
    return word in _AFTER_SET or word.endswith(("ed", "ing")) or not word.isalpha()


def _qualified(qualifier: str | None, status: Any) -> bool:
    """Whether a record with ``status`` is one of the set ``qualifier`` names."""
    value = str(status or "").lower()
    if qualifier is None:
        return True
    if qualifier in _OPEN_QUALIFIERS:
        return value not in _CLOSED
    if qualifier in _DONE_QUALIFIERS:
        return value in _CLOSED
    return qualifier in value


# -- privacy ---------------------------------------------------------------------------


def privacy_check(ev: ReviewEvidence) -> Check:
    """Personal data (``evidence.personal_data``) in what the run wrote, or is about to
    write, to a record: it must have come from that record."""
    writes = _writes(ev)
    if not writes:
        return Check("privacy", PRIVACY_TITLE, PASS, ["the run wrote no text to a record"])
    if ev.snapshots is None:
        return Check("privacy", PRIVACY_TITLE, UNKNOWN, [OLD_RUN])
    problems, checked = [], 0
    for target, text, by in writes:
        own = set((ev.snapshots.get(target) or {}).get("personal", []))
        record = ev.by_id.get(target)
        if record is not None:
            now_text = "\n".join([record.title, *(str(v) for v in record.fields.values())])
            own |= {p.digest for p in personal_data(now_text)}
        for item in personal_data(text):
            checked += 1
            if item.digest in own:
                continue
            origin = [rid for rid, snap in ev.snapshots.items() if item.digest in snap.get("personal", [])]
            where = f"it came from {', '.join(origin)}" if origin else "no record the run read holds it"
            problems.append(f"{by} writes {item.kind} {item.text} to {target}; {where}")
    if problems:
        return Check("privacy", PRIVACY_TITLE, FAIL, list(dict.fromkeys(problems)))
    return Check(
        "privacy",
        PRIVACY_TITLE,
        PASS,
        [f"{checked} item(s) of personal data written, each from the record written to"]
        if checked
        else ["no personal data in what the run wrote"],
    )


def _writes(ev: ReviewEvidence) -> list[tuple[str, str, str]]:
    """(record id, text, by) for each text the run wrote to a record, and the output
    the output mode is about to write (``before_write``)."""
    run = ev.run
    out = []
    mode = ev.registry.output_modes.get(run.output_mode)
    posts = mode is not None and mode.apply is not None and run.record_id
    wrote_output = any(e.get("by") == "output_mode" for e in run.side_effects)
    if run.output and posts and (wrote_output or ev.stage == "before_write"):
        out.append((str(run.record_id), run.output, f"output mode {run.output_mode}"))
    for it in run.iterations:
        for call in it.tool_calls:
            if not call.ok or not call.records_written:
                continue
            text = " ".join(_strings(call.arguments))
            for target in {w["id"] for w in call.records_written if w.get("id")}:
                out.append((target, text, f"tool {call.name} (iteration {it.number})"))
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
