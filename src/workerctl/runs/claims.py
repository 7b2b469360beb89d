"""What an output says was done, what it says could not be done, and its next step.

Review compares these with the run's recorded writes. The reading is built from
a vocabulary, not from a few phrases: action verbs grouped by the kind of write
that would back them (comment, update, send, create, delete), in every form
(past, participle, ``-ing``, base after *will*), and a small grammar for who did
it. A clause is a claim when its action verb is

- past or perfect with the worker as subject ("I updated", "we have sent"),
- at the start of a clause with no subject ("Rescheduled the task to Friday and
  emailed the customer"), not the base form (that is an instruction: "Update
  the task"),
- passive ("the invoice was refunded", "T-1042 has been closed", "is now
  closed"), unless an agent other than the worker is named ("was sent by Lena")
  or the sentence dates it in the record's past ("was moved on 2026-11-02",
  "was assigned last week": history read from the record, not the run's work),
- progressive or future with the worker as subject ("I am updating", "I will
  email the customer": the run is over, nothing more will happen).

Clauses that suggest, hedge, deny or report someone else's work are not claims:
modal verbs (should, could, may ...), negation, conditionals, a subject other
than the worker ("Lena sent the list"), and text in double quotes (quoted
evidence from a record).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from workerctl.runs.structured import OPENING_QUOTE, RULE_ROW, TABLE_ROW

KINDS = ("comment", "update", "send", "create", "delete")
ANY_WRITE = KINDS

# base form -> kinds of write that would back a claim made with it
VERBS: dict[str, tuple[str, ...]] = {}
for _kinds, _words in (
    (("comment",), "comment annotate post"),
    (("comment", "send"), "reply"),
    (
        ("send",),
        "send email e-mail mail message notify inform forward contact ping tell text remind alert "
        "warn chase nudge invite call phone brief",
    ),
    (
        ("update",),
        "update change modify edit set mark close reopen resolve reassign assign "
        "unassign move reschedule postpone defer delay extend rename tag label "
        "prioritize prioritise escalate complete approve reject refund pay adjust "
        "correct merge lock unlock upgrade downgrade bump shift raise lower "
        "transfer convert push",
    ),
    (("create",), "create add file log book schedule register issue"),
    (("update", "delete"), "cancel"),
    (("delete",), "delete remove archive purge discard erase drop"),
):
    for _word in _words.split():
        VERBS[_word] = _kinds

# verbs that report a send only with their particle: "reached out to the agency",
# "followed up with Lena" (not "reached the deadline", "followed the plan")
PARTICLE = {"reach": "out", "follow": "up"}
for _word in PARTICLE:
    VERBS[_word] = ("send",)
# what is sent: "a reminder went out" is a send, told without its sender
SENT_NOUNS = {
    "reminder", "reminders", "email", "emails", "e-mail", "e-mails", "mail", "message", "messages",
    "notice", "notification", "notifications", "invite", "invitation", "invitations", "letter", "follow-up",
}  # fmt: skip

IRREGULAR = {
    "send": ("sent",),
    "set": ("set",),
    "tell": ("told",),
    "pay": ("paid",),
    "file": ("filed",),
    "cancel": ("cancelled", "canceled"),
    "label": ("labelled", "labeled"),
    "log": ("logged",),
    "tag": ("tagged",),
    "drop": ("dropped",),
    "ping": ("pinged",),
    "e-mail": ("e-mailed",),
    "leave": ("left",),
}
DOUBLE = {"log", "tag", "drop", "cancel", "label"}
# words that say what was written: "added a comment" is a comment, "added a field" an update
COMMENT_NOUNS = {"comment", "comments", "note", "notes", "reply", "replies", "remark"}
# what a worker makes of its own output: "created a summary", "completed the review"
# describe the answer itself, not a write
OUTPUT_NOUNS = {
    "summary",
    "summaries",
    "draft",
    "report",
    "overview",
    "analysis",
    "outline",
    "breakdown",
    "review",
    "assessment",
    "triage",
    "answer",
    "output",
    "below",
    "above",
    "checklist",
}
OUTPUT_VERBS = {"create", "add", "complete", "write", "compile", "issue", "log"}
STATES = {
    "closed",
    "resolved",
    "done",
    "completed",
    "fixed",
    "paid",
    "refunded",
    "cancelled",
    "canceled",
    "approved",
    "rejected",
    "archived",
    "deleted",
    "sent",
    "scheduled",
    "rescheduled",
    "assigned",
    "reassigned",
    "updated",
}

SELF = {"i", "we", "i've", "we've", "i'm", "we're", "i'll", "we'll", "i'd", "we'd"}
AUX = {
    "have",
    "has",
    "had",
    "am",
    "are",
    "is",
    "was",
    "were",
    "be",
    "been",
    "being",
    "will",
    "shall",
    "going",
    "to",
    "got",
    "gets",
    "get",
    "now",
    "just",
    "also",
    "already",
    "successfully",
    "then",
    "finally",
    "both",
    "each",
    "today",
    "meanwhile",
    "so",
    "therefore",
    "accordingly",
    "as",
    "requested",
    "all",
    "this",
    "run",
}
BE = {"was", "were", "been", "got", "gotten", "is", "are", "be"}
FUTURE = {"will", "shall", "'ll", "i'll", "we'll", "going"}
# a clause with any of these suggests, hedges, asks, denies or supposes: not a claim
NOT_A_CLAIM = {
    "should",
    "could",
    "would",
    "can",
    "may",
    "might",
    "must",
    "please",
    "suggest",
    "suggests",
    "suggested",
    "recommend",
    "recommends",
    "recommended",
    "need",
    "needs",
    "not",
    "never",
    "no",
    "cannot",
    "can't",
    "couldn't",
    "won't",
    "wouldn't",
    "shouldn't",
    "didn't",
    "don't",
    "doesn't",
    "haven't",
    "hasn't",
    "wasn't",
    "weren't",
    "isn't",
    "aren't",
    "if",
    "unless",
    "whether",
    "once",
    "until",
    "ask",
    "asks",
    "consider",
    "want",
    "wants",
    "able",
    "unable",
    "nothing",
    "neither",
    "nor",
    "without",
    "instead",
    "propose",
    "proposed",
    "draft",
    "let",
    "lets",
}
# of those, the ones that deny wherever they stand ("sent no reminder", "posted nothing");
# the others hedge only a verb after them ("I would post …"), not one before them ("emailed
# Maya to let her know", "reassigned T-1042 until the glossary arrives")
DENIALS = {
    "not", "never", "no", "nothing", "neither", "nor", "without", "instead", "cannot",
    "draft", "propose", "proposed",
}  # fmt: skip
HEDGES = NOT_A_CLAIM - DENIALS
SPLIT = {"and", "then", "but", "so", "also", "while", "plus"}
WORKER_AGENTS = {"me", "us", "the worker", "this worker", "this run", "workerctl"}
# what follows "by" without naming who did it: a channel, a time, a manner
MEANS = {
    "email", "e-mail", "mail", "phone", "telephone", "sms", "text", "message", "letter", "post",
    "chat", "slack", "teams", "comment", "fax", "courier", "hand", "default", "mistake",
    "accident", "design", "itself", "now", "today", "tomorrow", "tonight", "noon", "end", "close",
    "eod", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "next",
    "then", "bank", "transfer", "card", "cheque", "check", "invoice", "return", "api", "system",
}  # fmt: skip
# a label that by itself reports work done ("Done: ...", "Fixed: ...")
DONE_LABELS = {
    "done", "completed", "complete", "fixed", "resolved", "updated", "sent", "closed", "finished",
    "handled", "actioned", "applied", "executed", "changed", "refunded", "notified", "scheduled",
    # the same labels in the other languages the form check reads
    "erledigt", "gesendet", "versendet", "verschickt", "aktualisiert", "abgeschlossen", "behoben",
    "fait", "terminé", "envoyé", "résolu", "hecho", "enviado", "completado", "actualizado",
    "resuelto", "fatto", "inviato", "completato", "aggiornato", "feito", "concluído", "gedaan",
    "verzonden", "bijgewerkt", "klaar",
}  # fmt: skip
# nouns that make "X is now Y" a change of a record's field ("the due date is now Friday")
FIELD_NOUNS = {
    "date", "due", "deadline", "status", "owner", "assignee", "priority", "amount", "price", "title",
    "total", "balance", "state", "stage", "schedule", "plan", "address", "email", "phone", "contact",
}  # fmt: skip
# what may follow a headline participle ("Refund issued to the customer"): a preposition
# or nothing; an object after it ("Lena sent the list") makes it an active past
HEADLINE_NEXT = {"to", "via", "on", "for", "with", "in", "at", "from", "as", "until", "over", "through"}
# a clause that begins with one ("with Lena Fischer assigned") tells a circumstance
PREPOSITIONS = HEADLINE_NEXT | {"without", "of", "by", "after", "before", "since", "under", "between"}
DETERMINERS = {"the", "a", "an", "this", "that", "these", "those", "its", "their", "his", "her", "our"}


STRONG_NEXT_STEP = re.compile(
    r"\b(?:next steps?|next actions?|suggest(?:s|ed|ion|ions)?|recommend(?:s|ed|ation|"
    r"ations)?|follow[- ]?up|to do)\b",
    re.I,
)
NEXT_STEP = re.compile(
    r"\b(?:next steps?|next actions?|suggest(?:s|ed|ion|ions)?|recommend(?:s|ed|ation|"
    r"ations)?|should|please|ask|follow[- ]?up|confirm|escalate|check|decide|retry|rerun|"
    r"contact|to do|needs? to)\b|^\W*next\s*:",
    re.I | re.M,
)
INABILITY = re.compile(
    r"\b(?:could not|couldn't|cannot|can ?not|can't|unable to|not able to|blocked|"
    r"failed to|did not finish|no access)\b",
    re.I,
)
#: an inability and the verb it denies: that verb names no next step
COULD_NOT_DO = re.compile(INABILITY.pattern + r"\s+(?:to\s+)?[\w-]+", re.I)
PAST_TIME = re.compile(
    r"\b(?:\d{4}-\d{2}-\d{2}|\d{1,2} (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
    r"[a-z]*|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2}|ago|yesterday|"
    r"last (?:week|month|year|monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    r"earlier|previously|originally|in the past)\b"
    r"|\b\d{1,2}\.\d{1,2}\.(?:\d{2,4})?|\b\d{1,2}/\d{1,2}/\d{2,4}\b",
    re.I,
)
# single quotes too, where they open after no letter ("'Sandbox task for trying draft
# workers'": a title's words are no claim), not an apostrophe ("Lena's")
# a straight double quote after a digit is inches or seconds (24", 0'45"), never one that opens
QUOTED = re.compile(OPENING_QUOTE + r"[^\"\n]*\"|“[^”\n]*”|(?<![\w'])'[^'\n]{3,80}'(?![\w'])|‘[^’\n]{3,80}’")
LABEL = re.compile(r"^\s*[-*•]?\s*([A-Za-z][\w ()/'-]{0,40}):\s*")
WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)?(?:['’][a-z]+)?|[,;:()]")


def _forms(base: str) -> dict[str, str]:
    """form -> "past" / "ing" / "base" / "s" for one verb."""
    if base in IRREGULAR:
        past = list(IRREGULAR[base])
    elif base.endswith("e"):
        past = [base + "d"]
    elif base.endswith("y") and base[-2] not in "aeiou":
        past = [base[:-1] + "ied"]
    elif base in DOUBLE:
        past = [base + base[-1] + "ed"]
    else:
        past = [base + "ed"]
    if base.endswith("e") and not base.endswith("ee"):
        ing = base[:-1] + "ing"
    elif base in DOUBLE:
        ing = base + base[-1] + "ing"
    else:
        ing = base + "ing"
    if base.endswith(("s", "sh", "ch", "x", "z")):
        third = base + "es"
    elif base.endswith("y") and base[-2] not in "aeiou":
        third = base[:-1] + "ies"
    else:
        third = base + "s"
    out = {base: "base", ing: "ing", third: "s"}
    out.update({p: "past" for p in past})  # "set" is past as well as base
    return out


# verbs that report a write only with what was written: "left a comment", not "left it"
COMMENT_ONLY = ("leave",)
FORMS: dict[str, tuple[str, str]] = {}  # word -> (base, form)
for _base in (*VERBS, *COMMENT_ONLY):
    for _form, _what in _forms(_base).items():
        FORMS.setdefault(_form, (_base, _what))


@dataclass
class Claim:
    sentence: str
    verb: str
    kinds: tuple[str, ...]
    how: str  # "first person", "no subject", "passive", "state"
    ids: list[str]


#: a word whose dot is its own, not a sentence's end ("Dr. Okafor", "e.g. on Safari",
#: "z. B.", a letter in lower case): the next part continues the sentence
ABBREVIATION = re.compile(
    r"(?:^|[\s(\[])(?:dr|mr|mrs|ms|prof|st|jr|sr|vs|cf|ca|approx|nr|fig|e\.g|i\.e|z\.\s?b|u\.a|d\.h|bzw|usw|(?-i:[a-z]))\.$",
    re.I,
)
#: a month or a weekday written short, before a number: one date ("due Nov. 26", "Thu. 26 Nov.")
SHORT_DATE_WORD = re.compile(
    r"(?:^|[\s(\[])(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)\.$",
    re.I,
)


#: a negation written short ("isn't", "hasn't", "doesn't"): read as written out, so that
#: every rule that reads "not" reads it ("T-1042 isn't overdue" passed where "is not" failed)
_CONTRACTED = re.compile(
    r"\b(is|are|was|were|has|have|had|does|do|did|would|should|could)n[’']t\b|\b(ca)n[’']t\b|\bwon[’']t\b",
    re.I,
)


def uncontracted(sentence: str) -> str:
    """``sentence`` with its negations written short written out (the facts check's
    statements, the inability the next-step check looks for)."""
    if "n't" not in sentence and "n’t" not in sentence:
        return sentence
    return _CONTRACTED.sub(_written_out, sentence)


def _written_out(m: re.Match[str]) -> str:
    if m.group(1):
        return f"{m.group(1)} not"
    return f"{m.group(2)}nnot" if m.group(2) else "will not"


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, each line on its own: the one splitter every check
    that counts or reads sentences uses. A dot ends a sentence unless it ends an
    abbreviation or the next part begins in lower case ("between 27.11. and 3.12.")."""
    return list(_sentences(text))


@functools.lru_cache(maxsize=64)  # the checks of one run split the same few texts about 25 times
def _sentences(text: str) -> tuple[str, ...]:
    out = []
    split = _sentence_end()
    for line in text.splitlines():
        merged: list[str] = []
        for part in split.split(line.strip()):
            part = part.strip()
            if not part:
                continue
            if (
                merged
                and merged[-1].endswith(".")
                and (
                    part[0].islower()
                    or ABBREVIATION.search(merged[-1])
                    or (part[0].isdigit() and SHORT_DATE_WORD.search(merged[-1]))
                )
            ):
                merged[-1] += " " + part
            else:
                merged.append(part)
        out += merged
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _sentence_end() -> re.Pattern[str]:
    """Where a sentence ends: after ".", "!", "?" or ";" and a space, but not after the
    day of a date written the German way ("am 3. Dezember": the dot is the day's)."""
    from workerctl.runs.dates import MONTH_WORDS

    return re.compile(rf"(?<=[!?;])\s+|(?<=\.)(?<!\d\.)\s+|(?<=\d\.)\s+(?!(?i:{MONTH_WORDS})\b)")


def _clauses(words: list[str]) -> list[list[str]]:
    clauses: list[list[str]] = []
    current: list[str] = []
    for n, word in enumerate(words):
        if word == "," and words[n + 1 : n + 2] == ["by"]:
            continue  # "posted so far, by Lena and Priya": the agent of the same clause
        if word in SPLIT and words[n + 1 : n + 2] in (["far"], ["that"]):
            current.append(word)  # "so far", "so that": an adverb, a purpose, not a new clause
            continue
        if word in (",", ";", ":", "(", ")") or word in SPLIT:
            if current:
                clauses.append(current)
            current = [word] if word in SPLIT else []
            continue
        current.append(word)
    if current:
        clauses.append(current)
    return clauses


def _kinds_for(base: str, clause: list[str]) -> tuple[str, ...]:
    if base in ("add", "leave", "write", "post", "put", "drop") and COMMENT_NOUNS & set(clause):
        return ("comment",)
    if base == "add":
        return ("create", "update")
    return VERBS[base]


def _agent_is_other(clause: list[str], at: int) -> bool:
    """A "by ..." after the verb that names someone else ("was sent by Lena"); "by
    email", "by phone" or "by Friday" name a means or a time, not an agent."""
    rest = " ".join(clause[at + 1 :])
    match = re.search(r"\bby ((?:the |this |a |an )?)([\w'-]+)", rest)
    if match is None:
        return False
    word = match.group(2)
    return (match.group(1) + word) not in WORKER_AGENTS and word not in MEANS


#: a line that marks its item done: a checked box ("- [x] …") or a check mark ("✅ …"),
#: read as the label that says so ("Done: …")
DONE_MARK = re.compile(
    "^(?:[-*\u2022+]\\s*)?(?:\\[[xX\u2713\u2714]\\]|[\u2705\u2714\u2611\u2713]\ufe0f?)\\s*"
)


#: one word in parentheses after a word: a label of the thing named ("the other invoice
#: (sent)", "T-1044 (done)"), a status it has, not an act of the run's
STATUS_NOTE = re.compile(r"(?<=\w)\s*\(\s*[^\W\d_]+\s*\)")


#: a cell that marks its row done: a done word ("sent", "Done ✅") or a check mark alone
_DONE_CELL = re.compile(r"^[\W_]*(?P<word>[^\W\d_]+)?[\W_]*$")


def _rows_as_labels(text: str, ids: re.Pattern | None = None) -> str:
    """``text`` with each table row one of whose cells marks it done ("| Reminder to the
    agency | sent |", "| T-1042 moved | ✅ |") written as the label that says so
    ("Done: Reminder to the agency."): a table reports work as a list does. A status
    column's value on a row that is a record ("| T-1043 | done |" under "Status") is
    that record's state, read from it, not the run's work."""
    if "|" not in text:
        return text
    lines = text.split("\n")
    heads: list[str] = []
    out = []
    for n, line in enumerate(lines):
        row = TABLE_ROW.match(line)
        if row is None:
            heads = []
            out.append(line)
            continue
        cells = [c.strip() for c in row.group(1).split("|")]
        if n + 1 < len(lines) and RULE_ROW.match(lines[n + 1]):
            heads = [c.lower() for c in cells]
            out.append(line)
            continue
        done = [k for k, c in enumerate(cells) if _marks_done(c)]
        rest = [c for k, c in enumerate(cells) if c and k not in done and not set(c) <= set("-: ")]
        a_record = ids is not None and any(ids.fullmatch(c) for c in cells)
        states = all(k < len(heads) and heads[k] in STATE_HEADS for k in done)
        if done and rest and not (a_record and states):
            line = "Done: " + "; ".join(rest) + "."
        out.append(line)
    return "\n".join(out)


#: column heads whose values are a record's state
STATE_HEADS = frozenset({"status", "state", "stage", "zustand", "statut", "état", "estado", "stato"})


def _label_kinds(listed: str) -> tuple[str, ...]:
    """The writes that back "Done: <listed>" when what it lists names no act: any change
    but the comment that says it, and a comment or a send when it names one ("Reminder
    comment to Lena", "Reminder e-mail to the agency")."""
    words = {w.lower() for w in WORD.findall(listed)}
    named = (("comment",) if words & COMMENT_NOUNS else ()) + (("send",) if words & SENT_NOUNS else ())
    return tuple(dict.fromkeys(("update", "send", "create", "delete", *named)))


def _marks_done(cell: str) -> bool:
    m = _DONE_CELL.match(cell)
    if m is None:
        return False
    word = (m.group("word") or "").lower()
    return word in DONE_LABELS if word else bool(DONE_MARK.match(cell + " x"))


def claims_in(text: str, ids: re.Pattern | None = None) -> list[Claim]:
    """Every clause of ``text`` that says work was done (see the module docstring)."""
    found: list[Claim] = []
    for sentence in sentences(_rows_as_labels(text, ids)):
        mark = DONE_MARK.match(sentence)
        if mark is not None and sentence[mark.end() :].strip():
            sentence = "Done: " + sentence[mark.end() :]
        plain = STATUS_NOTE.sub(" ", QUOTED.sub(" ", sentence))
        label = LABEL.match(plain)
        if label and len(label.group(1).split()) <= 5:
            plain = plain[label.end() :]
            said = label.group(1).strip().lower()
            if said in DONE_LABELS and plain.strip() and not PAST_TIME.search(sentence):
                inner = claims_in(plain, ids)
                if inner or not (NOT_A_CLAIM & {w.lower() for w in WORD.findall(plain)}):
                    id_list = ids.findall(sentence) if ids is not None else []
                    # "Done: …" claims the work it lists; a list with no action verb
                    # still claims some change (any write but the comment that says it)
                    found += [Claim(sentence, c.verb, c.kinds, "label", c.ids or id_list) for c in inner] or [
                        Claim(sentence, said, _label_kinds(plain), "label", id_list)
                    ]
                    continue
        foreign = _own_report_elsewhere(plain)
        if foreign is not None:
            id_list = ids.findall(sentence) if ids is not None else []
            found.append(Claim(sentence, *foreign, id_list))
            continue
        words = [w.lower().replace("’", "'") for w in WORD.findall(plain)]
        subject = None  # "self" or "other": who the clauses of this sentence are about
        for clause in _clauses(words):
            joined = clause[0] in SPLIT
            body = clause[1:] if joined else clause
            if not body:
                continue
            if DENIALS & set(body) or any(w.endswith("n't") for w in body):
                subject = subject if joined else None
                continue
            # "(P-7) is due on 26 Dec and marked at risk": a clause that begins with a
            # verb of being is the predicate of the subject before it
            continues = joined or body[0] in BE
            claim = _claim_in(body, subject if continues else None) or _embedded_self(body)
            if claim is None:
                if body[0] in SELF and not HEDGES & set(body):
                    subject = "self"  # "I went ahead and set …": the next clause is the worker's
                else:
                    subject = "other" if _has_subject(body) else (subject if continues else None)
                continue
            verb, kinds, how = claim
            subject = "self"
            # a time named tells history ("was sent on 3 Dec"); a state's date is its new
            # value ("the due date is now 2026-12-12")
            if how in ("passive", "headline") and _names_a_time(sentence):
                continue
            id_list = ids.findall(sentence) if ids is not None else []
            found.append(Claim(sentence, verb, kinds, how, id_list))
    return found


def _names_a_time(sentence: str) -> bool:
    """Whether the sentence names when something happened: a date given as the new
    value ("moved to 2026-12-12", "postponed until 3 Dec") is no such time."""
    from workerctl.runs.dates import DATE

    kept = sentence
    for m in reversed(list(DATE.finditer(sentence))):
        if re.search(r"\b(?:to|until|till)\s+$", sentence[: m.start()], re.I):
            kept = kept[: m.start()] + " " + kept[m.end() :]
    return PAST_TIME.search(kept) is not None


def _has_subject(body: list[str]) -> bool:
    return bool(body) and body[0] not in AUX and body[0] not in FORMS and body[0] not in SELF


#: words after a participle that show it is the verb ("Corrected the invoice", "sent it")
_NO_NOUN = DETERMINERS | PREPOSITIONS | SELF | {"it", "them", "him", "her", "and", ","}


def _adjective(body: list[str]) -> bool:
    """Whether the participle that begins ``body`` describes the noun after it ("Corrected
    invoice sent to …", "Updated list attached and posted"): a bare word follows it (no
    determiner, no pronoun, no preposition) and another action verb's past form comes
    later in the clause, which is the act told."""
    if len(body) < 3 or body[1] in _NO_NOUN:
        return False
    return any(FORMS.get(w, ("", ""))[1] == "past" for w in body[2:])


#: words that make the worker's own act after them something it may do, not did ("if I
#: sent", "once we posted", "I would have sent")
_GOVERNING = {"if", "once", "when", "whenever", "before", "after", "until", "unless", "till", "to", "not"}


def _embedded_self(body: list[str]) -> tuple[str, tuple[str, ...], str] | None:
    """The worker telling its own act inside a clause about something else ("once the
    agency answers the reminder I sent them", "the comment we posted on T-1042 is …"):
    "I"/"we" right before a past form of an action verb, or before "have" and its
    participle, not governed by a condition or a modal."""
    for at in range(1, len(body)):
        word = body[at]
        if word not in FORMS:
            continue
        base, form = FORMS[word]
        if form != "past" or word == base or base in COMMENT_ONLY:
            continue
        if base in OUTPUT_VERBS and OUTPUT_NOUNS & set(body):
            continue  # "I created a summary below": the output itself
        if base in PARTICLE and body[at + 1 : at + 2] != [PARTICLE[base]]:
            continue
        who = at - 1
        if body[who] in ("have", "had") and who > 0:
            who -= 1
        if body[who] not in SELF or body[who] in ("i'll", "we'll", "i'd", "we'd"):
            continue
        if who > 0 and (body[who - 1] in _GOVERNING or body[who - 1] in HEDGES):
            continue
        if HEDGES & set(body[who:at]):
            continue
        return word, _kinds_for(base, body), "first person"
    return None


#: the worker's own report of an act in the other languages the form check reads: a
#: first-person subject, then (within the clause) a participle of a write ("Ik heb Lena
#: een herinnering gestuurd", "Ich habe Lena informiert", "J'ai envoyé un rappel")
_OWN_SUBJECT = r"(?:ik|wij|ich|wir|j'ai|nous\s+avons|he|hemos|ho|abbiamo|eu|nós)"
_PARTICIPLES = {
    "send": "gestuurd verstuurd verzonden gemaild geschickt verschickt gesendet versendet gemailt "
    "informiert benachrichtigt erinnert geïnformeerd envoyé informé relancé prévenu enviado informado "
    "avisado inviato informato avvisato enviei informei",
    "update": "bijgewerkt gewijzigd gesloten verplaatst aktualisiert geändert geschlossen verschoben "
    "modifié fermé déplacé actualizado cambiado cerrado movido aggiornato modificato chiuso spostato "
    "atualizei alterei",
    "create": "aangemaakt toegevoegd erstellt angelegt hinzugefügt créé ajouté creado añadido creato "
    "aggiunto criei",
    "delete": "verwijderd gelöscht entfernt supprimé eliminado borrado eliminato cancellato apaguei",
    "comment": "kommentiert commenté comentado commentato",
}
_PARTICIPLE_KIND = {w: kind for kind, words in _PARTICIPLES.items() for w in words.split()}
#: the endings a participle takes with gender and number ("envoyée", "enviados", "inviata")
_ENDINGS = ("es", "os", "as", "e", "s", "a", "i")
#: a first-person subject, or a passive's auxiliary ("a été envoyé", "fue enviado", "wurde
#: gesendet"), then up to a few words: the words after it are looked up (``_participle``)
_OWN_REPORT = re.compile(rf"(?<![\w'])({_OWN_SUBJECT})\b([^.;:!?\n]{{0,80}})", re.I)
_PASSIVE_AUX = (
    r"(?:a\s+été|ont\s+été|été|fue|fueron|ha\s+sido|han\s+sido|wurde|wurden|worden|werd|werden|"
    r"è\s+stat[oa]|sono\s+stat[ie]|foi|foram)"
)
_PASSIVE_REPORT = re.compile(rf"(?<![\w'])({_PASSIVE_AUX})\b([^.;:!?\n]{{0,60}})", re.I)
_AGENT_AFTER = frozenset({"par", "por", "von", "door", "da", "pelo", "pela"})


def _participle(after: str, *, passive: bool) -> str | None:
    """The participle of a write among the words of ``after`` (the first four of a
    passive's, before an agent: "… enviado por Lena" is Lena's act), as listed in
    ``_PARTICIPLE_KIND``."""
    words = re.findall(r"[^\W\d_]+", after.lower())
    for n, word in enumerate(words[:4] if passive else words):
        stems = [word[: -len(e)] for e in _ENDINGS if word.endswith(e)]
        # "enviada", "inviati": the same participle as "enviado", "inviato"
        forms = (word, *stems, *(stem + "o" for stem in stems))
        found = next((w for w in forms if w in _PARTICIPLE_KIND), None)
        if found is not None:
            if passive and words[n + 1 : n + 2] and words[n + 1] in _AGENT_AFTER:
                return None
            return found
    return None


#: a negation or a modal in those languages: the act was not, or may be, done
_NOT_DONE_ELSEWHERE = re.compile(
    r"\b(?:niet|geen|niets|nicht|nichts|kein\w*|pas|jamais|rien|no|non|não|nunca|nada|niente|nulla|"
    r"nenhum|zou|würde|könnte|sollte|pourrais|"
    r"pourrait|podría|potrei|poderia)\b",
    re.I,
)


#: a passive's act by the English word a record's status uses ("è stata inviata": "sent"), so
#: that a passive the records already tell ("INV-2044 … inviata" of an invoice whose status is
#: "sent") is read as history, as in English (``review._reported``)
_AS_STATUS = {
    "send": "sent",
    "update": "updated",
    "create": "created",
    "delete": "deleted",
    "comment": "commented",
}


def _own_report_elsewhere(sentence: str) -> tuple[str, tuple[str, ...], str] | None:
    """(verb, kinds, how) when the sentence reports a write in one of the other languages:
    in the first person, or in the passive (its verb then the English word of its status);
    None otherwise (English is read word by word below)."""
    for pattern in (_OWN_REPORT, _PASSIVE_REPORT):
        passive = pattern is _PASSIVE_REPORT
        for m in pattern.finditer(sentence):
            participle = _participle(m.group(2), passive=passive)
            if participle is None or _NOT_DONE_ELSEWHERE.search(sentence[: m.end()]):
                continue
            # a passive that names when, or whose report it retells, is history read from the
            # records ("Selon le commentaire du 28 novembre, la liste a été envoyée"), as in English
            if passive and (_names_a_time(sentence) or _TOLD_BY.search(sentence)):
                continue
            kind = _PARTICIPLE_KIND[participle]
            return (
                (_AS_STATUS[kind], (kind,), "passive") if passive else (participle, (kind,), "first person")
            )
    return None


#: "according to" in the other languages, or a day before the run's ("hier", "ayer",
#: "gestern", "il y a trois jours"): what follows is someone else's report, or history
_TOLD_BY = re.compile(
    r"\b(?:selon|d'après|según|laut|volgens|secondo|segundo|conforme|hier|avant-hier|ayer|anteayer|"
    r"gestern|vorgestern|gisteren|eergisteren|ieri|ontem|il\s+y\s+a|hace|geleden)\b",
    re.I,
)


def _claim_in(body: list[str], inherited: str | None) -> tuple[str, tuple[str, ...], str] | None:
    """(verb, kinds, how) for the first claim in one clause, or None."""
    about_output = bool(OUTPUT_NOUNS & set(body))
    hedged = next((n for n, w in enumerate(body) if w in HEDGES), len(body))
    for at, word in enumerate(body):
        if at > hedged:
            return None  # "I would post …", "please send …": what follows is no report
        if word in STATES and word not in FORMS and at > 0 and body[at - 1] == "now":
            return word, ("update",), "state"
        if (
            word == "now"
            and at > 0
            and body[at - 1] in ("is", "are")
            and FIELD_NOUNS & set(body[: at - 1])
            and not SELF & set(body[:at])
        ):
            return "is now", ("update",), "state"
        in_touch = word in ("got", "gotten") and body[at + 1 : at + 3] == ["in", "touch"]
        if in_touch and (SELF & set(body[:at]) or at == 0):  # "we got in touch with the agency"
            return f"{word} in touch", ("send",), "first person" if at else "no subject"
        went_out = word in ("went", "gone") and body[at + 1 : at + 2] == ["out"]
        if went_out and SENT_NOUNS & set(body[:at]) and not _agent_is_other(body, at + 1):
            return f"{word} out", ("send",), "passive"
        if word not in FORMS:
            continue
        base, form = FORMS[word]
        if base in PARTICLE and body[at + 1 : at + 2] != [PARTICLE[base]]:
            continue
        if at == 0 and form == "past" and _adjective(body):
            continue  # "Corrected invoice sent to Jonas": the act is "sent"
        if about_output and base in OUTPUT_VERBS:
            continue
        if base in COMMENT_ONLY and not COMMENT_NOUNS & set(body):
            continue  # "left it as it was": only a comment or a note left is a write
        before = body[:at]
        others = [w for w in before if w not in AUX and w not in SELF]
        if others:
            # someone or something else is the subject: only a passive is a claim, or a
            # headline ("Refund issued to the customer": a noun, the participle, then
            # a preposition or nothing)
            after = body[at + 1] if at + 1 < len(body) else None
            if (
                form == "past"
                and word != base
                and before[-1] not in BE | AUX | DETERMINERS
                and before[0] not in DETERMINERS | PREPOSITIONS | {"it", "there", "he", "she", "they", "you"}
                and len(before) <= 4
                and (after is None or after in HEADLINE_NEXT or after == "by")
                and not _agent_is_other(body, at)
            ):
                return word, _kinds_for(base, body), "headline"
            if form == "past" and before[-1] in BE | {"now"}:
                if before[-1] in ("is", "are", "be") and "now" not in before:
                    continue  # "the task is assigned to Lena": a state, not an act
                if _agent_is_other(body, at):
                    continue
                return word, _kinds_for(base, body), "passive"
            continue
        if SELF & set(before):
            if form == "past":
                return word, _kinds_for(base, body), "first person"
            if form == "ing" and set(before) & {"am", "are", "i'm", "we're"}:
                return word, _kinds_for(base, body), "first person"
            if form == "base" and set(before) & FUTURE:
                return word, _kinds_for(base, body), "first person"
            continue
        if inherited == "other" or form != "past":
            continue
        if word == base and inherited != "self" and not (before and before[-1] in BE):
            continue  # "Set the due date": an instruction as likely as a report
        if _agent_is_other(body, at):
            continue  # "posted so far by Lena and Priya": their work, told
        how = "passive" if before and before[-1] in BE else "no subject"
        return word, _kinds_for(base, body), how
    return None


def next_step(text: str) -> str | None:
    """The sentence that names a next step (whole words, outside quotes), or None:
    the first one that says so outright ("next step", "suggest" ...), else the
    first with an action word ("should", "ask", "confirm" ...)."""
    plain = [s for s in sentences(text) if QUOTED.sub(" ", s).strip()]
    for pattern in (STRONG_NEXT_STEP, NEXT_STEP):
        for sentence in plain:
            # what the worker could not do is no step ("I was unable to check the plan")
            if pattern.search(COULD_NOT_DO.sub(" ", QUOTED.sub(" ", uncontracted(sentence)))):
                return sentence
    return None


def inability(text: str) -> str | None:
    """The first sentence saying the worker could not finish something, or None.
    Another party's ("the agency cannot finish until legal releases it", "T-1042 is
    blocked by the glossary") is what the worker reports, not its own inability."""
    for sentence in sentences(QUOTED.sub(" ", text)):
        plain = uncontracted(sentence)  # "I wasn't able to" as "I was not able to"
        for m in INABILITY.finditer(plain):
            if _worker_is_subject(plain[: m.start()]):
                return sentence
    return None


WORKER_SUBJECTS = {"worker", "run", "workerctl"}
ADVERBS = {"still", "also", "so", "far", "yet", "unfortunately", "sadly", "currently", "again", "but", "and"}


def _worker_is_subject(before: str) -> bool:
    """Whether the clause that ends in ``before`` has the worker for its subject: none
    named ("Could not read P-7", "Blocked: …"), "I"/"we", or the worker or run itself."""
    clause = re.split(r"[,;:(]|\b(?:and|but|then|while)\b", before.lower())[-1]
    words = [w.replace("’", "'") for w in WORD.findall(clause)]
    if all(w in AUX or w in ADVERBS for w in words):
        return True
    return bool(SELF & set(words) or WORKER_SUBJECTS & set(words))
