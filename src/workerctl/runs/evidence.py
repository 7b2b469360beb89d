"""What review compares an output with: the records a run saw, as it saw them.

The engine keeps a *snapshot* of each record when the run first reads it (and of
the linked record again at the moment the output mode writes): its fields, the
fingerprints of its fields and of its comments, the people who commented, and
hashes of the personal data it holds. Review checks read a ``ReviewEvidence``:
the run, those snapshots, the record book and the text of what was seen, built
once per review and shared by every check (so a record with hundreds of long
comments is read and tokenised once, not once per check).

Comments the run itself wrote are never part of what it "saw": its own words do
not ground its own output, and its own comment is no change made by someone else.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from workerctl.runs.states import now_iso

if TYPE_CHECKING:
    from workerctl.plugins.manager import Registry
    from workerctl.records.book import RecordBook
    from workerctl.records.model import Comment, Record
    from workerctl.runs.model import Run

T = TypeVar("T")

FIELD_CHARS = 2000  # characters of one field value kept in a snapshot

# personal data: what it is, and how it is found (the privacy check's vocabulary)
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
#: an IBAN written another way (lower case, dashes or dots between its groups): taken as
#: one only when its check digits hold (ISO 13616, mod 97), as a card number needs Luhn
IBAN_WRITTEN = re.compile(
    r"(?<![\w-])[A-Za-z]{2}\d{2}(?:[ .-]?[A-Za-z0-9]{4}){2,7}(?:[ .-]?[A-Za-z0-9]{1,4})?(?![\w-])"
)
PHONE = re.compile(
    r"(?<![\w-])(?:\+|00|\(?0)\d[\d ()./-]{5,}\d(?![\w-])|(?<![\w-])\d{3}[ .-]\d{3,4}[ .-]\d{3,4}(?![\w-])"
    r"|\(\d{3}\)\s?\d{3}[ .-]\d{4}(?![\w-])"  # (555) 014-2231
)
CARD = re.compile(r"(?<![\w+-])\d(?:[ -]?\d){12,18}(?![\w-])")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
#: a day written with dots or slashes ("03.12.2026", "27.11. and 03.12.2026"): no phone number
DOTTED_DATE = re.compile(r"(?<!\d)(?:0?[1-9]|[12]\d|3[01])[./](?:0?[1-9]|1[0-2])[./](?:\d{4}|\d{2})?(?!\d)")
DIGIT_RUN = re.compile(r"[+(]?\d[\d ()./-]{6,}\d")


@dataclass(frozen=True)
class Personal:
    kind: str  # "e-mail address", "phone number", "IBAN", "card number"
    text: str  # as written
    key: str  # normalised, for comparing

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.kind}:{self.key}".encode()).hexdigest()[:16]


def _iban_checks(key: str) -> bool:
    """Whether ``key`` (letters upper-cased, no separators) has right IBAN check digits."""
    moved = key[4:] + key[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _luhn(digits: str) -> bool:
    total = 0
    for n, ch in enumerate(reversed(digits)):
        d = int(ch)
        if n % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


#: an address written so that a pattern misses it: "ann (at) example (dot) org", "ann[at]
#: example[dot]org", "ann at example dot org", "ann @ example.org"
_AT_WORD = re.compile(r"[\[({<]\s*at\s*[\])}>]|\s@\s|\bat\s+[\w-]+\s+dot\s", re.I)
_OBFUSCATED = re.compile(
    # "@" with space on one side only is a handle ("ask @chen.wei"), not an address
    r"(?<![\w.+-])([\w.+-]+)(?:\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+|@|\s+@\s+)"
    r"([\w-]+(?:(?:\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+|\s+\.\s+|\.)[\w-]+)+)",
    re.I,
)
_DOT = re.compile(r"\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+|\s+\.\s+", re.I)


#: a line that ends inside an address's domain (after "@", or after a first part and its
#: dot: "@northwind."), the next line going on with it
_BROKEN_ADDRESS = re.compile(r"(@(?:[\w-]+\.)?)[ \t]*\r?\n[ \t]*(?=[\w-])")


def _at_written(line: str) -> str:
    """``line`` with every address written out ("ann (at) example (dot) org") written as
    one (``ann@example.org``), the address a reader takes from it."""

    def joined(m: re.Match[str]) -> str:
        domain = _DOT.sub(".", m.group(2))
        # "meet at noon. Then ..." is no address: a written-out one has "dot" or "(at)"
        plain = "@" not in m.group(0) and not re.search(r"dot|[\[({<]", m.group(0), re.I)
        return m.group(0) if plain or "." not in domain else f"{m.group(1)}@{domain.replace(' ', '')}"

    return _OBFUSCATED.sub(joined, line)


def personal_data(text: str) -> list[Personal]:
    """The personal data in ``text``: e-mail addresses, phone numbers, IBANs and card
    numbers (Luhn-checked; never after "+" or starting with 0: "0049 …" is a phone),
    each normalised so that "+49 30 1234567" and
    "0049-30-1234567" compare equal."""
    if not text:
        return []
    if not text.isascii():  # "jonas＠northwind.example" (a fullwidth @) is read as a person reads it
        from workerctl.runs.visible import visible

        shown = visible(text)
        if shown != text:
            text = f"{text}\n{shown}"
    if "&" in text:  # "maya&#64;northwind.example" is shown as the address
        import html

        shown = html.unescape(text)
        if shown != text:
            text = f"{text}\n{shown}"
    if "%" in text:  # an address in a link's query ("?d=maya%40northwind.example") is the address
        from urllib.parse import unquote

        text = f"{text}\n{unquote(text)}"
    if "@" in text and "\n" in text:  # an address broken at a line's end: "maya@northwind." / "example"
        joined = _BROKEN_ADDRESS.sub(r"\1", text)
        if joined != text:
            text = f"{text}\n{joined}"
    found: dict[str, Personal] = {}
    # e-mail addresses only on lines with "@" (or an "at" written out), the rest only in
    # runs of digits: a long record is scanned once by simple patterns, the precise ones
    # read short windows
    lines = (line for line in text.splitlines() if "@" in line or _AT_WORD.search(line))
    at_lines = "\n".join(_at_written(line) for line in lines)
    for m in EMAIL.finditer(at_lines):
        item = Personal("e-mail address", m.group(0), m.group(0).lower().rstrip("."))
        found.setdefault(item.digest, item)
    for m in IBAN.finditer(text):
        key = m.group(0).replace(" ", "")
        if 15 <= len(key) <= 34:
            item = Personal("IBAN", m.group(0), key)
            found.setdefault(item.digest, item)
    for m in IBAN_WRITTEN.finditer(text):
        key = re.sub(r"[ .-]", "", m.group(0)).upper()
        if 15 <= len(key) <= 34 and _iban_checks(key):
            item = Personal("IBAN", m.group(0), key)
            found.setdefault(item.digest, item)
    windows = [text[max(0, m.start() - 2) : m.end() + 2] for m in DIGIT_RUN.finditer(text)]
    for window in windows:
        for m in CARD.finditer(window):
            digits = re.sub(r"\D", "", m.group(0))
            # one digit repeated is no card; 4111 1111 1111 1111, a card issuers' test number, is
            if 13 <= len(digits) <= 19 and digits[0] != "0" and _luhn(digits) and len(set(digits)) > 1:
                item = Personal("card number", m.group(0), digits)
                found.setdefault(item.digest, item)
    for window in windows:
        for m in PHONE.finditer(window):
            raw = m.group(0)
            digits = re.sub(r"\D", "", raw)
            if ISO_DATE.match(raw.strip("( ")) or DOTTED_DATE.search(raw) or not 8 <= len(digits) <= 15:
                continue
            if any(raw in p.text or p.key == digits for p in found.values()):
                continue  # the digits of an IBAN or a card
            item = Personal("phone number", raw.strip(), digits.lstrip("0")[-9:])
            found.setdefault(item.digest, item)
    return list(found.values())


def _cap(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= FIELD_CHARS else value[: FIELD_CHARS - 1] + "…"
    if value is None or isinstance(value, bool | int | float):
        return value
    text = json.dumps(value, ensure_ascii=False, default=str)
    return value if len(text) <= FIELD_CHARS else text[: FIELD_CHARS - 1] + "…"


def comments_fingerprint(comments: Iterable[Comment]) -> str:
    digest = hashlib.sha256()
    for c in comments:
        digest.update(f"{c.id}\x00{c.author}\x00{c.text}\x01".encode(errors="surrogatepass"))
    return digest.hexdigest()[:12]


def snapshot(record: Record, comments: list[Comment], run_id: str, by: str) -> dict[str, Any]:
    """The record as the run saw it: what review needs to tell later whether the
    output agrees with it (fields), where personal data came from (digests only) and
    whether it changed before the write (fingerprints; comments the run wrote
    itself left out)."""
    others = [c for c in comments if c.run_id != run_id]
    text = "\n".join([record.title, *(str(v) for v in record.fields.values()), *(c.text for c in others)])
    return {
        "type": record.type,
        "title": record.title,
        "fields": {k: _cap(v) for k, v in record.fields.items()},
        "fingerprint": {"fields": record.fingerprint(), "comments": comments_fingerprint(others)},
        "comments": len(others),
        "last_comment": (
            {"id": others[-1].id, "author": others[-1].author, "created": others[-1].created}
            if others
            else None
        ),
        "authors": sorted({c.author for c in others if c.author}),
        "personal": sorted({p.digest for p in personal_data(text)}),
        "at": now_iso(),
        "by": by,
    }


# -- what checks read --------------------------------------------------------------


def id_pattern(records: RecordBook, listed: list[Record] | None = None) -> re.Pattern | None:
    """Record ids as they appear in text: the prefixes of the records that exist
    (``T-``, ``INV-`` ...) followed by digits, so "ISO-8601" is not taken for one."""
    prefixes = {
        r.id.rsplit("-", 1)[0]
        for r in (records.list() if listed is None else listed)
        if "-" in r.id and r.id.rsplit("-", 1)[1].isdigit()
    }
    if not prefixes:
        return None
    alternatives = "|".join(sorted((re.escape(p) for p in prefixes), key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternatives})-\d+(?![\w-])")


def seen_ids(run: Run) -> set[str]:
    """Every record the run was linked to, given, read or wrote (and the ids its
    failed lookups asked for)."""
    seen = {run.record_id} if run.record_id else set()
    seen |= {r["id"] for r in run.context.get("records", [])}
    seen |= {r["id"] for r in run.reads or []}
    seen |= {e["record_id"] for e in run.side_effects if e.get("record_id")}
    for it in run.iterations:
        for call in it.tool_calls:
            seen |= {r["id"] for r in call.records_read}
            if call.allowed and not call.ok and isinstance(call.arguments, dict):
                # an id the run looked up and did not find: it may say so
                seen |= {v for k, v in call.arguments.items() if k.endswith("_id") and isinstance(v, str)}
    return seen


STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "into",
        "onto",
        "about",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "i",
        "we",
        "you",
        "he",
        "she",
        "they",
        "me",
        "us",
        "him",
        "her",
        "them",
        "my",
        "our",
        "your",
        "his",
        "their",
        "not",
        "no",
        "yes",
        "so",
        "do",
        "does",
        "did",
        "done",
        "have",
        "has",
        "had",
        "will",
        "would",
        "can",
        "could",
        "should",
        "may",
        "might",
        "must",
        "shall",
        "than",
        "then",
        "too",
        "very",
        "just",
        "also",
        "only",
        "all",
        "any",
        "each",
        "every",
        "some",
        "more",
        "most",
        "other",
        "such",
        "own",
        "same",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "up",
        "down",
        "out",
        "over",
        "under",
        "again",
        "further",
        "once",
        "new",
        "next",
        "task",
        "tasks",
        "record",
        "records",
        "run",
        "worker",
        "output",
        "note",
        "comment",
        "comments",
        "please",
        "step",
    ]
)
WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)


def content_words(text: str) -> set[str]:
    """Lower-case words of three letters or more that are not function words."""
    return {
        w for w in (m.group(0).lower().strip("'’-") for m in WORD.finditer(text)) if len(w) >= 3
    } - STOPWORDS


@dataclass
class SeenText:
    """One record the run saw, as text: its title, its fields and the comments that
    were not its own (the comments as they are now; the fields as they were)."""

    record_id: str
    type: str
    title: str
    fields: dict[str, Any]
    comments: list[Comment] = field(default_factory=list)

    @cached_property
    def text(self) -> str:
        parts = [self.record_id, self.title]
        parts += [f"{k}: {v}" for k, v in self.fields.items()]
        parts += [f"{c.author}: {c.text}" for c in self.comments]
        return "\n".join(parts)

    @cached_property
    def lower(self) -> str:
        return self.text.lower()


class RecordsView:
    """Every record of the workspace at one version of its sources, and what review
    derives from all of them (the ids, the types, the people named in fields), each
    built on first use. A batch's runs share one view while no record changes
    (``RecordBook.memo``), so a check that looks across the workspace costs its scan
    once, not twice a run. Shared: nothing here, records included, is changed."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self._derived: dict[Any, Any] = {}

    def derived(self, key: Any, build: Callable[[list[Record]], T]) -> T:
        """``build(records)``, once per view; ``key`` names it (a module's own name
        first, so two checks never share a key by chance)."""
        if key not in self._derived:
            self._derived[key] = build(self.records)
        return self._derived[key]


class ReviewEvidence:
    """What every review check may read, built once per review (see the module
    docstring). ``stage`` is "review" (``run review``, ``run inspect``), "finish"
    (decided as the run finishes) or "before_write" (before an output mode writes)."""

    def __init__(
        self,
        run: Run,
        records: RecordBook,
        registry: Registry,
        stage: str = "review",
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.run = run
        self.records = records
        self.registry = registry
        self.stage = stage
        self.settings = settings or {}  # the workspace's settings (workerctl.yaml)

    @cached_property
    def output(self) -> str:
        """The output as a reader sees it (``runs.visible``): what every check compares,
        so that a hidden character or a look-alike letter cannot keep an id or a word
        from being compared. The bytes as written are ``run.output``."""
        from workerctl.runs.visible import visible

        return visible(self.run.output or "")

    @cached_property
    def view(self) -> RecordsView:
        return self.records.memo("review", RecordsView)

    @property
    def all_records(self) -> list[Record]:
        return self.view.records

    @cached_property
    def by_id(self) -> dict[str, Record]:
        return self.view.derived("evidence.by_id", lambda records: {r.id: r for r in records})

    @cached_property
    def id_pattern(self) -> re.Pattern[str] | None:
        return self.view.derived("evidence.id_pattern", lambda records: id_pattern(self.records, records))

    @cached_property
    def types(self) -> frozenset[str]:
        """The record types the workspace holds."""
        return self.view.derived("evidence.types", lambda records: frozenset(r.type for r in records))

    @cached_property
    def seen_ids(self) -> set[str]:
        return seen_ids(self.run)

    @cached_property
    def linked_ids(self) -> set[str]:
        """The ids the records the run read link to (as those records hold them now):
        the run saw each id on its record ("product PR-9, linked on the task"), not what
        the linked record holds, so naming one is no fact from an unread record; its
        title or its values are."""
        out: set[str] = set()
        for rid in self.seen_ids:
            record = self.by_id.get(rid)
            if record is not None:
                for key in record.links:
                    out.update(record.linked_ids(key))
        return out

    @property
    def snapshots(self) -> dict[str, dict[str, Any]] | None:
        """Record id -> snapshot, or None for a run recorded before they were kept."""
        return self.run.seen

    @cached_property
    def seen(self) -> dict[str, SeenText]:
        """Every record the run saw, as text: from its snapshot when there is one, else
        from the record as it is now (a record linked to an older run)."""
        out: dict[str, SeenText] = {}
        snaps = self.run.seen or {}
        for rid in sorted(self.seen_ids):
            snap = snaps.get(rid)
            record = self.by_id.get(rid)
            if snap is None and record is None:
                continue
            comments = [c for c in self.records.comments(rid) if c.run_id != self.run.id] if record else []
            if snap is not None:
                out[rid] = SeenText(
                    rid, snap.get("type", ""), snap.get("title", ""), snap.get("fields", {}), comments
                )
            elif record is not None:
                out[rid] = SeenText(rid, record.type, record.title, dict(record.fields), comments)
        return out

    def acts_told(self, base: str) -> list[set[str]]:
        """The content words of each line of the seen text that uses a form of the verb
        ``base`` ("sent the product list" -> {product, list, ...} for "send"): what the
        records already tell was done, for the claims check (once per verb per review)."""
        from workerctl.runs.claims import FORMS

        cache: dict[str, list[set[str]]] = self.__dict__.setdefault("_acts_told", {})
        if base not in cache:
            forms = sorted((w for w, (b, _f) in FORMS.items() if b == base), key=len, reverse=True)
            pattern = re.compile(r"\b(?:" + "|".join(re.escape(f) for f in forms) + r")\b")
            text = self.seen_lower
            told, last_end = [], -1
            for m in pattern.finditer(text):
                if m.start() < last_end:
                    continue  # the same sentence
                start = max(text.rfind(c, 0, m.start()) for c in ".!?;\n") + 1
                ends = [i for i in (text.find(c, m.end()) for c in ".!?;\n") if i >= 0]
                last_end = min(ends) if ends else len(text)
                told.append(content_words(text[start:last_end]))
            cache[base] = told
        return cache[base]

    @cached_property
    def seen_lower(self) -> str:
        """All seen text in lower case, one blob (for "does it appear anywhere")."""
        return "\n".join(s.lower for s in self.seen.values())

    @cached_property
    def seen_words(self) -> set[str]:
        words: set[str] = set()
        for s in self.seen.values():
            words |= content_words(s.text)
        return words
