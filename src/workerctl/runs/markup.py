"""Does the output carry active content, which a viewer of the record runs or fetches?

A task comment is shown by a tracker's web page, a chat bridge or a mail client, most of
which render Markdown or HTML. An output that holds a script, an event handler, a
``javascript:`` link or an image fetched from elsewhere does something when it is merely
looked at: it runs in the reader's session, or sends what its address carries (a
contact's e-mail in ``?d=…``) to whoever serves the image. None of that is an answer to a
task, and a model that writes it was usually told to by what it read (an injection). The
check stands before a write: such an output is not posted.
"""

from __future__ import annotations

import html
import re

from workerctl.runs.checks import FAIL, PASS, Check
from workerctl.runs.evidence import ReviewEvidence
from workerctl.runs.states import preview_of

MARKUP_TITLE = "The output carries no active content (script, event handler, javascript: link, remote image)"

#: what runs, or fetches, when the text is shown: each with what it is, in words
ACTIVE = (
    (
        re.compile(
            r"<\s*(script|iframe|frame|object|embed|applet|form|meta|base|link|svg|math|style)\b", re.I
        ),
        "an HTML <{0}> element",
    ),
    (re.compile(r"<[a-z][^<>]*?\s(on[a-z]{3,})\s*=", re.I), "an HTML event handler ({0})"),
    (
        re.compile(
            # a Markdown link's address, its autolink ("<javascript:…>"), an HTML attribute
            r"(?:\]\(\s*<?|<\s*|\b(?:href|src|action|formaction)\s*=\s*['\"]?\s*)(javascript|vbscript|data)\s*:",
            re.I,
        ),
        "a {0}: link",
    ),
    (re.compile(r"^\s*\[[^\]]+\]:\s*<?(javascript|vbscript|data)\s*:", re.I | re.M), "a {0}: link"),
    (
        re.compile(r"!\[[^\]]*\]\(\s*<?((?:https?:)?//[^)\s>?#]+)[?#][^)\s]*", re.I),
        "an image fetched from {0} with data in its address",
    ),
    (
        re.compile(r"<\s*img\b[^>]*\bsrc\s*=\s*['\"]?((?:https?:)?//[^'\"\s>]+)", re.I),
        "an HTML image fetched from {0}",
    ),
)


_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
_REFERENCE = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);?")


def _decoded(m: re.Match[str]) -> str:
    # "&lt;script&gt;" is shown as text: brackets stay out of what a browser would parse
    char = html.unescape(m.group(0))
    return " " if char in ("<", ">") else char


def as_browser_reads(text: str) -> str:
    """``text`` as a browser reads an address or attribute in it: character references
    decoded (``jav&#x61;script:`` is ``javascript:``) except brackets, which a reference
    only ever shows, and tabs and line breaks inside a word dropped (``java\tscript:``)."""
    if "&" in text:
        text = _REFERENCE.sub(_decoded, text)
    return re.sub(r"(?<=\w)[\t\r\n]+(?=\w)", "", text) if "\t" in text or "\r" in text else text


def active_content(text: str) -> list[tuple[str, str]]:
    """(what it is, the text around it) for each piece of active content in ``text``."""
    if not any(c in text for c in "<:!&"):  # "&colon;" is a colon once decoded
        return []
    text = as_browser_reads(_CODE.sub(" ", text))  # `<script>` in code is shown as text, never run
    found = []
    for pattern, what in ACTIVE:
        for m in pattern.finditer(text):
            around = text[max(0, m.start() - 20) : m.end() + 40]
            found.append((what.format(m.group(1).lower() if "{0}" in what else ""), around))
    return found


#: a Markdown image fetched from another server, its address without a query
_REMOTE_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?((?:https?:)?//[^)\s>]+)", re.I)


def _addressed_data(text: str, ev: ReviewEvidence) -> list[tuple[str, str]]:
    """Images whose address carries what the run read in its path, not its query
    (``//t.example/T-1042/lena.fischer/pixel.png``): a record's id, a person's name, an
    e-mail address or phone number. Fetching the image sends them to its server."""
    from workerctl.runs.evidence import personal_data
    from workerctl.runs.grounded import people

    found = []
    for m in _REMOTE_IMAGE.finditer(_CODE.sub(" ", text)):
        address = m.group(1)
        path = address.split("//", 1)[-1].partition("/")[2]
        words = set(re.findall(r"[^\W\d_]{3,}", path.lower()))
        named = [n for n in people(ev) if set(n.lower().split()) <= words]
        ids = ev.id_pattern.findall(path) if ev.id_pattern is not None else []
        if named or ids or personal_data(path):
            server = address.split("//", 1)[-1].partition("/")[0]
            what = ", ".join([*ids[:2], *named[:2]]) or "personal data"
            found.append((f"an image fetched from //{server} with {what} in its address", m.group(0)))
    return found


#: a Markdown reference definition ("[b]: https://t.example/b.png?task=T-1042")
_DEFINITION = re.compile(r"^[ \t]{0,3}\[([^\]\n]+)\]:[ \t]*<?(\S+?)>?(?:[ \t]+[\"'(].*)?$", re.M)
#: an image or link that names its address by reference: full, collapsed or shortcut
_BY_REFERENCE = re.compile(r"(!?)\[([^\]\n]*)\](?:\[([^\]\n]*)\])?(?![(:])")


def as_viewer_reads(text: str) -> str:
    """``text`` with each image and link that names its address by reference
    (``![badge][b]`` with ``[b]: https://…``) written with the address in place, as a
    Markdown viewer resolves it: what it fetches is checked the same way either way."""
    if "]:" not in text:
        return text
    defined = {" ".join(m.group(1).lower().split()): m.group(2) for m in _DEFINITION.finditer(text)}
    if not defined:
        return text

    def inlined(m: re.Match[str]) -> str:
        label = m.group(3) or m.group(2)  # "[alt][]" and "[alt]" name it by their text
        address = defined.get(" ".join(label.lower().split()))
        return f"{m.group(1)}[{m.group(2)}]({address})" if address else m.group(0)

    return _BY_REFERENCE.sub(inlined, _DEFINITION.sub(" ", text))


def markup_check(ev: ReviewEvidence) -> Check:
    text = as_viewer_reads(ev.output)
    found = active_content(text)
    if "](" in text:
        found += _addressed_data(text, ev)
    if not found:
        return Check(
            "markup", MARKUP_TITLE, PASS, ["no script, event handler, javascript: link or remote image"]
        )
    return Check(
        "markup",
        MARKUP_TITLE,
        FAIL,
        [
            f'it writes {what}: "{preview_of(around, 100)}" (a viewer of the record would run or fetch it)'
            for what, around in dict.fromkeys(found)
        ],
    )
