"""Does the output answer the task, and in the form its instructions state?

*answer* (#28's non-answer): a completed run whose output does not do the job
is not passed, whether or not the worker declares a contract. The output fails
when nothing in it is a statement about the task: every sentence greets, asks
the reader something, offers help, refuses or apologises; or it is a template
(section values left as placeholders, "lorem ipsum", "[insert …]"); or it
repeats the instructions back; or its statements share nothing (no id, name,
number or content word) with the records the run read and its instructions.
This check stands before a write: a posting output mode does not post an output
that greets, asks, offers, refuses, is a template or repeats the instructions. The
last rule, sharing nothing with the records, only warns the reviewer, unless the
output also greets, asks, offers or refuses: its other sentences are then filler,
and it is not posted either.

*form*: what the instructions themselves state about the output's language,
length (lines, words, sentences, characters, bullets, paragraphs) and lists.
"""

from __future__ import annotations

import functools
import re

from workerctl.runs.checks import FAIL, PASS, UNKNOWN, Check
from workerctl.runs.evidence import ReviewEvidence, content_words
from workerctl.runs.states import preview_of
from workerctl.runs.structured import OPENING_QUOTE

ANSWER_TITLE = "The output answers the task (not a greeting, a question back, a refusal or a template)"
FORM_TITLE = "The output keeps the language, length and list rules its instructions state"

GREETING = re.compile(
    r"^\W*(?:hi|hello|hey|greetings|good (?:morning|afternoon|evening|day)|dear \w+|hallo|bonjour|hola)"
    r"\b[\s\W]*"
    r"(?:there|team|all|everyone|friend)?\W*$",
    re.I,
)
OFFER = re.compile(
    r"\b(?:i'?m|i am|we are|we're) (?:here|ready|happy|glad|available) to (?:help|assist)|"
    r"\b(?:happy|glad|ready) to (?:help|assist)|how (?:can|may|could) i (?:help|assist)|"
    r"\blet me know\b|\bfeel free\b|what (?:would you like|do you (?:want|need)|can i)|"
    r"\b(?:please|could you|can you|would you)\s+"
    r"(?:provide|share|send|tell|clarify|specify|give|paste|upload)|"
    r"\bi (?:need|would need|require) (?:more|additional) (?:information|details|context)\b|"
    r"\bwhich (?:task|record|one) (?:do|did|would) you\b|\bi'?ll be (?:happy|glad) to\b|"
    r"\bis there anything else\b|\bhope this helps\b|"
    # the instructions told back as the reader's wish, not answered
    r"\byou(?:'d| would) like me to\b|\byou (?:want|need|asked|have asked|'ve asked) me to\b|"
    r"\bi(?:'ve| have) been asked to\b|\bi am asked to\b|\bmy task is to\b|"
    # an offer or a promise of the answer instead of the answer
    r"\bi'?d be (?:happy|glad) to\b|\b(?:i'?m|i am) (?:happy|glad) to\b|\bget back to you\b|"
    # the same offers and promises in the other languages the form check reads
    r"\b(?:con (?:mucho )?gusto|avec plaisir|volontiers|(?:sehr )?gerne|con piacere|graag|com prazer)\b|"
    r"\b(?:je reviens vers vous|ich melde mich|le respondo|te respondo|vi faccio sapere)\b|"
    r"\b(?:i'?ll|i will|let me) (?:look into|look at|check on|work on|put together|prepare)\b|"
    # an announcement of content that is not there ("Below is the summary you requested.")
    r"^\W*(?:here(?:'s| is| are)|below (?:is|are|you will find)|please find|the following is)\b"
    r"[^.:!?]{0,60}\b(?:summary|overview|report|update|answer|review|note|details)\b[^.:!?]{0,40}[.:!]?\s*$",
    re.I,
)
REFUSAL = re.compile(
    r"\b(?:i'?m sorry|i am sorry|i apologi[sz]e|unfortunately,? i|as an ai|as a language model|"
    r"i (?:can(?:no|')t|cannot|won't|will not|am not able to|am unable to|'m unable to) "
    r"(?:help|assist|comply|do that|fulfil+|provide (?:that|this)|answer (?:that|this)|"
    r"complete (?:that|this)|"
    r"process (?:that|this)|access (?:external|real-time|the internet|your))|"
    r"(?:against|violates?) (?:my|the) (?:guidelines|policy|policies))",
    re.I,
)
PLACEHOLDER_VALUE = re.compile(
    # not "pending", "todo", "n/a" or "none yet": the true state of a checklist's items
    r"^\W*(?:tbd|tbc|fixme|xxx+|to be (?:determined|confirmed|filled(?: in)?|added)|"
    r"placeholder|\?+|\.{2,}|…|-+|insert [\w ]+|your [\w ]+ here|lorem ipsum.*)\W*$",
    re.I,
)
PLACEHOLDER_TOKEN = re.compile(
    r"lorem ipsum|\[(?:insert|your|name|date|add|placeholder|tbd|todo)\b[^\]]{0,40}\]|"
    r"<(?:insert|your|placeholder)\b[^>]{0,40}>|\{\{?\s*[a-z_]{3,30}\s*\}?\}|\bXXX+\b|"
    # "<status>", "<due date>": a template's slot, not an HTML element
    r"<(?!/?(?:a|b|i|u|p|s|br|hr|em|strong|code|pre|ul|ol|li|div|span|table|tr|td|th|img|sub|sup|"
    r"blockquote|details|summary|small|mark|del|ins|kbd|h[1-6]|form|input|button|select|option|label|"
    r"script|style|iframe|frame|object|embed|svg|math|meta|base|link|body|html|head|title|video|audio|"
    r"source|textarea|center|font|nav|header|footer|section|article|main|aside)\b)[a-z][a-z _-]{2,30}>",
    re.I,
)
#: a model's reasoning left in the answer ("<think>…</think>")
REASONING = re.compile(r"<\s*(think|thinking|reasoning|scratchpad|analysis)\s*>", re.I)
LABEL = re.compile(r"^\s*[-*•]?\s*([A-Za-z][\w ()/'-]{0,40}):\s*(.*)$")
NUMBERISH = re.compile(r"\d[\d.,:/-]*\d|\d")


ACKNOWLEDGEMENT = re.compile(
    r"^\W*(?:sure|certainly|of course|absolutely|okay|ok|great|thanks|thank you|no problem|got it|"
    r"understood|noted|alright|all right|"
    r"claro|por supuesto|desde luego|bien s[uû]r|d'accord|naturellement|nat[uü]rlich|klar|"
    r"selbstverst[aä]ndlich|"
    r"certo|certamente|va bene|zeker|natuurlijk|prima|claro que sim)\W*$",
    re.I,
)


@functools.lru_cache(maxsize=256)  # a run's sentences are asked at the write and at the end
def _acts(sentence: str) -> str | None:
    """What a sentence does when it is not a statement: greeting, offer, refusal, question."""
    plain = sentence.strip()
    if GREETING.match(plain):
        return "greeting"
    if REFUSAL.search(plain):
        return "refusal"
    if OFFER.search(plain):
        return "offer of help / request for input"
    if plain.endswith("?"):
        return "question to the reader"
    return None


def _disguised(raw: str) -> list[str]:
    """Words written to read as another string (``runs.visible``): what a person reads
    and what a search, a link or a filter matches differ, so the output is not posted."""
    from workerctl.runs.visible import disguised

    return [
        f'it writes "{d.shown}" with {d.why}: a reader sees {d.reads_as}, but a search, '
        "a link or a filter matches another string"
        for d in disguised(raw)
    ]


def answer_check(ev: ReviewEvidence) -> Check:
    title = ANSWER_TITLE
    text = ev.output
    if not text.strip():
        verdict = PASS if ev.run.status != "completed" else FAIL
        return Check("answer", title, verdict, ["no output"])
    instructions = str((ev.run.config or {}).get("instructions", ""))
    # what the text alone decides is the same at each stage of a run: worked out once
    cache: dict[tuple[str, str], tuple[list[str], list[str], list[str]]]
    cache = ev.__dict__.setdefault("_answer_text", {})
    if (text, instructions) not in cache:
        cache[(text, instructions)] = _text_problems(text, instructions)
    said, statements, found = cache[(text, instructions)]
    problems = [*_disguised(ev.run.output or ""), *found]
    # sharing nothing with the records is a reviewer's warning, not a reason to stop a
    # write; but beside a sentence that refuses, greets, offers or asks back, what else
    # the output says is filler ("As an AI I cannot see your CMS. Please check with your
    # team."): a non-answer, stopped before the write like one with no statement at all
    acted = len(statements) < len(said)
    if (
        (ev.stage != "before_write" or acted)
        and not problems
        and statements
        and (ev.seen or instructions.strip())
    ):
        grounded = _grounded(" ".join(statements), ev, instructions)
        if not grounded:
            problems.append(
                f"its statements share no id, name, number or word with the records the run read or its "
                f'instructions: "{preview_of(" ".join(statements), 160)}"'
                + (" beside sentences that are not about the task" if acted else "")
            )
    if problems:
        return Check("answer", title, FAIL, problems)
    return Check(
        "answer",
        title,
        PASS,
        [
            f"{len(statements)} of {len(said)} sentence(s) state something about the task, "
            f'e.g. "{preview_of(statements[0], 120)}"'
        ],
    )


def _text_problems(text: str, instructions: str) -> tuple[list[str], list[str], list[str]]:
    """(sentences, the sentences that state something, problems) of an output, from
    its text and the worker's instructions alone."""
    from workerctl.runs.claims import sentences

    problems: list[str] = []
    said = sentences(text)
    acts = [(s, _acts(s)) for s in said]
    if any(act for _s, act in acts):  # "Sure! Let me know ...": the "Sure!" is no statement either
        acts = [(s, act or ("acknowledgement" if ACKNOWLEDGEMENT.match(s) else None)) for s, act in acts]
    statements = [s for s, act in acts if act is None and not _bare_label(s)]
    if not statements:
        shown = "; ".join(f'{act}: "{preview_of(s, 80)}"' for s, act in acts[:4] if act)
        problems.append(f"no sentence states anything about the task ({shown or 'only labels'})")
    reasoning = REASONING.search(text)
    if reasoning:
        problems.append(f"the model's reasoning is left in the output (<{reasoning.group(1)}>)")
    # code is shown as code: "`<form>`" is no template slot
    shown = re.sub(r"```.*?```|`[^`\n]+`", " ", text, flags=re.S)
    tokens = [t for t in PLACEHOLDER_TOKEN.findall(shown) if not REASONING.match(t)]
    if tokens:
        problems.append(
            f"template text left in the output: {', '.join(repr(t) for t in dict.fromkeys(tokens))}"
        )
    sections = [(m.group(1), m.group(2)) for line in text.splitlines() if (m := LABEL.match(line))]
    empty = [label for label, value in sections if PLACEHOLDER_VALUE.match(value) or not value.strip()]
    filled_later = _filled_below(text)
    empty = [label for label in empty if label not in filled_later]
    if sections and len(empty) * 2 >= len(sections) and len(sections) >= 2:
        problems.append(
            f"{len(empty)} of its {len(sections)} sections hold no content: "
            + ", ".join(f"'{e}:'" for e in empty)
        )
    if instructions.strip() and len(text) >= 20 and _repeats(text, instructions):
        problems.append("the output repeats the worker's instructions back")
    return said, statements, problems


def _repeats(text: str, instructions: str) -> bool:
    """Most of the output's word trigrams are the instructions' own, and the output is
    not much longer than them: the instructions given back."""
    out = re.findall(r"\w+", text.lower())
    ins = re.findall(r"\w+", instructions.lower())
    if len(out) < 3 or len(out) > 1.5 * len(ins) + 5:
        return False
    theirs = {tuple(ins[i : i + 3]) for i in range(len(ins) - 2)}
    mine = [tuple(out[i : i + 3]) for i in range(len(out) - 2)]
    return sum(1 for t in mine if t in theirs) >= 0.7 * len(mine)


def _bare_label(sentence: str) -> bool:
    m = LABEL.match(sentence)
    return m is not None and not m.group(2).strip()


def _filled_below(text: str) -> set[str]:
    """Section labels whose content follows on the next lines (a list under 'Talking points:',
    a table under "T-1042 has 2 comments:", a blank line between them or not)."""
    out = set()
    lines = [line for line in text.splitlines() if line.strip()]
    for n, line in enumerate(lines):
        m = LABEL.match(line)
        if m and not m.group(2).strip() and n + 1 < len(lines) and not LABEL.match(lines[n + 1]):
            out.add(m.group(1))
    return out


def _grounded(text: str, ev: ReviewEvidence, instructions: str) -> bool:
    lowered = text.lower()
    if ev.id_pattern is not None and ev.id_pattern.search(text):
        return True
    words = content_words(text)
    if words & (ev.seen_words | content_words(instructions)):
        return True
    numbers = set(NUMBERISH.findall(text))
    return any(n in ev.seen_lower for n in numbers if len(n) >= 2) or any(
        s.title.lower() in lowered for s in ev.seen.values() if len(s.title) >= 6
    )


# -- form ---------------------------------------------------------------------------

NUMBERS = {
    "one": 1, "a": 1, "a single": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "fifty": 50, "hundred": 100,
}  # fmt: skip
_N = r"(\d+|" + "|".join(sorted((re.escape(k) for k in NUMBERS), key=len, reverse=True)) + ")"
UNITS = r"(lines?|words?|sentences?|characters?|chars?|bullets?|bullet points?|paragraphs?|items?|points?)"
#: a limit said with a verb ("keep it to two sentences", "limit the comment to 3 lines",
#: "stick to 5 bullets"): an upper bound like "at most"
_KEEP_TO = (
    r"(?:keep|limit|restrict|cap|hold|stick|confine)(?:ed)?\s+"
    r"(?:(?:it|this|that|yourself|the\s+\w+|your\s+\w+|each\s+\w+)\s+)?(?:to|at|under|within|below)"
    r"|limited\s+to|(?:no|not)\s+longer\s+than"
)
LIMIT = re.compile(
    rf"\b(at most|no more than|not more than|up to|a maximum of|maximum of|max\.?|under|fewer than|less than|"
    rf"within|not exceed(?:ing)?|exactly|in|{_KEEP_TO})\s+{_N}\s+{UNITS}\b"
    rf"|\b{_N}\s+{UNITS}\s+(?:or (?:less|fewer)|at most|max(?:imum)?\b|tops\b)",
    re.I,
)
LANGUAGES = {
    "english": ("en", "the and is are of to in that it for with on this was be have not"),
    "german": ("de", "der die das und ist nicht mit den ein eine zu von auf für im sich auch wird"),
    "french": ("fr", "le la les et est des une un pour pas que dans sur avec du au ce il sont"),
    "spanish": ("es", "el la los las y es de que en un una por con para no del se está son"),
    "dutch": ("nl", "de het een en is van dat niet op te met voor zijn er ook wordt"),
    "italian": ("it", "il lo la gli le e è di che un una per non con del della sono"),
    "portuguese": ("pt", "o a os as e é de que em um uma para não com do da são"),
    "swedish": ("sv", "och är det att en ett som på för med inte av till den har"),
}
LANGUAGE_RULE = re.compile(
    r"\b(?:(?:write|answer|reply|respond|draft|comment|summari[sz]e|output|language)\b[^.\n]{0,60}?\bin|"
    r"language\s*:)\s+(" + "|".join(LANGUAGES) + r")\b|\b(" + "|".join(LANGUAGES) + r") only\b",
    re.I,
)
#: the same rule written in the language asked for ("en français", "auf Deutsch")
NATIVE_LANGUAGE_RULE = re.compile(
    r"\b(?:en\s+fran[çc]ais|auf\s+deutsch|en\s+espa[ñn]ol|in\s+het\s+nederlands|in\s+italiano|"
    r"em\s+portugu[êe]s|p[åa]\s+svenska)\b",
    re.I,
)
_NATIVE = {"fran": "french", "deut": "german", "espa": "spanish", "nede": "dutch", "ital": "italian"}
_NATIVE |= {"port": "portuguese", "sven": "swedish"}
BULLET = re.compile(r"^\s*(?:[-*•–]|\d+[.)])\s+")
NUMBERED = re.compile(r"^\s*\d+[.)]\s+")
LIST_RULE = re.compile(
    r"\b(?:as|in|use|using|with|make)\s+(?:a\s+)?(bulleted|bullet|numbered)\s+(?:list|points)\b", re.I
)
NO_LIST_RULE = re.compile(
    r"\b(?:no|not? use|without|avoid|never use)\s+(?:any\s+)?"
    r"(?:bullets?|bullet points|lists?|numbered lists?)\b|"
    r"\b(?:in|as) (?:plain |short |simple )?(?:\w+ )?prose\b|\bprose only\b",
    re.I,
)
JSON_RULE = re.compile(
    r"\b(?:as|in|return|returns|output|answer|reply|respond|give)\s+(only\s+)?(?:with\s+)?"
    r"(?:an?\s+|valid\s+|one\s+|only\s+)*json(?:\s+(object|array|list))?"
    r"(?:\s+with\s+(?:the\s+)?(?:keys|fields)\s*:?\s*([\w, ]+?)(?:[.\n]|$))?",
    re.I,
)
#: what prose is not: a JSON object or array, a table, a code block
_NOT_PROSE = re.compile(r"\A\s*[{\[][\s\S]*[}\]]\s*\Z|^\s*\|.*\|\s*$|^```", re.M)


#: a quotation: the language of what someone else wrote, not the output's own
_QUOTATION = re.compile(OPENING_QUOTE + r"[^\"\n]*\"|“[^”\n]*”|„[^“”\n]*[“”]|«[^»\n]*»|‚[^‘’\n]*[‘’]")


def language_of(text: str) -> tuple[str | None, dict[str, int]]:
    words = re.findall(r"[^\W\d_]+", _QUOTATION.sub(" ", text).lower())
    scores = {
        name: sum(1 for w in words if w in set(stop.split())) for name, (_code, stop) in LANGUAGES.items()
    }
    best = max(scores, key=lambda k: scores[k])
    return (best if len(words) >= 8 and scores[best] >= 3 else None), scores


def _count(text: str, unit: str) -> int:
    from workerctl.runs.claims import sentences

    unit = unit.lower().rstrip("s")
    lines = [line for line in text.splitlines() if line.strip()]
    if unit == "line":
        return len(lines)
    if unit == "word":
        return len(text.split())
    if unit == "sentence":
        return len([s for s in sentences(text) if re.search(r"\w", s)])
    if unit in ("character", "char"):
        return len(text.strip())
    if unit in ("bullet", "bullet point", "item", "point"):
        return sum(1 for line in lines if BULLET.match(line))
    return len([p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()])


_Limit = tuple[str, int, str, str]  # how ("at most", "exactly", …), amount, unit, the rule's words


@functools.lru_cache(maxsize=64)
def _form_rules(
    instructions: str,
) -> tuple[
    tuple[_Limit, ...],
    tuple[tuple[str, str], ...],
    tuple[tuple[str, str], ...],
    tuple[str, ...],
    tuple[_JsonRule, ...],
]:
    """The length, language, list and no-list rules the instructions state: the same for
    every run of a worker (a batch checks hundreds), so read once per text."""
    limits = []
    for m in LIMIT.finditer(instructions):
        how, amount, unit = (
            (m.group(1), m.group(2), m.group(3)) if m.group(1) else ("at most", m.group(4), m.group(5))
        )
        n = int(amount) if amount.isdigit() else NUMBERS[amount.lower()]
        how = how.lower()
        if (
            how == "in"
            and n != 1
            and unit.lower().rstrip("s") not in ("word", "sentence", "line", "paragraph")
        ):
            continue
        limits.append((how, n, unit, m.group(0)))
    languages = tuple(
        ((m.group(1) or m.group(2)).lower(), m.group(0)) for m in LANGUAGE_RULE.finditer(instructions)
    ) + tuple(
        (_NATIVE[m.group(0).split()[-1].lower()[:4].replace("ç", "c")], m.group(0))
        for m in NATIVE_LANGUAGE_RULE.finditer(instructions)
    )
    lists = tuple((m.group(1).lower(), m.group(0)) for m in LIST_RULE.finditer(instructions))
    no_lists = tuple(m.group(0) for m in NO_LIST_RULE.finditer(instructions))
    return tuple(limits), languages, lists, no_lists, _json_rules(instructions)


_JsonRule = tuple[
    str, tuple[str, ...], str
]  # "object"/"array"/"" (+ " only"), the keys named, the rule's words


def _json_rules(instructions: str) -> tuple[_JsonRule, ...]:
    out = []
    for m in JSON_RULE.finditer(instructions):
        if re.search(
            r"\b(?:not|never|no|don't|without)\W+(?:\w+\W+)?$",
            instructions[max(0, m.start() - 24) : m.start()],
            re.I,
        ):
            continue  # "do not answer in JSON"
        kind = (m.group(2) or "").lower().replace("list", "array")
        keys = _key_names(m.group(3) or "")
        only = bool(m.group(1)) or bool(re.search(r"\bonly\b", m.group(0), re.I))
        out.append((kind + (" only" if only else ""), keys, m.group(0).strip()))
    return tuple(out)


def _key_names(listed: str) -> tuple[str, ...]:
    """The key names a rule lists ("status, due, assignee and next_step for the linked
    task"): one word each; the list ends at the first part that is more than a word."""
    out = []
    for part in re.split(r"\s*,\s*|\s+and\s+", listed.strip()):
        words = part.split()
        if words:
            out.append(words[0].strip("`'\""))
        if len(words) != 1:
            break
    return tuple(k for k in out if k)


def _json_problems(text: str, rules: tuple[_JsonRule, ...]) -> list[str]:
    from workerctl.runs.structured import json_in

    problems: list[str] = []
    found = json_in(text) if rules else None  # the JSON the output is or holds, read once
    value, whole = found if found is not None else (None, False)
    for wanted_kind, keys, said in rules:
        kind, _, only = wanted_kind.partition(" ")
        if found is not None and only and not whole:
            problems.append(f'the instructions say "{said}"; the output holds JSON among other text')
            continue
        if found is None:
            problems.append(f'the instructions say "{said}"; the output is not JSON')
            continue
        wanted = {"object": dict, "array": list}.get(kind)
        if wanted is not None and not isinstance(value, wanted):
            problems.append(f'the instructions say "{said}"; the output is JSON, but not a JSON {kind}')
            continue
        missing = [k for k in keys if isinstance(value, dict) and k not in value]
        if missing:
            problems.append(f'the instructions say "{said}"; the JSON has no {", ".join(missing)}')
    return problems


def form_check(ev: ReviewEvidence) -> Check:
    title = FORM_TITLE
    instructions = str((ev.run.config or {}).get("instructions", ""))
    text = ev.output.strip()
    rules, problems = [], []
    limits, languages, lists, no_lists, json_rules = _form_rules(instructions)
    for how, n, unit, said in limits:
        found = _count(text, unit)
        rules.append(f'"{said}" ({found})')
        if unit.lower().startswith(("item", "point", "bullet")) and found == 0 and how != "exactly":
            continue  # not a list at all: the list rule decides that
        strict = how in ("under", "fewer than", "less than")
        too_many = found >= n if strict else found > n
        if (how == "exactly" and found != n) or (how != "exactly" and too_many):
            problems.append(f'the instructions say "{said}"; the output has {found} {unit.rstrip("s")}(s)')
    for wanted, said in languages:
        found_lang, scores = language_of(text)
        rules.append(f'"{said}"')
        if found_lang is not None and found_lang != wanted and scores[found_lang] > 2 * scores[wanted]:
            problems.append(
                f'the instructions say "{said}"; the output reads as {found_lang.title()} '
                f"({scores[found_lang]} {found_lang.title()} function words, "
                f"{scores[wanted]} {wanted.title()})"
            )
    bullets = sum(1 for line in text.splitlines() if BULLET.match(line))
    for kind, said in lists:
        rules.append(f'"{said}"')
        count = (
            sum(1 for line in text.splitlines() if NUMBERED.match(line)) if kind == "numbered" else bullets
        )
        if count < 2:
            problems.append(f'the instructions say "{said}"; the output has {count} {kind} line(s)')
    for said in no_lists:
        rules.append(f'"{said}"')
        if bullets >= 2:
            problems.append(f'the instructions say "{said}"; the output has {bullets} list lines')
        elif "prose" in said.lower() and _NOT_PROSE.search(text):
            problems.append(f'the instructions say "{said}"; the output is JSON, a table or code, not prose')
    rules += [f'"{said}"' for _kind, _keys, said in json_rules]
    if text:
        problems += _json_problems(text, json_rules)
    if not text:
        return Check("form", title, UNKNOWN if rules else PASS, ["no output"])
    if problems:
        return Check("form", title, FAIL, problems)
    if not rules:
        return Check("form", title, PASS, ["the instructions state no language, length or list rule"])
    return Check("form", title, PASS, ["the output keeps " + "; ".join(rules)])
