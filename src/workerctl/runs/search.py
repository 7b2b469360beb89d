"""Searching the runs by what they said (``runs search``, ``runs list --search``).

The service between the command line and the search index
(``history.search_index``): the query is checked first (a query FTS5 cannot read is
exit 2), the index answers (or a scan of the run files when no index can be
trusted or written), every hit is checked against the usual ``runs list`` filter on
its summary as the history shows it now, and each gets the snippet of its best
column. ``docs/search.md`` has the query syntax.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workerctl.history.search_index import Source
    from workerctl.history.store import History, RunFilter

#: ``runs search --json``: the fields a hit adds to a ``runs list`` row
SEARCH_FIELDS = {
    "score": "how well the run matches (bm25, higher is better)",
    "matched_in": "the column the snippet comes from: output, comments, tools, error, title or ids",
    "snippet": "a few words around the match, from that column (plain text)",
    "highlights": "[[start, end], …]: the matched words' character offsets in the snippet",
}


def plain_snippet(marked: str) -> tuple[str, list[list[int]]]:
    """The snippet without its marks, and where the marked words are in it."""
    from workerctl.history.search_index import MARK_OFF, MARK_ON

    out: list[str] = []
    marks: list[list[int]] = []
    length = 0
    start: int | None = None
    for ch in marked:
        if ch == MARK_ON:
            start = length
        elif ch == MARK_OFF:
            if start is not None and length > start:
                marks.append([start, length])
            start = None
        else:
            out.append(ch)
            length += 1
    return "".join(out), marks


def search(
    history: History, query: str, flt: RunFilter | None, limit: int | None
) -> tuple[list[dict[str, Any]], str]:
    """The runs matching ``query`` and ``flt``, best first, at most ``limit`` (None:
    all), each a ``runs list`` row with ``output`` and ``SEARCH_FIELDS``; and "" or
    why the answer came from a scan of the run files."""
    import sqlite3

    from workerctl.history.search_index import (
        IN_USE,
        Source,
        check_query,
        discard,
        in_use,
        memory,
        open_for_reading,
    )

    check_query(query)
    source = open_for_reading(history)
    try:
        return _answer(history, source, query, flt, limit)
    except sqlite3.DatabaseError as exc:
        if source.kind != "index":
            raise
        # a page only the query reads is damaged ("disk image is malformed"): the index
        # is not believed, and the answer comes from the run files, as for one that
        # cannot be opened
        source.close()
        if in_use(exc):  # another command writes it now: not damaged, kept
            source = Source("scan", memory(history), why=IN_USE)
            return _answer(history, source, query, flt, limit)
        discard(history, exc)
        source = Source("scan", memory(history), why=f"damaged ({exc})")
        return _answer(history, source, query, flt, limit)
    finally:
        source.close()


def _answer(
    history: History, source: Source, query: str, flt: RunFilter | None, limit: int | None
) -> tuple[list[dict[str, Any]], str]:
    """The answer from one source (the index, or the scan of the run files)."""
    from workerctl.history.search_index import matching, snippet, summary_of, unreadable, with_outputs

    damaged = unreadable(source.con)
    if damaged:  # never an answer that silently leaves a run out
        from workerctl.errors import DamagedFile

        path = history.body_path(damaged[0])
        raise DamagedFile(
            path,
            "not a run, so its words cannot be searched",
            hint=f"move {path} aside (or restore it), then run 'workerctl runs reindex'",
        )
    matches = matching(source.con, query, flt, source.skip)
    if source.extra is not None:
        matches += matching(source.extra, query, flt)
        matches.sort(key=lambda m: (m.score, -(m.shard or 0), -(m.doc or 0)))
    out: list[dict[str, Any]] = []
    for match in matches:
        summary = summary_of(history, match)
        if summary is None or (flt is not None and not flt.match(summary)):
            continue
        column, marked = snippet(history, match, query)
        text, marks = plain_snippet(marked)
        summary.setdefault("failed_checks", None)
        summary["output"] = None  # filled below, for the hits shown only
        score = float(f"{-match.score:.4g}")  # four significant digits: bm25 can be tiny
        summary.update(score=score, matched_in=column, snippet=text, highlights=marks)
        out.append(summary)
        if limit and len(out) >= limit:
            break
    with_outputs(history, out)
    return out, (f"the search index is {source.why}: answered from the run files" if source.why else "")


def start_index(history: History) -> None:
    """The search index of a new workspace, kept from its first run on."""
    from workerctl.history.search_index import create_empty

    create_empty(history)
