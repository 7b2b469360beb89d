"""The one YAML loader: hard limits, and a position for every key and item.

Every YAML file workerctl reads (worker files, ``records/*.yaml``, record
imports, the workspace settings) comes through here, because each of them can
come from someone else: a file in a shared repository, an import from another
tool. So before anything is built:

- the file must be a regular file no larger than its kind's size limit, UTF-8,
  and free of NUL and other control characters;
- nesting is bounded (``max_depth``), the number of nodes is bounded
  (``max_nodes``), and aliases (``*name``) may add at most ``max_alias_nodes``
  nodes in all: a "billion laughs" document, whose few lines expand to a
  billion nodes, is refused at the alias that crosses the limit, in
  milliseconds, as Kubernetes and modern YAML libraries do. An alias to a node
  that contains it (recursive data) is refused too;
- a key given twice in one mapping is a problem (PyYAML would keep the last).

Each problem is a ``Problem`` at ``FILE:LINE:COL``; a syntax error is reported
where the construct that was left open starts (the opening quote, bracket or
block), with where the parser gave up after it. PyYAML's safe loader gives
values without positions, so the node tree is walked once to keep them.
"""

from __future__ import annotations

import functools
import gc
import math
import os
import re
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workerctl.workers.model import Problem

if TYPE_CHECKING:
    from yaml import CSafeLoader, Event, Mark, MarkedYAMLError, Node, SafeLoader

Locs = dict[tuple, tuple[tuple[int, int], tuple[int, int]]]  # path -> (key pos, value pos)


@dataclass(frozen=True)
class Limits:
    """What one kind of YAML file may hold (documented in docs/guarantees.md, "Hostile input")."""

    what: str
    max_bytes: int
    max_nodes: int
    max_alias_nodes: int
    max_depth: int = 64
    empty_fix: str = "write its content"


WORKER_FILE = Limits(
    "worker file",
    256 * 1024,
    20_000,
    10_000,
    empty_fix="write the worker's fields, see 'workerctl worker new'",
)
RECORD_FILE = Limits(
    "record file",
    4 * 1024 * 1024,
    150_000,
    100_000,
    empty_fix="write a list of records, each with id, type and title",
)
SETTINGS_FILE = Limits(
    "settings file", 64 * 1024, 2_000, 1_000, empty_fix="write the settings as 'key: value' lines"
)
PRICE_FILE = Limits(
    "price table", 256 * 1024, 20_000, 1_000, empty_fix="write version, currency and models (see docs)"
)

MAX_DIGITS = 1000  # Python refuses to read integers of more than 4300 digits anyway

# YAML 1.1 printable characters: tab, newline, carriage return, and no other control
# characters, surrogates or U+FFFE/U+FFFF
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
_CONSTRUCT_FIX = {
    "quoted scalar": "close the quote, or escape a quote inside it",
    "flow sequence": "close the '[' with ']', or add the missing comma",
    "flow mapping": "close the '{' with '}', or add the missing comma",
    "block mapping": "check the indentation: keys of one mapping start in the same column",
    "block collection": "check the indentation: items of one list start in the same column",
    "simple key": "a key and its ':' must be on one line; quote a value that holds ': '",
}


class _Refused(Exception):
    """A limit crossed while composing, at a position."""

    def __init__(self, mark: Any, message: str, fix: str) -> None:  # PyYAML's Mark or libyaml's
        super().__init__(message)
        self.mark, self.message, self.fix = mark, message, fix


def _pos(mark: Mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def _human(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB" if size >= 1024 * 1024 else f"{size // 1024} KiB"


def _line_col(data: str | bytes, index: int) -> tuple[int, int]:
    if isinstance(data, str):
        line, start = data.count("\n", 0, index) + 1, data.rfind("\n", 0, index) + 1
    else:
        line, start = data.count(b"\n", 0, index) + 1, data.rfind(b"\n", 0, index) + 1
    return line, index - start + 1


def read_yaml_text(
    path: str | os.PathLike[str], file: str, limits: Limits
) -> tuple[str | None, list[Problem]]:
    """The text of ``path``, or the problems that keep it from being read as YAML.

    Only a regular file is read (a FIFO or a device would block or never end),
    and never more than ``limits.max_bytes`` + 1 bytes of it.
    """

    def refuse(message: str, fix: str, line: int = 1, col: int = 1) -> tuple[None, list[Problem]]:
        return None, [Problem(file, line, col, "(file)", message, fix)]

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        return refuse(f"cannot read it: {exc.strerror}", "check the file's permissions")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return refuse("not a regular file", f"a {limits.what} must be a plain file")
        if st.st_size > limits.max_bytes:
            return refuse(
                f"the file is {st.st_size:,} bytes; a {limits.what} may be at most "
                f"{_human(limits.max_bytes)}",
                _size_fix(limits),
            )
        chunks, left = [], limits.max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if len(raw) > limits.max_bytes:
        return refuse(
            f"the file is larger than {_human(limits.max_bytes)}, the limit for a {limits.what}",
            _size_fix(limits),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw, exc.start)
        return refuse(
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot start or continue a UTF-8 character",
            "save the file as UTF-8",
            line,
            col,
        )
    return text, []


def _size_fix(limits: Limits) -> str:
    if limits is RECORD_FILE:
        return "split the records over several files"
    return f"a {limits.what} this large is not hand-written: shorten it"


def parse_yaml(
    text: str, file: str, limits: Limits = WORKER_FILE, *, libyaml: bool = True, positions: bool = True
) -> tuple[Any, Locs, list[Problem]]:
    """Load ``text`` within ``limits`` and remember where every key and item stands.

    Returns (data, positions, problems); data is None when the text could not be
    loaded at all. ``positions=False`` keeps only the root's (a big record file
    needs none, and they cost as much memory as the data); duplicate keys are
    found either way. ``libyaml=False`` uses PyYAML's own parser (as when
    PyYAML was built without libyaml).
    """

    def fail(
        line: int, col: int, message: str, fix: str, field: str = "(yaml)"
    ) -> tuple[None, Locs, list[Problem]]:
        return None, {}, [Problem(file, line, col, field, message, fix)]

    if len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        return fail(
            1,
            1,
            f"the text is larger than {_human(limits.max_bytes)}, the limit for a {limits.what}",
            _size_fix(limits),
            "(file)",
        )
    bad = _UNPRINTABLE.search(text)
    if bad:
        line, col = _line_col(text, bad.start())
        char = ord(bad.group())
        what = "a NUL character (U+0000)" if char == 0 else f"the control character U+{char:04X}"
        return fail(
            line,
            col,
            f"{what} is not allowed in YAML",
            "remove it; if the file is binary it is not YAML",
            "(file)",
        )
    import yaml

    libyaml = libyaml and yaml.__with_libyaml__
    loader = None
    collecting = gc.isenabled()
    try:
        _prescan(text, limits, libyaml)
        loader = _loader(text, libyaml)
        # a document is a tree of many small objects and no cycles: the cyclic
        # collector would only rescan it again and again (3x slower on big files)
        gc.disable()
        node = loader.get_single_node()
        if node is None:
            return fail(1, 1, "the file is empty", limits.empty_fix, "(file)")
        data = loader.construct_document(node)
        locs: Locs = {(): (_pos(node.start_mark), _pos(node.start_mark))}
        problems: list[Problem] = []
        _walk(node, (), locs if positions else None, problems, file)
    except _Refused as exc:
        line, col = _pos(exc.mark)
        return fail(line, col, exc.message, exc.fix)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark else (1, 1)
        return fail(
            line, col, f"unsupported YAML: {exc.problem}", "only plain YAML is allowed: remove the !!tag"
        )
    except yaml.MarkedYAMLError as exc:
        return None, {}, [_syntax_problem(exc, file, limits)]
    except yaml.YAMLError as exc:
        return fail(1, 1, f"invalid YAML: {exc}", "fix the syntax")
    except (ValueError, OverflowError) as exc:  # a value PyYAML cannot build
        return fail(1, 1, f"invalid YAML value: {exc}", "fix the value")
    finally:
        if collecting:
            gc.enable()
        if loader is not None:
            loader.dispose()
    return data, locs, problems


def load_yaml_file(
    path: str | os.PathLike[str], file: str, limits: Limits
) -> tuple[Any, Locs, list[Problem]]:
    """``read_yaml_text`` then ``parse_yaml``: a file of any content, loaded within limits."""
    text, problems = read_yaml_text(path, file, limits)
    if text is None:
        return None, {}, problems
    return parse_yaml(text, file, limits)


def _syntax_problem(exc: MarkedYAMLError, file: str, limits: Limits) -> Problem:
    """At the start of the construct left open, then where the parser gave up."""
    problem = exc.problem or "invalid YAML"
    start, gave_up = exc.context_mark, exc.problem_mark
    if "maximum nesting depth" in problem:  # libyaml's own cap, past ours
        mark = gave_up or start
        line, col = _pos(mark) if mark else (1, 1)
        return Problem(
            file,
            line,
            col,
            "(yaml)",
            f"nested deeper than {limits.max_depth} levels",
            "flatten the structure",
        )
    context = exc.context or ""
    construct = context.removeprefix("while scanning ").removeprefix("while parsing ").strip()
    if (
        context.startswith("while ")
        and start is not None
        and gave_up is not None
        and (start.line, start.column) != (gave_up.line, gave_up.column)
    ):
        line, col = _pos(start)
        at = _pos(gave_up)
        name = construct.removeprefix("a ").removeprefix("an ")
        fix = _CONSTRUCT_FIX.get(name, "fix the syntax from this position on")
        return Problem(
            file,
            line,
            col,
            "(yaml)",
            f"invalid YAML: the {name} that starts here is not closed or continued "
            f"correctly: {problem} at line {at[0]}, column {at[1]}",
            fix,
        )
    mark = gave_up or start
    line, col = _pos(mark) if mark else (1, 1)
    said = f"{context}, {problem}" if context and not context.startswith("while ") else problem
    return Problem(file, line, col, "(yaml)", f"invalid YAML: {said}", "fix the syntax at this position")


_INT = re.compile(r"[-+]?(?:0x[0-9a-fA-F_]+|0o?[0-7_]+|0b[01_]+|[0-9][0-9_:]*)")


def _prescan(text: str, limits: Limits, libyaml: bool) -> None:
    """Walk the parser's events once, building nothing, and refuse at the first limit
    crossed: too many values, nesting too deep, aliases expanding too far, an alias
    inside its own anchor, a number too long to read. Memory stays constant however
    hostile the text, so nothing is composed until the whole document is known to fit.
    Syntax errors surface here too, as PyYAML's ``MarkedYAMLError``."""
    import yaml
    from yaml.events import (
        AliasEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
        StreamEndEvent,
    )

    if libyaml:
        from yaml._yaml import CParser

        parser: Any = CParser(text)
    else:
        parser = yaml.SafeLoader(text)
    get = parser.get_event
    stack: list[list] = []  # [expanded size, anchor] of each open collection
    anchors: dict[str, int] = {}  # anchor -> expanded size, once its node is closed
    nodes = alias_nodes = 0
    try:
        while True:
            event = get()
            kind = type(event)
            if kind is ScalarEvent:
                nodes += 1
                if nodes > limits.max_nodes:
                    raise _too_many(event, limits)
                value = event.value
                if len(value) > MAX_DIGITS and event.implicit[0] and _INT.fullmatch(value):
                    raise _Refused(
                        event.start_mark,
                        f"a number with more than {MAX_DIGITS} digits",
                        "quote it if it is meant as text",
                    )
                if event.anchor is not None:
                    anchors[event.anchor] = 1
                if stack:
                    stack[-1][0] += 1
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                nodes += 1
                if nodes > limits.max_nodes:
                    raise _too_many(event, limits)
                if len(stack) >= limits.max_depth:
                    raise _Refused(
                        event.start_mark,
                        f"nested deeper than {limits.max_depth} levels",
                        "flatten the structure",
                    )
                stack.append([1, event.anchor])
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                size, anchor = stack.pop()
                if anchor is not None:
                    anchors[anchor] = size
                if stack:
                    stack[-1][0] += size
            elif kind is AliasEvent:
                size = anchors.get(event.anchor)
                if size is None:
                    if any(anchor == event.anchor for _, anchor in stack):
                        raise _Refused(
                            event.start_mark,
                            f"the alias *{event.anchor} is inside the node it refers to (recursive data)",
                            "write the data out without the alias",
                        )
                    size = 1  # undefined: the composer reports it
                alias_nodes += size
                if alias_nodes > limits.max_alias_nodes:
                    raise _Refused(
                        event.start_mark,
                        f"aliases expand to more than {limits.max_alias_nodes:,} "
                        f"nodes (a {limits.what} may add at most that many "
                        "through aliases: this looks like a YAML bomb)",
                        "write the data out without nested aliases",
                    )
                if stack:
                    stack[-1][0] += size
            elif kind is StreamEndEvent:
                return
    finally:
        dispose = getattr(parser, "dispose", None)
        if dispose is not None:
            dispose()


def _too_many(event: Event, limits: Limits) -> _Refused:
    return _Refused(
        event.start_mark,
        f"more than {limits.max_nodes:,} values (the limit for a {limits.what})",
        _size_fix(limits),
    )


def _loader(text: str, libyaml: bool) -> SafeLoader | CSafeLoader:
    loaders = _json_loaders()
    return loaders[0](text) if libyaml else loaders[1](text)


@functools.cache
def _json_loaders() -> tuple[type[CSafeLoader], type[SafeLoader]]:
    """PyYAML's safe loaders, building JSON values only (``workerctl.jsonvalues``): a
    plain date or time is its ISO text (``due: 2026-12-01`` is ``"2026-12-01"``, as
    YAML 1.2 and JSON read it); a NaN, an infinity, ``!!binary``, ``!!set``, ``!!omap``
    and ``!!pairs`` are refused at their line (before, a date in a step program's
    arguments, or a set in a record, ended the command in a traceback, and ``.nan``
    reached the history)."""
    import yaml

    def iso_text(loader: Any, node: Any) -> str:
        return str(yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node).isoformat())

    def finite(loader: Any, node: Any) -> float:
        value = yaml.constructor.SafeConstructor.construct_yaml_float(loader, node)
        if not math.isfinite(value):
            raise _Refused(
                node.start_mark,
                f"{node.value!r} is not a finite number (JSON, and workerctl, keep only those)",
                "write a number, or quote it if it is meant as text",
            )
        return float(value)

    def refused(loader: Any, node: Any) -> None:
        tag = node.tag.rsplit(":", 1)[-1]
        raise _Refused(
            node.start_mark,
            f"a YAML !!{tag} value: workerctl keeps text, numbers, true/false, null, lists and mappings",
            "write it as one of those (a list for a set, text for binary data)",
        )

    built = []
    for base in (yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader, yaml.SafeLoader):
        loader: Any = type(f"Json{base.__name__}", (base,), {})
        loader.add_constructor("tag:yaml.org,2002:timestamp", iso_text)
        loader.add_constructor("tag:yaml.org,2002:float", finite)
        for tag in ("binary", "set", "omap", "pairs"):
            loader.add_constructor(f"tag:yaml.org,2002:{tag}", refused)
        built.append(loader)
    return built[0], built[1]


def _walk(node: Node, path: tuple, locs: Locs | None, problems: list[Problem], file: str) -> None:
    """Positions (into ``locs``, unless None) and keys given twice, over the whole tree
    (aliases followed: the prescan bounded how far they expand)."""
    from yaml import MappingNode, SequenceNode

    kind = type(node)
    if kind is MappingNode:
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if isinstance(key, str):
                if key in seen:
                    line, col = _pos(key_node.start_mark)
                    problems.append(
                        Problem(
                            file, line, col, dotted((*path, key)), "key given twice", "keep only one of them"
                        )
                    )
                seen.add(key)
            if type(value_node) is not MappingNode and type(value_node) is not SequenceNode and locs is None:
                continue
            sub = (*path, key)
            if locs is not None:
                locs[sub] = (_pos(key_node.start_mark), _pos(value_node.start_mark))
            _walk(value_node, sub, locs, problems, file)
    elif kind is SequenceNode:
        for index, item in enumerate(node.value):
            if locs is None and type(item) is not MappingNode and type(item) is not SequenceNode:
                continue
            sub = (*path, index)
            if locs is not None:
                locs[sub] = (_pos(item.start_mark), _pos(item.start_mark))
            _walk(item, sub, locs, problems, file)


def dotted(path: tuple) -> str:
    if not path:
        return "(file)"
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
